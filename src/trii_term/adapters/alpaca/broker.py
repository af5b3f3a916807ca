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

import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from datetime import time as dtime
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
import websockets
from alpaca.common.exceptions import APIError
from alpaca.common.utils import get_default_user_agent
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrderByIdRequest, GetOrdersRequest
from requests.adapters import HTTPAdapter
from websockets.sync.client import connect as ws_connect

from trii_term.brokers.base import (
    Account,
    BrokerAuthError,
    BrokerError,
    BrokerUnavailable,
    Capabilities,
    PositionView,
    RateLimited,
    norm,
    opt,
)
from trii_term.brokers.live import LiveBroker, Remote, Tracked, describe, money
from trii_term.config import AlpacaBrokerConfig
from trii_term.credentials import Credentials
from trii_term.domain import US, Instrument, from_ns, to_ns
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
_STATUS = {
    "filled": OrderStatus.FILLED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}
_REASON = {
    OrderStatus.CANCELED: "canceled at Alpaca",
    OrderStatus.EXPIRED: "expired at Alpaca (its time in force ran out)",
    OrderStatus.REJECTED: "rejected by Alpaca",
}
# fields Alpaca names in its 422 messages, as the trader calls them
_FIELDS = {
    "limit_price": "limit price",
    "stop_price": "stop price",
    "trail_price": "trail amount",
    "trail_percent": "trail percent",
    "time_in_force": "time in force",
    "client_order_id": "client order id",
    "take_profit": "take-profit",
    "stop_loss": "stop-loss",
    "order_class": "order class",
    "extended_hours": "extended hours",
    "notional": "notional",
    "qty": "quantity",
    "quantity": "quantity",
    "symbol": "symbol",
    "side": "side",
    "type": "order type",
}
_FIELD_RE = re.compile(
    r"\b(" + "|".join(k.replace("_", "[_ ]") for k in sorted(_FIELDS, key=len, reverse=True)) + r")\b"
)


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

    def send(self, request, **kw):  # type: ignore[no-untyped-def,override]
        if kw.get("timeout") is None:
            kw["timeout"] = self._timeout
        return super().send(request, **kw)


