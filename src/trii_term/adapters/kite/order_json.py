"""Kite's order JSON (order book, history, postbacks) and position rows as our `Remote` records
and exact money."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from trii_term.adapters.kite.master import canonical
from trii_term.brokers.base import (
    norm,
)
from trii_term.brokers.live import Remote
from trii_term.domain import NSE, to_ns
from trii_term.domain.ledger import ZERO, cents
from trii_term.domain.orders import (
    TIF,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)

log = logging.getLogger(__name__)

ORDER_TYPES = {
    OrderType.MARKET: "MARKET",
    OrderType.LIMIT: "LIMIT",
    OrderType.STOP_LIMIT: "SL",
    OrderType.STOP: "SL-M",
}
OUR_TYPE = {v: k for k, v in ORDER_TYPES.items()}
VALIDITY = {TIF.DAY: "DAY", TIF.IOC: "IOC"}
OUR_TIF = {"DAY": TIF.DAY, "IOC": TIF.IOC, "TTL": TIF.DAY}
_STATUS = {
    "COMPLETE": OrderStatus.FILLED,
    "CANCELLED": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
}

# -- Kite's JSON ------------------------------------------------------------------------------------


def kite_remote(o: dict[str, Any]) -> Remote:
    """A Kite order (order book, history, postback) as a Remote."""
    text = str(o.get("status") or "").upper()
    status = _STATUS.get(text, OrderStatus.NEW)
    filled = norm(o.get("filled_quantity") or 0)
    avg = _price(o.get("average_price")) if filled > 0 else None
    kind = OUR_TYPE.get(str(o.get("order_type") or "").upper(), OrderType.MARKET)
    limit = _price(o.get("price")) if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
    stop = _price(o.get("trigger_price")) if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None
    request = OrderRequest(
        canonical(f"{o['exchange']}:{o['tradingsymbol']}"),
        Side.BUY if str(o["transaction_type"]).upper() == "BUY" else Side.SELL,
        norm(o.get("quantity") or 0),
        kind,
        OUR_TIF.get(str(o.get("validity") or "DAY").upper(), TIF.DAY),
        limit,
        stop,
        client_order_id=str(o.get("tag") or ""),
    )
    created = _ist_ns(o.get("order_timestamp"))
    updated = _ist_ns(o.get("exchange_update_timestamp") or o.get("exchange_timestamp")) or created
    reason = ""
    if status is OrderStatus.REJECTED:
        reason = f"rejected by Kite: {o.get('status_message') or 'no reason given'}"
    elif status is OrderStatus.CANCELED:
        reason = str(o.get("status_message") or "canceled at Kite")
    return Remote(
        broker_order_id=str(o["order_id"]),
        client_id=str(o.get("tag") or ""),
        request=request,
        status=status,
        filled_qty=filled,
        avg_price=avg,
        created_ns=created,
        updated_ns=updated,
        reason=reason,
        event=text.lower(),
        extra={"variety": str(o.get("variety") or "")} if o.get("variety") else {},
    )


def _price(x: object) -> Decimal | None:
    """A Kite price (a JSON number): its shortest decimal; 0 means none."""
    if x is None or x == "":
        return None
    d = norm(x)
    return d if d != 0 else None


def _money(x: object) -> Decimal:
    """A Kite amount in rupees to the paisa (Kite's floats carry noise: 99725.05000000002)."""
    return ZERO if x is None or x == "" else cents(Decimal(str(x)))


def _ist_ns(x: object) -> int:
    """Kite's "yyyy-mm-dd hh:mm:ss" (IST; the SDK may already have parsed it) as UTC ns."""
    if isinstance(x, str) and x.strip():
        try:
            x = datetime.fromisoformat(x.strip())
        except ValueError:
            return 0
    if not isinstance(x, datetime):
        return 0
    if x.tzinfo is None:
        x = x.replace(tzinfo=NSE.tz)
    return to_ns(x)


def _by_symbol(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for p in rows:
        try:
            symbol = canonical(f"{p['exchange']}:{p['tradingsymbol']}")
        except KeyError:
            log.warning("Kite listed a position without exchange or symbol: %r", p)
            continue
        out.setdefault(symbol, []).append(p)
    return out


def _aggregate(rows: list[dict[str, Any]]) -> tuple[Decimal, Decimal]:
    """(qty, average price) of a symbol over its products (CNC, MIS, NRML)."""
    qty = sum((norm(p.get("quantity") or 0) for p in rows), ZERO)
    if qty == 0:
        return ZERO, ZERO
    cost = sum((norm(p.get("quantity") or 0) * (_price(p.get("average_price")) or ZERO) for p in rows), ZERO)
    return qty, norm((cost / qty).quantize(Decimal("0.0001")))
