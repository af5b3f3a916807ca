"""The paper matching engine: orders against the session's quotes and trades.

Rules (the issue's, made precise):

- A market buy fills at the ask, a sell at the bid. With no quote yet, a day/gtc market order
  waits for the first one; ioc/fok are canceled.
- A limit fills when the opposite quote crosses it, at the quote (never worse than the limit).
- Stops trigger on the trade price (a buy stop at or above its stop, a sell stop at or below).
  A triggered stop fills like a market order at the quote, so a gap through the stop fills at
  the gapped price; a triggered stop-limit rests as a limit. A trailing stop's stop follows the
  best trade price by its amount or percent and never moves back.
- ioc: what can fill now fills, the rest is canceled. fok: all now, or nothing.
- With `partial_fills`, a fill takes at most the quote's size; otherwise the whole remainder.
- A bracket entry, once filled, places its exits (take-profit limit, stop-loss stop, gtc) for the
  filled quantity; a fill of one exit shrinks or cancels the other. An entry canceled or expired
  after a partial fill places them for what filled.
- Day orders expire when `expire_day()` is called at the session close (by the session clock,
  so replay behaves the same).
- Nothing fills while the symbol's market is closed (`opened_at`, by its real calendar), nor on
  a quote from before the session opened: a market order placed after the close waits for the
  first quote after the open, as a broker queues it; limits rest and stops wait; ioc/fok are
  canceled, as they cannot fill now.

Per symbol, resting limits and waiting stops sit in heaps keyed by price, so a quote that crosses
nothing costs O(1) however many orders are working.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from trii_term.domain.orders import (
    TIF,
    Event,
    Fill,
    Order,
    OrderError,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    exact_price,
)

Fees = Callable[[str, Decimal, Decimal], Decimal]  # (symbol, qty, price) -> commission


@dataclass
class _Book:
    bid: float | None = None
    ask: float | None = None
    bid_size: float = 0.0
    ask_size: float = 0.0
    last: float | None = None
    quote_ts: int = 0  # when the quote and the last trade were (ns)
    last_ts: int = 0
    # heaps of (key, seq, order id); stale entries are skipped when popped
    buy_limits: list[tuple[float, int, str]] = field(default_factory=list)  # key −limit
    sell_limits: list[tuple[float, int, str]] = field(default_factory=list)  # key limit
    buy_stops: list[tuple[float, int, str]] = field(default_factory=list)  # key stop
    sell_stops: list[tuple[float, int, str]] = field(default_factory=list)  # key −stop
    trailing: set[str] = field(default_factory=set)
    # trailing stops by the price past which a trade may move their stop (stale entries are
    # skipped by their seq): sells key wake (a trade above it), buys key −wake (below it). Their
    # stops rest in buy_stops/sell_stops like any stop's, entered again each time they move.
    sell_trail: list[tuple[float, int, str]] = field(default_factory=list)
    buy_trail: list[tuple[float, int, str]] = field(default_factory=list)
    waiting_markets: list[str] = field(default_factory=list)


class Matcher:
    def __init__(
        self,
        *,
        partial_fills: bool = False,
        fees: Fees | None = None,
        tick_of: Callable[[str], Decimal] | None = None,
        new_id: Callable[[], str] | None = None,
        strict_time: bool = False,
        opened_at: Callable[[str, int], int | None] | None = None,
        held: Callable[[str], Decimal] | None = None,
    ) -> None:
        self.partial_fills = partial_fills
        # (symbol, ts) -> when the symbol's regular session that is open at ts opened, or None
        # while its market is closed (no calendar: always open, every quote fresh)
        self._opened_at = opened_at
        # symbol -> the signed position held now (the owner's account), to size the exits of a
        # bracket entry that ends part-filled: never more than is still held
        self._held = held
        self.trailed: set[str] = set()  # trailing stops whose stop moved (the owner saves them)
        self._trail_seq: dict[str, int] = {}  # a trailing stop's current entry in its wake heap
        # Replay: market data older than an order never fills it. A restart, or a second
        # process, replays the day from its open again; an order placed at 10:00 must not fill
        # against 09:31's quotes. (Live data is never older than the orders it meets.)
        self.strict_time = strict_time
        self._fees = fees
        self._tick_of = tick_of or (lambda _s: Decimal("0.01"))
        self.orders: dict[str, Order] = {}  # working orders by id
        self._books: dict[str, _Book] = {}
        self._seq = itertools.count()
        ids = itertools.count(1)
        # the owner allocates ids (the paper broker from the store, so they are never reused)
        self._new_id = new_id or (lambda: f"P{next(ids):06d}")

    # -- the book ---------------------------------------------------------------------------

    def book(self, symbol: str) -> _Book:
        b = self._books.get(symbol)
        if b is None:
            b = self._books[symbol] = _Book()
        return b

    def new_id(self) -> str:
        return self._new_id()

    # -- orders in ------------------------------------------------------------------------------

    def submit(self, order: Order, now_ns: int) -> list[Event]:
        """Accept a new order and match what can match now."""
        try:
            order.request.check()
        except OrderError as exc:
            order.status = OrderStatus.REJECTED
            order.reason = str(exc)
            return [Event(order, "rejected", detail={"reason": str(exc)})]
        req = order.request
        book = self.book(req.symbol)
        events = [Event(order, "accepted")]
        if req.tif in (TIF.IOC, TIF.FOK) and self._closed(req.symbol, now_ns):
            reason = f"{req.tif.value}: the market is closed, so nothing can fill now"
            return [*events, self._end(order, OrderStatus.CANCELED, reason, now_ns)]
        if req.tif is TIF.FOK and not self._can_fill_all(order, book):
            return [
                *events,
                self._end(order, OrderStatus.CANCELED, "fok: not all of it could fill now", now_ns),
            ]
        self.orders[order.id] = order
        if req.type is OrderType.MARKET:
            events += self._take(order, book, now_ns)
            if order.id in self.orders:
                if req.tif in (TIF.IOC, TIF.FOK):
                    if order.filled_qty == 0 and book.ask is None and book.bid is None:
                        events.append(
                            self._end(order, OrderStatus.CANCELED, "no quote to fill against", now_ns)
                        )
                else:  # no quote yet, or (partial fills) the quote's size ran out: the next quote
                    book.waiting_markets.append(order.id)
        elif req.type is OrderType.LIMIT:
            events += self._take(order, book, now_ns)
            if order.id in self.orders:
                self._rest_limit(order, book)
        elif req.type is OrderType.TRAILING_STOP:
            ref = book.last if book.last is not None else _mid(book)
            if ref is None:
                return [*events, self._end(order, OrderStatus.REJECTED, "no price yet to trail from", now_ns)]
            order.trail_stop = self._trail_from(order, ref)
            book.trailing.add(order.id)
            self._index_trailing(order, book)
        else:  # stop, stop-limit
            self._rest_stop(order, book)
            if (
                book.last is not None
                and self._stop_hit(order, book.last)
                and not self._closed(req.symbol, now_ns)
            ):
                events += self._trigger(order, book, now_ns)
        if req.tif is TIF.IOC and order.id in self.orders:
            events += self._ended(order, OrderStatus.CANCELED, "ioc: the rest is canceled", now_ns)
        return events

    def restore(self, order: Order) -> None:
        """Put back a working order after a restart, as it was (nothing is matched now)."""
        self.orders[order.id] = order
        book = self.book(order.symbol)
        t = order.request.type
        if order.triggered and t in (OrderType.STOP, OrderType.TRAILING_STOP):
            book.waiting_markets.append(order.id)  # a triggered stop is a market order now
        elif t is OrderType.LIMIT or (t is OrderType.STOP_LIMIT and order.triggered):
            self._rest_limit(order, book)
        elif t is OrderType.TRAILING_STOP:
            book.trailing.add(order.id)
            self._index_trailing(order, book)
        elif t in (OrderType.STOP, OrderType.STOP_LIMIT):
            self._rest_stop(order, book)
        else:
            book.waiting_markets.append(order.id)

    def reload(self, orders: list[Order]) -> None:
        """Forget every working order and put back `orders` (as the store has them, after a
        change could not be saved). The quotes and last prices it has seen stay."""
        self.orders.clear()
        self.trailed.clear()
        self._trail_seq.clear()
        for book in self._books.values():
            book.sell_trail.clear()
            book.buy_trail.clear()
            book.buy_limits.clear()
            book.sell_limits.clear()
            book.buy_stops.clear()
            book.sell_stops.clear()
            book.trailing.clear()
            book.waiting_markets.clear()
        for order in orders:
            self.restore(order)

    def cancel(
        self, order_id: str, now_ns: int, reason: str = "canceled", *, protect: bool = True
    ) -> list[Event]:
        """End a working order. A bracket entry that partly filled places its exits for what
        filled (`protect`), so the position it opened is never left without them."""
        order = self.orders.get(order_id)
        if order is None:
            raise OrderError(f"order {order_id} is not working (filled, canceled or unknown)")
        if not protect:
            return [self._end(order, OrderStatus.CANCELED, reason, now_ns)]
        return self._ended(order, OrderStatus.CANCELED, reason, now_ns)

    def replace(
        self,
        order_id: str,
        now_ns: int,
        *,
        qty: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> list[Event]:
        """Change a working order's quantity or prices (it keeps its id and its fills)."""
        order = self.orders.get(order_id)
        if order is None:
            raise OrderError(f"order {order_id} is not working (filled, canceled or unknown)")
        changes: dict[str, object] = {}
        if qty is not None:
            if qty <= order.filled_qty:
                raise OrderError(f"the new quantity must be above the {order.filled_qty} already filled")
            changes["qty"] = qty
        if limit_price is not None:
            changes["limit_price"] = limit_price
        if stop_price is not None:
            changes["stop_price"] = stop_price
        new_request = order.with_request(**changes).request
        new_request.check()
        order.request = new_request
        order.updated_ns = now_ns
        book = self.book(order.symbol)
        events = [Event(order, "replaced", detail={k: str(v) for k, v in changes.items()})]
        if order.request.type is OrderType.LIMIT or (
            order.request.type is OrderType.STOP_LIMIT and order.triggered
        ):
            self._rest_limit(order, book)
            events += self._match_limits(book, now_ns)
        elif not order.triggered and order.request.type in (OrderType.STOP, OrderType.STOP_LIMIT):
            self._rest_stop(order, book)
            if (
                book.last is not None
                and self._stop_hit(order, book.last)
                and not self._closed(order.symbol, now_ns)
            ):
                events += self._trigger(order, book, now_ns)
        return events

    def expire_day(self, now_ns: int) -> list[Event]:
        """The session closed: day orders end."""
        return self.expire(
            [o.id for o in self.orders.values() if o.request.tif is TIF.DAY],
            now_ns,
            "day order: the session closed",
        )

    def expire(self, order_ids: list[str], now_ns: int, reason: str) -> list[Event]:
        events: list[Event] = []
        for oid in order_ids:
            if oid in self.orders:
                events += self._ended(self.orders[oid], OrderStatus.EXPIRED, reason, now_ns)
        return events

    # -- market data in ---------------------------------------------------------------------

    def on_quote(
        self, symbol: str, bid: float, ask: float, bid_size: float, ask_size: float, ts_ns: int
    ) -> list[Event]:
        book = self._books.get(symbol)
        if book is None:
            book = self.book(symbol)
        book.bid, book.ask, book.bid_size, book.ask_size = bid, ask, bid_size, ask_size
        book.quote_ts = ts_ns
        crosses = (book.buy_limits and -book.buy_limits[0][0] >= ask) or (
            book.sell_limits and book.sell_limits[0][0] <= bid
        )
        if not (book.waiting_markets or crosses):
            return []  # the common case: nothing to do (and no calendar to ask)
        if self._closed(symbol, ts_ns):
            return []  # a quote outside the session fills nothing (it still prices the book)
        events: list[Event] = []
        if book.waiting_markets:
            waiting, book.waiting_markets = book.waiting_markets, []
            for oid in waiting:
                order = self.orders.get(oid)
                if order is not None:
                    events += self._take(order, book, ts_ns)
                    if order.id in self.orders:  # still working: it waits for the next quote
                        book.waiting_markets.append(oid)
        if crosses:
            events += self._match_limits(book, ts_ns)
        return events

    def on_trade(self, symbol: str, price: float, ts_ns: int) -> list[Event]:
        book = self._books.get(symbol)
        if book is None:
            book = self.book(symbol)
        book.last = price
        book.last_ts = ts_ns
        if not (
            (book.sell_trail and book.sell_trail[0][0] < price)
            or (book.buy_trail and -book.buy_trail[0][0] > price)
            or (book.buy_stops and book.buy_stops[0][0] <= price)
            or (book.sell_stops and -book.sell_stops[0][0] >= price)
        ):
            return []  # the common case: no stop to move or trigger (O(1) however many work)
        if self._closed(symbol, ts_ns):
            return []  # no stop triggers, and no stop trails, on a trade outside the session
        events: list[Event] = []
        # trailing stops the trade may move: only those whose wake price it passed
        for heap, passed in (
            (book.sell_trail, lambda key: key < price),
            (book.buy_trail, lambda key: -key > price),
        ):
            again = []
            while heap and passed(heap[0][0]):
                entry = heapq.heappop(heap)
                order = self.orders.get(entry[2])
                if order is None or entry[1] != self._trail_seq.get(order.id) or order.triggered:
                    continue  # ended, triggered, or an older entry
                if self._before(order, ts_ns):
                    again.append(entry)
                    continue
                before = order.trail_stop
                self._trail(order, price)
                if order.trail_stop == before:
                    again.append(entry)  # (the wake is a little early: rounding kept the stop)
                else:
                    self._index_trailing(order, book)
            for entry in again:
                heapq.heappush(heap, entry)
        # stops hit, trailing ones among them (at their current stop)
        for heap, hit in (
            (book.buy_stops, lambda key: key <= price),
            (book.sell_stops, lambda key: -key >= price),
        ):
            deferred = []
            while heap and hit(heap[0][0]):
                entry = heapq.heappop(heap)
                order = self.orders.get(entry[2])
                if order is None or order.triggered or not self._stop_hit(order, price):
                    continue
                if self._before(order, ts_ns):
                    deferred.append(entry)
                    continue
                events += self._trigger(order, book, ts_ns)
            for entry in deferred:
                heapq.heappush(heap, entry)
        return events

    def _closed(self, symbol: str, ts_ns: int) -> bool:
        return self._opened_at is not None and self._opened_at(symbol, ts_ns) is None

    def _before(self, order: Order, ts_ns: int) -> bool:
        """Is this market data older than the order (so it cannot act on it)?"""
        return self.strict_time and ts_ns < order.created_ns

    # -- inside ---------------------------------------------------------------------------------

    def _rest_limit(self, order: Order, book: _Book) -> None:
        price = float(order.request.limit_price)  # type: ignore[arg-type]
        if order.side is Side.BUY:
            heapq.heappush(book.buy_limits, (-price, next(self._seq), order.id))
        else:
            heapq.heappush(book.sell_limits, (price, next(self._seq), order.id))

    def _rest_stop(self, order: Order, book: _Book) -> None:
        stop = float(order.request.stop_price)  # type: ignore[arg-type]
        if order.side is Side.BUY:
            heapq.heappush(book.buy_stops, (stop, next(self._seq), order.id))
        else:
            heapq.heappush(book.sell_stops, (-stop, next(self._seq), order.id))

    def _stop_price(self, order: Order) -> Decimal | None:
        if order.request.type is OrderType.TRAILING_STOP:
            return order.trail_stop
        return order.request.stop_price

    def _stop_hit(self, order: Order, price: float) -> bool:
        stop = self._stop_price(order)
        if stop is None:
            return False
        return price >= float(stop) if order.side is Side.BUY else price <= float(stop)

    def _trail_from(self, order: Order, ref: float) -> Decimal:
        req = order.request
        tick = self._tick_of(order.symbol)
        base = Decimal(repr(ref))
        gap = req.trail_amount if req.trail_amount is not None else base * req.trail_pct / 100  # type: ignore[operator]
        stop = base + gap if order.side is Side.BUY else base - gap
        return stop.quantize(tick)

    def _trail(self, order: Order, price: float) -> None:
        new = self._trail_from(order, price)
        cur = order.trail_stop
        if cur is None or (new < cur if order.side is Side.BUY else new > cur):
            order.trail_stop = new
            self.trailed.add(order.id)

    def _index_trailing(self, order: Order, book: _Book) -> None:
        """Enter a trailing stop (new, restored, or its stop just moved) in its book's wake heap
        and, at its current stop, in the stop heap, so a trade that moves no stop costs O(1)."""
        seq = next(self._seq)
        self._trail_seq[order.id] = seq
        wake = self._trail_wake(order)
        stop = order.trail_stop
        if order.side is Side.SELL:
            heapq.heappush(book.sell_trail, (wake, seq, order.id))
            if stop is not None:
                heapq.heappush(book.sell_stops, (-float(stop), seq, order.id))
        else:
            heapq.heappush(book.buy_trail, (-wake, seq, order.id))
            if stop is not None:
                heapq.heappush(book.buy_stops, (float(stop), seq, order.id))

    def _trail_wake(self, order: Order) -> float:
        """A price past which a trade may move the stop (a sell's above it, a buy's below it); a
        tick early, so that no trade that would move it is missed. `_trail_from` rounds to the
        nearest tick: a sell's stop rises only for price − gap above stop + ½ tick, a buy's
        falls only for price + gap below stop − ½ tick (and likewise for a percentage)."""
        sell = order.side is Side.SELL
        cur = order.trail_stop
        if cur is None:  # no stop yet (restored without one): the next trade sets it
            return -math.inf if sell else math.inf
        req = order.request
        tick = float(self._tick_of(order.symbol))
        if req.trail_amount is not None:
            wake = float(cur + req.trail_amount) if sell else float(cur - req.trail_amount)
        else:
            r = float(req.trail_pct or 0) / 100
            if sell and r >= 1:
                return -math.inf
            wake = float(cur) / (1 - r) if sell else float(cur) / (1 + r)
        return wake - tick if sell else wake + tick

    def _trigger(self, order: Order, book: _Book, now_ns: int) -> list[Event]:
        order.triggered = True
        book.trailing.discard(order.id)
        self._trail_seq.pop(order.id, None)
        events = [Event(order, "triggered", detail={"stop": str(self._stop_price(order))})]
        if order.request.type is OrderType.STOP_LIMIT:
            events += self._take(order, book, now_ns)
            if order.id in self.orders:
                self._rest_limit(order, book)
            return events
        # a triggered stop is a market order: the quote, or the trade that triggered it; what
        # is left (the quote's size ran out) waits for the next quote, like a market order
        events += self._take(order, book, now_ns, fallback=book.last)
        if order.id in self.orders:
            book.waiting_markets.append(order.id)
        return events

    def _limit_ok(self, order: Order, price: float) -> bool:
        """Is `price` acceptable for the order (market and triggered stops: any)?"""
        req = order.request
        if req.type is OrderType.LIMIT or (req.type is OrderType.STOP_LIMIT and order.triggered):
            limit = float(req.limit_price)  # type: ignore[arg-type]
            return price <= limit if order.side is Side.BUY else price >= limit
        return True

    def _take(self, order: Order, book: _Book, now_ns: int, fallback: float | None = None) -> list[Event]:
        """Fill against the opposite quote as far as the order's price and the size allow."""
        if self._before(order, now_ns):
            return []
        since = 0
        if self._opened_at is not None:
            opened = self._opened_at(order.symbol, now_ns)
            if opened is None:
                return []  # the market is closed
            since = opened
        if order.side is Side.BUY:
            price, size = book.ask, book.ask_size
        else:
            price, size = book.bid, book.bid_size
        if book.quote_ts < since:
            price = None  # the quote is from before this session opened: wait for a fresh one
        if price is None:
            if fallback is None or book.last_ts < since:
                return []
            price, size = fallback, float("inf")
        if not self._limit_ok(order, price):
            return []
        qty = order.remaining
        if self.partial_fills and size != float("inf"):
            qty = min(qty, Decimal(int(size)))
            if qty <= 0:
                return []
        return self._fill(order, qty, price, now_ns)

    def _can_fill_all(self, order: Order, book: _Book) -> bool:
        price, size = (book.ask, book.ask_size) if order.side is Side.BUY else (book.bid, book.bid_size)
        if price is None or not self._limit_ok(order, price):
            return False
        return not self.partial_fills or Decimal(repr(size)) >= order.remaining

    def _match_limits(self, book: _Book, now_ns: int) -> list[Event]:
        events: list[Event] = []
        for side, heap in ((Side.BUY, book.buy_limits), (Side.SELL, book.sell_limits)):
            quote = book.ask if side is Side.BUY else book.bid
            if quote is None:
                continue
            deferred = []
            while heap:
                key, _, oid = heap[0]
                limit = -key if side is Side.BUY else key
                if (quote > limit) if side is Side.BUY else (quote < limit):
                    break
                entry = heapq.heappop(heap)
                order = self.orders.get(oid)
                if order is None or float(order.request.limit_price) != limit:  # type: ignore[arg-type]
                    continue  # stale entry (done, or replaced at another price)
                if self._before(order, now_ns):
                    deferred.append(entry)  # placed after this quote: it keeps resting
                    continue
                events += self._take(order, book, now_ns)
                if order.id in self.orders:  # partly filled by size: keep it resting
                    self._rest_limit(order, book)
                    break
            for entry in deferred:
                heapq.heappush(heap, entry)
        return events

    def _fill(self, order: Order, qty: Decimal, price_f: float, now_ns: int) -> list[Event]:
        tick = self._tick_of(order.symbol)
        price = exact_price(price_f, tick)
        commission = self._fees(order.symbol, qty, price) if self._fees else Decimal(0)
        fill = Fill(order.id, order.symbol, order.side, qty, price, now_ns, commission)
        total = order.filled_qty + qty
        prev = order.avg_fill_price or Decimal(0)
        order.avg_fill_price = (prev * order.filled_qty + price * qty) / total
        order.filled_qty = total
        order.updated_ns = now_ns
        done = order.remaining <= 0
        order.status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        events = [Event(order, "filled" if done else "partially_filled", fill)]
        if done:
            self.orders.pop(order.id, None)
        events += self._after_fill(order, fill, now_ns)
        return events

    def _after_fill(self, order: Order, fill: Fill, now_ns: int) -> list[Event]:
        events: list[Event] = []
        if order.oco_group:  # an exit filled: shrink or cancel its sibling
            for other in [
                o for o in self.orders.values() if o.oco_group == order.oco_group and o is not order
            ]:
                left = other.request.qty - fill.qty
                if order.status is OrderStatus.FILLED or left <= other.filled_qty:
                    events.append(self._end(other, OrderStatus.CANCELED, "one-cancels-other", now_ns))
                else:
                    other.request = other.with_request(qty=left).request
                    events.append(
                        Event(other, "replaced", detail={"qty": str(left), "why": "one-cancels-other"})
                    )
        bracket = order.request.bracket
        if bracket is not None and order.status is OrderStatus.FILLED:
            events += self._place_exits(order, now_ns)
        return events

    def _place_exits(self, entry: Order, now_ns: int, qty: Decimal | None = None) -> list[Event]:
        b = entry.request.bracket
        qty = entry.filled_qty if qty is None else qty
        assert b is not None
        group = f"OCO-{entry.id}"
        exit_side = entry.side.opposite
        events: list[Event] = []
        legs = []
        if b.take_profit is not None:
            legs.append(
                OrderRequest(
                    entry.symbol,
                    exit_side,
                    qty,
                    OrderType.LIMIT,
                    TIF.GTC,
                    limit_price=b.take_profit,
                )
            )
        if b.stop_loss is not None:
            legs.append(
                OrderRequest(entry.symbol, exit_side, qty, OrderType.STOP, TIF.GTC, stop_price=b.stop_loss)
            )
        for req in legs:
            leg = Order(
                self.new_id(), req, now_ns, parent_id=entry.id, oco_group=group if len(legs) > 1 else None
            )
            events += self.submit(leg, now_ns)
        return events

    def _ended(self, order: Order, status: OrderStatus, reason: str, now_ns: int) -> list[Event]:
        """End an order the trader or the session ends (canceled, expired): a bracket entry that
        partly filled places its exits for the filled quantity."""
        events = [self._end(order, status, reason, now_ns)]
        if order.request.bracket is not None and order.filled_qty > 0:
            qty = order.filled_qty
            if self._held is not None:  # what is still held of it (a sale may have closed it)
                qty = min(qty, max(Decimal(0), self._held(order.symbol) * order.side.sign))
            if qty > 0:
                events += self._place_exits(order, now_ns, qty)
        return events

    def _end(self, order: Order, status: OrderStatus, reason: str, now_ns: int) -> Event:
        self.orders.pop(order.id, None)
        self._trail_seq.pop(order.id, None)  # (its heap entries are skipped, then dropped)
        book = self._books.get(order.symbol)
        if book is not None:
            book.trailing.discard(order.id)
        order.status = status
        order.reason = reason
        order.updated_ns = now_ns
        kind = {OrderStatus.CANCELED: "canceled", OrderStatus.EXPIRED: "expired"}.get(status, "rejected")
        return Event(order, kind, detail={"reason": reason})


def _mid(book: _Book) -> float | None:
    if book.bid is not None and book.ask is not None:
        return (book.bid + book.ask) / 2
    return book.bid if book.bid is not None else book.ask
