"""The order ticket: every field from the keyboard, validated as you type, with a live preview
(every leg and price, cost or proceeds, commission, buying power and position after, each risk
check). Enter sends the order as a command line (`buy 100 AAPL lmt 430 tp 450 sl 420`, source
`ticket`) through the one order path: the confirm dialog asks y/n, the desk checks every rule
again at the moment it sends, and the outcome comes back here ("Not sent: …" keeps the ticket
open). It fits 80×24: the fields are one line each and the preview scrolls."""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from trii_term.commands.order_preview import preview_lines
from trii_term.commands.ports import workstation
from trii_term.commands.registry import Result
from trii_term.domain.orders import TIF, OrderError
from trii_term.screens.confirm import ConfirmScreen
from trii_term.session import Session
from trii_term.trading.desk import Preview
from trii_term.trading.order_line import Draft

__all__ = ["ConfirmScreen", "TicketScreen"]

ROWS = (  # each row: (input id, draft field, label, placeholder)
    (("qty", "qty", "Qty", "(shares)"), ("symbol", "symbol", "Symbol", "AAPL")),
    (
        ("limit", "limit", "Limit", "(market)"),
        ("stop", "stop", "Stop", "(none)"),
        ("trail", "trail", "Trail", "(none)"),
    ),
    (
        ("trail_pct", "trail_pct", "Trail%", "(none)"),
        ("take_profit", "take_profit", "Take-profit", "(none)"),
        ("stop_loss", "stop_loss", "Stop-loss", "(none)"),
    ),
)
FIELDS = tuple(f for row in ROWS for f in row)
NARROW = 72  # below this many columns: two fields a row, the time in force on its own


def rows_for(width: int) -> list[tuple[tuple[str, str, str, str], ...]]:
    """The fields, row by row, for a screen this wide (nothing may overflow the box)."""
    if width >= NARROW:
        return list(ROWS)
    return [FIELDS[i : i + 2] for i in range(0, len(FIELDS), 2)]


STYLE = {"head": "bold", "no": "bold", "ok": "", "leg": "", "money": "", "position": "", "note": "italic"}


class Outcome(Static):
    """What happened to the last Enter, in full (it wraps: a "Not sent" reason is never cut)."""

    def on_mount(self) -> None:
        self.display = False  # no blank line until there is something to say

    def show(self, message: str, level: str = "info") -> None:
        icon = {"info": "›", "warning": "!", "error": "✖"}.get(level, "›")
        self.update(Text(f"{icon} {' '.join(message.split())}", style="bold" if level != "info" else ""))
        self.display = bool(message)


class TicketScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="ticket.close"),
        Binding("ctrl+t", "flip", "Buy/Sell", id="ticket.flip"),
    ]
    DEFAULT_CSS = """
    TicketScreen { align: center middle; }
    TicketScreen #ticket-body {
        width: 80; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    TicketScreen .ticket-row { height: 1; margin-bottom: 0; }
    TicketScreen .ticket-row Label { width: auto; padding: 0 1 0 0; }
    TicketScreen .ticket-row Input { width: 1fr; margin-right: 1; background: $boost; }
    TicketScreen .ticket-row Select { width: 12; }
    TicketScreen #ticket-scroll { height: auto; margin-top: 1; }
    TicketScreen #ticket-preview, TicketScreen #ticket-message { height: auto; }
    """

    def __init__(self, session: Session, draft: Draft, *, opened_by: str = "key") -> None:
        super().__init__()  # no id: a screen closed and opened again at once would clash
        self.session = session
        self.draft = draft
        self.opened_by = opened_by
        self.preview: Preview | None = None
        self.error = ""
        self.sending = False  # an Enter is on its way (review, dialog, send): a second one waits
        self.message_line = Outcome(id="ticket-message")  # what happened to the last Enter
        self._narrow = False

    def compose(self) -> ComposeResult:
        caps = self.session.broker.capabilities if self.session.broker else None
        tifs = [t for t in TIF if caps is None or t in caps.tifs]
        with Vertical(id="ticket-body"):
            yield Static(id="ticket-title")
            self._narrow = self.app.size.width < NARROW
            tif = Select(
                [(t.value, t) for t in tifs],
                value=self.draft.tif,
                allow_blank=False,
                id="t-tif",
                compact=True,
            )
            for n, row in enumerate(rows_for(self.app.size.width)):
                with Horizontal(classes="ticket-row"):
                    for fid, attr, label, hint in row:
                        yield Label(label)
                        yield Input(getattr(self.draft, attr), placeholder=hint, id=f"t-{fid}", compact=True)
                    if n == 0 and not self._narrow:
                        yield Label("TIF")
                        yield tif
                if n == 0 and self._narrow:
                    with Horizontal(classes="ticket-row"):
                        yield Label("TIF")
                        yield tif
            with VerticalScroll(id="ticket-scroll"):
                self.message_line = Outcome(id="ticket-message")  # (a new one when laid out again)
                yield self.message_line
                yield Static(id="ticket-preview")
            yield Static(
                Text(
                    "Enter review & send · ctrl+t buy/sell · Tab next field · Esc close"
                    if not self._narrow
                    else "Enter review & send · Esc close",
                    style="dim",
                ),
                id="ticket-keys",
            )

    def on_mount(self) -> None:
        self.query_one("#t-qty" if not self.draft.qty else "#t-limit", Input).focus()
        self._update()
        self.call_after_refresh(self._fit)

    async def on_resize(self) -> None:
        if (self.app.size.width < NARROW) != self._narrow:  # lay the fields out again, as they are
            self.draft = self._read()
            await self.recompose()
            self._update()
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        """The preview scrolls in what the screen leaves: the title, the fields and the key line
        always show (measured once laid out: the title and keys wrap on a narrow screen)."""
        rows = len(self.query(".ticket-row"))
        title = max(1, self.query_one("#ticket-title").outer_size.height)
        keys = max(1, self.query_one("#ticket-keys").outer_size.height)
        fixed = 2 + title + rows + keys + 1  # border, title, fields, keys, the preview's top margin
        self.query_one("#ticket-scroll").styles.max_height = max(1, self.app.size.height - fixed)

    # -- the draft ------------------------------------------------------------------------------

    def _read(self) -> Draft:
        values = {attr: self.query_one(f"#t-{fid}", Input).value.strip() for fid, attr, _, _ in FIELDS}
        values["symbol"] = values["symbol"].upper()
        tif = self.query_one("#t-tif", Select).value
        return replace(self.draft, tif=tif if isinstance(tif, TIF) else TIF.DAY, **values)

    def on_input_changed(self, _event: Input.Changed) -> None:
        self._update()

    def on_select_changed(self, _event: Select.Changed) -> None:
        self._update()

    def action_flip(self) -> None:
        self.draft = replace(self.draft, side=self.draft.side.opposite)
        self._update()

    def _update(self) -> None:
        try:
            self.draft = self._read()
        except NoMatches:  # an Input's first Changed arrives while the ticket is still composing
            return
        d = self.draft
        session = self.session
        last = session.reference_price(d.symbol) if d.symbol in session.instruments else None
        title = Text.assemble(
            (f" {d.side.value.upper()} ", "bold reverse"),
            f"  {d.type.value.replace('_', ' ')} · ",
            f"last {last}" if last is not None else "no price yet",
            f" · to {session.broker_label()}" if not self._narrow else "",  # (the dialog says where)
        )
        self.query_one("#ticket-title", Static).update(title)
        self.preview, self.error = None, ""
        out = Text()
        try:
            if d.symbol not in session.instruments:
                raise OrderError(f"symbol: {d.symbol or '…'} is not an instrument of the feed")
            request = d.request()
            caps = session.broker.capabilities if session.broker else None
            if caps is not None and request.type not in caps.order_types:
                raise OrderError(f"the {session.broker.name} broker does not take {request.type} orders")
            assert session.desk is not None
            self.preview = p = session.desk.preview(request)
        except OrderError as exc:
            self.error = str(exc)
            out.append(f"✗ {exc}", style="bold")
            self.query_one("#ticket-preview", Static).update(out)
            return
        lines = preview_lines(p, last)
        for n, (kind, line) in enumerate(lines):
            out.append(line + ("\n" if n < len(lines) - 1 else ""), style=STYLE.get(kind, ""))
        self.query_one("#ticket-preview", Static).update(out)

    # -- sending --------------------------------------------------------------------------------

    async def on_input_submitted(self, _event: Input.Submitted) -> None:
        await self.review()

    async def review(self) -> None:
        """Enter: the order goes as a command line through the one order path (which asks y/n)."""
        if self.sending:
            return
        self._update()
        if self.preview is None:
            self.app.bell()
            self.message_line.show(f"Not sent: {self.error}", "error")
            return
        self.sending = True
        self.message_line.show("Review the order in the dialog: y sends it, n does not.")
        line = self.draft.line()
        self.app.run_worker(
            workstation(self.app).execute(
                line, source="ticket", on_result=self._sent, opened_by=self.opened_by
            ),
            group="ticket-send",
            exit_on_error=False,
        )

    def _sent(self, result: Result) -> None:
        self.sending = False
        order = result.data.get("order") if isinstance(result.data, dict) else None
        if order is not None and result.level != "error":
            self.dismiss(None)
            return
        self.message_line.show(result.message, result.level)
        self._update()

    def action_close(self) -> None:
        self.dismiss(None)
