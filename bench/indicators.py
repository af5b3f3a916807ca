"""trii_term.analytics.indicators against TA-Lib on a long random walk: speed and agreement.

The data: a seeded geometric random walk starting at 100 (0.05 % per bar), with highs and lows a
little either side and integer volumes. Each indicator runs on polars Series in, polars Series
out; TA-Lib runs on the same values as numpy arrays (the Series' zero-copy views), its NaN-padded
output being what it returns. The two are timed call by call in turn (ours, TA-Lib, ours, …),
--runs calls each (at least 100): the median, the p95 and the worst of each, and the ratio of
the medians. The first call of ours (a fresh process's, before any warm-up) is reported against
the warm median. With --busy the other core runs a busy loop throughout (a second process), as
a workstation's other work would.

Targets (issue 13): each indicator's median ≤ 1.5× TA-Lib's in the same run, ≤ 2× with the other
core busy, a first call ≤ 2× a warm one, and ≤ 1e-9 from TA-Lib's values (relative to the
magnitude for OBV, whose values are cumulative volumes). The run exits non-zero only if an
agreement check fails; speed is reported, not asserted.

    python bench/indicators.py [--bars 1000000] [--runs 100] [--busy]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import trii_term  # noqa: F401  (first, as in the app: its one-thread BLAS applies before numpy loads)

# isort: split
import numpy as np
import polars as pl
import talib

from trii_term.analytics import indicators as ind

TOLERANCE = 1e-9
TARGET = 1.5  # × TA-Lib's median (2.0 with the other core busy)
FIRST_CALL = 2.0  # × our warm median


def make_bars(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261121)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0005, n)))
    high = close * (1.0 + np.abs(rng.normal(0.0, 0.0004, n)))
    low = close * (1.0 - np.abs(rng.normal(0.0, 0.0004, n)))
    volume = rng.integers(100, 100_000, n).astype(np.float64)
    return {"high": high, "low": low, "close": close, "volume": volume}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def interleaved(
    ours: Callable[[], object], theirs: Callable[[], object], runs: int
) -> tuple[list[float], list[float]]:
    """ms per call of each, taking turns, after one warm-up call of each."""
    ours()
    theirs()
    a, b = [], []
    for _ in range(runs):
        a.append(timed(ours))
        b.append(timed(theirs))
    return a, b


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1]


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
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--busy", action="store_true", help="keep the other core busy throughout")
    args = ap.parse_args()
    if args.runs < 100:
        sys.exit("--runs: a p95 needs at least 100 samples")
    busy = None
    if args.busy:
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        report(args.bars, args.runs, busy is not None)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def report(n_bars: int, runs: int, busy: bool) -> None:
    load = os.getloadavg()[0]
    bars = make_bars(n_bars)
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

    target = 2.0 if busy else TARGET
    print(
        f"bars: {n_bars:,} (seeded random walk), {runs} calls each, interleaved; TA-Lib {talib.__version__}; "
        f"load average {load:.2f}; the other core {'BUSY' if busy else 'idle'}"
    )
    print(
        f"{'indicator':<15} {'TA-Lib ms':>10} {'p95':>6} {'ours ms':>8} {'p95':>6} {'worst':>7} "
        f"{'ratio':>6} {'≤' + format(target, 'g') + '×':>5} {'1st/warm':>8} {'max |diff|':>11}"
    )
    failed = []
    for name, ours, theirs, relative in cases:
        first = timed(ours)  # this process's first call of it
        mine, ref = interleaved(ours, theirs, runs)
        diff = max_diff(ours(), theirs(), relative)
        t_ours, t_ref = statistics.median(mine), statistics.median(ref)
        ratio = t_ours / t_ref
        kind = " (rel)" if relative else ""
        verdict = "met" if ratio <= target else "NOT"
        print(
            f"{name:<15} {t_ref:>10.2f} {p95(ref):>6.2f} {t_ours:>8.2f} {p95(mine):>6.2f} {max(mine):>7.1f} "
            f"{ratio:>5.2f}× {verdict:>5} {first / t_ours:>7.1f}× {diff:>11.2e}{kind}"
        )
        if not diff <= TOLERANCE:
            failed.append(name)

    vwap = timed(lambda: ind.vwap(h, lo, c, v))
    print(f"{'VWAP':<15} {'—':>10} {'':>6} {vwap:>8.2f}   (no TA-Lib equivalent; one call)")
    if failed:
        print(f"AGREEMENT FAILED (> {TOLERANCE:g}): {', '.join(failed)}")
        sys.exit(1)
    print(f"agreement: every indicator within {TOLERANCE:g} of TA-Lib, same undefined positions")


if __name__ == "__main__":
    main()
