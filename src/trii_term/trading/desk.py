"""The order desk: the one path every order action takes, from every source (ticket, palette, keys,
CLI, macro, AI).

    intent (journalled) → made valid for the instrument (tick, lot) → every pre-trade risk rule
    (the results journalled; a refusal as rejected, with the rule) → confirmation → the broker

A replace is an order: the order as it would be after the change runs the same path. Flatten and
reverse are market orders built from the position. `preview()` and `preview_replace()` run the
same steps without sending or recording anything, for the ticket, the confirm dialog and the CLI.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Protocol

from trii_term.brokers.base import Account, DayFill, PositionView
from trii_term.config import RiskLimits
from trii_term.domain.ledger import ZERO, FeeModel
from trii_term.domain.orders import (
    Order,
    OrderError,
    OrderRequest,
    OrderType,
    Side,
    px,
    request_json,
)
from trii_term.store.journal import Journal
from trii_term.trading.risk import RiskCheck, RiskContext, check, opening, order_price, refused

log = logging.getLogger(__name__)


class RiskRefused(OrderError):
    def __init__(self, check: RiskCheck) -> None:
        super().__init__(f"refused by risk rule {check.rule}: {check.reason}")
        self.check = check


class ConfirmationNeeded(OrderError):
    """The order is valid but was not confirmed (no keypress, no --yes, no armed macro)."""


@dataclass(frozen=True)
class Preview:
    request: OrderRequest  # as it would be sent (on the tick grid, in whole lots)
    currency: str
    price: Decimal | None  # the expected fill price (limit, stop, or the quote)
    notional: Decimal | None
    commission: Decimal | None
    cash_change: Decimal | None  # negative for a buy (cost + commission), positive for a sale
    buying_power_after: Decimal | None  # the account's buying power once it has filled
    position_before: Decimal
    position_after: Decimal
    checks: list[RiskCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what the broker would refuse
    releasing: tuple[Order, ...] = ()  # working orders this action replaces or cancels first
    action: str = "place"  # place | replace | flatten | reverse
    notes: tuple[str, ...] = ()  # what the trader should know: the market is closed, …

    @property
    def ok(self) -> bool:
        return not self.problems and refused(self.checks) is None


@dataclass(frozen=True)
class DayView:
    pnl: dict[str, Decimal | None]  # per symbol; None when a price is missing
    realized: Decimal  # realized today, all symbols
    fees: Decimal = ZERO  # commissions paid today, all symbols

    @property
    def unpriced(self) -> list[str]:
        """Symbols whose day P&L cannot be valued yet (no price)."""
        return sorted(s for s, v in self.pnl.items() if v is None)

    @property
    def total(self) -> Decimal:
        """The day's P&L across symbols, net of today's commissions (the unpriced left out)."""
        return sum((v for v in self.pnl.values() if v is not None), ZERO) - self.fees


@dataclass(frozen=True)
class Replacement:
    """A working order and the order it would be after a replace."""

    order: Order
    request: OrderRequest  # the whole order after the change (prepared)
    changes: dict[str, Decimal]  # what the broker is asked to change, as it will be sent

    @property
    def remaining(self) -> OrderRequest:
        """What can still trade after the change: the part every rule is run on (the filled
        part is already in the position)."""
        return replace(self.request, qty=self.request.qty - self.order.filled_qty)


class DeskBroker(Protocol):
    """The broker as the desk uses it: the paper broker and every live one. (`waits` and
    `buying_power_after` are asked for only where a broker has them.)"""

    name: str

    def account(self) -> Account: ...

    def positions(self) -> list[PositionView]: ...

    def orders(self, *, open_only: bool = False) -> list[Order]: ...

    def fills_since(self, ts_ns: int) -> list[DayFill]: ...

    def prepare(self, request: OrderRequest) -> OrderRequest: ...

    def check_cash(self, request: OrderRequest, *, releasing: Sequence[Order] = ()) -> None: ...

    def place(self, request: OrderRequest, *, source: str) -> Order: ...

    def cancel(self, order_id: str, *, source: str) -> Order: ...

    def replace(
        self,
        order_id: str,
        *,
        source: str,
        qty: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order: ...


class OrderDesk:
    def __init__(
        self,
        broker: DeskBroker,
        *,
        limits: RiskLimits,
        journal: Journal,
        price_of: Callable[[str], Decimal | None],
        fee_of: Callable[[str], FeeModel],
        quote_of: Callable[[str], tuple[Decimal | None, Decimal | None]] | None = None,
        day_view_of: Callable[[], DayView] | None = None,
        clock_ns: Callable[[], int],
        day_of: Callable[[], object],
    ) -> None:
        self.broker = broker
        self.limits = limits
        self.journal = journal
        self._price_of = price_of
        self._quote_of = quote_of
        self._day_view_of = day_view_of
        self._fee_of = fee_of
        self._now = clock_ns
        self._day_of = day_of
        self._day: object = None
        self._day_start_equity: Decimal | None = None

    # -- the day's P&L, for the daily loss limit ---------------------------------------------

    def day_pnl(self) -> Decimal:
        """Today's P&L for the daily loss limit. With the session's day view (the workstation, the
        CLI): rebuilt from the stored fills and prices, so a restart or another process does not
        start it again at 0. Without one: equity now less equity when this day was first seen."""
        if self._day_view_of is not None:
            return self._day_view_of().total
        equity = self.broker.account().equity
        day = self._day_of()
        if day != self._day or self._day_start_equity is None:
            self._day, self._day_start_equity = day, equity
        return equity - self._day_start_equity

    def day_view(
        self,
        day_start_ns: int,
        prev_close: Callable[[str], Decimal | None],
        day_start_of: Callable[[str], int] | None = None,
    ) -> DayView:
        """Today's P&L per symbol and realized today, exact and rebuilt from the stored fills
        (so a restart mid-session loses nothing):

            day P&L = qty now × last − qty at the open × previous close + today's trade cash

        A position opened today counts from its fill prices; one carried over, from the close.
        `day_start_of`: when each symbol's own trading day began (its market's), if not at
        `day_start_ns` (then the earliest of them)."""
        fills = self.broker.fills_since(day_start_ns)
        qty_now = {p.symbol: p.qty for p in self.broker.positions()}
        marks = {p.symbol: p.last for p in self.broker.positions()}
        bought: dict[str, Decimal] = {}
        flows: dict[str, Decimal] = {}
        realized = fees = ZERO
        for f in fills:
            if day_start_of is not None and f.ts_ns < day_start_of(f.symbol):
                continue  # its market's day began later
            bought[f.symbol] = bought.get(f.symbol, ZERO) + f.signed
            flows[f.symbol] = flows.get(f.symbol, ZERO) - f.signed * f.price
            realized += f.realized
            fees += f.commission
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
        return DayView(out, realized, fees)

    def position(self, symbol: str) -> Decimal:
        return next((p.qty for p in self.broker.positions() if p.symbol == symbol), ZERO)

    def context(
        self, symbol: str, request: OrderRequest | None = None, *, releasing: Sequence[Order] = ()
    ) -> RiskContext:
        """What the rules need. For an order with no price of its own (market, trailing stop) the
        price is where it would fill (the ask for a buy, the bid for a sale), so the rules and the
        preview value it alike. `releasing`: working orders the action replaces or cancels."""
        acct = self.broker.account()
        price = self._price_of(symbol)
        if request is not None and request.type in (OrderType.MARKET, OrderType.TRAILING_STOP):
            price = self._market_price(request) or price
        if self._day_view_of is not None:
            view = self._day_view_of()
            day, unpriced = view.total, tuple(view.unpriced)
        else:
            day, unpriced = self.day_pnl(), ()
        pending = ZERO
        position = self.position(symbol)
        # the working orders matter only to an order that reduces the position (a second sale of
        # what is being sold opens a short); an opening order needs no look at them (a store read)
        if request is not None and not opening(request, position):
            gone = {o.id for o in releasing}
            pending = sum(
                (o.remaining * o.side.sign for o in self.working(symbol)
                 if o.side is request.side and o.parent_id is None and o.id not in gone),
                ZERO,
            )  # fmt: skip
        return RiskContext(price, acct.equity, position, day, acct.currency, unpriced, pending)

    # -- preview ------------------------------------------------------------------------------

    def preview(
        self, request: OrderRequest, *, releasing: Sequence[Order] = (), action: str = "place"
    ) -> Preview:
        """What the order would do, with every check, sending and recording nothing.
        `releasing`: working orders the action replaces or cancels first (their cash and shares
        are free for this order)."""
        problems: list[str] = []
        try:
            request = self.broker.prepare(request)
        except OrderError as exc:
            problems.append(str(exc))
        ctx = self.context(request.symbol, request, releasing=releasing)
        price = order_price(request, ctx.last)
        if request.type is OrderType.TRAILING_STOP and ctx.last is not None:
            price = trail_start(request, ctx.last)  # where it would fill if hit at once
        notional = commission = cash_change = bp_after = None
        acct = self.broker.account()
        if price is not None:
            notional = request.qty * price
            commission = self._fee_of(request.symbol)(request.qty, price)
            cash_change = -(notional + commission) if request.side is Side.BUY else notional - commission
            bp_after = self._buying_power_after(request, price, commission, acct.buying_power, releasing)
        if not problems:
            try:
                self._check_cash(request, releasing)
            except OrderError as exc:
                problems.append(str(exc))
        checks = check(request, ctx, self.limits)
        after = ctx.position + request.qty * request.side.sign
        # the paper broker says when an order would wait (its market is closed); live ones do not
        waits: Callable[[OrderRequest], str | None] | None = getattr(self.broker, "waits", None)
        note = waits(request) if waits is not None else None
        return Preview(
            request, acct.currency, price, notional, commission, cash_change, bp_after, ctx.position, after,
            checks, problems, tuple(releasing), action, (note,) if note else (),
        )  # fmt: skip

    def _market_price(self, request: OrderRequest) -> Decimal | None:
        """Where a market order fills: a buy at the ask, a sale at the bid."""
        if self._quote_of is None:
            return None
        bid, ask = self._quote_of(request.symbol)
        return ask if request.side is Side.BUY else bid

    def _buying_power_after(
        self,
        request: OrderRequest,
        price: Decimal,
        commission: Decimal,
        now: Decimal,
        releasing: Sequence[Order],
    ) -> Decimal:
        """The account's buying power once the order has filled at `price` (commission paid, a
        sale's proceeds counted). The paper broker computes it on a copy of its ledger; for a
        live broker it is estimated from the cash the fill moves."""
        what_if: Callable[..., Decimal] | None = getattr(self.broker, "buying_power_after", None)
        if what_if is not None:
            return what_if(request, price, commission, releasing=releasing)
        cash = request.qty * price * (-request.side.sign) - commission
        return now + cash

    def _check_cash(self, request: OrderRequest, releasing: Sequence[Order] = ()) -> None:
        if releasing:
            self.broker.check_cash(request, releasing=releasing)
        else:
            self.broker.check_cash(request)

    # -- place --------------------------------------------------------------------------------

    def submit(
        self, request: OrderRequest, *, source: str, confirmed: bool, note: dict[str, object] | None = None
    ) -> Order:
        """Send an order. Raises OrderError (invalid), RiskRefused or ConfirmationNeeded; in
        each case nothing reached the broker. `note` goes into the journalled intent (what opened
        the ticket, say)."""
        now = self._now()
        self._intent(request, source, now, note=note)
        try:
            prepared = self.broker.prepare(request)
        except OrderError as exc:
            self._rejected(request, source, now, {"error": str(exc)})
            raise
        self._risk(prepared, prepared, source, now)
        self._confirmed(prepared, source, now, confirmed)
        try:
            return self.broker.place(prepared, source=source)
        except OrderError as exc:
            # a live broker journals what happened itself (rejected, or in doubt after a
            # dropped line: then it may have reached the broker, and "rejected" would be wrong)
            if not getattr(exc, "journalled", False):
                self._rejected(prepared, source, now, {"error": str(exc)})
            raise

    def refuse(self, request: OrderRequest, *, source: str, reason: str, action: str = "place") -> None:
        """Journal an order action that was tried and not sent: its preview showed a problem, or
        the trader answered no."""
        now = self._now()
        self._intent(request, source, now, action=action)
        self._rejected(request, source, now, {"error": reason, "action": action})

    # -- replace: an order like any other -----------------------------------------------------

    def replacement(
        self,
        order_id: str,
        *,
        qty: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Replacement:
        """The working order and what it would be after the change, made valid for the
        instrument. Raises OrderError when the change is not possible."""
        order = next((o for o in self.broker.orders(open_only=True) if o.id == order_id), None)
        if order is None:
            raise OrderError(f"order {order_id} is not working (filled, canceled or unknown)")
        r = order.request
        wanted: dict[str, Decimal] = {}
        if qty is not None:
            wanted["qty"] = qty
        if limit_price is not None:
            if r.type not in (OrderType.LIMIT, OrderType.STOP_LIMIT):
                raise OrderError(
                    f"order {order_id} is a {r.type.value} order: it has no limit price to change"
                )
            wanted["limit_price"] = limit_price
        if stop_price is not None:
            if r.type not in (OrderType.STOP, OrderType.STOP_LIMIT):
                raise OrderError(
                    f"order {order_id} is a {r.type.value} order: it has no stop price to change"
                )
            wanted["stop_price"] = stop_price
        if not wanted:
            raise OrderError("say what to change: qty N, lmt P or stp P")
        after = self.broker.prepare(
            replace(
                r,
                qty=wanted.get("qty", r.qty),
                limit_price=wanted.get("limit_price", r.limit_price),
                stop_price=wanted.get("stop_price", r.stop_price),
            )
        )
        if after.qty <= order.filled_qty:
            raise OrderError(
                f"the new quantity {after.qty} must be above the {order.filled_qty} already filled"
            )
        changes = {k: getattr(after, k) for k in wanted if getattr(after, k) != getattr(r, k)}
        if not changes:
            raise OrderError(f"order {order_id} already is {describe(r)}: nothing to change")
        return Replacement(order, after, changes)

    def preview_replace(self, order_id: str, **changes: Decimal | None) -> Preview:
        rep = self.replacement(order_id, **changes)
        return self.preview(rep.remaining, releasing=(rep.order,), action="replace")

    def replace(self, order_id: str, *, source: str, confirmed: bool, **changes: Decimal | None) -> Order:
        """Change a working order: the order as it would be after the change is checked like a
        new one (validity, tick and lot, every risk rule, the cash account), and needs the same
        confirmation. Raises OrderError, RiskRefused or ConfirmationNeeded; then nothing changed."""
        now = self._now()
        asked = {k: v for k, v in changes.items() if v is not None}
        try:
            rep = self.replacement(order_id, **changes)
        except OrderError as exc:
            detail: dict[str, object] = {"action": "replace", "order_id": order_id, "changes": asked}
            self._note("intent", order_id, source, now, detail)
            self._note("rejected", order_id, source, now, {**detail, "error": str(exc)})
            raise
        self._intent(rep.request, source, now, action="replace", order=rep.order, changes=rep.changes)
        remaining = rep.remaining
        self._risk(remaining, rep.request, source, now, order=rep.order)
        try:
            self._check_cash(remaining, (rep.order,))
        except OrderError as exc:
            self._rejected(rep.request, source, now, {"error": str(exc), "action": "replace"}, rep.order)
            raise
        self._confirmed(rep.request, source, now, confirmed, order=rep.order)
        try:
            return self.broker.replace(order_id, source=source, **rep.changes)
        except OrderError as exc:
            if not getattr(exc, "journalled", False):
                self._rejected(rep.request, source, now, {"error": str(exc), "action": "replace"}, rep.order)
            raise

    # -- cancel -------------------------------------------------------------------------------

    def cancel(self, order_id: str, *, source: str) -> Order:
        """Cancel a working order: the intent journalled with who asked, then the broker (which
        journals `canceled`); a cancel that cannot be done is journalled as rejected."""
        now = self._now()
        self._note("intent", order_id, source, now, {"action": "cancel"})
        try:
            return self.broker.cancel(order_id, source=source)
        except OrderError as exc:
            if not getattr(exc, "journalled", False):
                self._note("rejected", order_id, source, now, {"action": "cancel", "error": str(exc)})
            raise

    def working(self, symbol: str | None = None) -> list[Order]:
        """Working orders (of one symbol), bracket exits after their entries."""
        orders = self.broker.orders(open_only=True)
        return [o for o in orders if symbol is None or o.symbol == symbol]

    def cancel_all(self, *, source: str, symbol: str | None = None) -> tuple[list[Order], list[str]]:
        """Cancel every working order (of one symbol). Returns the canceled orders and, for any
        that could not be canceled (filled meanwhile, a broker error), why."""
        done: list[Order] = []
        failed: list[str] = []
        tried: set[str] = set()
        for _ in range(3):  # a partly filled bracket entry places its exits as it ends: them too
            todo = [o for o in self.working(symbol) if not o.status.done and o.id not in tried]
            if not todo:
                break
            for order in todo:
                tried.add(order.id)
                try:
                    done.append(self.cancel(order.id, source=source))
                except OrderError as exc:
                    failed.append(f"{order.id}: {exc}")
        return done, failed

    # -- flatten and reverse: market orders from the position ---------------------------------

    def closing_request(self, symbol: str, *, reverse: bool = False) -> OrderRequest:
        """A market order that closes the position in `symbol` (or, `reverse`, turns it into the
        same size the other way)."""
        held = self.position(symbol)
        if held == 0:
            raise OrderError(f"no position in {symbol} to {'reverse' if reverse else 'flatten'}")
        side = Side.SELL if held > 0 else Side.BUY
        qty = abs(held) * (2 if reverse else 1)
        return OrderRequest(symbol, side, qty, OrderType.MARKET)

    def preview_close(self, symbol: str, *, reverse: bool = False) -> Preview:
        """Flatten (or reverse) as it would go: the market order, with the symbol's working orders
        (canceled first) taken out of the cash account's rules."""
        action = "reverse" if reverse else "flatten"
        return self.preview(self.closing_request(symbol, reverse=reverse), releasing=self.working(symbol),
                            action=action)  # fmt: skip

    def close(
        self,
        symbol: str,
        *,
        source: str,
        confirmed: bool,
        reverse: bool = False,
        expect: OrderRequest | None = None,
    ) -> tuple[list[Order], Order]:
        """Flatten (or reverse) a position: every rule is checked first; then the symbol's working
        orders are canceled and a market order for the position as it then stands is sent. Returns
        the canceled orders and the order. Raises like submit(); then nothing was canceled.

        `expect`: the order the trader confirmed. If the position changed while its orders were
        being canceled (one filled on the way), a reverse only flattens — never a larger order
        than the one confirmed the other way."""
        now = self._now()
        action = "reverse" if reverse else "flatten"
        preview = self.preview_close(symbol, reverse=reverse)
        working = list(preview.releasing)
        detail: dict[str, object] = {"action": action, "cancels": [o.id for o in working]}
        self._intent(preview.request, source, now, action=action)
        problem = preview.problems[0] if preview.problems else None
        first = refused(preview.checks)
        if first is not None:
            self._rejected(
                preview.request, source, now, {**detail, "rule": first.rule, "reason": first.reason}
            )
            raise RiskRefused(first)
        if problem is not None:
            self._rejected(preview.request, source, now, {**detail, "error": problem})
            raise OrderError(problem)
        self._confirmed(preview.request, source, now, confirmed, detail=detail)
        canceled, failed = self.cancel_all(source=source, symbol=symbol)
        if failed:
            raise OrderError(
                f"{action} {symbol} stopped: {'; '.join(failed)}. Canceled {len(canceled)}; no order was sent"
            )
        # the position as it stands now (an order may have filled while its cancel was on the way)
        request = self.closing_request(symbol, reverse=reverse)
        if reverse and expect is not None and (request.side, request.qty) != (expect.side, expect.qty):
            request = self.closing_request(symbol)  # changed under us: only flat is safe
        try:
            order = self.submit(request, source=source, confirmed=True, note={"action": action})
        except OrderError as exc:  # (a live broker's refusal, say): the cancels stand — say so
            if not canceled:
                raise
            gone = ", ".join(o.id for o in canceled)
            raise OrderError(f"{exc} (its working orders {gone} were canceled first)") from exc
        return canceled, order

    # -- the steps ----------------------------------------------------------------------------

    def _intent(
        self,
        request: OrderRequest,
        source: str,
        now: int,
        *,
        action: str = "place",
        order: Order | None = None,
        changes: dict[str, Decimal] | None = None,
        note: dict[str, object] | None = None,
    ) -> None:
        detail: dict[str, object] = {"request": request_json(request), **(note or {})}
        if action != "place":
            detail["action"] = action
        if changes is not None:
            detail["changes"] = changes
        if order is not None:
            detail["before"] = request_json(order.request)
        self._record("intent", request, source, now, detail, order)

    def _risk(
        self,
        checked: OrderRequest,
        request: OrderRequest,
        source: str,
        now: int,
        *,
        order: Order | None = None,
    ) -> None:
        """Every rule on `checked`; the results journalled; the first refusal raised."""
        releasing = (order,) if order is not None else ()
        checks = check(checked, self.context(checked.symbol, checked, releasing=releasing), self.limits)
        results = [{"rule": c.rule, "ok": c.ok, "reason": c.reason} for c in checks]
        first = refused(checks)
        if first is not None:
            detail: dict[str, object] = {"rule": first.rule, "reason": first.reason, "checks": results}
            if order is not None:
                detail["action"] = "replace"
            self._rejected(request, source, now, detail, order)
            raise RiskRefused(first)
        self._record("checked", request, source, now, {"checks": results}, order)

    def _confirmed(
        self,
        request: OrderRequest,
        source: str,
        now: int,
        confirmed: bool,
        *,
        order: Order | None = None,
        detail: dict[str, object] | None = None,
    ) -> None:
        if confirmed:
            return
        why: dict[str, object] = {**(detail or {}), "error": "not confirmed"}
        if order is not None:
            why["action"] = "replace"
        self._rejected(request, source, now, why, order)
        raise ConfirmationNeeded("the order needs confirming: press y in the dialog, or --yes on the CLI")

    def _rejected(
        self,
        request: OrderRequest,
        source: str,
        now: int,
        detail: dict[str, object],
        order: Order | None = None,
    ) -> None:
        try:
            entry = {"request": request_json(request), **detail}
            self._record("rejected", request, source, now, entry, order)
        except Exception:  # the store failed (a full disk): the trader is told why it was not sent
            log.exception("could not journal a refused order")

    def _record(
        self,
        event: str,
        request: OrderRequest,
        source: str,
        now: int,
        detail: dict[str, object],
        order: Order | None = None,
    ) -> None:
        self.journal.record(
            event,
            broker=self.broker.name,
            source=source,
            ts_ns=now,
            order_id=order.id if order is not None else None,
            client_order_id=request.client_order_id or None,
            detail=detail,
        )

    def _note(self, event: str, order_id: str, source: str, now: int, detail: dict[str, object]) -> None:
        """Journal an action on a working order by its id alone (a replace that could not be
        made, a cancel)."""
        self.journal.record(
            event, broker=self.broker.name, source=source, ts_ns=now, order_id=order_id, detail=detail
        )


