"""Alpaca as a live broker: orders over its trading REST API (alpaca-py's TradingClient), order
updates from its `trade_updates` websocket, reconciliation at start and after every reconnect.

Orders are sent with exact decimal strings (`"qty": "10", "limit_price": "170.10"`), through the
SDK's REST client rather than its request models, which turn prices into floats. The client's
own retries are off (`_retry = 0`): a 429 becomes RateLimited at once instead of three 3-second
sleeps, and every request has a timeout (the SDK sets none).

The trade_updates stream is read with the `websockets` sync client in a daemon thread rather
than alpaca-py's TradingStream, because trii-term needs what TradingStream does not offer: a hook
on every (re)connect to catch up with Alpaca (events sent while the line was down are not
replayed), refused keys reported instead of retried forever, and a stop that does not wait out
its 5-second receive timeout.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import time as dtime
from decimal import Decimal, InvalidOperation
from typing import Any

from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrderByIdRequest, GetOrdersRequest
from requests.adapters import HTTPAdapter

from trii_term.adapters.alpaca.errors import broker_error
from trii_term.adapters.alpaca.order_json import (
    _dec,
    _position,
    order_body,
    remotes,
)
from trii_term.adapters.alpaca.settings import AlpacaBrokerConfig
from trii_term.adapters.alpaca.trade_updates import TradeUpdates
from trii_term.brokers.base import (
    Account,
    BrokerError,
    BrokerUnavailable,
    Capabilities,
    PositionView,
    norm,
    opt,
)
from trii_term.brokers.live import Remote, Tracked, money
from trii_term.credentials import Credentials
from trii_term.domain import US, Instrument, from_ns
from trii_term.domain.ledger import ZERO
from trii_term.domain.orders import (
    TIF,
    Bracket,
    Event,
    Order,
    OrderError,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    to_tick,
)

log = logging.getLogger(__name__)

PENNY = Decimal("0.01")
SUB_PENNY = Decimal("0.0001")


def alpaca_tick(price: Decimal) -> Decimal:
    """Alpaca's price increment: a cent from $1 up, a hundredth of a cent below."""
    return PENNY if price >= 1 else SUB_PENNY


def _to_alpaca_tick(price: Decimal, side: Side | None = None) -> Decimal:
    return norm(to_tick(price, alpaca_tick(price), side))


