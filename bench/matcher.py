"""The paper matcher under a quote storm: quote updates per second while 1,000 orders work.

500,000 quote updates and one trade per ten quotes over 100 symbols, each random-walking between
95 and 105, never reaching the orders. Three sets of 1,000 working orders:
- far: limits at 80/120 and stops at 70/130;
- near: limits at 94.50/105.50 and stops at 94/106, just outside the walk's range;
- trailing: trailing stops, sells 11.00 below the high and buys 11.00 above the low, so every
  new high or low moves a stop and none is ever hit.
Baseline, same run, runs alternating: the same stream through a matcher holding no orders.

Targets: ≥ 100,000 quote updates/s with 1,000 working orders; with 1,000 trailing stops, ≥ 50 %
of the empty matcher's rate (issue 13).

    python bench/matcher.py [--quotes 500000] [--orders 1000] [--runs 5] [--mix far,near,trailing]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from decimal import Decimal

from trii_term.brokers.matching import Matcher
from trii_term.domain.orders import TIF, Order, OrderRequest, OrderType, Side

SYMBOLS = [f"S{i:03d}" for i in range(100)]


def stream(n: int) -> list[tuple[str, float, float, float]]:
    rng = random.Random(3)
    mids = {s: 100.0 for s in SYMBOLS}
    out = []
    for k in range(n):
        s = SYMBOLS[k % len(SYMBOLS)]
        mids[s] = min(max(mids[s] + rng.choice((-0.01, 0.01)), 95.0), 105.0)
        m = round(mids[s], 2)
        out.append((s, round(m - 0.01, 2), round(m + 0.01, 2), m))
    return out


PRICES = {
    "far": (Decimal("80"), Decimal("120"), Decimal("130"), Decimal("70")),
    "near": (Decimal("94.50"), Decimal("105.50"), Decimal("106"), Decimal("94")),
}
TRAIL = Decimal("11.00")  # beyond the walk's 10.00 range: a stop moves, and is never hit


def working(m: Matcher, n: int, mix: str) -> None:
    for s in SYMBOLS:  # a price to trail from
        m.on_quote(s, 99.99, 100.01, 100.0, 100.0, 0)
        m.on_trade(s, 100.0, 0)
    for k in range(n):
        s = SYMBOLS[k % len(SYMBOLS)]
        side = Side.SELL if k % 2 else Side.BUY
        if mix == "trailing":
            req = OrderRequest(s, side, Decimal(10), OrderType.TRAILING_STOP, TIF.GTC, trail_amount=TRAIL)
        else:
            buy_limit, sell_limit, buy_stop, sell_stop = PRICES[mix]
            if k % 4 < 2:
                limit = sell_limit if side is Side.SELL else buy_limit
                req = OrderRequest(s, side, Decimal(10), OrderType.LIMIT, TIF.GTC, limit_price=limit)
            else:
                stop = sell_stop if side is Side.SELL else buy_stop
                req = OrderRequest(s, side, Decimal(10), OrderType.STOP, TIF.GTC, stop_price=stop)
        m.submit(Order(m.new_id(), req, 0), 0)


def run(quotes: list[tuple[str, float, float, float]], orders: int, mix: str) -> float:
    m = Matcher()
    working(m, orders, mix)
    assert len(m.orders) == orders, "an order was refused or filled at once"
    start = time.perf_counter()
    for k, (s, bid, ask, last) in enumerate(quotes):
        m.on_quote(s, bid, ask, 100.0, 100.0, k)
        if k % 10 == 0:
            m.on_trade(s, last, k)
    elapsed = time.perf_counter() - start
    assert len(m.orders) == orders, "an order filled: the bench must not cross"
    return len(quotes) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quotes", type=int, default=500_000)
    ap.add_argument("--orders", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mix", default="far,near,trailing")
    args = ap.parse_args()
    mixes = args.mix.split(",")
    quotes = stream(args.quotes)
    print(f"{args.quotes:,} quote updates (+ a trade every 10), {args.runs} runs each, alternating;")
    print(f"load average at the start {os.getloadavg()[0]:.2f}; medians [ranges]:")
    rates: dict[str, list[float]] = {mix: [] for mix in ["empty", *mixes]}
    for _ in range(args.runs):
        rates["empty"].append(run(quotes, 0, "far"))
        for mix in mixes:
            rates[mix].append(run(quotes, args.orders, mix))
    e = statistics.median(rates["empty"])
    lo, hi = min(rates["empty"]), max(rates["empty"])
    print(f"  baseline, no working orders: {e:,.0f} quotes/s  [{lo:,.0f}–{hi:,.0f}]")
    for mix in mixes:
        w = statistics.median(rates[mix])
        spread = f"[{min(rates[mix]):,.0f}–{max(rates[mix]):,.0f}]"
        print(f"  {args.orders:,} {mix} orders: {w:,.0f} quotes/s  {spread}  ({w / e:.0%} of the baseline)")
        target = w / e >= 0.5 if mix == "trailing" else w >= 100_000
        wanted = "≥ 50 % of the baseline" if mix == "trailing" else "≥ 100,000 quotes/s"
        print(f"    target {wanted}: {'met' if target else 'NOT met'}")


if __name__ == "__main__":
    main()