def trail_start(r: OrderRequest, last: Decimal) -> Decimal:
    """Where a trailing stop's stop starts, from the last price: below it for a sale, above it for
    a buy, by the amount or the percent (to the cent of `last`'s places)."""
    gap = r.trail_amount if r.trail_amount is not None else last * (r.trail_pct or ZERO) / 100
    stop = last - gap if r.side is Side.SELL else last + gap
    exp = last.as_tuple().exponent
    return stop.quantize(Decimal(1).scaleb(min(int(exp), -2) if isinstance(exp, int) else -2))


def describe(r: OrderRequest) -> str:
    """An order in one line, every leg and price: `buy 100 AAPL limit 430.00 gtc, take-profit
    450.00, stop-loss 420.00`; `sell 10 IBM stop 180.00 limit 179.50 day`; `sell 50 MSFT trailing
    stop 2.5% gtc`."""
    parts = [r.side.value, str(r.qty), r.symbol]
    t = r.type
    if t is OrderType.MARKET:
        parts.append("market")
    elif t is OrderType.LIMIT:
        parts += ["limit", px(r.limit_price)]
    elif t is OrderType.STOP:
        parts += ["stop", px(r.stop_price)]
    elif t is OrderType.STOP_LIMIT:
        parts += ["stop", px(r.stop_price), "limit", px(r.limit_price)]
    else:
        trail = f"{r.trail_pct}%" if r.trail_pct is not None else px(r.trail_amount)
        parts += ["trailing stop", trail]
    parts.append(r.tif.value)
    text = " ".join(parts)
    if r.bracket is not None:
        if r.bracket.take_profit is not None:
            text += f", take-profit {px(r.bracket.take_profit)}"
        if r.bracket.stop_loss is not None:
            text += f", stop-loss {px(r.bracket.stop_loss)}"
    return text
