"""The order ticket: every field from the keyboard, validated as you type, with a live preview
(cost or proceeds, commission, buying power and position after, each risk check) — and nothing
is sent without a confirmation (unless `trading.confirm = false` on the paper broker)."""

from __future__ import annotations

import time
from dataclasses import replace

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from trii_term.commands.trade import Draft
from trii_term.session import Session
from trii_term.trading.desk import ConfirmationNeeded, Preview, RiskRefused
from trii_term.trading.orders import TIF, OrderError, Side
from trii_term.widgets.status_bar import MessageLine

FIELDS = (  # (input id, draft field, label, placeholder)
    ("qty", "qty", "Qty", "shares"),
    ("symbol", "symbol", "Symbol", "AAPL"),
    ("limit", "limit", "Limit", "market"),
    ("stop", "stop", "Stop", "none"),
    ("trail", "trail", "Trail", "amount"),
    ("trail_pct", "trail_pct", "Trail %", "percent"),
    ("take_profit", "take_profit", "Take-profit", "bracket"),
    ("stop_loss", "stop_loss", "Stop-loss", "bracket"),
)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y,enter", "answer(True)", "Send", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "Don't send", id="confirm.no"),
    ]

    def __init__(self, text: str, where: str = "") -> None:
        super().__init__()  # no id: a screen closed and opened again at once would clash
        self._text = text
        self._where = where

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-body"):
            if self._where:
                yield Static(Text(f"To {self._where}", style="bold reverse"))
            yield Static(Text(self._text))
            yield Static(Text("Send this order?  y / Enter: send · n / Esc: don't", style="bold"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TicketScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="ticket.close"),
        Binding("ctrl+t", "flip", "Buy/Sell", id="ticket.flip"),
    ]

    def __init__(self, session: Session, draft: Draft) -> None:
        super().__init__()  # no id: a screen closed and opened again at once would clash
        self.session = session
        self.draft = draft
        self.preview: Preview | None = None
        self.error = ""
        self.message_line = MessageLine(id="ticket-message")  # what happened to the last Enter

    def compose(self) -> ComposeResult:
        caps = self.session.broker.capabilities if self.session.broker else None
        tifs = [t for t in TIF if caps is None or t in caps.tifs]
        with Vertical(id="ticket-body"):
            yield Static(id="ticket-title")
            with Horizontal(classes="ticket-row"):
                for fid, attr, label, hint in FIELDS[:2]:
                    yield Label(label)
                    yield Input(getattr(self.draft, attr), placeholder=hint, id=f"t-{fid}")
                yield Label("TIF")
                yield Select(
                    [(t.value, t) for t in tifs], value=self.draft.tif, allow_blank=False, id="t-tif"
                )
            with Horizontal(classes="ticket-row"):
                for fid, attr, label, hint in FIELDS[2:5]:
                    yield Label(label)
                    yield Input(getattr(self.draft, attr), placeholder=hint, id=f"t-{fid}")
            with Horizontal(classes="ticket-row"):
                for fid, attr, label, hint in FIELDS[5:]:
                    yield Label(label)
                    yield Input(getattr(self.draft, attr), placeholder=hint, id=f"t-{fid}")
            yield Static(id="ticket-preview")
            yield self.message_line
            yield Static(
                Text("Enter review & send · ctrl+t buy/sell · Tab next field · Esc close", style="dim"),
                id="ticket-keys",
            )

    def on_mount(self) -> None:
        self.query_one("#t-qty" if not self.draft.qty else "#t-limit", Input).focus()
        self._update()

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
        self.draft = self._read()
        d = self.draft
        side = Text(f" {d.side.value.upper()} ", style="bold reverse")
        last = self.session.reference_price(d.symbol) if d.symbol in self.session.instruments else None
        title = Text.assemble(
            side, f"  {d.type.value} · ", f"last {last}" if last is not None else "no price yet"
        )
        self.query_one("#ticket-title", Static).update(title)
        self.preview, self.error = None, ""
        out = Text()
        try:
            if d.symbol not in self.session.instruments:
                raise OrderError(f"symbol: {d.symbol or '…'} is not an instrument of the feed")
            request = d.request()
            caps = self.session.broker.capabilities if self.session.broker else None
            if caps is not None and request.type not in caps.order_types:
                raise OrderError(f"the {self.session.broker.name} broker does not take {request.type} orders")
            assert self.session.desk is not None
            self.preview = p = self.session.desk.preview(request)
        except OrderError as exc:
            self.error = str(exc)
            out.append(f"✗ {exc}", style="bold red")
            self.query_one("#ticket-preview", Static).update(out)
            return
        r = p.request
        out.append(f"{r.side.value.upper()} {r.qty} {r.symbol} {r.type.value} {r.tif.value}", style="bold")
        if r.limit_price is not None:
            out.append(f" limit {r.limit_price}")
        if r.stop_price is not None:
            out.append(f" stop {r.stop_price}")
        out.append("\n")
        if p.notional is not None:
            what = "cost" if r.side is Side.BUY else "proceeds"
            out.append(
                f"{what} {abs(p.cash_change):,.2f} {p.currency} (notional {p.notional:,.2f} + commission "  # type: ignore[arg-type]
                f"{p.commission:,.2f}) · buying power after {p.buying_power_after:,.2f}\n"
            )
        out.append(f"position {p.position_before} → {p.position_after}\n")
        for c in p.checks:
            out.append("✓ ok " if c.ok else "✗ NO ", style="green" if c.ok else "bold red")
            out.append(f"{c.rule}: {c.reason}\n")
        for problem in p.problems:
            out.append("✗ NO ", style="bold red")
            out.append(f"{problem}\n")
        self.query_one("#ticket-preview", Static).update(out)

    # -- sending --------------------------------------------------------------------------------

    async def on_input_submitted(self, _event: Input.Submitted) -> None:
        await self.review()

    async def review(self) -> None:
        self._update()
        p = self.preview
        if p is None:
            self.app.bell()
            self.app.message(f"Not sent: {self.error}", "error")  # type: ignore[attr-defined]
            return
        if not p.ok:
            desk = self.session.desk
            assert desk is not None
            try:  # a risk refusal is journalled by the desk; a broker problem is journalled here
                if p.problems:
                    desk.refuse(p.request, source="ticket", reason=p.problems[0])
                    raise OrderError(p.problems[0])
                desk.submit(p.request, source="ticket", confirmed=False)
            except (RiskRefused, OrderError) as exc:
                self.app.bell()
                self.app.message(f"Not sent: {exc}", "error")  # type: ignore[attr-defined]
            return
        broker = self.session.broker
        skip = not self.session.config.trading.confirm and broker is not None and broker.name == "paper"
        if skip:
            self._send(p, True)
            return
        text = self.query_one("#ticket-preview", Static).render()
        self.app.push_screen(
            ConfirmScreen(str(text), self.session.broker_label()), lambda yes: self._send(p, bool(yes))
        )

    def _send(self, p: Preview, confirmed: bool) -> None:
        self.run_worker(self._send_now(p, confirmed), group="ticket-send", exclusive=True)

    async def _send_now(self, p: Preview, confirmed: bool) -> None:
        from trii_term.brokers.base import RateLimited
        from trii_term.commands.trade import on_broker

        desk = self.session.desk
        assert desk is not None
        broker = self.session.broker
        if getattr(broker, "remote", False) and confirmed:
            self.app.message(f"Sending to {broker.name}…")  # type: ignore[attr-defined, union-attr]
        try:
            order = await on_broker(
                self.session, desk.submit, p.request, source="ticket", confirmed=confirmed
            )
        except ConfirmationNeeded:
            self.app.message("Not sent (not confirmed).", "warning")  # type: ignore[attr-defined]
            return
        except RateLimited as exc:
            self.app.bell()
            wait = max(0, round(exc.retry_at - time.monotonic()))
            self.app.message(f"Not sent: {exc} — try again in {wait}s", "error")  # type: ignore[attr-defined]
            return
        except (RiskRefused, OrderError) as exc:
            self.app.bell()
            self.app.message(f"Not sent: {exc}", "error")  # type: ignore[attr-defined]
            return
        fill = f" at {order.avg_fill_price}" if order.avg_fill_price is not None else ""
        self.app.message(  # type: ignore[attr-defined]
            f"{order.id} {order.status.value}: {order.request.side.value} "
            f"{order.filled_qty}/{order.request.qty} {order.symbol}{fill}"
        )
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
