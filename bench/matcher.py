"""The paper matcher under a quote storm: quote updates per second while 1,000 orders work.

1,000 working orders (limits away from the market and stops on both sides) over 100 symbols;
500,000 quote updates and one trade per ten quotes, random-walking without reaching the orders.
Baseline, same run: the same stream through a matcher holding no orders.

Target: ≥ 100,000 quote updates/s with 1,000 working orders.

    python bench/matcher.py [--quotes 500000] [--orders 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
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


def working(m: Matcher, n: int) -> None:
    for k in range(n):
        s = SYMBOLS[k % len(SYMBOLS)]
        kind = k % 4
        if kind == 0:
            req = OrderRequest(s, Side.BUY, Decimal(10), OrderType.LIMIT, TIF.GTC, limit_price=Decimal("80"))
        elif kind == 1:
            req = OrderRequest(
                s, Side.SELL, Decimal(10), OrderType.LIMIT, TIF.GTC, limit_price=Decimal("120")
            )
        elif kind == 2:
            req = OrderRequest(s, Side.BUY, Decimal(10), OrderType.STOP, TIF.GTC, stop_price=Decimal("130"))
        else:
            req = OrderRequest(s, Side.SELL, Decimal(10), OrderType.STOP, TIF.GTC, stop_price=Decimal("70"))
        m.submit(Order(m.new_id(), req, 0), 0)


def run(quotes: list[tuple[str, float, float, float]], orders: int) -> float:
    m = Matcher()
    working(m, orders)
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
    args = ap.parse_args()
    quotes = stream(args.quotes)
    with_orders = [run(quotes, args.orders) for _ in range(args.runs)]
    empty = [run(quotes, 0) for _ in range(args.runs)]
    w, e = statistics.median(with_orders), statistics.median(empty)
    print(f"{args.quotes:,} quote updates (+ a trade every 10), {args.runs} runs, medians:")
    spread = f"[{min(with_orders):,.0f}–{max(with_orders):,.0f}]"
    print(f"  matcher with {args.orders:,} working orders: {w:,.0f} quotes/s  {spread}")
    print(f"  baseline, no working orders:       {e:,.0f} quotes/s  (with orders = {w / e:.0%} of it)")
    print(f"  target ≥ 100,000 quotes/s: {'met' if w >= 100_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
