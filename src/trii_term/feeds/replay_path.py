"""An intraday session of trades and quotes built from one real daily bar.

Guarantees, for every day (tested on all shipped days), between the session's open and close
the caller gives (the exchange's real ones: 09:30 to 16:00 ET, or 13:00 on an early close):
- the first trade is at the open (09:30:00.000000) at the real open price;
- the last trade is 1 µs before the close (15:59:59.999999, or 12:59:59.999999 on an early
  close: inside the last minute bar) at the real close;
- every trade lies within the day's real low and high, and both are traded;
- the sizes of all trades add up to the day's real volume exactly;
- the same (seed, symbol, day) always gives the same events.

How: a coarse path with one anchor per minute is a Brownian bridge pinned at the open, at the
high and the low (at random minutes, in random order) and at the close, reflected into the
day's range. Trades between two anchors are a finer bridge, generated only when the replay
reaches that minute, so starting a session costs a few hundred random numbers per symbol.
Quotes follow each trade with a spread of a few basis points around it.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trii_term.domain import NS_PER_SECOND, Quote, Trade
from trii_term.store.history import DailyBar

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

STOCK_TRADES_PER_MINUTE = 20.0
INDEX_TICKS_PER_MINUTE = 30.0
CLOSE_TRADE_NS = 1_000  # the closing trade prints 1 µs before the close


def _seed(*parts: object) -> int:
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def _reflect(x: float, lo: float, hi: float) -> float:
    if x > hi:
        x = hi - (x - hi)
    elif x < lo:
        x = lo + (lo - x)
    return min(hi, max(lo, x))


_TWO_PI = 2.0 * math.pi


def _gaussians(rng: random.Random, n: int, sigma: float) -> list[float]:
    """n draws of N(0, sigma): exactly what n calls of `rng.gauss(0.0, sigma)` return, and the
    generator left as they leave it (Box-Muller from `random()`, the spare value kept in
    `gauss_next`). One call instead of n: building every shipped day's path spends most of its
    time here. tests/test_replay_path.py checks it against `rng.gauss`."""
    if n <= 0:
        return []
    rand = rng.random
    log, sqrt, cos, sin = math.log, math.sqrt, math.cos, math.sin
    out: list[float] = []
    append = out.append
    spare = getattr(rng, "gauss_next")  # noqa: B009  (CPython's Random keeps its spare here, untyped)
    setattr(rng, "gauss_next", None)  # noqa: B010
    if spare is not None:
        append(0.0 + spare * sigma)
    while len(out) < n:
        x2pi = rand() * _TWO_PI
        g2rad = sqrt(-2.0 * log(1.0 - rand()))
        append(0.0 + cos(x2pi) * g2rad * sigma)
        if len(out) < n:
            append(0.0 + sin(x2pi) * g2rad * sigma)
        else:
            setattr(rng, "gauss_next", sin(x2pi) * g2rad)  # noqa: B010
    return out


def _bridge(rng: random.Random, n: int, sigma: float) -> list[float]:
    """n+1 points of a Brownian bridge pinned at 0 at both ends."""
    walk = [0.0, *itertools.accumulate(_gaussians(rng, n, sigma))]
    end = walk[-1]
    return [w - end * j / n for j, w in enumerate(walk)]


def _bridge_array(rng: random.Random, n: int, sigma: float) -> npt.NDArray[np.float64]:
    """`_bridge` as a numpy array, to the same floats (a cumulative sum adds in order)."""
    import numpy as np

    walk = np.zeros(n + 1)
    np.cumsum(_gaussians(rng, n, sigma), out=walk[1:])
    end = walk[-1]
    return walk - end * np.arange(n + 1, dtype=np.float64) / n


def _allocate(total: int, weights: list[float]) -> list[int]:
    """Split an integer total in proportion to weights; the parts add up exactly."""
    if total <= 0 or not weights:
        return [0] * len(weights)
    s = sum(weights)
    if s <= 0:
        weights = [1.0] * len(weights)
        s = float(len(weights))
    if len(weights) >= _VECTOR_FROM:
        return _allocate_array(total, weights, s)
    return _allocate_list(total, weights, s)


def _allocate_list(total: int, weights: list[float], s: float) -> list[int]:
    raw = [total * w / s for w in weights]
    parts = [int(r) for r in raw]
    short = total - sum(parts)
    if short:
        left = [r - p for r, p in zip(raw, parts, strict=True)]
        order = sorted(range(len(raw)), key=left.__getitem__, reverse=True)
        for i in order[:short]:
            parts[i] += 1
    return parts


_VECTOR_FROM = 64  # a day's minutes go through numpy; a minute's few trades stay in Python


def _allocate_array(total: int, weights: list[float], s: float) -> list[int]:
    """`_allocate` in numpy, to the same integers: the same float operations in the same order,
    and a stable sort of the remainders, largest first, as Python's sort with reverse=True."""
    import numpy as np

    raw = float(total) * np.array(weights) / s
    parts = raw.astype(np.int64)
    short = total - int(parts.sum())
    if short:
        order = np.argsort(-(raw - parts), kind="stable")
        parts[order[:short]] += 1
    out: list[int] = parts.tolist()
    return out


