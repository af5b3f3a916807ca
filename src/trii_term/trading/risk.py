"""Pre-trade risk: every rule is evaluated for every order, from every source, and each says
why it passes or stops the order — so the ticket can show them all, and the journal records the
one that refused it.

Rules fail closed: a rule that needs a price it does not have stops the order and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trii_term.config import RiskLimits
from trii_term.domain.orders import OrderRequest, px


@dataclass(frozen=True)
class RiskContext:
    """What the rules need to know about the account and the market, now."""

    last: Decimal | None  # the reference price (last trade, else mid)
    equity: Decimal
    position: Decimal  # signed quantity held now
    day_pnl: Decimal  # realized today + unrealized change today, net of today's commissions
    currency: str = "USD"
    day_unpriced: tuple[str, ...] = ()  # held symbols today's P&L could not value (no price yet)
    # signed quantity still to fill of the working orders on the order's side (not a bracket's
    # exits), for an order that reduces the position: holding 100 with a sale of 100 working,
    # another sale of 100 opens a short
    pending: Decimal = Decimal(0)


@dataclass(frozen=True)
class RiskCheck:
    rule: str
    ok: bool
    reason: str


def opening(req: OrderRequest, position: Decimal) -> bool:
    """Does the order open risk — add to the position, or go through zero into the other side
    (selling 150 of 100 held closes 100 and opens a short of 50) — rather than only reduce it?"""
    after = position + req.qty * req.side.sign
    return abs(after) > abs(position) or (after != 0 and (after > 0) != (position > 0))


def order_price(req: OrderRequest, last: Decimal | None) -> Decimal | None:
    """The price the order is expected to trade at: its limit, its stop, else the last price."""
    if req.limit_price is not None:
        return req.limit_price
    if req.stop_price is not None:
        return req.stop_price
    return last


def order_prices(req: OrderRequest) -> list[tuple[str, Decimal]]:
    """Every price the order carries, legs included, as the trader names them: the band applies
    to each (a stop-loss 40 % away is as much a fat finger as a limit)."""
    b = req.bracket
    named = (
        ("limit", req.limit_price),
        ("stop", req.stop_price),
        ("take-profit", b.take_profit if b else None),
        ("stop-loss", b.stop_loss if b else None),
    )
    return [(name, p) for name, p in named if p is not None]


def check(req: OrderRequest, ctx: RiskContext, limits: RiskLimits) -> list[RiskCheck]:
    out: list[RiskCheck] = []
    ccy = ctx.currency
    price = order_price(req, ctx.last)
    is_opening = opening(req, ctx.position) or (ctx.pending != 0 and opening(req, ctx.position + ctx.pending))

    if limits.restricted:
        bad = req.symbol in limits.restricted
        out.append(
            RiskCheck(
                "restricted",
                not bad,
                f"{req.symbol} is on the restricted list ([risk] restricted)" if bad else "not restricted",
            )
        )
    if limits.max_order_qty is not None:
        ok = req.qty <= limits.max_order_qty
        out.append(
            RiskCheck(
                "max_order_qty",
                ok,
                f"quantity {req.qty:,} {'≤' if ok else 'is above the limit'} {limits.max_order_qty:,}",
            )
        )
    if limits.max_order_notional is not None:
        if price is None:
            out.append(
                RiskCheck("max_order_notional", False, "no price to value the order: wait for a quote")
            )
        else:
            notional = req.qty * price
            ok = notional <= limits.max_order_notional
            out.append(
                RiskCheck(
                    "max_order_notional",
                    ok,
                    f"notional {notional:,.2f} {ccy} {'≤' if ok else 'is above the limit'} "
                    f"{limits.max_order_notional:,.2f}",
                )
            )
    if limits.price_band_pct is not None:
        prices = order_prices(req)
        if prices:
            if ctx.last is None or ctx.last <= 0:
                out.append(
                    RiskCheck("price_band_pct", False, "no last price to check the price band against")
                )
            else:
                band = limits.price_band_pct
                away = {name: abs(p / ctx.last - 1) * 100 for name, p in prices}
                outside = [(name, p) for name, p in prices if away[name] > band]
                shown = outside or prices
                parts = ", ".join(f"{name} {px(p)} is {away[name]:.1f} %" for name, p in shown)
                out.append(
                    RiskCheck(
                        "price_band_pct",
                        not outside,
                        f"{parts} from the last {px(ctx.last)} "
                        f"({'outside' if outside else 'within'} the {band} % band)",
                    )
                )
    if limits.max_position_pct is not None and is_opening:
        if price is None or ctx.equity <= 0:
            out.append(RiskCheck("max_position_pct", False, "no price or no equity to size the position"))
        else:
            move = req.qty * req.side.sign
            after = max(abs(ctx.position + move), abs(ctx.position + ctx.pending + move)) * price
            pct = after / ctx.equity * 100
            ok = pct <= limits.max_position_pct
            out.append(
                RiskCheck(
                    "max_position_pct",
                    ok,
                    f"position after {after:,.2f} {ccy} = {pct:.1f}% of equity "
                    f"({'≤' if ok else 'above '}{limits.max_position_pct}%)",  # (a bound never wraps)
                )
            )
    if limits.daily_loss_limit is not None:
        hit = ctx.day_pnl <= -limits.daily_loss_limit
        if ctx.day_unpriced and is_opening:  # fail closed: a loss it cannot see may be there
            missing = ", ".join(ctx.day_unpriced)
            out.append(
                RiskCheck(
                    "daily_loss_limit",
                    False,
                    f"no price yet for {missing} to value today's P&L: wait for its quote",
                )
            )
        elif hit and is_opening:
            out.append(
                RiskCheck(
                    "daily_loss_limit",
                    False,
                    f"today's loss {-ctx.day_pnl:,.2f} {ccy} reached the {limits.daily_loss_limit:,.2f} "
                    "limit: no new opening orders until the next session (closing orders are allowed)",
                )
            )
        else:
            out.append(RiskCheck("daily_loss_limit", True, f"today's P&L {ctx.day_pnl:,.2f} {ccy}"))
    return out


def refused(checks: list[RiskCheck]) -> RiskCheck | None:
    """The first rule that stops the order, if any."""
    return next((c for c in checks if not c.ok), None)
