"""The paper broker: the matching engine against the session's stream, a cash account kept by
the ledger, and all of it persisted in the store so a restart restores it exactly.

Every change is written as it happens (orders, fills, positions, the account) and journalled.
Before an order reaches the matcher it is made valid for the instrument — prices on the tick
grid (a buy limit rounded down, a sell limit up), quantities in whole lots — and checked against
the cash account: buying power net of working buys, and no selling what is not held (unless
shorting is enabled).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from decimal import Decimal

import duckdb

from trii_term.brokers.base import (
    FILLS_SINCE_SQL,
    Account,
    Capabilities,
    DayFill,
    Listener,
    PositionView,
    day_fills,
    db_time,
    norm,
    opt,
)
from trii_term.brokers.matching import Fees, Matcher
from trii_term.domain import Instrument, MarketBatch, Quote, Trade
from trii_term.domain.ledger import ZERO, Ledger, Position
from trii_term.domain.orders import (
    TIF,
    Bracket,
    Event,
    Fill,
    Order,
    OrderError,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    exact_price,
    request_json,
    to_lot,
    to_tick,
)
from trii_term.store.db import store_error
from trii_term.store.journal import Journal
from trii_term.store.sql import transaction

log = logging.getLogger(__name__)


class NotSaved(OrderError):
    """The store could not save a change (a full disk, say): nothing of it happened — the
    account and the working orders are as the store has them."""

    not_saved = True  # (the shell's exit code is 1: it could not run, not refused)


WORKING = (OrderStatus.NEW.value, OrderStatus.PARTIALLY_FILLED.value)
_JOURNAL_KIND = {
    "triggered": "triggered",
    "partially_filled": "partially_filled",
    "filled": "filled",
    "canceled": "canceled",
    "expired": "expired",
    "rejected": "rejected",
    "replaced": "replaced",
}


# the columns the paper broker writes (in this order); live brokers also set broker_order_id
ORDER_COLUMNS = (
    "id, broker, client_order_id, symbol, side, qty, type, tif, limit_price, stop_price, trail_amount, "
    "trail_pct, take_profit, stop_loss, status, filled_qty, avg_fill_price, parent_id, oco_group, "
    "triggered, trail_stop, reason, currency, source, created_at, updated_at"
)


class PaperBroker:
    name = "paper"

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        instruments: dict[str, Instrument],
        clock_ns: Callable[[], int],
        starting_cash: Decimal = Decimal("100000"),
        currency: str = "USD",
        partial_fills: bool = False,
        allow_short: bool = False,
        fees: Fees | None = None,
        simulated: bool = False,
        opened_at: Callable[[str, int], int | None] | None = None,
    ) -> None:
        self._con = con
        self._fees = fees
        self._instruments = instruments
        self._now = clock_ns
        self.currency = currency
        self.capabilities = Capabilities(
            frozenset(OrderType), frozenset(TIF), fractional=False, brackets=True, short=allow_short
        )
        self._matcher = Matcher(
            partial_fills=partial_fills,
            fees=fees,
            tick_of=self._tick,
            new_id=self._new_id,
            strict_time=simulated,  # replay: data older than an order never fills it
            opened_at=opened_at,  # nothing fills while the symbol's market is closed
            held=self._held,
        )
        self._opened_at = opened_at
        self.ledger = Ledger(currency, starting_cash, allow_short=allow_short)
        self.journal = Journal(con)
        self._last: dict[str, float] = {}
        self._listeners: list[Listener] = []
        self._sources: dict[str, str] = {}  # order id -> who placed it
        self._depth = 0  # transaction nesting
        self._next_id = 1  # the next order number: P000001, …; never reused in a store
        self._saved: set[str] = set()  # orders that have a row (a new order is inserted, never replaced)
        self.unsaved = 0  # changes the store could not save (each one undone)
        self._restore(starting_cash)

    # -- state ------------------------------------------------------------------------------

    def _tick(self, symbol: str) -> Decimal:
        inst = self._instruments.get(symbol)
        return inst.tick_size if inst is not None else Decimal("0.01")

    def _restore(self, starting_cash: Decimal) -> None:
        # Order ids count on from every paper id the store has ever held (any account), so an
        # id is unique in the store for ever, whatever happened to the account row.
        (highest,) = self._con.execute(
            "SELECT max(TRY_CAST(substr(id, 2) AS BIGINT)) FROM orders WHERE id SIMILAR TO 'P[0-9]+'"
        ).fetchone() or (None,)
        row = self._con.execute(
            "SELECT currency, starting_cash, cash, realized, fees, next_id FROM paper_accounts "
            "WHERE broker = ?",
            [self.name],
        ).fetchall()
        stored_next = int(row[0][5]) if row else 1
        self._next_id = max(stored_next, (highest or 0) + 1, 1)
        if not row:
            self._save_account()
            return
        ccy, start, cash, realized, fees, _next_id = row[0]
        self.ledger = Ledger(ccy, norm(start), cash=norm(cash), allow_short=self.ledger.allow_short)
        self.ledger.realized, self.ledger.fees = norm(realized), norm(fees)
        self.currency = ccy
        for symbol, qty, cost, realized_sym in self._con.execute(
            "SELECT symbol, qty, cost, realized FROM paper_positions WHERE broker = ?", [self.name]
        ).fetchall():
            self.ledger.positions[symbol] = Position(symbol, norm(qty), norm(cost), norm(realized_sym))
        self._matcher.reload(self._load_orders(open_only=True))

    def _reload(self) -> None:
        """A change could not be saved: the store is the truth. The account, the positions, the
        working orders and the next id are read back as they were before it."""
        rows = self._con.execute("SELECT id FROM orders WHERE broker = ?", [self.name]).fetchall()
        self._saved = {oid for (oid,) in rows}
        self._sources.clear()  # (the working orders' come back with them)
        self._restore(self.ledger.starting_cash)

    def _save_account(self) -> None:
        led = self.ledger
        self._con.execute(
            "INSERT OR REPLACE INTO paper_accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.name,
                led.currency,
                led.starting_cash,
                led.cash,
                led.realized,
                led.fees,
                self._next_id,
                db_time(self._now()),
            ],
        )

    def _new_id(self) -> str:
        """The next order id; the count is saved with the order, in its transaction (an id whose
        order was never saved was never seen, and may be given again)."""
        n = self._next_id
        self._next_id += 1
        return f"P{n:06d}"

    def _save_position(self, symbol: str) -> None:
        pos = self.ledger.positions.get(symbol)
        if pos is None:
            self._con.execute(
                "DELETE FROM paper_positions WHERE broker = ? AND symbol = ?", [self.name, symbol]
            )
        else:
            self._con.execute(
                "INSERT OR REPLACE INTO paper_positions VALUES (?, ?, ?, ?, ?)",
                [self.name, symbol, pos.qty, pos.cost, pos.realized],
            )

    def _save_order(self, order: Order, source: str, *, new: bool) -> None:
        """Insert a new order's row, or update the order's own row: a row is never overwritten by
        another order (an id that is already taken raises, and the whole change rolls back)."""
        r = order.request
        b = r.bracket or Bracket()
        verb = "INSERT" if new or order.id not in self._saved else "INSERT OR REPLACE"
        self._con.execute(
            f"{verb} INTO orders ({ORDER_COLUMNS}) VALUES ({', '.join('?' * 26)})",
            [
                order.id,
                self.name,
                r.client_order_id,
                r.symbol,
                r.side.value,
                r.qty,
                r.type.value,
                r.tif.value,
                r.limit_price,
                r.stop_price,
                r.trail_amount,
                r.trail_pct,
                b.take_profit,
                b.stop_loss,
                order.status.value,
                order.filled_qty,
                order.avg_fill_price,
                order.parent_id,
                order.oco_group,
                order.triggered,
                order.trail_stop,
                order.reason,
                self._currency_of(r.symbol),
                source,
                db_time(order.created_ns),
                db_time(order.updated_ns or order.created_ns),
            ],
        )
        self._saved.add(order.id)

    def _load_orders(self, *, open_only: bool) -> list[Order]:
        sql = (
            "SELECT id, client_order_id, symbol, side, qty, type, tif, limit_price, stop_price, "
            "trail_amount, trail_pct, take_profit, stop_loss, status, filled_qty, avg_fill_price, "
            "parent_id, oco_group, triggered, trail_stop, reason, source, epoch_ns(created_at), "
            "epoch_ns(updated_at) FROM orders WHERE broker = ?"
        )
        if open_only:
            sql += f" AND status IN {WORKING}"
        out = []
        for row in self._con.execute(sql + " ORDER BY created_at, id", [self.name]).fetchall():
            (
                oid,
                coid,
                sym,
                side,
                qty,
                typ,
                tif,
                lim,
                stop,
                tamt,
                tpct,
                tp,
                sl,
                status,
                filled,
                avg,
                parent,
                oco,
                trig,
                tstop,
                reason,
                source,
                created,
                updated,
            ) = row
            tick = self._tick(sym)

            def px(x: object, tick: Decimal = tick) -> Decimal | None:
                return None if x is None else Decimal(x).quantize(tick)  # type: ignore[arg-type]

            bracket = Bracket(px(tp), px(sl)) if tp is not None or sl is not None else None
            req = OrderRequest(
                sym,
                Side(side),
                norm(qty),
                OrderType(typ),
                TIF(tif),
                px(lim),
                px(stop),
                px(tamt),
                opt(tpct),
                bracket,
                coid,
            )
            order = Order(
                oid,
                req,
                int(created),
                OrderStatus(status),
                norm(filled),
                opt(avg),
                int(updated),
                parent,
                oco,
                bool(trig),
                px(tstop),
                reason,
            )
            self._sources[oid] = source
            self._saved.add(oid)
            out.append(order)
        return out

    def _currency_of(self, symbol: str) -> str:
        inst = self._instruments.get(symbol)
        return inst.currency if inst is not None else self.currency

    # -- what it reports ----------------------------------------------------------------------

    def fills_of(self, order_id: str) -> list[tuple[Decimal, Decimal, Decimal]]:
        """(qty, price, commission) of each fill of an order, oldest first."""
        rows = self._con.execute(
            "SELECT qty, price, commission FROM fills WHERE broker = ? AND order_id = ? ORDER BY ts",
            [self.name, order_id],
        ).fetchall()
        return [(norm(q), Decimal(p).quantize(Decimal("0.0001")).normalize(), Decimal(c)) for q, p, c in rows]

    def fills_since(self, ts_ns: int) -> list[DayFill]:
        """Every fill from `ts_ns` on, oldest first."""
        return day_fills(self._con.execute(FILLS_SINCE_SQL, [self.name, db_time(ts_ns)]).fetchall())

    def set_marks(self, last: dict[str, float]) -> None:
        """Last prices known from elsewhere (the store's last trades, for the shell)."""
        self._last.update(last)

    def marks(self) -> dict[str, Decimal]:
        out = {}
        for s, x in self._last.items():
            out[s] = exact_price(x, self._tick(s))
        return out

    def account(self) -> Account:
        m = self.marks()
        led = self.ledger
        return Account(
            led.cash,
            led.buying_power(m) - self._reserved(),
            led.equity(m),
            led.currency,
            led.realized,
            led.unrealized(m),
            led.fees,
        )

    def positions(self) -> list[PositionView]:
        m = self.marks()
        out = []
        for s, p in sorted(self.ledger.positions.items()):
            if p.qty == 0:
                continue
            last = m.get(s)
            mark = last if last is not None else p.avg_cost
            out.append(
                PositionView(
                    s,
                    p.qty,
                    p.avg_cost,
                    last,
                    p.market_value(mark),
                    p.unrealized(mark),
                    p.realized,
                    self._currency_of(s),
                )
            )
        return out

    def orders(self, *, open_only: bool = False) -> list[Order]:
        return self._load_orders(open_only=open_only)

    def on_update(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def off_update(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- orders -------------------------------------------------------------------------------

    def prepare(self, request: OrderRequest) -> OrderRequest:
        """The request made valid for its instrument: tick and lot, a client order id."""
        inst = self._instruments.get(request.symbol)
        if inst is None:
            raise OrderError(f"unknown symbol {request.symbol}")
        if not inst.tradable:
            raise OrderError(f"{request.symbol} is an index: it cannot be traded")
        tick = inst.tick_size
        changes: dict[str, object] = {}
        if request.limit_price is not None:
            changes["limit_price"] = to_tick(request.limit_price, tick, request.side)
        if request.stop_price is not None:
            changes["stop_price"] = to_tick(request.stop_price, tick)
        if request.trail_amount is not None:
            changes["trail_amount"] = to_tick(request.trail_amount, tick)
        if request.bracket is not None:
            b = request.bracket
            changes["bracket"] = Bracket(
                to_tick(b.take_profit, tick) if b.take_profit is not None else None,
                to_tick(b.stop_loss, tick) if b.stop_loss is not None else None,
            )
        if request.qty != request.qty.to_integral_value():
            raise OrderError(f"the paper broker trades whole shares: {request.qty} is fractional")
        qty = to_lot(request.qty, inst.lot_size)
        if qty <= 0:
            raise OrderError(
                f"{request.symbol} trades in lots of {inst.lot_size}: {request.qty} is less than one"
            )
        changes["qty"] = qty
        if not request.client_order_id:
            changes["client_order_id"] = f"tt-{uuid.uuid4().hex[:20]}"
        prepared = replace(request, **changes)  # type: ignore[arg-type]
        prepared.check()
        return prepared

    def _reserved(self, *, excluding: frozenset[str] = frozenset()) -> Decimal:
        """Cash held for working buy orders: their cost and the commission they will pay."""
        total = ZERO
        for o in self._matcher.orders.values():
            if o.side is Side.BUY and o.id not in excluding:
                price = o.request.limit_price or o.request.stop_price or self._price(o.symbol)
                if price is None:
                    continue
                total += o.remaining * price + self._commission(o.symbol, o.remaining, price)
        return total

    def _commission(self, symbol: str, qty: Decimal, price: Decimal) -> Decimal:
        return self._fees(symbol, qty, price) if self._fees is not None else ZERO

    def _held(self, symbol: str) -> Decimal:
        pos = self.ledger.positions.get(symbol)
        return pos.qty if pos is not None else ZERO

    def waits(self, request: OrderRequest) -> str | None:
        """Why the order would not fill now though its price is there: the market is closed."""
        if self._opened_at is None or self._opened_at(request.symbol, self._now()) is not None:
            return None
        if request.tif in (TIF.IOC, TIF.FOK):
            return f"the market is closed: an {request.tif.value} order is canceled unfilled"
        if request.type is OrderType.MARKET:
            return "the market is closed: it waits for the open, and fills at the quotes then"
        return "the market is closed: it works from the open (nothing fills before)"

    def quote(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        """The bid and ask the matcher fills against, as exact prices."""
        book = self._matcher.book(symbol)
        tick = self._tick(symbol)
        bid = exact_price(book.bid, tick) if book.bid is not None else None
        ask = exact_price(book.ask, tick) if book.ask is not None else None
        return bid, ask

    def _price(self, symbol: str) -> Decimal | None:
        book = self._matcher.book(symbol)
        x = book.ask if book.ask is not None else self._last.get(symbol)
        return exact_price(x, self._tick(symbol)) if x is not None else None

    def check_cash(self, request: OrderRequest, *, releasing: Sequence[Order] = ()) -> None:
        """Cash-account rules, before anything is sent; `releasing`: working orders the action
        replaces or cancels first (their cash and shares count as free)."""
        excluding = frozenset(o.id for o in releasing)
        if request.side is Side.SELL and not self.ledger.allow_short:
            held = self.ledger.position(request.symbol).qty
            selling = sum(
                (
                    o.remaining
                    for o in self._matcher.orders.values()
                    if o.symbol == request.symbol
                    and o.side is Side.SELL
                    and o.parent_id is None
                    and o.id not in excluding
                ),
                ZERO,
            )
            if request.qty + selling > held:
                raise OrderError(
                    f"cannot sell {request.qty} {request.symbol}: the account holds {held}"
                    + (f", {selling} already in working sell orders" if selling else "")
                    + " and short selling is off"
                )
        if request.side is Side.BUY:
            price = request.limit_price or request.stop_price or self._price(request.symbol)
            if price is None:
                raise OrderError(f"no price for {request.symbol} yet to check buying power: wait for a quote")
            cost = request.qty * price + self._commission(request.symbol, request.qty, price)
            power = self.ledger.buying_power(self.marks()) - self._reserved(excluding=excluding)
            if cost > power:
                raise OrderError(
                    f"insufficient buying power: {cost:,.2f} {self.currency} needed "
                    f"(commission included), {power:,.2f} available"
                )

    def buying_power_after(
        self, request: OrderRequest, price: Decimal, commission: Decimal, *, releasing: Sequence[Order] = ()
    ) -> Decimal:
        """The buying power the account would have once `request` filled at `price`: computed on
        a copy of the ledger, so it is exactly what the account will show (the orders it
        releases no longer hold cash)."""
        ledger = copy.deepcopy(self.ledger)
        fill = Fill("preview", request.symbol, request.side, request.qty, price, self._now(), commission)
        excluding = frozenset(o.id for o in releasing)
        try:
            ledger.apply(fill)
        except OrderError:  # a sale the account cannot make: the preview says why elsewhere
            ledger = self.ledger
        return ledger.buying_power(self.marks()) - self._reserved(excluding=excluding)

    def place(self, request: OrderRequest, *, source: str) -> Order:
        now = self._now()
        request = self.prepare(request)
        self.check_cash(request)
        with self._tx():  # one commit for the whole order: its id, submitted, matched, saved
            order = Order(self._matcher.new_id(), request, now, updated_ns=now)
            self._sources[order.id] = source
            self._place(order, source, now)
        return order

    def _place(self, order: Order, source: str, now: int) -> None:
        request = order.request
        self.journal.record(
            "submitted",
            broker=self.name,
            source=source,
            ts_ns=now,
            order_id=order.id,
            client_order_id=request.client_order_id,
            detail={"request": request_json(request)},
        )
        self._handle(self._matcher.submit(order, now), source)

    def cancel(self, order_id: str, *, source: str) -> Order:
        events = self._matcher.cancel(order_id, self._now(), reason=f"canceled ({source})")
        self._handle(events, source)
        return events[0].order

    def replace(
        self,
        order_id: str,
        *,
        source: str,
        qty: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        order = self._matcher.orders.get(order_id)
        if order is None:
            raise OrderError(f"order {order_id} is not working (filled, canceled or unknown)")
        tick = self._tick(order.symbol)
        if limit_price is not None:
            limit_price = to_tick(limit_price, tick, order.side)
        if stop_price is not None:
            stop_price = to_tick(stop_price, tick)
        events = self._matcher.replace(
            order_id, self._now(), qty=qty, limit_price=limit_price, stop_price=stop_price
        )
        self._handle(events, source)
        return order

    def expire_day(self) -> list[Order]:
        """The session closed: day orders expire."""
        events = self._matcher.expire_day(self._now())
        self._handle(events, "session")
        return [e.order for e in events if e.kind == "expired"]

    def day_orders(self) -> list[Order]:
        """Working day orders (they end with their session)."""
        return [o for o in self._matcher.orders.values() if o.request.tif is TIF.DAY]

    def expire(self, orders: list[Order], reason: str) -> list[Order]:
        """Day orders whose session has ended expire, with the reason."""
        if not orders:
            return []
        events = self._matcher.expire([o.id for o in orders], self._now(), reason)
        self._handle(events, "session")  # (a partly filled bracket entry's exits are placed)
        return [e.order for e in events if e.kind == "expired"]

    # -- a fresh account ----------------------------------------------------------------------

    def last_fill_ns(self) -> int | None:
        """When the account last traded (the market's clock), if ever."""
        (ts,) = self._con.execute(
            "SELECT epoch_ns(max(ts)) FROM fills WHERE broker = ?", [self.name]
        ).fetchone() or (None,)
        return int(ts) if ts is not None else None

    def reset(self, *, source: str) -> str:
        """Start a fresh account with the starting cash: working orders are canceled, and the
        old account's orders, fills and positions are kept under a new name (`paper#1`, …) —
        nothing is deleted, and order ids still never repeat. Returns the archive's name."""
        events = [ev for o in list(self._matcher.orders.values()) for ev in self._matcher.cancel(
            o.id, self._now(), reason=f"canceled: the paper account was reset ({source})",
            protect=False)]  # fmt: skip
        (count,) = self._con.execute(
            "SELECT count(*) FROM paper_accounts WHERE broker LIKE ?", [f"{self.name}#%"]
        ).fetchone() or (0,)
        archive = f"{self.name}#{int(count) + 1}"
        with self._tx():
            if events:
                self._apply_events(events, source)
            for table in ("orders", "fills", "paper_positions", "paper_accounts"):
                self._con.execute(f"UPDATE {table} SET broker = ? WHERE broker = ?", [archive, self.name])
            old = self.ledger
            self.ledger = Ledger(old.currency, old.starting_cash, allow_short=old.allow_short)
            self._save_account()
            self.journal.record(
                "reset",
                broker=self.name,
                source=source,
                ts_ns=self._now(),
                detail={"archived_as": archive, "cash_before": old.cash, "starting_cash": old.starting_cash},
            )
        self._saved.clear()
        self._sources.clear()
        for e in events:
            for fn in list(self._listeners):
                fn(e)
        return archive

    # -- the stream ---------------------------------------------------------------------------

    def on_batch(self, batch: MarketBatch) -> None:
        m = self._matcher
        events: list[Event] = []
        for ev in batch.events:
            t = type(ev)
            if t is Quote:
                if ev.bid > 0 and ev.ask > 0:
                    events += m.on_quote(ev.symbol, ev.bid, ev.ask, ev.bid_size, ev.ask_size, ev.ts)
            elif t is Trade:
                self._last[ev.symbol] = ev.price
                events += m.on_trade(ev.symbol, ev.price, ev.ts)
        trailed, m.trailed = m.trailed, set()
        if events or trailed:
            # (a trailing stop's new stop is saved, so a restart keeps it where it got to)
            # not saved: nothing filled; the orders work on, and fill when the store can save
            with contextlib.suppress(NotSaved):
                self._handle(events, moved=trailed)

    # -- events -------------------------------------------------------------------------------

    def _handle(
        self, events: list[Event], action_source: str | None = None, *, moved: set[str] | None = None
    ) -> None:
        """Apply fills, persist, journal and tell listeners. The journal's source is who acted
        (a cancel from the CLI is `cli`); for the stream's fills, who placed the order. `moved`:
        working orders changed without an event (a trailing stop's stop), saved too."""
        with self._tx():
            self._apply_events(events, action_source)
            for oid in moved or ():
                order = self._matcher.orders.get(oid)
                if order is not None:
                    self._save_order(order, self._sources.get(oid, "broker"), new=False)
        for e in events:
            for fn in list(self._listeners):
                try:
                    fn(e)
                except Exception:
                    log.exception("an order listener failed")

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """One transaction for a whole change (a commit per statement costs ms each); nested
        uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            with transaction(self._con):
                yield
        except Exception as exc:
            # nothing of the change is kept: the store rolled back, and so does the memory
            self._depth = 0
            try:
                self._reload()
            except duckdb.Error:
                log.exception("reading the paper account back failed too")
            if not isinstance(exc, duckdb.Error):
                raise
            self.unsaved += 1
            if self.unsaved == 1:  # once: a full disk fails every change after it
                log.exception("the paper broker could not save a change; the account is read back")
            raise NotSaved(_not_saved(self._con, exc)) from exc
        finally:
            self._depth = 0

    def _apply_events(self, events: list[Event], action_source: str | None) -> None:
        touched: set[str] = set()
        changed: dict[str, Order] = {}
        # an order the matcher just took (accepted, or refused on arrival) gets a row of its own
        new = {e.order.id for e in events if e.kind == "accepted"}
        new |= {e.order.id for e in events if e.kind == "rejected" and e.order.id not in self._saved}
        for e in events:
            order = e.order
            placed_by = self._sources.setdefault(order.id, action_source or "broker")
            source = action_source or placed_by
            if e.fill is not None:
                f = e.fill
                try:
                    realized = self.ledger.apply(f)
                except OrderError:
                    log.exception("a paper fill broke the cash account rules: %s", f)
                    raise
                self._con.execute(
                    "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        self.name,
                        f.order_id,
                        f.symbol,
                        f.side.value,
                        f.qty,
                        f.price,
                        f.commission,
                        realized,
                        self._currency_of(f.symbol),
                        db_time(f.ts_ns),
                    ],
                )
                touched.add(f.symbol)
            changed[order.id] = order
            kind = "acknowledged" if e.kind == "accepted" else _JOURNAL_KIND.get(e.kind)
            if kind is not None:
                detail: dict[str, object] = dict(e.detail)
                detail["status"] = order.status.value
                if e.fill is not None:
                    detail["fill"] = {
                        "qty": e.fill.qty,
                        "price": e.fill.price,
                        "commission": e.fill.commission,
                    }
                if order.parent_id:
                    detail["parent_id"] = order.parent_id
                self.journal.record(
                    kind,
                    broker=self.name,
                    source=source,
                    ts_ns=order.updated_ns or self._now(),
                    order_id=order.id,
                    client_order_id=order.request.client_order_id,
                    detail=detail,
                )
        if new:
            self._con.execute(
                "UPDATE paper_accounts SET next_id = ? WHERE broker = ?", [self._next_id, self.name]
            )
        for order in changed.values():
            self._save_order(order, self._sources.get(order.id, "broker"), new=order.id in new)
        for symbol in touched:
            self._save_position(symbol)
        if touched:
            self._save_account()


def _not_saved(con: duckdb.DuckDBPyConnection, exc: duckdb.Error) -> str:
    """Why a change was not saved, in the trader's words, with what to do."""
    from pathlib import Path

    try:
        (path,) = con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone() or ("",)
    except duckdb.Error:
        path = ""
    err = store_error(Path(path or "(in memory)"), exc)
    problem = err.problem[:1].lower() + err.problem[1:]
    return f"{problem}; {err.fix}" if err.fix else problem
