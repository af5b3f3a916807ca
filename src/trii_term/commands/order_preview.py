"""An order's preview in words, the same in the ticket, the confirm dialog and the CLI: every leg
and every price (a bracket's take-profit and stop-loss, a trailing stop's trail and where its stop
starts, both prices of a stop-limit), what it costs, the buying power and position after, and
every risk rule with its reason. Each line has a kind so a screen can style it; the words alone
carry the meaning (✓ / ✗, never colour alone)."""

from __future__ import annotations

from decimal import Decimal

from trii_term.domain.orders import Order, OrderRequest, OrderType, Side, px
from trii_term.trading.desk import Preview, describe, trail_start

Line = tuple[str, str]  # (kind, text); kind: head, leg, money, position, ok, no, note


def preview_lines(p: Preview, last: Decimal | None = None) -> list[Line]:
    r = p.request
    ccy = p.currency
    out: list[Line] = []
    if p.action == "replace" and p.releasing:
        before = p.releasing[0]
        out.append(("head", f"REPLACE {before.id}: {describe(before.request)}"))
        whole = r if before.filled_qty == 0 else _with_qty(r, r.qty + before.filled_qty)
        out.append(("head", f"     → {describe(whole)}"))
        if before.filled_qty:
            out.append(
                ("note", f"{before.filled_qty} already filled; {r.qty} left to trade after the change")
            )
    else:
        verb = {"flatten": "FLATTEN", "reverse": "REVERSE"}.get(p.action, "")
        text = describe(r)
        side = r.side.value
        out.append(("head", (f"{verb} " if verb else "") + side.upper() + text[len(side) :]))
        out += legs(r, last)
        if p.action in ("flatten", "reverse"):
            for o in p.releasing:
                out.append(("leg", f"cancels first: {o.id} {describe(o.request)}"))
    if p.price is not None:
        how = {
            OrderType.MARKET: "at the quote",
            OrderType.TRAILING_STOP: "its stop now: it fills at the quote when hit",
        }.get(r.type, "")
        out.append(("money", f"expected price {px(p.price)} {ccy}" + (f" ({how})" if how else "")))
    if p.notional is not None and p.cash_change is not None and p.commission is not None:
        what = "cost" if r.side is Side.BUY else "proceeds"
        out.append(
            (
                "money",
                f"{what} {abs(p.cash_change):,.2f} {ccy} (notional {p.notional:,.2f} "
                f"{'+' if r.side is Side.BUY else '−'} commission {p.commission:,.2f})",
            )
        )
    else:
        out.append(("money", "no price yet to value the order"))
    if p.buying_power_after is not None:
        out.append(("money", f"buying power after the fill {p.buying_power_after:,.2f} {ccy}"))
    out.append(("position", f"position {r.symbol} {p.position_before} → {p.position_after}"))
    out += [("note", note) for note in p.notes]
    for c in p.checks:
        out.append(("ok" if c.ok else "no", f"{'✓ ok' if c.ok else '✗ NO'} {c.rule}: {c.reason}"))
    for problem in p.problems:
        out.append(("no", f"✗ NO broker: {problem}"))
    return out


def legs(r: OrderRequest, last: Decimal | None = None) -> list[Line]:
    """The parts of an order a one-line description leaves implicit."""
    out: list[Line] = []
    exit_side = r.side.opposite.value
    if r.type is OrderType.STOP_LIMIT:
        out.append(("leg", f"at stop {r.stop_price} it becomes a {r.side.value} limit at {r.limit_price}"))
    if r.type is OrderType.TRAILING_STOP:
        gap = f"{r.trail_pct}%" if r.trail_pct is not None else f"{r.trail_amount}"
        where = "below the highest" if r.side is Side.SELL else "above the lowest"
        start = (
            f" (from the last {px(last)}: stop at {px(trail_start(r, last))} now)" if last is not None else ""
        )
        out.append(("leg", f"trails {gap} {where} price since it was placed{start}"))
    if r.bracket is not None:
        b = r.bracket
        if b.take_profit is not None:
            out.append(("leg", f"take-profit: {exit_side} {r.qty} limit {b.take_profit} gtc, once filled"))
        if b.stop_loss is not None:
            out.append(("leg", f"stop-loss: {exit_side} {r.qty} stop {b.stop_loss} gtc, once filled"))
        if b.take_profit is not None and b.stop_loss is not None:
            out.append(("leg", "the exits cancel each other (one-cancels-other)"))
    return out


def order_prices(o: Order) -> str:
    """Every price of an order, short, for the blotter: `lmt 430 tp 450 sl 420`, `stp 180 lmt
    179.5`, `trail 2.5 (stop 435.38)`."""
    r = o.request
    parts = []
    if r.stop_price is not None:
        parts.append(f"stp {r.stop_price}")
    if r.limit_price is not None:
        parts.append(f"lmt {r.limit_price}")
    if r.trail_amount is not None or r.trail_pct is not None:
        gap = f"{r.trail_pct}%" if r.trail_pct is not None else f"{r.trail_amount}"
        parts.append(f"trail {gap}" + (f" (stop {o.trail_stop})" if o.trail_stop is not None else ""))
    if r.bracket is not None:
        if r.bracket.take_profit is not None:
            parts.append(f"tp {r.bracket.take_profit}")
        if r.bracket.stop_loss is not None:
            parts.append(f"sl {r.bracket.stop_loss}")
    return " ".join(parts)


def _with_qty(r: OrderRequest, qty: Decimal) -> OrderRequest:
    from dataclasses import replace

    return replace(r, qty=qty)
