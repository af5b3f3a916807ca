"""The full-screen chat (`ask …`, T): the conversation as large as the terminal."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen

from trii_term.ai.chat_session import ChatSession
from trii_term.session import Session
from trii_term.widgets.chat import ChatView
from trii_term.widgets.keys_footer import KeysFooter
from trii_term.widgets.status_bar import MessageLine, StatusBar


class ChatScreen(Screen[None]):
    def __init__(self, session: Session, controller: ChatSession, focused_symbol: str | None) -> None:
        super().__init__()  # no id: a screen closed and opened again at once would clash
        self.session = session
        self.controller = controller
        self.chat = ChatView(controller, id="chat-full")
        self.message_line = MessageLine(id="chat-message")
        self.status_bar = StatusBar(session, id="chat-status")
        self.status_bar.focused_symbol = focused_symbol

    def compose(self) -> ComposeResult:
        yield self.chat
        yield self.message_line
        yield self.status_bar
        yield KeysFooter()

    def on_mount(self) -> None:
        self.controller.views.append(self.chat)
        self.chat.input.focus()

    def on_unmount(self) -> None:
        if self.chat in self.controller.views:
            self.controller.views.remove(self.chat)