class AlpacaBroker(LiveBroker):
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
        if request.side is not Side.BUY:
            return
        price = request.limit_price or request.stop_price
        if price is None:
            return
        try:
            power = self.account().buying_power
        except BrokerError as exc:
            log.info("no Alpaca account to check buying power against: %s", exc)
            return
        for o in releasing:  # replaced or canceled first: the broker no longer holds their cash
            if o.side is Side.BUY:
                power += o.remaining * (o.request.limit_price or o.request.stop_price or ZERO)
        cost = request.qty * price
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
        if isinstance(exc, BrokerError):
            return exc
        if isinstance(exc, APIError):
            return self._api_error(exc, action, order)
        if isinstance(exc, requests.RequestException):
            why = _why(exc)
            if action == "place" and order is not None:
                return BrokerUnavailable(
                    f"Alpaca could not be reached ({why}): order {order.id} may or may not have reached it. "
                    f"trii-term checks it with Alpaca by its id ({order.id}) and shows what it finds — "
                    "do not place it again"
                )
            what = f" order {order.id}" if order is not None else ""
            return BrokerUnavailable(
                f"Alpaca could not be reached ({why}): could not {action}{what} — "
                "check the connection and retry"
            )
        log.error("unexpected error from Alpaca while trying to %s", action, exc_info=exc)
        return BrokerUnavailable(f"Alpaca sent an answer trii-term could not read (to {action}); see the log")

    def _api_error(self, exc: APIError, action: str, order: Order | None) -> BrokerError:
        status = exc.status_code or 0
        text = str(exc)
        try:
            body = json.loads(text)
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        message = str(body.get("message") or text.strip() or f"HTTP {status}")
        if status == 401 or (status == 403 and "code" not in body):
            return BrokerAuthError(f"Alpaca refused the keys — run `{self.login_hint}`")
        if status == 429:
            wait = _retry_after(exc)
            nothing = "nothing was placed" if action == "place" else f"could not {action}"
            return RateLimited(
                f"Alpaca is limiting requests (HTTP 429, too many this minute): {nothing} — "
                f"try again in {math.ceil(wait)} s",
                time.monotonic() + wait,
            )
        if status == 403 and "buying power" in message.lower():
            have, need = opt(body.get("buying_power")), opt(body.get("cost_basis"))
            figures = ""
            if have is not None and need is not None:
                figures = f" — ${money(have)} available, the order needs ${money(need)}"
            elif have is not None:
                figures = f" — ${money(have)} available"
            return BrokerError(f"Alpaca refused: insufficient buying power{figures}")
        if status in (400, 422):
            found = _FIELD_RE.search(message)
            field = f" ({_FIELDS[found.group(1).replace(' ', '_')]})" if found else ""
            what = "the order" if action == "place" else f"the {action}"
            return BrokerError(f"Alpaca refused {what}{field}: {message}")
        if status == 404:
            which = f"order {order.id}" if order is not None else "that"
            return BrokerError(f"Alpaca does not know {which}: {message}")
        if status >= 500:
            tail = (
                f"; trii-term checks order {order.id} with Alpaca by its id — do not place it again"
                if action == "place" and order is not None
                else "; try again shortly"
            )
            return BrokerUnavailable(f"Alpaca had a server error (HTTP {status}: {message}){tail}")
        return BrokerError(f"Alpaca refused: {message} (HTTP {status})")

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

    # -- the trade_updates stream -----------------------------------------------------------

    def _stream_main(self) -> None:
        low, high = self._reconnect_delay
        self._attempt = 0
        while not self._stopping.is_set():
            try:
                if self._listen():
                    self._stream_settled.set()
                    return  # keys refused: retrying will not help
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                why = _why(exc)
                # said once per kind of trouble, not once per retry
                (log.debug if why == self._stream_problem else log.warning)(
                    "Alpaca trade_updates stream: %s", why
                )
                self._stream_problem = why
            except Exception:
                self._stream_problem = "unexpected error (see the log)"
                log.exception("Alpaca trade_updates stream failed")
            finally:
                self._ws = None
                self._stream_up.clear()
            if self._stopping.is_set():
                return
            self._attempt += 1
            self._sleep(min(high, low * 2 ** (self._attempt - 1)))

    def _listen(self) -> bool:
        """One connection: authenticate, listen, apply events until it closes. True when the
        keys were refused."""
        headers = {"User-Agent": get_default_user_agent()}
        with ws_connect(
            self.settings.stream,
            additional_headers=headers,
            open_timeout=self._timeout,
            close_timeout=1,
            ping_interval=10,
            ping_timeout=30,
            max_size=None,
        ) as ws:
            self._ws = ws
            if self._stopping.is_set():
                return False
            auth = {"action": "authenticate", "data": {"key_id": self._key_id, "secret_key": self._secret}}
            ws.send(json.dumps(auth))
            reply = _json(ws.recv(timeout=self._timeout))
            if (reply.get("data") or {}).get("status") != "authorized":
                self._stream_problem = (
                    f"Alpaca refused the keys on the order-update stream — run `{self.login_hint}`"
                )
                log.error(
                    "Alpaca trade_updates: not authorized (%s)", (reply.get("data") or {}).get("message", "")
                )
                return True
            ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
            for frame in ws:
                msg = _json(frame)
                stream = msg.get("stream")
                if stream == "listening":
                    self._on_listening()
                elif stream == "trade_updates":
                    self._on_trade_update(msg.get("data") or {})
                elif stream == "authorization" and (msg.get("data") or {}).get("status") != "authorized":
                    self._stream_problem = "Alpaca withdrew the stream's authorization"
                    log.error("Alpaca trade_updates: %s", msg)
                    return True
        return False

    def _on_listening(self) -> None:
        with self._lock:
            first = self._awaiting_first
        self._stream_problem = ""
        self._attempt = 0
        self._stream_up.set()
        self._stream_settled.set()
        if first:
            return  # start() reconciles next
        try:
            for note in self._reconcile():
                log.info("alpaca (after reconnecting): %s", note)
        except BrokerError as exc:
            log.warning("catching up with Alpaca after reconnecting failed: %s", exc)

    def _on_trade_update(self, data: dict[str, Any]) -> None:
        event = str(data.get("event") or "")
        order = data.get("order")
        if not isinstance(order, dict):
            log.warning("Alpaca sent a trade update without an order: %r", event)
            return
        try:
            ts = _ns(data.get("timestamp")) or None
            fill = {}
            if event in ("fill", "partial_fill"):
                fill = {"fill_qty": opt(data.get("qty")), "fill_price": opt(data.get("price"))}
            self._take(order, via="stream", event=event, ts=ts, **fill)
        except (KeyError, ValueError, InvalidOperation, TypeError):
            log.warning("Alpaca sent a trade update trii-term could not read (%s)", event, exc_info=True)
            return
        except Exception:
            log.exception("applying an Alpaca trade update (%s) failed", event)
            return
        if event in ("order_cancel_rejected", "order_replace_rejected"):
            t = self._by_broker_id(str(order.get("id")))
            if t is not None:
                what = "cancel" if "cancel" in event else "replace"
                self._emit(
                    [Event(t.order, f"{what}_rejected", detail={"reason": f"Alpaca refused the {what}"})]
                )


