"""trii_term.analytics.indicators against TA-Lib on a long random walk: speed and agreement.

The data: a seeded geometric random walk starting at 100 (0.05 % per bar), with highs and lows a
little either side and integer volumes. Each indicator runs on polars Series in, polars Series
out; TA-Lib runs on the same values as numpy arrays (the Series' zero-copy views), its NaN-padded
output being what it returns. Both are timed the same way: median of --runs calls.

Targets: each indicator ≤ 3× TA-Lib's time in the same run, and ≤ 1e-9 from TA-Lib's values
(relative to the magnitude for OBV, whose values are cumulative volumes). The run exits non-zero
only if an agreement check fails; speed is reported, not asserted.

    python bench/indicators.py [--bars 1000000] [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import polars as pl
import talib

from trii_term.analytics import indicators as ind

TOLERANCE = 1e-9
TARGET = 3.0


def make_bars(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261121)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0005, n)))
    high = close * (1.0 + np.abs(rng.normal(0.0, 0.0004, n)))
    low = close * (1.0 - np.abs(rng.normal(0.0, 0.0004, n)))
    volume = rng.integers(100, 100_000, n).astype(np.float64)
    return {"high": high, "low": low, "close": close, "volume": volume}


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up (imports, caches, first-touch of the inputs)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def max_diff(ours: object, theirs: object, relative: bool = False) -> float:
    """Largest |ours − theirs| over all outputs; inf if the undefined (null / NaN) positions differ."""
    ours_t = ours if isinstance(ours, tuple) else (ours,)
    theirs_t = theirs if isinstance(theirs, tuple) else (theirs,)
    worst = 0.0
    for o, t in zip(ours_t, theirs_t, strict=True):
        a = o.to_numpy()  # nulls come out as NaN
        if not np.array_equal(np.isnan(a), np.isnan(t)):
            return float("inf")
        diff = np.abs(a - t)
        if relative:
            diff = diff / np.maximum(np.abs(t), 1.0)
        worst = max(worst, float(np.nanmax(diff)) if diff.size and not np.isnan(diff).all() else 0.0)
    return worst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    bars = make_bars(args.bars)
    h, lo, c, v = (pl.Series(name, bars[name]) for name in ("high", "low", "close", "volume"))
    hn, ln, cn, vn = h.to_numpy(), lo.to_numpy(), c.to_numpy(), v.to_numpy()

    cases: list[tuple[str, Callable[[], object], Callable[[], object], bool]] = [
        ("SMA(20)", lambda: ind.sma(c, 20), lambda: talib.SMA(cn, 20), False),
        ("SMA(200)", lambda: ind.sma(c, 200), lambda: talib.SMA(cn, 200), False),
        ("EMA(20)", lambda: ind.ema(c, 20), lambda: talib.EMA(cn, 20), False),
        ("EMA(200)", lambda: ind.ema(c, 200), lambda: talib.EMA(cn, 200), False),
        ("WMA(20)", lambda: ind.wma(c, 20), lambda: talib.WMA(cn, 20), False),
        ("WMA(200)", lambda: ind.wma(c, 200), lambda: talib.WMA(cn, 200), False),
        ("RSI(14)", lambda: ind.rsi(c, 14), lambda: talib.RSI(cn, 14), False),
        ("MACD(12,26,9)", lambda: ind.macd(c, 12, 26, 9), lambda: talib.MACD(cn, 12, 26, 9), False),
        (
            "BBANDS(20,2)",
            lambda: ind.bollinger(c, 20, 2.0),
            lambda: talib.BBANDS(cn, 20, 2.0, 2.0, 0),
            False,
        ),
        (
            "STOCH(14,3,3)",
            lambda: ind.stoch(h, lo, c, 14, 3, 3),
            lambda: talib.STOCH(hn, ln, cn, 14, 3, 0, 3, 0),
            False,
        ),
        ("ATR(14)", lambda: ind.atr(h, lo, c, 14), lambda: talib.ATR(hn, ln, cn, 14), False),
        ("OBV", lambda: ind.obv(c, v), lambda: talib.OBV(cn, vn), True),
    ]

    print(f"bars: {args.bars:,} (seeded random walk), runs: {args.runs}, TA-Lib {talib.__version__}")
    print(f"{'indicator':<15} {'TA-Lib ms':>10} {'ours ms':>9} {'ratio':>7} {'≤3×':>5} {'max |diff|':>11}")
    failed = []
    for name, ours, theirs, relative in cases:
        t_ref = median_ms(theirs, args.runs)
        t_ours = median_ms(ours, args.runs)
        diff = max_diff(ours(), theirs(), relative)
        ratio = t_ours / t_ref
        kind = " (rel)" if relative else ""
        verdict = "PASS" if ratio <= TARGET else "FAIL"
        print(f"{name:<15} {t_ref:>10.2f} {t_ours:>9.2f} {ratio:>6.2f}× {verdict:>5} {diff:>11.2e}{kind}")
        if not diff <= TOLERANCE:
            failed.append(name)

    t0 = time.perf_counter()
    ind.vwap(h, lo, c, v)
    print(
        f"{'VWAP':<15} {'—':>10} {(time.perf_counter() - t0) * 1e3:>9.2f}   (no TA-Lib equivalent; one run)"
    )
    if failed:
        print(f"AGREEMENT FAILED (> {TOLERANCE:g}): {', '.join(failed)}")
        sys.exit(1)
    print(f"agreement: every indicator within {TOLERANCE:g} of TA-Lib, same undefined positions")


if __name__ == "__main__":
    main()
