"""What the live brokers (Alpaca, Kite) share: our record of their orders, fills and positions in
the store, the one path every broker report takes into it, and reconciliation.

The broker is the truth; the store is our record of it, written as we learn things so that a
restart (or a crash) loses nothing:

- An order is written (status new, no broker id) and journalled `submitted` *before* it is sent,
  so a crash between the send and the answer leaves a row that says "this may have reached the
  broker": the next start looks it up by our id (Alpaca's client order id, Kite's tag) and either
  adopts it or marks it rejected. It is never sent a second time.
- Every report about an order — the answer to a request, a stream event, a postback, a poll, the
  order list read at start — becomes a `Remote` and goes through `_apply`, which is idempotent:
  fills are the growth of the broker's cumulative filled quantity, so the same fill seen twice
  (stream and poll, or stream and reconciliation) is counted once, and a done order never goes
  back to working.
- Fills are written to `fills` with the P&L they realized by average cost, from a per-broker
  position record kept in `paper_positions` (the table is keyed by broker; the name predates the
  live brokers).

All store access goes through one cursor of our own under one lock: the broker is called from
worker threads, its stream or poller thread and the event loop. No network call is made while
holding the lock.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from trii_term.brokers.base import (
    FILLS_SINCE_SQL,
    Account,
    BrokerError,
    BrokerUnavailable,
    DayFill,
    Listener,
    RateLimited,
    day_fills,
    db_time,
    norm,
    opt,
)
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
    request_json,
)
from trii_term.store.journal import Journal
from trii_term.store.sql import transaction

log = logging.getLogger(__name__)

WORKING = (OrderStatus.NEW.value, OrderStatus.PARTIALLY_FILLED.value)
PRICE_STEP = Decimal("0.0001")  # a fill price derived from average prices is kept to this
_KIND_OF_STATUS = {
    OrderStatus.CANCELED: "canceled",
    OrderStatus.EXPIRED: "expired",
    OrderStatus.REJECTED: "rejected",
}
_COLUMNS = (
    "id, broker, client_order_id, symbol, side, qty, type, tif, limit_price, stop_price, trail_amount, "
    "trail_pct, take_profit, stop_loss, status, filled_qty, avg_fill_price, parent_id, oco_group, "
    "triggered, trail_stop, reason, currency, source, created_at, updated_at, broker_order_id"
)

_SELECT = _COLUMNS.replace("created_at", "epoch_ns(created_at)").replace("updated_at", "epoch_ns(updated_at)")


@dataclass(frozen=True)
class Remote:
    """An order as the broker reports it, in our terms. `request` is what the broker holds
    (used to adopt an order we did not place, and to notice a modification made elsewhere)."""

    broker_order_id: str
    client_id: str  # Alpaca's client order id, Kite's tag ("" when none)
    request: OrderRequest
    status: OrderStatus
    filled_qty: Decimal
    avg_price: Decimal | None
    created_ns: int
    updated_ns: int
    reason: str = ""
    fill_qty: Decimal | None = None  # the execution this report is about, when the broker says
    fill_price: Decimal | None = None
    parent_broker_id: str | None = None  # a bracket leg's entry
    replaces: str | None = None  # the broker order this one replaced
    replaced_by: str | None = None  # this order was replaced by that one (it is history now)
    event: str = ""  # the broker's own word for what happened (fill, canceled, ...)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Tracked:
    """One of our order rows: the order, who placed it, and the broker's id once known."""

    order: Order
    source: str
    broker_order_id: str | None


def money(x: Decimal) -> str:
    return f"{x:,.2f}"


