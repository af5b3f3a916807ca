"""The chat with Claude as drawn: a view of the conversation (the workstation's pane, or full
screen) and its input. The conversation, the engine and the reply in flight are the chat session's
(`ai/chat_session.py`); a view draws what the session tells it and hands it what the trader types.

Replies stream into a Markdown widget as they arrive (Textual's MarkdownStream batches fragments
when they come faster than the screen draws). Tool calls are shown folded; a reply ends with its
token usage and estimated cost, or with why it stopped (the partial text is kept and marked).
When the API asks to come back later (429, 529) a countdown says when the engine tries again;
Esc stops a reply in flight, or the countdown; with none it leaves the chat, and the footer says
which. The input keeps a history (up/down) and takes several lines (ctrl+j for a new line; Enter
sends).
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Collapsible, Markdown, Static, TextArea

if TYPE_CHECKING:
    from trii_term.ai.chat_session import ChatSession
    from trii_term.ai.conversations import ChatMessage
    from trii_term.ai.engine import Usage
    from trii_term.ai.failures import Retrying

HISTORY = 100  # inputs remembered for up/down
SEAL_AFTER = 400  # characters of a streaming reply before a paragraph break starts a new widget


class ChatInput(TextArea):
    """Enter sends; ctrl+j starts a new line; up/down on the first/last line walk the history."""

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, history: list[str], *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        self.sent = history  # what was sent, for up/down (TextArea's own `history` is undo)
        self._pos: int | None = None  # where in the history up/down stand
        self._draft = ""

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.prevent_default()
            event.stop()
            text = self.text.strip()
            if text:
                if not self.sent or self.sent[-1] != text:
                    self.sent.append(text)
                    del self.sent[:-HISTORY]
                self._pos = None
                self.load_text("")
                self.post_message(self.Submitted(text))
            return
        if event.key == "ctrl+j":
            event.prevent_default()
            event.stop()
            self.insert("\n")
            return
        row = self.cursor_location[0]
        if event.key == "up" and row == 0 and self.sent:
            event.prevent_default()
            event.stop()
            if self._pos is None:
                self._draft, self._pos = self.text, len(self.sent)
            self._pos = max(0, self._pos - 1)
            self.load_text(self.sent[self._pos])
            return
        if event.key == "down" and self._pos is not None and row == self.document.line_count - 1:
            event.prevent_default()
            event.stop()
            self._pos += 1
            if self._pos >= len(self.sent):
                self._pos = None
                self.load_text(self._draft)
            else:
                self.load_text(self.sent[self._pos])
            self.move_cursor(self.document.end)
            return
        await super()._on_key(event)


class ChatView(Vertical):
    """One view of the conversation (a `ChatDisplay` of the chat session): its title, the
    messages, the input."""

    # Esc stops a reply while one is coming, else leaves the chat; the footer says which.
    BINDINGS = [
        Binding("escape", "stop", "Stop reply", show=True, id="chat.stop"),
        Binding("escape", "leave", "Leave chat", show=True, id="chat.leave"),
    ]

    def __init__(self, controller: ChatSession, *, id: str | None = None, classes: str = "") -> None:
        super().__init__(id=id, classes=classes)
        self.controller = controller
        self.title_line = Static("", classes="chat-title")
        self.log_view = VerticalScroll(classes="chat-log")
        self.input = ChatInput(controller.history, id=None)
        self.input.placeholder = "Ask about the market on screen · Enter sends · ctrl+j new line · Esc stops"
        self._md: Markdown | None = None
        self._stream: Any = None
        self._reply_text = ""
        self._tools: dict[str, tuple[Collapsible, Static]] = {}
        self._countdown: Static | None = None  # "retrying in 4 s…" while the engine waits
        self._countdown_timer: Timer | None = None
        self.first_paint_ns: int | None = None  # for the latency benchmark
        # This view showed the end of the reply (the engine may still be closing its stream)
        self._reply_ended = False

    def compose(self) -> ComposeResult:
        yield self.title_line
        yield self.log_view
        yield self.input

    async def on_mount(self) -> None:
        self.border_title = "Chat"
        await self.reload()
        self.log_view.anchor()  # stays at the newest line while the reply streams, until scrolled up

    # -- what the chat session shows ----------------------------------------------------------

    async def reload(self) -> None:
        """The conversation from the store (on open, on resume)."""
        self._end_stream_now()
        await self.clear_countdown()
        await self.log_view.remove_children()
        self._md = None
        self._tools.clear()
        self.retitle()
        problem = self.controller.problem()
        if problem:
            await self.log_view.mount(Static(Text(f"✖ {problem}"), classes="chat-problem"))
        for message in self.controller.messages():
            await self._show_message(message)
        self.log_view.scroll_end(animate=False)

    def retitle(self) -> None:
        self.title_line.update(Text(self.controller.title()))

    async def _show_message(self, message: ChatMessage) -> None:
        if message.role == "user":
            for block in message.blocks:
                if block.get("type") == "text":
                    await self.log_view.mount(Static(Text("you › " + block["text"]), classes="chat-user"))
                elif block.get("type") == "tool_result":
                    tool = self._tools.get(block.get("tool_use_id", ""))
                    if tool is not None:
                        _set_tool_result(tool, _tool_text(block.get("content")), bool(block.get("is_error")))
            return
        text = "".join(b.get("text", "") for b in message.blocks if b.get("type") == "text")
        if text:
            await self.log_view.mount(Markdown(text, classes="chat-assistant"))
        for block in message.blocks:
            if block.get("type") == "tool_use":
                await self._mount_tool(block.get("id", ""), block.get("name", "?"), block.get("input") or {})
        if message.partial:
            await self.log_view.mount(Static(Text("⋯ reply cut short (partial, kept)"), classes="chat-note"))
        if message.usage:
            await self.log_view.mount(Static(Text(_usage_text(message.usage)), classes="chat-usage"))

    async def user_said(self, text: str) -> None:
        self._reply_began()
        await self.log_view.mount(Static(Text("you › " + text), classes="chat-user"))
        self.log_view.scroll_end(animate=False)

    async def text_delta(self, text: str) -> None:
        if self._md is None:
            self._md = Markdown("", classes="chat-assistant")
            await self.log_view.mount(self._md)
            self._stream = Markdown.get_stream(self._md)
            self._reply_text = ""
        self._reply_text += text
        await self._stream.write(text)
        if self.first_paint_ns is None:
            self.first_paint_ns = time.monotonic_ns()
        # A long reply goes on in a new Markdown widget after each finished paragraph (outside
        # a code fence): one growing document would be laid out whole on every new block, a
        # stall that grows with the reply; finished paragraphs keep their layout.
        body = self._reply_text
        if len(body) >= SEAL_AFTER and body.endswith("\n\n") and body.count("```") % 2 == 0:
            await self._end_stream()

    async def tool_started(self, tool_id: str, name: str, args: dict[str, Any]) -> None:
        await self._end_stream()
        await self._mount_tool(tool_id, name, args)
        self.log_view.scroll_end(animate=False)

    async def _mount_tool(self, tool_id: str, name: str, args: dict[str, Any]) -> None:
        shown = ", ".join(f"{k}={v}" for k, v in args.items())
        result = Static("running…", classes="chat-tool-result")
        box = Collapsible(result, title=f"⚙ {name}({shown}) …", collapsed=True, classes="chat-tool")
        self._tools[tool_id] = (box, result)
        await self.log_view.mount(box)

    def tool_finished(self, tool_id: str, output: str, is_error: bool) -> None:
        tool = self._tools.get(tool_id)
        if tool is not None:
            _set_tool_result(tool, output, is_error)

    async def reply_done(self, usage: Usage) -> None:
        self._reply_over()
        await self._end_stream()
        await self.log_view.mount(Static(Text(_usage_text(usage)), classes="chat-usage"))
        self.retitle()
        self.log_view.scroll_end(animate=False)

    async def retry_countdown(self, retrying: Retrying) -> None:
        """The engine waits `retrying.wait` seconds before trying again: count them down."""
        await self.clear_countdown()
        await self._end_stream()
        deadline = time.monotonic() + retrying.wait
        line = Static(Text(retrying.countdown(retrying.wait)), classes="chat-note chat-retry")
        self._countdown = line
        await self.log_view.mount(line)
        self.log_view.scroll_end(animate=False)

        def tick() -> None:
            line.update(Text(retrying.countdown(deadline - time.monotonic())))

        self._countdown_timer = self.set_interval(0.25, tick)

    async def clear_countdown(self) -> None:
        timer, self._countdown_timer = self._countdown_timer, None
        if timer is not None:
            timer.stop()
        line, self._countdown = self._countdown, None
        if line is not None:
            await line.remove()

    async def reply_failed(self, message: str, partial: bool) -> None:
        self._reply_over()
        await self.clear_countdown()
        await self._end_stream()
        if partial:
            await self.log_view.mount(Static(Text("⋯ reply cut short (partial, kept)"), classes="chat-note"))
        await self.log_view.mount(Static(Text(f"✖ {message}"), classes="chat-problem"))
        self.log_view.scroll_end(animate=False)

    async def _end_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()
        self._md = None

    def _end_stream_now(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            self.run_worker(stream.stop(), exit_on_error=False)
        self._md = None

    # -- keys -----------------------------------------------------------------------------------

    def on_chat_input_submitted(self, event: ChatInput.Submitted) -> None:
        event.stop()
        self.controller.send(event.text)
        if self.controller.busy:
            self._reply_began()

    def _reply_began(self) -> None:
        self._reply_ended = False
        self.refresh_bindings()

    def _reply_over(self) -> None:
        self._reply_ended = True
        self.refresh_bindings()

    @property
    def replying(self) -> bool:
        return self.controller.busy and not self._reply_ended

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.replying
        if action == "leave":
            return not self.replying
        return True

    def action_stop(self) -> None:
        """Esc stops the reply in flight (had it just ended, it goes back instead)."""
        self.controller.escape(self)

    def action_leave(self) -> None:
        """Esc with no reply coming: close the full-screen chat, or leave the pane."""
        self.controller.host.chat_leave(self)


def _set_tool_result(tool: tuple[Collapsible, Static], output: str, is_error: bool) -> None:
    box, result = tool
    mark = "✖" if is_error else "✓"
    box.title = box.title.removesuffix(" …").rstrip() + f" {mark}"
    result.update(Text(output[:4000]))


def _tool_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content if isinstance(c, dict))
    return json.dumps(content)


def _usage_text(usage: Any) -> str:
    get = usage.get if isinstance(usage, dict) else lambda k, d=None: getattr(usage, k, d)
    cost = get("cost_usd", None)
    cost_text = f" · ≈ ${Decimal(str(cost)):.4f}" if cost is not None else ""
    cached = get("cache_read_tokens", 0) or 0
    cache_text = f" ({cached:,} cached)" if cached else ""
    inp = get("input_tokens", 0) or 0
    out = get("output_tokens", 0) or 0
    return f"tokens: {inp:,} in{cache_text} · {out:,} out{cost_text}"
