"""The confirm dialog every order action passes in the workstation: what will be sent (every leg
and price, the cost, the buying power and position after, each risk rule), to which account.

Only `y` sends. Enter does not (a double Enter from the ticket must never send); `n` or Esc
closes it unsent. It scrolls when the preview is taller than the screen (80×24)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Send", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "Don't send", id="confirm.no"),
        Binding("enter", "enter", "", show=False, id="confirm.enter"),
    ]

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen #confirm-body {
        width: 80; max-width: 100%; height: auto; max-height: 100%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    ConfirmScreen #confirm-lines { height: auto; }
    """

    def __init__(self, title: str, lines: list[str], where: str = "") -> None:
        super().__init__()  # no id: a screen closed and opened again at once would clash
        self._title = title
        self._lines = lines
        self._where = where

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-body"):
            if self._where:
                yield Static(Text(f"To {self._where}", style="bold reverse"), id="confirm-where")
            yield Static(Text(self._title, style="bold"), id="confirm-title")
            with VerticalScroll(id="confirm-lines"):
                yield Static(Text("\n".join(self._lines)))
            yield Static(Text("Send it?  y: send · n / Esc: don't send", style="bold"), id="confirm-keys")

    def on_mount(self) -> None:
        self.call_after_refresh(self._fit)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        """The preview scrolls in what the screen leaves: where it goes, what it is and the keys
        that answer always show, even at 40×12."""
        fixed = 2 + sum(
            max(1, w.outer_size.height) for w in self.query("#confirm-where, #confirm-title, #confirm-keys")
        )
        self.query_one("#confirm-lines").styles.max_height = max(1, self.app.size.height - fixed)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def action_enter(self) -> None:
        """Enter is not an answer: say which key is."""
        self.app.bell()
        self.query_one("#confirm-keys", Static).update(
            Text("Press y to send, n or Esc not to (Enter does not send).", style="bold reverse")
        )
