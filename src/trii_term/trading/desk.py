"""The order desk: the one path every order takes, from every source (ticket, CLI, macro, AI).

    intent (journalled) → made valid for the instrument → pre-trade risk (a refusal is journalled
    as rejected, with the rule) → confirmation → the broker

`preview()` runs the same steps without sending anything, for the ticket's live preview.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from trii_term.trading.journal import Journal
from trii_term.trading.ledger import ZERO, FeeModel
from trii_term.trading.orders import Order, OrderError, OrderRequest, Side, request_json
from trii_term.trading.risk import RiskCheck, RiskContext, RiskLimits, check, order_price, refused


class RiskRefused(OrderError):
    def __init__(self, check: RiskCheck) -> None:
        super().__init__(f"refused by risk rule {check.rule}: {check.reason}")
        self.check = check


class ConfirmationNeeded(OrderError):
    """The order is valid but was not confirmed (no keypress, no --yes, no macro flag)."""


@dataclass(frozen=True)
class Preview:
    request: OrderRequest
    currency: str
    price: Decimal | None  # the expected fill price (limit, stop, or the quote)
    notional: Decimal | None
    commission: Decimal | None
    cash_change: Decimal | None  # negative for a buy (cost + commission), positive for a sale
    buying_power_after: Decimal | None
    position_before: Decimal
    position_after: Decimal
    checks: list[RiskCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what the broker would refuse

    @property
    def ok(self) -> bool:
        return not self.problems and refused(self.checks) is None


@dataclass(frozen=True)
class DayView:
    pnl: dict[str, Decimal | None]  # per symbol; None when a price is missing
    realized: Decimal  # realized today, all symbols


class OrderDesk:
    def __init__(
        self,
        broker,  # type: ignore[no-untyped-def]  # a Broker (paper for now)
        *,
        limits: RiskLimits,
        journal: Journal,
        price_of: Callable[[str], Decimal | None],
        fee_of: Callable[[str], FeeModel],
        clock_ns: Callable[[], int],
        day_of: Callable[[], object],
    ) -> None:
        self.broker = broker
        self.limits = limits
        self.journal = journal
        self._price_of = price_of
        self._fee_of = fee_of
        self._now = clock_ns
        self._day_of = day_of
        self._day: object = None
        self._day_start_equity: Decimal | None = None

    # -- the day's P&L, for the daily loss limit ---------------------------------------------

    def day_pnl(self) -> Decimal:
        """Equity now less equity when this session day was first seen."""
        equity = self.broker.account().equity
        day = self._day_of()
        if day != self._day or self._day_start_equity is None:
            self._day, self._day_start_equity = day, equity
        return equity - self._day_start_equity

    def day_view(self, day_start_ns: int, prev_close: Callable[[str], Decimal | None]) -> DayView:
        """Today's P&L per symbol and realized today, exact and rebuilt from the stored fills
        (so a restart mid-session loses nothing):

            day P&L = qty now × last − qty at the open × previous close + today's trade cash

        A position opened today counts from its fill prices; one carried over, from the close."""
        fills = self.broker.fills_since(day_start_ns)
        qty_now = {p.symbol: p.qty for p in self.broker.positions()}
        marks = {p.symbol: p.last for p in self.broker.positions()}
        bought: dict[str, Decimal] = {}
        flows: dict[str, Decimal] = {}
        realized = ZERO
        for symbol, signed, price, real in fills:
            bought[symbol] = bought.get(symbol, ZERO) + signed
            flows[symbol] = flows.get(symbol, ZERO) - signed * price
            realized += real
        out: dict[str, Decimal | None] = {}
        for symbol in set(qty_now) | set(flows):
            now = qty_now.get(symbol, ZERO)
            start = now - bought.get(symbol, ZERO)
            last = marks.get(symbol)
            close = prev_close(symbol) if start else ZERO
            if (now and last is None) or close is None:
                out[symbol] = None  # no price to value it with
                continue
            out[symbol] = now * (last or ZERO) - start * close + flows.get(symbol, ZERO)
        return DayView(out, realized)

    def context(self, symbol: str) -> RiskContext:
        acct = self.broker.account()
        held = next((p.qty for p in self.broker.positions() if p.symbol == symbol), ZERO)
        return RiskContext(self._price_of(symbol), acct.equity, held, self.day_pnl(), acct.currency)

    # -- preview and submit -------------------------------------------------------------------

    def preview(self, request: OrderRequest) -> Preview:
        problems: list[str] = []
        try:
            request = self.broker.prepare(request)
        except OrderError as exc:
            problems.append(str(exc))
        ctx = self.context(request.symbol)
        price = order_price(request, ctx.last)
        notional = commission = cash_change = bp_after = None
        acct = self.broker.account()
        if price is not None:
            notional = request.qty * price
            commission = self._fee_of(request.symbol)(request.qty, price)
            cash_change = -(notional + commission) if request.side is Side.BUY else notional - commission
            bp_after = acct.buying_power + cash_change if request.side is Side.BUY else acct.buying_power
        if not problems:
            try:
                self.broker.check_cash(request)
            except OrderError as exc:
                problems.append(str(exc))
        checks = check(request, ctx, self.limits)
        after = ctx.position + request.qty * request.side.sign
        return Preview(
            request, acct.currency, price, notional, commission, cash_change, bp_after, ctx.position, after,
            checks, problems,
        )  # fmt: skip

    def submit(self, request: OrderRequest, *, source: str, confirmed: bool) -> Order:
        """Send an order. Raises OrderError (invalid), RiskRefused or ConfirmationNeeded; in
        each case nothing reached the broker."""
        now = self._now()
        self.journal.record(
            "intent",
            broker=self.broker.name,
            source=source,
            ts_ns=now,
            detail={"request": request_json(request)},
        )
        try:
            prepared = self.broker.prepare(request)
        except OrderError as exc:
            self._rejected(request, source, now, {"error": str(exc)})
            raise
        first = refused(check(prepared, self.context(prepared.symbol), self.limits))
        if first is not None:
            self._rejected(prepared, source, now, {"rule": first.rule, "reason": first.reason})
            raise RiskRefused(first)
        if not confirmed:
            self._rejected(prepared, source, now, {"error": "not confirmed"})
            raise ConfirmationNeeded("the order needs confirming: press y in the dialog, or --yes on the CLI")
        try:
            return self.broker.place(prepared, source=source)
        except OrderError as exc:
            # a live broker journals what happened itself (rejected, or in doubt after a
            # dropped line: then it may have reached the broker, and "rejected" would be wrong)
            if not getattr(exc, "journalled", False):
                self._rejected(prepared, source, now, {"error": str(exc)})
            raise

    def refuse(self, request: OrderRequest, *, source: str, reason: str) -> None:
        """Journal an order that was tried and not sent because its preview showed a problem."""
        now = self._now()
        self.journal.record(
            "intent",
            broker=self.broker.name,
            source=source,
            ts_ns=now,
            detail={"request": request_json(request)},
        )
        self._rejected(request, source, now, {"error": reason})

    def _rejected(self, request: OrderRequest, source: str, now: int, detail: dict[str, object]) -> None:
        self.journal.record(
            "rejected",
            broker=self.broker.name,
            source=source,
            ts_ns=now,
            client_order_id=request.client_order_id or None,
            detail={"request": request_json(request), **detail},
        )

    def cancel(self, order_id: str, *, source: str) -> Order:
        return self.broker.cancel(order_id, source=source)

    def replace(self, order_id: str, *, source: str, **changes: Decimal | None) -> Order:
        return self.broker.replace(order_id, source=source, **changes)