@dataclass(frozen=True, slots=True)
class PathSpec:
    symbol: str
    bar: DailyBar
    open_ns: int
    close_ns: int
    seed: int
    tick: float = 0.01
    with_quotes: bool = True
    intensity: float = STOCK_TRADES_PER_MINUTE


class DayPath:
    """One symbol's session on one day. `segment(k)` yields the events of minute-anchor k."""

    def __init__(self, spec: PathSpec) -> None:
        self.spec = spec
        bar = spec.bar
        self.symbol = spec.symbol
        self.lo = min(bar.low, bar.open, bar.close)
        self.hi = max(bar.high, bar.open, bar.close)
        self.decimals = max(0, round(-math.log10(spec.tick))) if spec.tick > 0 else 2
        # A tick of 10**-decimals (0.01, 0.1, 1): rounding to the grid is one int division,
        # the same float `round(round(x / tick) * tick, decimals)` gives (that rounds to the
        # decimal m·10**-decimals, whose nearest float is m / 10**decimals), at a fifth the cost
        scale = 10**self.decimals
        self._scale = scale if spec.tick > 0 and spec.tick == 1 / scale else 0
        minutes = max(2, round((spec.close_ns - spec.open_ns) / (60 * NS_PER_SECOND)))
        self.minutes = minutes
        self._base_seed = _seed(spec.seed, spec.symbol, bar.day.isoformat())
        rng = random.Random(self._base_seed)
        import numpy as np  # (here: the CLI's commands import this module and never build a path)

        # -- anchor times: the open, one near each minute boundary, the close ---------------
        step = (spec.close_ns - spec.open_ns) / minutes
        jitter = step / 3
        base_ns = spec.open_ns - jitter
        rand = rng.random
        spread = 2 * jitter
        # int(base_ns + k * step + spread * rand()) // 1000 * 1000 for k in 1 … minutes-1, in numpy:
        # the same draws in the same order, the same float operations, truncation toward zero
        draws = np.array([rand() for _ in range(1, minutes)])
        inner = base_ns + np.arange(1, minutes, dtype=np.float64) * step + spread * draws
        self.anchor_ns = [spec.open_ns, *(inner.astype(np.int64) // 1000 * 1000).tolist()]
        self.anchor_ns.append(spec.close_ns - CLOSE_TRADE_NS)

        # -- anchor prices: bridge through open, high, low, close --------------------------
        self.anchor_px = self._coarse_path(rng, minutes)

        # -- volume: U-shaped over the day, a closing print, exact total ---------------------
        volume = max(0, round(bar.volume))
        closing = int(volume * rng.uniform(0.015, 0.04)) if volume > minutes * 4 else 0
        exp = math.exp  # (math's exp, not numpy's: the same last bit on every machine)
        k = np.arange(minutes, dtype=np.float64)
        u = 2 * (k + 0.5) / minutes - 1
        first, last = np.where(k < 15, 0.9, 0.0), np.where(k >= minutes - 20, 0.8, 0.0)
        shape = 0.55 + 2.2 * u * u * u * u + first + last
        noise = _gaussians(rng, minutes, 0.35)
        weights = [w * exp(g) for w, g in zip(shape.tolist(), noise, strict=True)]
        self.weights = weights
        self.segment_volume = [*_allocate(volume - closing, weights), closing]
        self.segments = minutes + 1  # the last "segment" is the closing trade alone

    # ------------------------------------------------------------------------------------------

    def _round(self, x: float) -> float:
        tick = self.spec.tick
        if self._scale:
            return round(x / tick) / self._scale
        return round(round(x / tick) * tick, self.decimals) if tick > 0 else x

    def _snap(self, x: float) -> float:
        """Round to the tick grid, staying inside the day's range."""
        r = self._round(x)
        if r > self.hi:
            return self.hi
        if r < self.lo:
            return self.lo
        return r

    def _coarse_path(self, rng: random.Random, minutes: int) -> list[float]:
        bar = self.spec.bar
        lo, hi = self.lo, self.hi
        span = hi - lo
        if span <= 0:
            return [bar.open] * (minutes + 1)
        k_hi, k_lo = rng.sample(range(1, minutes), 2)
        pins = sorted([(0, bar.open), (k_hi, hi), (k_lo, lo), (minutes, bar.close)])
        path = [0.0] * (minutes + 1)
        sigma = span * rng.uniform(0.02, 0.05)
        tick = self.spec.tick
        decimals = self.decimals
        scale = self._scale
        import numpy as np

        for (i0, v0), (i1, v1) in itertools.pairwise(pins):
            n = i1 - i0
            slope = (v1 - v0) / n
            if scale:  # numpy: the same float operations, np.rint rounds half to even as round()
                xs = v0 + slope * np.arange(n + 1, dtype=np.float64) + _bridge_array(rng, n, sigma)
                xs = np.where(xs > hi, hi - (xs - hi), np.where(xs < lo, lo + (lo - xs), xs))
                xs = np.rint(xs / tick) / scale
                path[i0 : i1 + 1] = np.where(xs > hi, hi, np.where(xs < lo, lo, xs)).tolist()
                continue
            noise = _bridge(rng, n, sigma)
            for j in range(n + 1):
                x = v0 + slope * j + noise[j]
                if x > hi:  # reflect into the range, then round to the tick grid inside it
                    x = hi - (x - hi)
                elif x < lo:
                    x = lo + (lo - x)
                if tick > 0:
                    x = round(round(x / tick) * tick, decimals)
                path[i0 + j] = hi if x > hi else lo if x < lo else x
        for k, v in pins:  # the pinned prices are exact, not rounded
            path[k] = v
        return path

    # ------------------------------------------------------------------------------------------

    def segment(self, k: int) -> tuple[list[Trade], list[Quote]]:
        """Trades and quotes from anchor k (inclusive) to anchor k+1 (exclusive), in time order.
        Segment `minutes` is the closing trade alone."""
        spec = self.spec
        sym = self.symbol
        t0 = self.anchor_ns[k]
        p0 = self.anchor_px[k]
        vol = self.segment_volume[k]
        if k >= self.minutes:  # the close
            return [Trade(t0, sym, p0, float(vol))], []
        rng = random.Random(self._base_seed ^ ((k + 1) * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF))
        t1 = self.anchor_ns[k + 1]
        p1 = self.anchor_px[k + 1]
        mean_w = sum(self.weights) / len(self.weights)
        lam = spec.intensity * self.weights[k] / mean_w * rng.uniform(0.6, 1.4)
        n_inner = max(0, int(lam) - 1)
        if vol < n_inner + 1:
            n_inner = max(0, vol - 1)

        # times: sorted uniform in (t0, t1), strictly increasing, µs resolution
        gap_us = (t1 - t0) // 1000
        if n_inner > gap_us - 2:
            n_inner = max(0, gap_us - 2)
        offsets = sorted(rng.sample(range(1, gap_us), n_inner)) if n_inner else []
        times = [t0] + [t0 + off * 1000 for off in offsets]

        # prices: a small bridge from this anchor to the next, inside the day's range
        prices = [p0]
        if n_inner:
            span = self.hi - self.lo
            sigma = max(spec.tick, abs(p1 - p0) * 0.35, span * 0.004) / math.sqrt(n_inner + 1)
            noise = _bridge(rng, n_inner + 1, sigma)
            for j in range(1, n_inner + 1):
                base = p0 + (p1 - p0) * j / (n_inner + 1)
                prices.append(self._snap(_reflect(base + noise[j], self.lo, self.hi)))

        # sizes: the segment's volume split over its trades
        weights = [rng.expovariate(1.0) + 0.05 for _ in times]
        if vol >= len(times):  # every print at least one share
            sizes = [1 + s for s in _allocate(vol - len(times), weights)]
        else:
            sizes = _allocate(vol, weights)
        trades = [Trade(t, sym, p, float(s)) for t, p, s in zip(times, prices, sizes, strict=True)]

        quotes: list[Quote] = []
        if spec.with_quotes:
            tick = spec.tick
            ends = [*times[1:], t1]
            for (t, p), nxt in zip(zip(times, prices, strict=True), ends, strict=True):
                room = (nxt - t) // 2
                if room < 1000:
                    continue
                qt = t + min(room, int(rng.uniform(0.2, 40.0) * 1e6)) // 1000 * 1000
                if qt <= t:
                    continue
                ticks = max(1, round(p * rng.uniform(0.5, 2.5) * 1e-4 / tick)) if tick > 0 else 1
                below = rng.randint(0, ticks)
                bid = self._round(p - below * tick)
                ask = self._round(bid + ticks * tick)
                quotes.append(
                    Quote(qt, sym, bid, ask, 100.0 * rng.randint(1, 30), 100.0 * rng.randint(1, 30))
                )
        return trades, quotes

    def first_segment_at(self, ts_ns: int) -> int:
        """The index of the segment that contains instant `ts_ns`."""
        import bisect

        return max(0, bisect.bisect_right(self.anchor_ns, ts_ns) - 1)


def day_path(
    symbol: str,
    bar: DailyBar,
    open_ns: int,
    close_ns: int,
    seed: int,
    *,
    tick: float = 0.01,
    with_quotes: bool = True,
    intensity: float | None = None,
) -> DayPath:
    if intensity is None:
        intensity = STOCK_TRADES_PER_MINUTE if with_quotes else INDEX_TICKS_PER_MINUTE
    return DayPath(PathSpec(symbol, bar, open_ns, close_ns, seed, tick, with_quotes, intensity))