# -- Alpaca's JSON --------------------------------------------------------------------------------


def order_body(r: OrderRequest) -> dict[str, object]:
    """POST /v2/orders, with exact decimal strings."""
    body: dict[str, object] = {
        "symbol": r.symbol,
        "qty": str(r.qty),
        "side": r.side.value,
        "type": r.type.value,
        "time_in_force": r.tif.value,
        "client_order_id": r.client_order_id,
    }
    if r.limit_price is not None:
        body["limit_price"] = str(r.limit_price)
    if r.stop_price is not None:
        body["stop_price"] = str(r.stop_price)
    if r.trail_amount is not None:
        body["trail_price"] = str(r.trail_amount)
    if r.trail_pct is not None:
        body["trail_percent"] = str(r.trail_pct)
    if r.bracket is not None:
        b = r.bracket
        both = b.take_profit is not None and b.stop_loss is not None
        body["order_class"] = "bracket" if both else "oto"  # one exit: one-triggers-other
        if b.take_profit is not None:
            body["take_profit"] = {"limit_price": str(b.take_profit)}
        if b.stop_loss is not None:
            body["stop_loss"] = {"stop_price": str(b.stop_loss)}
    return body


def remotes(raw: Any, *, event: str = "", ts: int | None = None, **fill: Any) -> list[Remote]:
    """An Alpaca order object and its legs, as Remotes (the order first)."""
    if not isinstance(raw, dict):
        raise ValueError(f"an Alpaca order should be an object, got {type(raw).__name__}")
    main = remote(raw, event=event, ts=ts, **fill)
    out = [main]
    for leg in raw.get("legs") or []:
        out.append(remote(leg, parent=main.broker_order_id))
    return out


