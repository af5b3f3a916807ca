"""The confirm dialog every order action passes in the workstation: what will be sent (every leg
and price, the cost, the buying power and position after, each risk rule), to which account.

Only `y` sends. Enter does not (a double Enter from the ticket must never send); `n` or Esc
closes it unsent. It scrolls when the preview is taller than the screen (80×24)."""

from __future__ import annotations

import contextlib

from rich.text import Text
from textual import events
from textual._time import get_time
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Static

# After it is drawn the dialog takes no key for this long: the second tap of a fast `yy` (100–
# 150 ms apart) lands inside it, however quickly a re-shown dialog ("It changed since you
# looked") comes back; nobody reads a dialog and answers it faster.
SETTLE = 0.4


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

    def __init__(self, title: str, lines: list[str], where: str = "", *, verb: str = "send") -> None:
        super().__init__()  # no id: a screen closed and opened again at once would clash
        self._title = title
        self._lines = lines
        self._where = where
        self._verb = verb  # what y does: send (an order), reset (the paper account)…
        self._armed_at: float | None = None  # when it was first on screen
        self._answered = False  # a second key before it closes answers nothing
        self._yes, self._no = "y", "n"  # (compose reads [keys], which may move them)

    def compose(self) -> ComposeResult:
        keymap = getattr(self.app, "keymap", None) or {}  # [keys] may move the answers
        self._yes = keymap.get("confirm.yes", "y").split(",")[0].strip()
        self._no = keymap.get("confirm.no", "n,escape").split(",")[0].strip()
        with Vertical(id="confirm-body"):
            if self._where:
                yield Static(Text(f"To {self._where}", style="bold reverse"), id="confirm-where")
            yield Static(Text(self._title, style="bold"), id="confirm-title")
            with VerticalScroll(id="confirm-lines"):
                yield Static(Text("\n".join(self._lines)))
            yield Static(Text(self._keys_line(), style="bold"), id="confirm-keys")

    def _keys_line(self) -> str:
        no = "n / Esc" if self._no == "n" else self._no
        return f"{self._verb.capitalize()} it?  {self._yes}: {self._verb} · {no}: don't"

    def on_mount(self) -> None:
        self.call_after_refresh(self._fit)
        self.call_after_refresh(self._arm)

    def _arm(self) -> None:
        self._armed_at = get_time()

    def takes(self, event: events.Key) -> bool:
        """A key counts only if it was pressed once the dialog had been on screen a moment, and
        only until it is answered: a key typed ahead (`yy`, whatever keys answer) never answers
        the dialog that may come back."""
        if self._answered or self._armed_at is None:
            return False
        if event.time < self._armed_at + SETTLE:
            if event.time >= self._armed_at:  # pressed at it, too soon: say so
                self.app.bell()
                self.query_one("#confirm-keys", Static).update(
                    Text(
                        f"Too soon to be read: press {self._yes} again to {self._verb}.", style="bold reverse"
                    )
                )
            return False
        return True

    def on_key(self, event: events.Key) -> None:
        if not self.takes(event):
            event.stop()
            event.prevent_default()

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        """The preview scrolls in what the screen leaves: where it goes, what it is and the keys
        that answer always show, even at 40×12."""
        if not self.is_attached:
            return  # answered (and closed) before this ran
        fixed = 2 + sum(
            max(1, w.outer_size.height) for w in self.query("#confirm-where, #confirm-title, #confirm-keys")
        )
        with contextlib.suppress(NoMatches):
            self.query_one("#confirm-lines").styles.max_height = max(1, self.app.size.height - fixed)

    def action_answer(self, yes: bool) -> None:
        if not self._answered:
            self._answered = True
            self.dismiss(yes)

    def action_enter(self) -> None:
        """Enter is not an answer: say which key is."""
        self.app.bell()
        self.query_one("#confirm-keys", Static).update(
            Text(
                f"Press {self._yes} to {self._verb}, {self._no} not to (Enter does not).",
                style="bold reverse",
            )
        )
