"""Orders, positions and the account as JSON: the stable shapes the CLI's `--json`, scripts and
the AI's tools share (documented in the README). Decimals are strings; times UTC ISO 8601."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trii_term.domain import from_ns


def _s(x: Decimal | None) -> str | None:
    return None if x is None else str(x)


def _money(x: Decimal | None) -> str | None:
    """Money as a string with its cents ("95617.50"), or every decimal it has when finer."""
    if x is None:
        return None
    cents = x.quantize(Decimal("0.01"))
    return str(cents) if cents == x else str(x)


def order_json(o: Any) -> dict[str, Any]:
    r = o.request
    return {
        "id": o.id,
        "client_order_id": r.client_order_id,
        "symbol": r.symbol,
        "side": r.side.value,
        "qty": _s(r.qty),
        "type": r.type.value,
        "limit_price": _s(r.limit_price),
        "stop_price": _s(r.stop_price),
        "trail_amount": _s(r.trail_amount),
        "trail_pct": _s(r.trail_pct),
        "take_profit": _s(r.bracket.take_profit) if r.bracket else None,
        "stop_loss": _s(r.bracket.stop_loss) if r.bracket else None,
        "tif": r.tif.value,
        "status": o.status.value,
        "filled_qty": _s(o.filled_qty),
        "avg_fill_price": _s(o.avg_fill_price),
        "reason": o.reason,
        "parent_id": o.parent_id,
        "created_at": _iso(o.created_ns),
    }


def position_json(p: Any) -> dict[str, Any]:
    return {
        "symbol": p.symbol,
        "qty": _s(p.qty),
        "avg_cost": _money(p.avg_cost),
        "last": _s(p.last),
        "market_value": _money(p.market_value),
        "unrealized_pnl": _money(p.unrealized_pnl),
        "realized_pnl": _money(p.realized_pnl),
        "currency": p.currency,
    }


def account_json(a: Any) -> dict[str, Any]:
    return {
        "cash": _money(a.cash),
        "equity": _money(a.equity),
        "buying_power": _money(a.buying_power),
        "realized_pnl": _money(a.realized),
        "unrealized_pnl": _money(a.unrealized),
        "fees": _money(a.fees),
        "currency": a.currency,
    }


def _iso(ns: int) -> str:
    return from_ns(ns).isoformat().replace("+00:00", "Z")