def remote(
    o: dict[str, Any],
    *,
    parent: str | None = None,
    event: str = "",
    ts: int | None = None,
    fill_qty: Decimal | None = None,
    fill_price: Decimal | None = None,
) -> Remote:
    text = str(o.get("status") or "")
    status = _STATUS.get(text, OrderStatus.NEW)
    replaced_by = o.get("replaced_by") or None
    if text == "replaced" and not replaced_by:
        status = OrderStatus.CANCELED
    typ = str(o.get("type") or o.get("order_type") or "market")
    tif = str(o.get("time_in_force") or "day")
    filled = _dec(o.get("filled_qty"))
    qty = opt(o.get("qty")) or filled
    legs = o.get("legs") or []
    bracket = None
    if legs:
        tp = next((opt(leg.get("limit_price")) for leg in legs if leg.get("type") == "limit"), None)
        sl = next((opt(leg.get("stop_price")) for leg in legs if leg.get("stop_price") is not None), None)
        bracket = Bracket(tp, sl) if tp is not None or sl is not None else None
    request = OrderRequest(
        str(o["symbol"]),
        Side(str(o["side"])),
        qty,
        OrderType(typ) if typ in OrderType._value2member_map_ else OrderType.MARKET,
        TIF(tif) if tif in TIF._value2member_map_ else TIF.DAY,
        opt(o.get("limit_price")),
        opt(o.get("stop_price")),
        opt(o.get("trail_price")),
        opt(o.get("trail_percent")),
        bracket,
        str(o.get("client_order_id") or ""),
    )
    created = _ns(o.get("submitted_at") or o.get("created_at"))
    updated = ts or _ns(o.get("updated_at")) or created
    return Remote(
        broker_order_id=str(o["id"]),
        client_id=str(o.get("client_order_id") or ""),
        request=request,
        status=status,
        filled_qty=filled,
        avg_price=opt(o.get("filled_avg_price")),
        created_ns=created,
        updated_ns=updated,
        reason=_REASON.get(status, "") if status.done and status is not OrderStatus.FILLED else "",
        fill_qty=fill_qty,
        fill_price=fill_price,
        parent_broker_id=parent,
        replaces=o.get("replaces") or None,
        replaced_by=replaced_by,
        event=event,
    )


def _position(p: dict[str, Any]) -> tuple[str, Decimal, Decimal]:
    qty = _dec(p.get("qty"))
    if p.get("side") == "short" and qty > 0:
        qty = -qty
    return str(p["symbol"]), qty, _dec(p.get("avg_entry_price"))


def _dec(x: object) -> Decimal:
    return ZERO if x is None or x == "" else norm(x)


def _ns(text: object) -> int:
    """An RFC 3339 time (nanosecond digits allowed) as ns since the epoch; 0 when absent."""
    if not text or not isinstance(text, str):
        return 0
    s = text.strip().replace("Z", "+00:00")
    frac = ""
    m = re.match(r"^(.*?T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", s)
    if m:
        s = m.group(1) + m.group(3)
        frac = (m.group(2) or ".")[1:]
    when = datetime.fromisoformat(s)
    return to_ns(when) + int((frac + "000000000")[:9])


def _json(frame: str | bytes) -> dict[str, Any]:
    msg = json.loads(frame)
    return msg if isinstance(msg, dict) else {}


def _retry_after(exc: APIError) -> float:
    """Seconds until Alpaca takes requests again: X-Ratelimit-Reset (epoch seconds) or
    Retry-After; a minute (Alpaca's window) when it says neither."""
    response = exc.response
    headers = response.headers if response is not None else {}
    reset = headers.get("X-Ratelimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            pass
    after = headers.get("Retry-After")
    if after:
        try:
            return max(0.0, float(after))
        except ValueError:
            pass
    return 60.0


def _why(exc: BaseException) -> str:
    """A short reason for a network failure (no URLs with keys, no tracebacks)."""
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        if "RemoteDisconnected" in text or "Connection aborted" in text:
            return "the connection dropped before Alpaca answered"
        if "refused" in text.lower():
            return "connection refused"
        return "connection failed"
    if isinstance(exc, websockets.ConnectionClosed):
        return "the stream closed"
    return type(exc).__name__


__all__ = ["AlpacaBroker", "alpaca_tick", "describe", "order_body", "remote", "remotes"]
