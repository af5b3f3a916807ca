"""Alpaca's order JSON: our order request as the body of POST /v2/orders (exact decimal
strings), and Alpaca's orders, fills and positions as our `Remote` records."""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

import requests
import websockets
from alpaca.common.exceptions import APIError

from trii_term.brokers.base import (
    norm,
    opt,
)
from trii_term.brokers.live import Remote
from trii_term.domain import to_ns
from trii_term.domain.ledger import ZERO
from trii_term.domain.orders import (
    TIF,
    Bracket,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)

log = logging.getLogger(__name__)

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
