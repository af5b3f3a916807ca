"""Zerodha Kite as a live broker: orders over Kite Connect (the kiteconnect SDK), order updates
from Kite's postbacks (the ticker's order messages, handed in by the session through
`on_order_update`) and a polling fallback, reconciliation at start.

Every order is made valid before it leaves: the price on the instrument's tick (a buy limit
rounded down, a sell limit up), the quantity in whole lots — both from Kite's instrument master
(`KiteMaster`). Our order id travels as the order's `tag` ("tt" + 18 hex: alphanumeric, 20
characters, Kite's limit), which is how an order whose answer was lost is found again.

Orders go as `regular` while the exchange session is open and as `amo` (after-market orders)
otherwise. Kite has no bracket, trailing-stop, GTC or FOK orders here; the capabilities say so
and `prepare` refuses them with the reason.

Updates from postbacks and from polling go through the same path: a fill is the growth of the
order's `filled_quantity` (priced from the change in `average_price`), so an update seen by both
is counted once.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from kiteconnect import KiteConnect
from kiteconnect import exceptions as kex

from trii_term.adapters.kite.errors import broker_error
from trii_term.adapters.kite.master import KiteInstrument, KiteMaster, split_symbol
from trii_term.adapters.kite.order_json import (
    ORDER_TYPES,
    VALIDITY,
    _aggregate,
    _by_symbol,
    _money,
    _price,
    kite_remote,
)
from trii_term.adapters.kite.settings import KiteBrokerConfig
from trii_term.brokers.base import (
    Account,
    BrokerError,
    BrokerUnavailable,
    Capabilities,
    PositionView,
    norm,
)
from trii_term.brokers.live import LiveBroker, Remote, Tracked
from trii_term.credentials import Credentials
from trii_term.domain import NSE
from trii_term.domain.ledger import ZERO
from trii_term.domain.orders import (
    Order,
    OrderError,
    OrderRequest,
    OrderStatus,
    to_lot,
    to_tick,
)

log = logging.getLogger(__name__)

DEFAULT_ROOT = "https://api.kite.trade"
# exchanges that keep NSE's hours (09:15-15:30 IST): outside them an order goes as AMO
NSE_HOURS = frozenset({"NSE", "BSE", "NFO", "BFO"})


class KiteBroker(LiveBroker):
    name = "kite"
    label = "Kite"
    currency = "INR"

    def __init__(
        self,
        store: Any,
        *,
        settings: KiteBrokerConfig,
        rest_root: str,
        credentials: Credentials,
        clock_ns: Callable[[], int],
        dispatch: Callable[[Callable[[], None]], Any] = lambda fn: fn(),
        poll_interval: float = 3.0,
        timeout: float = 7.0,
        cache_seconds: float = 3.0,
        recheck_delay: float = 2.0,
    ) -> None:
        super().__init__(
            store,
            clock_ns=clock_ns,
            dispatch=dispatch,
            cache_seconds=cache_seconds,
            recheck_delay=recheck_delay,
        )
        self.settings = settings
        self._kite = KiteConnect(
            credentials["api_key"],
            access_token=credentials["access_token"],
            root=(rest_root or DEFAULT_ROOT).rstrip("/"),
            timeout=timeout,
        )
        self._master = KiteMaster(self._db)  # our cursor: used under _lock
        self._poll_interval = poll_interval
        # our order id -> when Kite last answered one of our own requests for it (monotonic): an
        # order book read before then is older than what we hold, and is not applied
        self._answered: dict[str, float] = {}
        self._timeout = timeout
        self._varieties: dict[str, str] = {}  # Kite order id -> variety (regular, amo)
        self._last_poll_error = ""
        self.capabilities = Capabilities(
            frozenset(ORDER_TYPES),
            frozenset(VALIDITY),
            fractional=False,
            extended_hours=False,
            brackets=False,
            short=settings.product.upper() != "CNC",  # intraday (MIS) and F&O (NRML) can sell first
        )

    # -- starting and stopping ----------------------------------------------------------------

    def start(self) -> list[str]:
        """Reconcile with Kite (today's orders, positions), then poll while orders are open.
        Blocking. Returns notes; raises BrokerError (session expired, Kite down)."""
        if any(t.is_alive() for t in self._threads):
            return self._reconcile()  # already started: catch up only
        self._stopping.clear()
        notes = self._reconcile()
        thread = threading.Thread(target=self._poll_main, name="kite-order-poller", daemon=True)
        self._threads.append(thread)
        thread.start()
        return notes

    def stop(self) -> None:
        self._stopping.set()
        self._join(self._timeout)

    # -- instruments --------------------------------------------------------------------------

    def instrument(self, symbol: str) -> KiteInstrument:
        """The instrument's master row (tick, lot, token), or an OrderError that says why not."""
        with self._lock:
            ki = self._master.lookup(symbol)
            if ki is None and self._master.count() == 0:
                raise OrderError(
                    "Kite's instrument master is not downloaded yet (it gives each instrument's tick and "
                    "lot size): start the Kite feed once, then place the order"
                )
        if ki is None:
            exchange, tradingsymbol = split_symbol(symbol)
            raise OrderError(
                f"{exchange}:{tradingsymbol} is not in Kite's instrument master: check the symbol "
                "(EXCHANGE:TRADINGSYMBOL, e.g. NSE:INFY; F&O contracts by their full name)"
            )
        return ki

    def _variety(self, exchange: str) -> str:
        """`regular` while a session is open (Muhurat trading included), else `amo` (queued for the
        next open) — by NSE's real calendar: a holiday weekday is not a session."""
        if exchange not in NSE_HOURS:
            return "regular"
        from trii_term.calendars import exchange_calendar

        local = NSE.local(self._now())
        t = local.time()
        sessions = exchange_calendar(NSE.code).sessions(local.date())
        return "regular" if any(s.open <= t < s.close for s in sessions) else "amo"

    # -- what it reports ----------------------------------------------------------------------

    def _net_positions(self, *, fresh: bool = False) -> list[dict[str, Any]]:
        data = self._fetch("positions", self._kite.positions, fresh=fresh)
        net = data.get("net") if isinstance(data, dict) else None
        return [p for p in net or [] if isinstance(p, dict)]

    def positions(self) -> list[PositionView]:
        """Kite's net positions, one per symbol (the products of a symbol added up)."""
        out = []
        for symbol, rows in sorted(_by_symbol(self._net_positions()).items()):
            qty, avg = _aggregate(rows)
            if qty == 0:
                continue
            unrealised = sum((_money(p.get("unrealised")) for p in rows), ZERO)
            last, value, unreal = self.marked(
                symbol, qty, avg, _price(rows[0].get("last_price")), None, unrealised
            )
            out.append(
                PositionView(
                    symbol, qty, avg, last, value, unreal, self.recorded_position(symbol).realized, "INR"
                )
            )
        return out

    def account(self) -> Account:
        """From Kite's equity margins: cash is `available.cash`, buying power the `net` margin
        available, equity the cash plus the positions' P&L."""
        m = self._fetch("margins", lambda: self._kite.margins("equity"))
        if not isinstance(m, dict):
            raise BrokerUnavailable("Kite sent margins trii-term could not read")
        available = m.get("available") or {}
        rows = self._net_positions()
        realised = sum((_money(p.get("realised")) for p in rows), ZERO)
        unrealised = sum((_money(p.get("unrealised")) for p in rows), ZERO)
        cash = _money(available.get("cash"))
        return Account(
            cash, _money(m.get("net")), cash + realised + unrealised, "INR", realised, unrealised, ZERO
        )

    # -- orders -------------------------------------------------------------------------------

    def prepare(self, request: OrderRequest) -> OrderRequest:
        """The request made valid for Kite: a known instrument, whole lots, prices on its tick,
        our id as the tag."""
        if request.type not in ORDER_TYPES:
            raise OrderError(
                f"Kite takes market, limit, stop (SL-M) and stop-limit (SL) orders, not {request.type.value}"
            )
        if request.tif not in VALIDITY:
            raise OrderError(f"Kite orders are DAY or IOC, not {request.tif.value.upper()}")
        if request.bracket is not None:
            raise OrderError("Kite takes no bracket orders here: place the exits as separate orders")
        ki = self.instrument(request.symbol)
        if ki.segment == "INDICES" or ki.instrument_type == "INDEX":
            raise OrderError(f"{ki.symbol} is an index: it cannot be traded")
        if request.qty != request.qty.to_integral_value():
            raise OrderError(f"Kite trades whole units: {request.qty} is fractional")
        lot = max(1, ki.lot_size)
        qty = to_lot(request.qty, lot)
        if qty <= 0:
            raise OrderError(f"{ki.symbol} trades in lots of {lot}: {request.qty} is less than one lot")
        tick = ki.tick_size if ki.tick_size > 0 else Decimal("0.05")
        changes: dict[str, object] = {"symbol": ki.symbol, "qty": norm(qty)}
        if request.limit_price is not None:
            changes["limit_price"] = norm(to_tick(request.limit_price, tick, request.side))
        if request.stop_price is not None:
            changes["stop_price"] = norm(to_tick(request.stop_price, tick))
        cid = request.client_order_id
        if not cid:
            changes["client_order_id"] = "tt" + uuid.uuid4().hex[:18]
        elif not (cid.isalnum() and len(cid) <= 20):
            raise OrderError(f"order id {cid!r} cannot be Kite's tag (alphanumeric, at most 20 characters)")
        prepared = replace(request, **changes)  # type: ignore[arg-type]
        prepared.check()
        return prepared

    def check_cash(self, request: OrderRequest, *, releasing: Sequence[Order] = ()) -> None:
        """A buy that needs more than Kite's available margin (for CNC: the full value; the
        broker checks again, this is for the ticket's preview)."""
        if self.settings.product.upper() != "CNC":
            return
        needs = self._buy_needs(request, releasing, self.account, what="Kite margins")
        if needs is None:
            return
        cost, power = needs
        if cost > power:
            raise OrderError(f"insufficient funds at Kite: ₹{cost:,.2f} needed, ₹{power:,.2f} available")

    def order_params(self, request: OrderRequest, variety: str) -> dict[str, Any]:
        """kiteconnect's place_order arguments: prices as exact strings, our id as the tag."""
        exchange, tradingsymbol = split_symbol(request.symbol)
        params: dict[str, Any] = {
            "variety": variety,
            "exchange": exchange,
            "tradingsymbol": tradingsymbol,
            "transaction_type": request.side.value.upper(),
            "quantity": int(request.qty),
            "product": self.settings.product.upper(),
            "order_type": ORDER_TYPES[request.type],
            "validity": VALIDITY[request.tif],
            "tag": request.client_order_id,
        }
        if request.limit_price is not None:
            params["price"] = str(request.limit_price)
        if request.stop_price is not None:
            params["trigger_price"] = str(request.stop_price)
        return params

    def place(self, request: OrderRequest, *, source: str) -> Order:
        request = self.prepare(request)
        exchange, _ = split_symbol(request.symbol)
        variety = self._variety(exchange)
        t = self._submit_record(request, source)
        self._in_flight.add(t.order.id)
        try:
            broker_id = str(self._kite.place_order(**self.order_params(request, variety)))
        except Exception as exc:
            err = self._error(exc, action="place", order=t.order)
            if isinstance(err, BrokerUnavailable):
                log.warning("order %s: no answer from Kite: %s", t.order.id, type(exc).__name__)
                self._recheck_later(lambda: self._recover(self._kite.orders()))
            else:
                self._refused(t, source, str(err))
            err.journalled = True  # type: ignore[attr-defined]  # the journal has the outcome (or the doubt)
            raise err from None
        finally:
            self._in_flight.discard(t.order.id)
        self._answered[t.order.id] = time.monotonic()
        self._varieties[broker_id] = variety
        now = self._now()
        sent = Remote(
            broker_id, t.order.id, request, OrderStatus.NEW, ZERO, None, now, now, extra={"variety": variety}
        )
        events, _ = self._apply(sent, via="response")
        self._emit(events)
        return (self._find(t.order.id) or t).order

    def cancel(self, order_id: str, *, source: str) -> Order:
        t = self._working_order(order_id, "cancel")
        variety = self._variety_of(t)
        self._actors[order_id] = source
        try:
            self._kite.cancel_order(variety, t.broker_order_id)
        except Exception as exc:
            raise self._error(exc, action="cancel", order=t.order) from None
        self._answered[order_id] = time.monotonic()
        return self._refetch(t, source)

    def replace(
        self,
        order_id: str,
        *,
        source: str,
        qty: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        t = self._working_order(order_id, "modify")
        o = t.order
        ki = self.instrument(o.symbol)
        tick = ki.tick_size if ki.tick_size > 0 else Decimal("0.05")
        changes: dict[str, object] = {}
        if qty is not None:
            lots = to_lot(qty, max(1, ki.lot_size))
            if qty != qty.to_integral_value() or lots <= 0:
                raise OrderError(f"{o.symbol} trades in whole lots of {ki.lot_size}: {qty} will not do")
            changes["qty"] = norm(lots)
        if limit_price is not None:
            changes["limit_price"] = norm(to_tick(limit_price, tick, o.side))
        if stop_price is not None:
            changes["stop_price"] = norm(to_tick(stop_price, tick))
        if not changes:
            raise OrderError("nothing to change: give a quantity, a limit price or a stop price")
        new = replace(o.request, **changes)  # type: ignore[arg-type]
        new.check()
        params: dict[str, Any] = {
            "quantity": int(new.qty),
            "order_type": ORDER_TYPES[new.type],
            "validity": VALIDITY[new.tif],
        }
        if new.limit_price is not None:
            params["price"] = str(new.limit_price)
        if new.stop_price is not None:
            params["trigger_price"] = str(new.stop_price)
        variety = self._variety_of(t)
        self._actors[order_id] = source
        try:
            self._kite.modify_order(variety, t.broker_order_id, **params)
        except Exception as exc:
            raise self._error(exc, action="modify", order=o) from None
        self._answered[order_id] = time.monotonic()
        modified = Remote(
            t.broker_order_id or "",
            o.id,
            new,
            o.status,
            o.filled_qty,
            o.avg_fill_price,
            o.created_ns,
            self._now(),
        )
        events, _ = self._apply(modified, via="response", actor=source)
        self._emit(events)
        return (self._find(order_id) or t).order

    def _variety_of(self, t: Tracked) -> str:
        """The variety Kite filed the order under (needed to cancel or modify it)."""
        bid = t.broker_order_id or ""
        known = self._varieties.get(bid)
        if known:
            return known
        try:
            history = self._kite.order_history(bid)
        except Exception as exc:
            raise self._error(exc, action="look up", order=t.order) from None
        variety = str((history[-1] if history else {}).get("variety") or "regular")
        self._varieties[bid] = variety
        return variety

    def _refetch(self, t: Tracked, actor: str) -> Order:
        """The order as Kite has it now (after a cancel)."""
        try:
            history = self._kite.order_history(t.broker_order_id)
        except Exception as exc:
            log.warning("reading order %s back from Kite failed: %s", t.order.id, self._error(exc))
            return t.order
        if history:
            self._take(history[-1], via="response", actor=actor)
        return (self._find(t.order.id) or t).order

    def _take(self, data: dict[str, Any], *, via: str, actor: str | None = None) -> list[str]:
        remote = kite_remote(data)
        if remote.extra.get("variety"):
            self._varieties[remote.broker_order_id] = str(remote.extra["variety"])
        events, notes = self._apply(remote, via=via, actor=actor)
        self._emit(events)
        return notes

    # -- updates: postbacks and polling -------------------------------------------------------

    def on_order_update(self, data: dict[str, Any]) -> None:
        """Kite's order update (a postback, or the ticker's `order` message). Cheap: no network,
        so it may be called on the event loop."""
        try:
            self._take(data, via="postback")
        except (KeyError, ValueError, TypeError, ArithmeticError):
            log.warning(
                "Kite sent an order update trii-term could not read: %r", data.get("order_id"), exc_info=True
            )
        except Exception:
            log.exception("applying a Kite order update failed")

    def _poll_main(self) -> None:
        """Poll Kite's order book while any order of ours is open: the fallback when postbacks
        do not arrive (no ticker, a dropped line)."""
        while not self._sleep(self._poll_interval):
            if not self._working() and not self._unanswered():
                continue
            try:
                self.poll()
                self._last_poll_error = ""
            except BrokerError as exc:
                if str(exc) != self._last_poll_error:
                    log.warning("polling Kite's orders failed: %s", exc)
                self._last_poll_error = str(exc)
            except Exception:
                log.exception("polling Kite's orders failed")

    def poll(self) -> None:
        """Today's order book once, into our record. An order Kite answered one of our own
        requests for after the book was asked for is left to the next poll: the book may be
        older than that answer (a modify would be undone, a cancel reopened)."""
        asked = time.monotonic()
        try:
            book = self._kite.orders()
        except Exception as exc:
            raise self._error(exc, action="read the orders") from None
        for data in book or []:
            if self._answered.get(str(data.get("tag") or ""), -math.inf) >= asked:
                continue
            try:
                self._take(data, via="poll")
            except (KeyError, ValueError, TypeError, ArithmeticError):
                log.warning(
                    "Kite listed an order trii-term could not read: %r", data.get("order_id"), exc_info=True
                )

    # -- finding out what happened ----------------------------------------------------------

    def _recover(self, book: list[dict[str, Any]]) -> list[str]:
        """Unanswered orders found in Kite's order book by their tag are adopted; the rest
        never reached Kite and are marked rejected — never sent again."""
        notes: list[str] = []
        pending = {t.order.id: t for t in self._unanswered()}
        if not pending:
            return notes
        for data in book or []:
            tags = {data.get("tag"), *(data.get("tags") or [])}
            if tags & set(pending):
                notes += self._take(data, via="reconcile")
        for t in self._unacknowledged():
            if t.order.id in pending:
                event, note = self._never_reached(t)
                self._emit([event])
                notes.append(note)
        return notes

    def _reconcile(self) -> list[str]:
        """Kite's order book for today and its positions are the truth: our record is brought in
        line, each difference journalled as `reconciled` and returned as a note."""
        try:
            book = self._kite.orders()
        except Exception as exc:
            raise self._error(exc, action="read the orders") from None
        notes: list[str] = []
        seen: set[str] = set()
        for data in book or []:
            try:
                notes += self._take(data, via="reconcile")
                seen.add(str(data.get("order_id")))
            except (KeyError, ValueError, TypeError, ArithmeticError):
                log.warning(
                    "Kite listed an order trii-term could not read: %r", data.get("order_id"), exc_info=True
                )
        notes += self._recover(book)
        for t in self._working():
            if t.broker_order_id not in seen:
                notes += self._ended(t)
        rows = self._net_positions(fresh=True)
        theirs = {symbol: _aggregate(group) for symbol, group in _by_symbol(rows).items()}
        notes += self._reconcile_positions(theirs)
        return notes

    def _ended(self, t: Tracked) -> list[str]:
        """A working order of ours missing from today's book: its last state from Kite's
        history, or expired (a DAY order ends with its session)."""
        try:
            history = self._kite.order_history(t.broker_order_id)
        except kex.InputException:
            history = []
        except Exception as exc:
            raise self._error(exc, action="check", order=t.order) from None
        if history:
            return self._take(history[-1], via="reconcile")
        o = t.order
        why = "not in Kite's order book today: a DAY order ends with its session"
        gone = Remote(
            t.broker_order_id or "", o.id, o.request, OrderStatus.EXPIRED, o.filled_qty, o.avg_fill_price,
            o.created_ns, self._now(), reason=why,
        )  # fmt: skip
        events, notes = self._apply(gone, via="reconcile")
        self._emit(events)
        return notes

    # -- errors -------------------------------------------------------------------------------

    def _error(self, exc: BaseException, *, action: str = "read", order: Order | None = None) -> BrokerError:
        """An exception from kiteconnect as a message for the trader."""
        return broker_error(exc, action=action, order=order)