class LiveBroker:
    """The shared half of a live broker; subclasses talk to the broker."""

    name = "live"
    label = "the broker"  # in messages: "Alpaca", "Kite"
    currency = "USD"

    @staticmethod
    def _buy_needs(
        request: OrderRequest, releasing: Sequence[Order], account: Callable[[], Account], *, what: str
    ) -> tuple[Decimal, Decimal] | None:
        """(cost, available) of a priced buy against the buying power the venue last reported,
        with the cash of the orders replaced or canceled first given back; None when there is
        nothing to check (a sale, a market order, no account)."""
        if request.side is not Side.BUY:
            return None
        price = request.limit_price or request.stop_price
        if price is None:
            return None
        try:
            power = account().buying_power
        except BrokerError as exc:
            log.info("no %s to check buying power against: %s", what, exc)
            return None
        for o in releasing:  # replaced or canceled first: the broker no longer holds their cash
            if o.side is Side.BUY:
                power += o.remaining * (o.request.limit_price or o.request.stop_price or ZERO)
        return request.qty * price, power

    def __init__(
        self,
        store: Any,
        *,
        clock_ns: Callable[[], int],
        dispatch: Callable[[Callable[[], None]], Any] = lambda fn: fn(),
        cache_seconds: float = 3.0,
        recheck_delay: float = 2.0,
    ) -> None:
        self._store = store
        self._db = store.cursor()  # ours, for every thread, under _lock
        self._lock = threading.RLock()
        self._depth = 0
        # two journals on one store, one clock (a store in memory has no file to share it by)
        self.journal = Journal(store.cursor(), share=store)  # for the desk (its own cursor and lock)
        self._journal = Journal(self._db, share=store)  # inside our transactions
        self._now = clock_ns
        self._dispatch = dispatch
        self._listeners: list[Listener] = []
        self.remote = True  # the UI calls place/cancel/replace/start on a worker thread
        self._stopping = threading.Event()
        self._actors: dict[str, str] = {}  # order id -> who last asked to cancel or replace it
        self._pending_remaps: dict[str, dict[str, object]] = {}  # replaced, new order not seen yet
        self._in_flight: set[str] = set()  # orders sent whose answer has not come back yet
        self._threads: list[threading.Thread] = []  # the stream or poller, the rechecker
        self._recheck_delay = recheck_delay
        self._recheck: threading.Thread | None = None
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Any, Callable[[], Any]]] = {}
        self._cache_lock = threading.Lock()
        self._refreshing: set[str] = set()
        self._ledger = Ledger(self.currency, ZERO, allow_short=True)
        self._load_ledger()

    # where positions take their price: the session's stream (fresher than the broker's
    # position snapshot); None: the broker's own last price
    mark_of: Callable[[str], Decimal | None] | None = None

    def marked(
        self,
        symbol: str,
        qty: Decimal,
        avg: Decimal,
        last: Decimal | None,
        value: Decimal | None = None,
        unrealized: Decimal | None = None,
    ) -> tuple[Decimal | None, Decimal, Decimal]:
        """(last, market value, unrealized P&L): at the streamed price when there is one, else
        the broker's own figures (computed from its last price where it gave none)."""
        mark = self.mark_of(symbol) if self.mark_of is not None else None
        if mark is not None:
            return mark, qty * mark, qty * (mark - avg)
        price = last if last is not None else avg
        return (
            last,
            value if value is not None else qty * price,
            unrealized if unrealized is not None else qty * (price - avg),
        )

    def _load_ledger(self) -> None:
        """Our position record (qty, cost basis, realized) per symbol, from the store."""
        with self._lock:
            self._ledger.positions.clear()
            for symbol, qty, cost, realized in self._db.execute(
                "SELECT symbol, qty, cost, realized FROM paper_positions WHERE broker = ?", [self.name]
            ).fetchall():
                self._ledger.positions[symbol] = Position(symbol, norm(qty), norm(cost), norm(realized))

    # -- the store ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """The lock and one transaction for a whole change; nested uses join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            try:
                with transaction(self._db):
                    yield
            except BaseException:
                self._load_ledger()  # the positions in memory follow the rolled-back store
                raise
            finally:
                self._depth = 0

    def _save(self, t: Tracked) -> None:
        o, r = t.order, t.order.request
        b = r.bracket or Bracket()
        self._db.execute(
            f"INSERT OR REPLACE INTO orders ({_COLUMNS}) VALUES ({', '.join('?' * 27)})",
            [
                o.id, self.name, r.client_order_id, r.symbol, r.side.value, r.qty, r.type.value, r.tif.value,
                r.limit_price, r.stop_price, r.trail_amount, r.trail_pct, b.take_profit, b.stop_loss,
                o.status.value, o.filled_qty, o.avg_fill_price, o.parent_id, o.oco_group, o.triggered,
                o.trail_stop, o.reason, self._currency_of(r.symbol), t.source, db_time(o.created_ns),
                db_time(o.updated_ns or o.created_ns), t.broker_order_id,
            ],
        )  # fmt: skip

    def _rows(self, where: str = "", params: list[object] | None = None) -> list[Tracked]:
        sql = f"SELECT {_SELECT} FROM orders WHERE broker = ?"
        with self._lock:
            rows = self._db.execute(
                sql + (f" AND {where}" if where else "") + " ORDER BY created_at, id",
                [self.name, *(params or [])],
            ).fetchall()
        return [self._tracked(row) for row in rows]

    @staticmethod
    def _tracked(row: tuple[Any, ...]) -> Tracked:
        (oid, _broker, coid, sym, side, qty, typ, tif, lim, stop, tamt, tpct, tp, sl, status, filled, avg,
         parent, oco, trig, tstop, reason, _ccy, source, created, updated, broker_id) = row  # fmt: skip
        bracket = Bracket(opt(tp), opt(sl)) if tp is not None or sl is not None else None
        req = OrderRequest(
            sym, Side(side), norm(qty), OrderType(typ), TIF(tif), opt(lim), opt(stop), opt(tamt), opt(tpct),
            bracket, coid,
        )  # fmt: skip
        order = Order(
            oid, req, int(created), OrderStatus(status), norm(filled), opt(avg), int(updated), parent, oco,
            bool(trig), opt(tstop), reason,
        )  # fmt: skip
        return Tracked(order, source, broker_id)

    def _find(self, order_id: str) -> Tracked | None:
        rows = self._rows("id = ?", [order_id])
        return rows[0] if rows else None

    def _by_broker_id(self, broker_order_id: str) -> Tracked | None:
        rows = self._rows("broker_order_id = ?", [broker_order_id])
        return rows[0] if rows else None

    def _by_client_id(self, client_id: str) -> Tracked | None:
        rows = self._rows("(id = ? OR client_order_id = ?)", [client_id, client_id])
        return rows[0] if rows else None

    def _unacknowledged(self) -> list[Tracked]:
        """Orders journalled as submitted whose answer never came (a crash or a dropped line)."""
        return self._rows(f"broker_order_id IS NULL AND status IN {WORKING}")

    def _working(self) -> list[Tracked]:
        return self._rows(f"broker_order_id IS NOT NULL AND status IN {WORKING}")

    def _currency_of(self, symbol: str) -> str:
        return self.currency

    def _record(
        self, kind: str, t: Tracked, source: str, ts_ns: int | None, detail: dict[str, object]
    ) -> None:
        self._journal.record(
            kind,
            broker=self.name,
            source=source,
            ts_ns=ts_ns or self._now(),
            order_id=t.order.id,
            client_order_id=t.order.request.client_order_id or None,
            detail=detail,
        )

    def _save_position(self, symbol: str) -> None:
        pos = self._ledger.positions.get(symbol)
        if pos is None:
            self._db.execute(
                "DELETE FROM paper_positions WHERE broker = ? AND symbol = ?", [self.name, symbol]
            )
        else:
            self._db.execute(
                "INSERT OR REPLACE INTO paper_positions VALUES (?, ?, ?, ?, ?)",
                [self.name, symbol, pos.qty, pos.cost, pos.realized],
            )

    # -- what it reports --------------------------------------------------------------------

    def orders(self, *, open_only: bool = False) -> list[Order]:
        where = f"status IN {WORKING}" if open_only else ""
        return [t.order for t in self._rows(where)]

    def fills_of(self, order_id: str) -> list[tuple[Decimal, Decimal, Decimal]]:
        """(qty, price, commission) of each fill of an order, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT qty, price, commission FROM fills WHERE broker = ? AND order_id = ? ORDER BY ts",
                [self.name, order_id],
            ).fetchall()
        return [(norm(q), norm(p), norm(c)) for q, p, c in rows]

    def fills_since(self, ts_ns: int) -> list[DayFill]:
        """Every fill from `ts_ns` on, oldest first."""
        with self._lock:
            rows = self._db.execute(FILLS_SINCE_SQL, [self.name, db_time(ts_ns)]).fetchall()
        return day_fills(rows)

    def realized(self) -> Decimal:
        """P&L realized on our record of every symbol (average cost), all time."""
        with self._lock:
            return sum((p.realized for p in self._ledger.positions.values()), ZERO)

    def recorded_position(self, symbol: str) -> Position:
        with self._lock:
            p = self._ledger.position(symbol)
            return Position(p.symbol, p.qty, p.cost, p.realized)

    def on_update(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def off_update(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, events: list[Event]) -> None:
        """Listeners hear events through `dispatch` (the session's loop.call_soon_threadsafe)."""
        if events and self._listeners:
            self._dispatch(functools.partial(self._notify, list(events)))

    def _notify(self, events: list[Event]) -> None:
        for e in events:
            for fn in list(self._listeners):
                try:
                    fn(e)
                except Exception:
                    log.exception("an order listener failed")

    # -- placing: journal first, then send --------------------------------------------------

    def _submit_record(self, request: OrderRequest, source: str) -> Tracked:
        """The order row and its `submitted` entry, committed before anything is sent."""
        now = self._now()
        t = Tracked(Order(request.client_order_id, request, now, updated_ns=now), source, None)
        with self._tx():
            if self._find(t.order.id) is not None:
                raise OrderError(
                    f"order {t.order.id} was already submitted: trii-term never sends an order twice"
                )
            self._save(t)
            self._record("submitted", t, source, now, {"request": request_json(request)})
        return t

    def _refused(self, t: Tracked, source: str, reason: str) -> Event:
        """The broker said no for certain (an error answer): the row is rejected."""
        with self._tx():
            fresh = self._find(t.order.id) or t
            if fresh.order.status.done:
                return Event(fresh.order, "rejected", detail={"reason": reason})
            fresh.order.status = OrderStatus.REJECTED
            fresh.order.reason = reason
            fresh.order.updated_ns = self._now()
            self._save(fresh)
            self._record("rejected", fresh, source, None, {"reason": reason, "status": "rejected"})
        event = Event(fresh.order, "rejected", detail={"reason": reason})
        self._emit([event])
        return event

    def _never_reached(self, t: Tracked) -> tuple[Event, str]:
        reason = f"never reached {self.label}"
        with self._tx():
            t.order.status = OrderStatus.REJECTED
            t.order.reason = reason
            t.order.updated_ns = self._now()
            self._save(t)
            detail = {"reason": reason, "status": "rejected", "was": "submitted, no answer"}
            self._record("rejected", t, "reconcile", None, detail)
            self._record("reconciled", t, "reconcile", None, detail)
        note = (
            f"{t.order.id} ({describe(t.order.request)}) never reached {self.label} "
            "(no order with that id there): marked rejected, not sent again"
        )
        return Event(t.order, "rejected", detail={"reason": reason}), note

    # -- every report goes through here ---------------------------------------------------------

    def _apply(self, remote: Remote, *, via: str, actor: str | None = None) -> tuple[list[Event], list[str]]:
        """Bring our record of one order in line with the broker's report. `via` is how it came:
        response, stream, postback, poll or reconcile (the last journals `reconciled` and
        returns notes); `actor` is who asked for the change, when it answers our request (a
        cancel from the CLI is journalled as `cli`). Idempotent."""
        with self._tx():
            return self._apply_locked(remote, via, actor)

    def _apply_locked(self, remote: Remote, via: str, actor: str | None) -> tuple[list[Event], list[str]]:
        events: list[Event] = []
        notes: list[str] = []
        reconciling = via == "reconcile"
        if remote.replaced_by:
            # the old half of a replacement: follow the new order; its report journals it
            t = self._by_broker_id(remote.broker_order_id)
            if t is not None and not t.order.status.done:
                self._pending_remaps[t.order.id] = self._remap(t, remote.replaced_by)
                self._save(t)
            return events, notes
        remapped: dict[str, object] | None = None
        t = self._by_broker_id(remote.broker_order_id)
        if t is not None:
            remapped = self._pending_remaps.pop(t.order.id, None)
        if t is None and remote.replaces:
            t = self._by_broker_id(remote.replaces)
            if t is not None:
                remapped = self._remap(t, remote.broker_order_id)
        if t is None and remote.client_id:
            found = self._by_client_id(remote.client_id)
            if found is not None and found.broker_order_id is None:
                t = found
                t.broker_order_id = remote.broker_order_id
                if t.order.status is OrderStatus.REJECTED and t.order.reason.startswith("never reached"):
                    t.order.status, t.order.reason = OrderStatus.NEW, ""  # it arrived late after all
                detail: dict[str, object] = {
                    "broker_order_id": remote.broker_order_id,
                    **remote.extra,
                    "via": via,
                }
                if via == "reconcile":
                    detail["found"] = f"by its id at {self.label}"
                self._record("acknowledged", t, t.source, remote.updated_ns, detail)
                events.append(Event(t.order, "accepted", detail=detail))
                if reconciling:
                    self._record(
                        "reconciled", t, "reconcile", None, {**detail, "was": "submitted, no answer"}
                    )
                    notes.append(
                        f"{t.order.id} ({describe(t.order.request)}) reached {self.label} after all "
                        "(found by its id): adopted, not sent again"
                    )
        adopted = t is None
        if t is None:
            t = self._adopt(remote, via, events, notes)
        self._sync(t, remote, via, actor, events, notes, remapped, adopted=adopted)
        return events, notes

    def _remap(self, t: Tracked, new_id: str) -> dict[str, object]:
        """The broker replaced our order with a new one (its own id): we follow it."""
        old = t.broker_order_id
        t.broker_order_id = new_id
        return {"broker_order_id": new_id, "replaces": old}

    def _adopt(self, remote: Remote, via: str, events: list[Event], notes: list[str]) -> Tracked:
        """An order we did not place (another app, the website, a bracket's leg): recorded."""
        parent = self._by_broker_id(remote.parent_broker_id) if remote.parent_broker_id else None
        oid = self._foreign_id(remote)
        req = replace(remote.request, client_order_id=remote.client_id or oid)
        order = Order(
            oid,
            req,
            remote.created_ns,
            updated_ns=remote.created_ns,
            parent_id=parent.order.id if parent else None,
            oco_group=parent.order.id if parent else None,
        )
        t = Tracked(order, parent.source if parent else "broker", remote.broker_order_id)
        detail: dict[str, object] = {
            "broker_order_id": remote.broker_order_id,
            **remote.extra,
            "adopted": request_json(req),
            "via": via,
        }
        if parent is not None:
            detail["parent_id"] = parent.order.id
        self._record("acknowledged", t, t.source, remote.created_ns, detail)
        events.append(Event(order, "accepted", detail=detail))
        if via == "reconcile" and parent is None:
            self._record("reconciled", t, "reconcile", None, {**detail, "status": remote.status.value})
            notes.append(
                f"{self.label} has an order trii-term did not know: {describe(req)}, {remote.status.value} "
                f"(its id {remote.broker_order_id}); now followed as {oid}"
            )
        self._save(t)
        return t

    def _foreign_id(self, remote: Remote) -> str:
        cid = remote.client_id
        if cid and self._find(cid) is None:
            return cid
        return f"{self.name}-{remote.broker_order_id}"

    def _sync(
        self,
        t: Tracked,
        remote: Remote,
        via: str,
        actor: str | None,
        events: list[Event],
        notes: list[str],
        remapped: dict[str, object] | None = None,
        *,
        adopted: bool = False,
    ) -> None:
        """Quantity and prices, fills, status: what changed is journalled and heard; while
        reconciling it is also noted (except for an order just adopted: its note says it all)."""
        o = t.order
        actor = actor or self._actors.get(o.id)
        was: dict[str, Any] = {"status": o.status.value, "filled_qty": o.filled_qty}
        changed = False
        # a replacement (ours, or one made elsewhere): the broker's quantity and prices
        # (a polled snapshot older than our last change may predate our own modification)
        stale = via == "poll" and remote.updated_ns < o.updated_ns
        changes = {} if o.status.done or stale else _request_changes(o.request, remote.request)
        if changes or remapped:
            if changes:
                o.request = replace(o.request, **changes)  # type: ignore[arg-type]
            detail = {**(remapped or {}), **changes, "via": via}
            self._record("replaced", t, actor or t.source, remote.updated_ns, detail)
            events.append(Event(o, "replaced", detail=dict(detail)))
            was["request"] = describe(o.request)
            changed = True
        delta = remote.filled_qty - o.filled_qty
        if delta > 0:
            price = self._fill_price(o, remote, delta)
            ts = remote.updated_ns or self._now()
            fill = Fill(o.id, o.symbol, o.side, delta, price, ts)
            realized = self._book(fill)
            o.filled_qty = remote.filled_qty
            o.avg_fill_price = remote.avg_price if remote.avg_price is not None else price
            after = self._status_after(o, remote)
            if after is OrderStatus.FILLED or not o.status.done:
                o.status = after if after is OrderStatus.FILLED else OrderStatus.PARTIALLY_FILLED
            kind = "filled" if o.status is OrderStatus.FILLED else "partially_filled"
            detail = {
                "status": o.status.value,
                "fill": {"qty": delta, "price": price, "commission": ZERO, "realized": realized},
                "via": via,
            }
            if o.parent_id:
                detail["parent_id"] = o.parent_id
            self._record(kind, t, t.source, ts, detail)
            events.append(Event(o, kind, fill, detail))
            changed = True
        new_status = self._status_after(o, remote)
        if new_status is not o.status:
            o.status = new_status
            if new_status.done and remote.reason:
                o.reason = remote.reason
            kind = _KIND_OF_STATUS.get(new_status)
            detail = {"status": new_status.value, "via": via}
            if o.reason:
                detail["reason"] = o.reason
            if kind is not None:
                self._record(kind, t, actor or t.source, remote.updated_ns, detail)
                events.append(Event(o, kind, detail=detail))
            changed = True
        if remote.updated_ns > o.updated_ns:
            o.updated_ns = remote.updated_ns
            changed = True
        if changed or via == "response":
            self._save(t)
        differs = was["status"] != o.status.value or was["filled_qty"] != o.filled_qty or "request" in was
        if via == "reconcile" and differs and not adopted:
            now = {"status": o.status.value, "filled_qty": o.filled_qty, "avg_fill_price": o.avg_fill_price}
            self._record("reconciled", t, "reconcile", None, {"was": was, "now": now})
            if was["status"] == o.status.value and o.filled_qty == was["filled_qty"]:
                text = f"{o.id} was modified at {self.label}: now {describe(o.request)}"
            else:
                text = f"{o.id} ({describe(o.request)}): {was['status']} → {o.status.value}"
                if o.filled_qty != was["filled_qty"]:
                    text += f", {o.filled_qty} filled at {o.avg_fill_price} on average"
            notes.append(text + f" (while trii-term was away from {self.label})")

    @staticmethod
    def _status_after(o: Order, remote: Remote) -> OrderStatus:
        """The broker's status, unless the report is stale: a done order stays done, and a report
        with fewer fills than we have seen says nothing new."""
        if o.status.done or remote.filled_qty < o.filled_qty:
            return o.status
        status = remote.status
        if not status.done:
            status = OrderStatus.PARTIALLY_FILLED if o.filled_qty > 0 else OrderStatus.NEW
        return status

    @staticmethod
    def _fill_price(o: Order, remote: Remote, delta: Decimal) -> Decimal:
        """The price of the new quantity: the execution's own price when the report is about
        exactly this much, else what the averages imply."""
        if remote.fill_price is not None and remote.fill_qty == delta:
            return remote.fill_price
        if remote.avg_price is None:
            if remote.fill_price is not None:
                return remote.fill_price
            raise OrderError(f"{o.id}: the broker reported {delta} filled with no price")
        before = (o.avg_fill_price or ZERO) * o.filled_qty
        price = (remote.avg_price * remote.filled_qty - before) / delta
        return norm(price.quantize(PRICE_STEP))

    def _book(self, fill: Fill) -> Decimal:
        """A fill into our record: the position by average cost, and the fills table."""
        realized = self._ledger.apply(fill)
        self._db.execute(
            "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.name, fill.order_id, fill.symbol, fill.side.value, fill.qty, fill.price, fill.commission,
                realized, self._currency_of(fill.symbol), db_time(fill.ts_ns),
            ],
        )  # fmt: skip
        self._save_position(fill.symbol)
        self._after_fill()
        return realized

    # -- the broker's account and positions, kept briefly -------------------------------------

    def _error(self, exc: BaseException, *, action: str = "read", order: Order | None = None) -> BrokerError:
        """An SDK exception as a message for the trader. Each broker overrides this with what
        its errors look like; this is the reading of last resort."""
        if isinstance(exc, BrokerError):
            return exc
        log.error("unexpected error from %s while trying to %s", self.label, action, exc_info=exc)
        return BrokerUnavailable(f"{self.label} could not {action} ({type(exc).__name__}); see the log")

    def _fetch(self, key: str, fetch: Callable[[], Any], *, fresh: bool = False) -> Any:
        """The broker's account or positions. The ticket's preview asks on every key, so a copy
        is kept: fresh for `cache_seconds`, then still answered at once while a background
        fetch renews it (the UI never waits on the network once a copy exists). Refreshed
        after every fill. `fresh` waits for the broker's answer."""
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is not None and not fresh:
            if time.monotonic() - hit[0] >= self._cache_seconds:
                self._refresh_soon(key, fetch)
            return hit[1]
        return self._fetch_now(key, fetch)

    def _fetch_now(self, key: str, fetch: Callable[[], Any]) -> Any:
        with self._cache_lock:
            hit = self._cache.get(key)
        try:
            value = fetch()
        except Exception as exc:
            err = self._error(exc, action="read")
            if hit is not None and isinstance(err, BrokerUnavailable | RateLimited):
                log.warning("%s %s unavailable, keeping the copy from %.0f s ago: %s", self.label, key,
                            time.monotonic() - hit[0], err)  # fmt: skip
                return hit[1]
            raise err from None
        with self._cache_lock:
            self._cache[key] = (time.monotonic(), value, fetch)
        return value

    def _refresh_soon(self, key: str, fetch: Callable[[], Any]) -> None:
        """Renew one cached copy in the background (one fetch per key at a time)."""
        with self._cache_lock:
            if key in self._refreshing or self._stopping.is_set():
                return
            self._refreshing.add(key)

        def run() -> None:
            try:
                self._fetch_now(key, fetch)
            except BrokerError as exc:
                log.warning("refreshing the %s %s failed: %s", self.label, key, exc)
            except Exception:
                log.exception("refreshing the %s %s failed", self.label, key)
            finally:
                with self._cache_lock:
                    self._refreshing.discard(key)

        threading.Thread(target=run, name=f"{self.name}-{key}", daemon=True).start()

    def _after_fill(self) -> None:
        """A fill changes cash and positions: every cached copy is renewed now."""
        with self._cache_lock:
            stale = {key: fetch for key, (_ts, _value, fetch) in self._cache.items()}
            for key, (_ts, value, fetch) in list(self._cache.items()):
                self._cache[key] = (float("-inf"), value, fetch)
        for key, fetch in stale.items():
            self._refresh_soon(key, fetch)

    # -- reconciliation ---------------------------------------------------------------------

    def _reconcile_positions(self, theirs: dict[str, tuple[Decimal, Decimal]]) -> list[str]:
        """The broker's positions ({symbol: (qty, avg cost)}) are the truth: where our record
        differs it takes theirs, journalled and noted."""
        notes = []
        with self._tx():
            ours = {s: p for s, p in self._ledger.positions.items() if p.qty != 0}
            for symbol in sorted(set(ours) | {s for s, (q, _a) in theirs.items() if q != 0}):
                qty, avg = theirs.get(symbol, (ZERO, ZERO))
                mine = self._ledger.position(symbol)
                if mine.qty == qty:
                    continue
                self._ledger.positions[symbol] = Position(symbol, qty, qty * avg, mine.realized)
                if qty == 0 and mine.realized == 0:
                    self._ledger.positions.pop(symbol)
                self._save_position(symbol)
                self._journal.record(
                    "reconciled",
                    broker=self.name,
                    source="reconcile",
                    ts_ns=self._now(),
                    detail={"position": symbol, "ours": mine.qty, "broker": qty, "avg_cost": avg},
                )
                notes.append(
                    f"{symbol}: {self.label} holds {qty}, trii-term's record had {mine.qty} — "
                    f"now {qty}{f' at {avg} on average' if qty else ''} (traded outside trii-term?)"
                )
        return notes

    # -- orders in doubt ------------------------------------------------------------------------

    def _working_order(self, order_id: str, action: str) -> Tracked:
        """One of our working orders that the broker has acknowledged (to cancel or modify)."""
        t = self._find(order_id)
        if t is None:
            raise OrderError(f"no {self.label} order {order_id}")
        if t.order.status.done:
            raise OrderError(f"order {order_id} is {t.order.status.value}: nothing to {action}")
        if t.broker_order_id is None:
            raise OrderError(
                f"order {order_id} has had no answer from {self.label} yet: trii-term is checking it by its "
                f"id — {action} it once it shows as working"
            )
        return t

    def _unanswered(self) -> list[Tracked]:
        """Unacknowledged orders that are not waiting on their own request right now."""
        return [t for t in self._unacknowledged() if t.order.id not in self._in_flight]

    def _recheck_later(self, recover: Callable[[], list[str]]) -> None:
        """After a send with no answer, look the order up by its id (it may have arrived) until
        the broker says one way or the other: `recover` adopts or rejects the unanswered."""
        if self._recheck is not None and self._recheck.is_alive():
            return
        self._recheck = threading.Thread(
            target=self._recheck_main, args=(recover,), name=f"{self.name}-recheck", daemon=True
        )
        self._recheck.start()

    def _recheck_main(self, recover: Callable[[], list[str]]) -> None:
        delay = self._recheck_delay
        while not self._sleep(delay):
            try:
                for note in recover():
                    log.info("%s: %s", self.name, note)
            except Exception as exc:
                log.warning(
                    "checking unanswered %s orders failed: %s", self.label, self._error(exc, action="check")
                )
            if not self._unanswered():
                return
            delay = min(delay * 2, 60.0)

    # -- stopping ---------------------------------------------------------------------------

    def _sleep(self, seconds: float) -> bool:
        """Wait unless stopping; True when the broker is stopping."""
        return self._stopping.wait(seconds)

    def _join(self, timeout: float) -> None:
        """Wait for our threads (after `_stopping` is set)."""
        for thread in [*self._threads, self._recheck]:
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=timeout)
        self._threads.clear()


def _request_changes(ours: OrderRequest, theirs: OrderRequest) -> dict[str, object]:
    """Quantity and prices the broker holds that differ from ours (a modification)."""
    out: dict[str, object] = {}
    for name in ("qty", "limit_price", "stop_price"):
        a, b = getattr(ours, name), getattr(theirs, name)
        if b is not None and a != b:
            out[name] = b
    return out


def describe(r: OrderRequest) -> str:
    """`buy 10 AAPL limit 170.10`, for notes and messages."""
    text = f"{r.side.value} {r.qty} {r.symbol} {r.type.value.replace('_', ' ')}"
    if r.limit_price is not None:
        text += f" {r.limit_price}"
    if r.stop_price is not None:
        text += f" stop {r.stop_price}"
    return text