class _TimeoutAdapter(HTTPAdapter):
    """Every request gets a timeout: alpaca-py sends none, and a hung request would hold the
    order (and the worker thread) forever."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request, **kw):
        if kw.get("timeout") is None:
            kw["timeout"] = self._timeout
        return super().send(request, **kw)


class AlpacaBroker(TradeUpdates):
    name = "alpaca"
    label = "Alpaca"
    currency = "USD"

    def __init__(
        self,
        store: Any,
        *,
        settings: AlpacaBrokerConfig,
        credentials: Credentials,
        instruments: Mapping[str, Instrument],
        clock_ns: Callable[[], int],
        dispatch: Callable[[Callable[[], None]], Any] = lambda fn: fn(),
        timeout: float = 10.0,
        cache_seconds: float = 3.0,
        reconnect_delay: tuple[float, float] = (1.0, 30.0),
        stream_wait: float = 5.0,
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
        self._instruments = instruments
        self._key_id = credentials["key_id"]
        self._secret = credentials["secret_key"]
        self._client = TradingClient(
            self._key_id, self._secret, paper=settings.paper, raw_data=True, url_override=settings.rest
        )
        self._client._retry = 0  # a 429 is the trader's to see, not three 3-second sleeps
        adapter = _TimeoutAdapter(timeout)
        self._client._session.mount("http://", adapter)
        self._client._session.mount("https://", adapter)
        self._timeout = timeout
        self._attempt = 0
        self._reconnect_delay = reconnect_delay
        self._stream_wait = stream_wait
        self._stream_up = threading.Event()
        self._stream_settled = threading.Event()  # listening, or given up (keys refused)
        self._stream_problem = ""
        self._awaiting_first = False
        self._ws: Any = None
        self.capabilities = Capabilities(
            frozenset(OrderType),
            frozenset(TIF),
            fractional=False,
            extended_hours=False,
            brackets=True,
            short=True,
        )

    @property
    def login_hint(self) -> str:
        return "trii-term login alpaca" + ("" if self.settings.paper else " --live")

    # -- starting and stopping ----------------------------------------------------------------

    def start(self) -> list[str]:
        """Connect the order-update stream, then reconcile with Alpaca (orders, positions).
        Blocking. Returns notes for the trader; raises BrokerError (keys refused, Alpaca down)."""
        if any(t.is_alive() for t in self._threads):
            return self._reconcile()  # already started: catch up only
        self._stopping.clear()
        self._stream_settled.clear()
        with self._lock:
            self._awaiting_first = True
        thread = threading.Thread(target=self._stream_main, name="alpaca-trade-updates", daemon=True)
        self._threads.append(thread)
        thread.start()
        notes: list[str] = []
        self._stream_settled.wait(self._stream_wait)
        up = self._stream_up.is_set()
        with self._lock:
            self._awaiting_first = False
        try:
            notes += self._reconcile()
            acct = self._fetch("account", self._client.get_account, fresh=True)
        except BaseException:
            self.stop()
            raise
        if not up:
            notes.append(
                f"Alpaca's order-update stream is not connected ({self._stream_problem or 'no answer yet'}): "
                "trii-term keeps trying and checks every order with Alpaca when it connects"
            )
        if isinstance(acct, dict) and acct.get("shorting_enabled") is False:
            self.capabilities = replace(self.capabilities, short=False)
        return notes

    def stop(self) -> None:
        self._stopping.set()
        ws = self._ws
        if ws is not None:
            try:
                ws.close()
            except Exception:
                log.debug("closing the trade_updates socket failed", exc_info=True)
        self._join(self._timeout)

    # -- what it reports ----------------------------------------------------------------------

    def account(self) -> Account:
        raw = self._fetch("account", self._client.get_account)
        unrealized = sum((p.unrealized_pnl for p in self.positions()), ZERO)
        return Account(
            _dec(raw.get("cash")),
            _dec(raw.get("buying_power")),
            _dec(raw.get("equity") or raw.get("portfolio_value")),
            str(raw.get("currency") or "USD"),
            self.realized(),
            unrealized,
            ZERO,
        )

    def positions(self) -> list[PositionView]:
        out = []
        for p in self._fetch("positions", self._client.get_all_positions):
            symbol, qty, avg = _position(p)
            if qty == 0:
                continue
            last, value, unreal = self.marked(
                symbol,
                qty,
                avg,
                opt(p.get("current_price")),
                opt(p.get("market_value")),
                opt(p.get("unrealized_pl")),
            )
            out.append(
                PositionView(
                    symbol, qty, avg, last, value, unreal, self.recorded_position(symbol).realized, "USD"
                )
            )
        return sorted(out, key=lambda v: v.symbol)

    # -- orders -------------------------------------------------------------------------------

    def prepare(self, request: OrderRequest) -> OrderRequest:
        """The request made valid for Alpaca: whole shares, prices on Alpaca's increments
        (a cent from $1, a hundredth of a cent below; a buy limit rounded down, a sell limit
        up), and our id as the client order id."""
        inst = self._instruments.get(request.symbol)
        if inst is None:
            raise OrderError(f"unknown symbol {request.symbol}: add it to trii-term's instruments first")
        if not inst.tradable:
            raise OrderError(f"{request.symbol} is an index: it cannot be traded")
        if inst.market != "US":
            raise OrderError(f"{request.symbol} trades on {inst.exchange}: Alpaca trades US stocks only")
        if request.qty != request.qty.to_integral_value():
            raise OrderError(
                f"trii-term sends Alpaca whole shares: {request.qty} is fractional (use {int(request.qty)})"
            )
        changes: dict[str, object] = {"qty": norm(request.qty)}
        if request.limit_price is not None:
            changes["limit_price"] = _to_alpaca_tick(request.limit_price, request.side)
        if request.stop_price is not None:
            changes["stop_price"] = _to_alpaca_tick(request.stop_price)
        if request.trail_amount is not None:
            changes["trail_amount"] = _to_alpaca_tick(request.trail_amount)
        if request.bracket is not None:
            b = request.bracket
            changes["bracket"] = Bracket(
                _to_alpaca_tick(b.take_profit, request.side.opposite) if b.take_profit is not None else None,
                _to_alpaca_tick(b.stop_loss) if b.stop_loss is not None else None,
            )
        if not request.client_order_id:
            changes["client_order_id"] = f"tt-{uuid.uuid4().hex[:20]}"
        elif len(request.client_order_id) > 48:
            raise OrderError(
                f"client order id {request.client_order_id!r} is longer than Alpaca's 48 characters"
            )
        prepared = replace(request, **changes)  # type: ignore[arg-type]
        prepared.check()
        return prepared

    def check_cash(self, request: OrderRequest, *, releasing: Sequence[Order] = ()) -> None:
        """What Alpaca would refuse for buying power, from the account it last reported (the
        broker checks again; this is for the ticket's preview)."""
        needs = self._buy_needs(request, releasing, self.account, what="Alpaca account")
        if needs is None:
            return
        cost, power = needs
        if cost > power:
            raise OrderError(
                f"insufficient buying power at Alpaca: ${money(cost)} needed, ${money(power)} available"
            )

    def place(self, request: OrderRequest, *, source: str) -> Order:
        """Journal, then send. A refusal raises BrokerError (the order is rejected); a dropped
        line raises BrokerUnavailable and the order is checked with Alpaca by its id."""
        request = self.prepare(request)
        t = self._submit_record(request, source)
        self._in_flight.add(t.order.id)
        try:
            raw = self._client.post("/orders", order_body(request))
        except Exception as exc:
            err = self._error(exc, action="place", order=t.order)
            if isinstance(err, BrokerUnavailable):
                log.warning("order %s: no answer from Alpaca: %s", t.order.id, exc)
                self._recheck_later(self._recover)
            else:
                self._refused(t, source, str(err))
            err.journalled = True  # type: ignore[attr-defined]  # the journal has the outcome (or the doubt)
            raise err from None
        finally:
            self._in_flight.discard(t.order.id)
        self._take(raw, via="response")
        return (self._find(t.order.id) or t).order

    def cancel(self, order_id: str, *, source: str) -> Order:
        t = self._working_order(order_id, "cancel")
        self._actors[order_id] = source
        try:
            self._client.cancel_order_by_id(t.broker_order_id)
        except Exception as exc:
            raise self._error(exc, action="cancel", order=t.order) from None
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
        t = self._working_order(order_id, "replace")
        o = t.order
        if o.filled_qty > 0:
            raise OrderError(
                f"order {order_id} has {o.filled_qty} of {o.request.qty} filled: trii-term replaces only "
                f"unfilled Alpaca orders — cancel it and place a new one for the remaining {o.remaining}"
            )
        changes: dict[str, object] = {}
        if qty is not None:
            if qty != qty.to_integral_value():
                raise OrderError(f"trii-term sends Alpaca whole shares: {qty} is fractional")
            changes["qty"] = norm(qty)
        if limit_price is not None:
            changes["limit_price"] = _to_alpaca_tick(limit_price, o.side)
        if stop_price is not None:
            changes["stop_price"] = _to_alpaca_tick(stop_price)
        if not changes:
            raise OrderError("nothing to change: give a quantity, a limit price or a stop price")
        replace(o.request, **changes).check()  # type: ignore[arg-type]
        body = {k: str(v) for k, v in changes.items()}
        self._actors[order_id] = source
        try:
            raw = self._client.patch(f"/orders/{t.broker_order_id}", body)
        except Exception as exc:
            raise self._error(exc, action="replace", order=o) from None
        self._take(raw, via="response", actor=source)
        return (self._find(order_id) or t).order

    def _refetch(self, t: Tracked, actor: str) -> Order:
        """The order as Alpaca has it now (after a cancel: pending_cancel or canceled)."""
        try:
            raw = self._client.get_order_by_id(t.broker_order_id, GetOrderByIdRequest(nested=True))
        except Exception as exc:
            log.warning("reading order %s back from Alpaca failed: %s", t.order.id, self._error(exc))
            return t.order
        self._take(raw, via="response", actor=actor)
        return (self._find(t.order.id) or t).order

    def _take(self, raw: Any, *, via: str, actor: str | None = None, **event: Any) -> list[str]:
        """An Alpaca order object (with its legs) into our record; listeners hear of it."""
        events: list[Event] = []
        notes: list[str] = []
        for remote in remotes(raw, **event):
            ev, nt = self._apply(remote, via=via, actor=actor)
            events += ev
            notes += nt
        self._emit(events)
        return notes

    # -- errors -------------------------------------------------------------------------------

    def _error(self, exc: BaseException, *, action: str = "read", order: Order | None = None) -> BrokerError:
        """An exception from the SDK as a message for the trader."""
        return broker_error(exc, action=action, order=order, login_hint=self.login_hint)

    # -- finding out what happened ----------------------------------------------------------

    def _recover(self) -> list[str]:
        """Every order journalled as submitted whose answer never came (a crash, a dropped
        line): adopted when Alpaca has it (by client order id), else marked rejected —
        never sent a second time."""
        notes: list[str] = []
        for t in self._unanswered():
            try:
                raw = self._client.get_order_by_client_id(t.order.request.client_order_id or t.order.id)
            except APIError as exc:
                if exc.status_code == 404:
                    event, note = self._never_reached(t)
                    self._emit([event])
                    notes.append(note)
                    continue
                raise self._error(exc, action="check", order=t.order) from None
            except Exception as exc:
                raise self._error(exc, action="check", order=t.order) from None
            notes += self._take(raw, via="reconcile")
        return notes

    def _reconcile(self) -> list[str]:
        """Alpaca's orders (open, and today's) and positions are the truth: our record is
        brought in line, each difference journalled as `reconciled` and returned as a note."""
        notes = self._recover()
        day = US.local(self._now()).date()
        after = from_ns(US.at(day, dtime(0)))
        try:
            listed = self._client.get_orders(
                GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500, nested=True)
            )
            listed += self._client.get_orders(
                GetOrdersRequest(status=QueryOrderStatus.ALL, limit=500, nested=True, after=after)
            )
        except Exception as exc:
            raise self._error(exc, action="read the orders") from None
        seen: set[str] = set()
        for raw in listed:
            if not isinstance(raw, dict) or raw.get("id") in seen:
                continue
            seen.add(str(raw.get("id")))
            seen.update(str(leg.get("id")) for leg in raw.get("legs") or [])
            try:
                notes += self._take(raw, via="reconcile")
            except (KeyError, ValueError, InvalidOperation, TypeError):
                log.warning(
                    "Alpaca listed an order trii-term could not read: %r", raw.get("id"), exc_info=True
                )
        for t in self._working():
            if t.broker_order_id in seen:
                continue
            try:
                raw = self._client.get_order_by_id(t.broker_order_id, GetOrderByIdRequest(nested=True))
            except APIError as exc:
                if exc.status_code == 404:
                    notes += self._gone(t)
                    continue
                raise self._error(exc, action="check", order=t.order) from None
            except Exception as exc:
                raise self._error(exc, action="check", order=t.order) from None
            notes += self._take(raw, via="reconcile")
        held = self._fetch("positions", self._client.get_all_positions, fresh=True)
        notes += self._reconcile_positions({s: (q, a) for s, q, a in map(_position, held)})
        return notes

    def _gone(self, t: Tracked) -> list[str]:
        remote = Remote(
            t.broker_order_id or "",
            t.order.request.client_order_id,
            t.order.request,
            OrderStatus.CANCELED,
            t.order.filled_qty,
            t.order.avg_fill_price,
            t.order.created_ns,
            self._now(),
            reason="Alpaca no longer knows this order",
        )
        events, notes = self._apply(remote, via="reconcile")
        self._emit(events)
        return notes
