"""Alpaca's `trade_updates` websocket, read with the `websockets` sync client in a daemon thread:
every (re)connect catches up with Alpaca (events sent while the line was down are not replayed),
refused keys are reported rather than retried forever, and a stop does not wait out a timeout."""

from __future__ import annotations

import json
import logging
import threading
from decimal import InvalidOperation
from typing import TYPE_CHECKING, Any

import websockets
from alpaca.common.utils import get_default_user_agent
from websockets.sync.client import connect as ws_connect

from trii_term.adapters.alpaca.order_json import _json, _ns, _why
from trii_term.brokers.base import (
    BrokerError,
    opt,
)
from trii_term.brokers.live import LiveBroker
from trii_term.domain.orders import (
    Event,
)

if TYPE_CHECKING:
    from trii_term.adapters.alpaca.settings import AlpacaBrokerConfig

log = logging.getLogger(__name__)


class TradeUpdates(LiveBroker):
    """The order-update half of `AlpacaBroker` (its base): the stream thread and its messages."""

    # what it uses of the broker (set in AlpacaBroker.__init__)
    settings: AlpacaBrokerConfig
    _key_id: str
    _secret: str
    _timeout: float
    _attempt: int
    _reconnect_delay: tuple[float, float]
    _stream_up: threading.Event
    _stream_settled: threading.Event
    _stream_problem: str
    _awaiting_first: bool
    _ws: Any

    if TYPE_CHECKING:

        @property
        def login_hint(self) -> str: ...

        def _take(self, raw: Any, *, via: str, actor: str | None = None, **event: Any) -> list[str]: ...

        def _reconcile(self) -> list[str]: ...

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
