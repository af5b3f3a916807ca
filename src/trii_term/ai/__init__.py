"""The AI desk's core: a Claude chat engine that sees the market through the same commands the
keyboard uses, drafts orders into the ticket (never sends them), and keeps every conversation in
the store. No UI here: `trii-term ask` drives `engine.ChatEngine`, and the workstation's chat
drives it through `chat_session.ChatSession` (the open conversation, the reply in flight, the cost).

The anthropic SDK takes about 1.5 s to import, so only `engine` imports it, and only inside the
functions that talk to the API.
"""
