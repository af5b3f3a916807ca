"""A chart's bars: loaded from the store, split-adjusted on request, weekly from daily, and the
forming bar kept up to date from the stream.

Bars are plain numpy columns (oldest first) so the renderer can slice them without copies. Bar
times are bar starts in exchange-local time, like `store.bars.bars()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import duckdb
import numpy as np
import polars as pl

from trii_term.charting.spec import INTRADAY, BarFrame
from trii_term.domain import Market
from trii_term.store.bars import bars as store_bars
from trii_term.store.sql import one

MAX_BARS = 5_000  # history loaded per chart (the screen shows at most a few hundred)
LOOKBACK_DAYS = {"1m": 7, "5m": 31, "15m": 62, "1h": 190}  # intraday: calendar days before the last tick
STEP_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}

# A day-over-day jump in Adj Close / Close this large and this close to a simple ratio is a
# split; anything else (dividends, even MSFT's special $3 in 2004) is left alone.
_SPLIT_MIN_RATIO = 1.25
_SPLIT_TOLERANCE = 0.005


@dataclass(frozen=True)
class Split:
    day: date
    ratio: Fraction  # new shares per old share (2 for a 2:1 split)

    def __str__(self) -> str:
        return f"{self.day} {self.ratio.numerator}:{self.ratio.denominator}"


def find_splits(daily: pl.DataFrame) -> list[Split]:
    """Splits in a daily frame with close and adj_close (the imported history), from the jumps
    of the adjustment factor Adj Close / Close."""
    rows = daily.filter(pl.col("adj_close").is_not_null() & (pl.col("close") > 0))
    if rows.height < 2:
        return []
    factor = (rows["adj_close"] / rows["close"]).to_numpy()
    ratio = factor[1:] / factor[:-1]
    days = rows["ts"].to_list()[1:]
    out: list[Split] = []
    for day, r in zip(days, ratio, strict=True):
        if not np.isfinite(r) or (1 / _SPLIT_MIN_RATIO < r < _SPLIT_MIN_RATIO):
            continue
        simple = Fraction(float(r)).limit_denominator(10)
        if abs(float(simple) - r) <= _SPLIT_TOLERANCE * r:
            out.append(Split(day.date() if isinstance(day, datetime) else day, simple))
    return out


def split_adjust(frame: pl.DataFrame, splits: list[Split]) -> pl.DataFrame:
    """Prices divided (and volume multiplied) by every split that takes effect after the bar,
    so a 2:1 split no longer shows as a 50 % gap. Dividends are not adjusted."""
    if not splits or frame.is_empty():
        return frame
    factor = pl.lit(1.0)
    for s in splits:
        factor = factor * pl.when(pl.col("ts").dt.date() < s.day).then(float(s.ratio)).otherwise(1.0)
    return frame.with_columns(
        *(pl.col(c) / factor for c in ("open", "high", "low", "close")),
        pl.col("volume") * factor,
    )


def weekly(daily: pl.DataFrame) -> pl.DataFrame:
    """Weekly bars from daily ones: Monday-to-Friday weeks, labelled by the week's first
    trading day (so no label falls on a day without trading)."""
    if daily.is_empty():
        return daily
    return (
        daily.sort("ts")
        .group_by(pl.col("ts").dt.truncate("1w").alias("week"), maintain_order=True)
        .agg(
            pl.col("ts").first(),
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        .drop("week")
    )


@dataclass
class Bars:
    """OHLCV columns, oldest first, with the last bar possibly still forming."""

    ts: np.ndarray  # datetime64[us], bar start, exchange-local
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    revision: int = 0  # bumped by every change, so caches know
    _frame: BarFrame | None = field(default=None, repr=False)
    _anchor: str = field(default="day", repr=False)

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def empty(cls) -> Bars:
        z = np.zeros(0)
        return cls(np.zeros(0, dtype="datetime64[us]"), z, z.copy(), z.copy(), z.copy(), z.copy())

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> Bars:
        if frame.is_empty():
            return cls.empty()

        def col(name: str) -> np.ndarray:
            return frame[name].cast(pl.Float64).fill_null(float("nan")).to_numpy().copy()

        return cls(
            frame["ts"].cast(pl.Datetime("us")).to_numpy().astype("datetime64[us]"),
            col("open"),
            col("high"),
            col("low"),
            col("close"),
            np.nan_to_num(col("volume")),
        )

    def frame(self, anchor: str = "day") -> BarFrame:
        """The columns as polars Series for the indicators (cached until the bars change).
        `anchor` labels the bars for VWAP, which restarts at each new label: "day" (intraday:
        each session), "month" (daily charts) or "year" (weekly charts)."""
        if self._frame is not None and self._anchor != anchor:
            self._frame = None
        if self._frame is None:
            unit = {"day": "D", "month": "M", "year": "Y"}[anchor]
            day = pl.Series("day", self.ts.astype(f"datetime64[{unit}]").astype("datetime64[D]"))
            self._anchor = anchor
            self._frame = BarFrame(
                pl.Series("open", self.open),
                pl.Series("high", self.high),
                pl.Series("low", self.low),
                pl.Series("close", self.close),
                pl.Series("volume", self.volume),
                day,
            )
        return self._frame

    def _grow(self, ts: np.datetime64, price: float, size: float) -> None:
        self.ts = np.append(self.ts, ts)
        self.open = np.append(self.open, price)
        self.high = np.append(self.high, price)
        self.low = np.append(self.low, price)
        self.close = np.append(self.close, price)
        self.volume = np.append(self.volume, size)

    def apply_trade(self, label: np.datetime64, price: float, size: float) -> str:
        """Fold a trade into the bar starting at `label`: "update" (the forming bar changed),
        "new" (a bar was appended) or "old" (a bar before the last: ignored, history is not
        rewritten from the stream)."""
        n = len(self.ts)
        if n and label < self.ts[-1]:
            return "old"
        self._frame = None
        self.revision += 1
        if n and label == self.ts[-1]:
            if price > self.high[-1] or np.isnan(self.high[-1]):
                self.high[-1] = price
            if price < self.low[-1] or np.isnan(self.low[-1]):
                self.low[-1] = price
            self.close[-1] = price
            self.volume[-1] += size
            return "update"
        self._grow(label, price, size)
        return "new"


class Bucketer:
    """Which bar a trade at UTC nanoseconds belongs to — the same alignment as the store's SQL:
    minute bars on the minute, hourly bars from the session open, daily by trading date,
    weekly by the week's first trading day."""

    def __init__(self, market: Market, interval: str) -> None:
        self.market = market
        self.interval = interval
        if interval in INTRADAY:
            step = STEP_SECONDS[interval] * 1_000_000_000
            origin = datetime.combine(date(2000, 1, 3), market.open, tzinfo=market.tz).astimezone(UTC)
            self._step = step
            self._offset = (origin.minute * 60 + origin.second) * 1_000_000_000 % step
        self._cache_key = -1
        self._cache: np.datetime64 | None = None

    def label(self, ts_ns: int, bars: Bars) -> np.datetime64:
        if self.interval in INTRADAY:
            start = (ts_ns - self._offset) // self._step * self._step + self._offset
            if start == self._cache_key and self._cache is not None:
                return self._cache
            local = self.market.local(start).replace(tzinfo=None)
            label = np.datetime64(local, "us")
            self._cache_key, self._cache = start, label
            return label
        local = self.market.local(ts_ns) + timedelta(hours=self.market.day_shift_hours)
        day = np.datetime64(local.date(), "us")
        if self.interval == "1W" and len(bars):
            last = bars.ts[-1]
            monday = day - np.timedelta64(local.date().weekday(), "D")
            if monday <= last:
                return last  # the week already has a bar: it is labelled by its first day
        return day


@dataclass
class Loaded:
    bars: Bars
    splits: list[Split]
    last_tick_ns: int  # the newest tick the load included (stream trades after it are added)
    note: str = ""
    ties: int = 0  # how many ticks at exactly `last_tick_ns` the load included


def _us(value: datetime) -> datetime:
    """A naive UTC instant as the store keeps it (microseconds)."""
    return value.astimezone(UTC).replace(tzinfo=None)


def load_bars(
    con: duckdb.DuckDBPyConnection,
    symbol: str,
    interval: str,
    market: Market,
    *,
    adjusted: bool = False,
    sources: list[str] | None = None,
    until: datetime | None = None,
    until_day: date | None = None,
    last: int = MAX_BARS,
) -> Loaded:
    """Bars for a chart from the store: ticks and imported bars merged by `store.bars.bars()`.

    `until` (an aware datetime) hides anything after it — a replay must not show the rest of
    the day it is replaying; a tick at `until` itself is shown. `until_day` does the same for
    daily history: stored bars from that day on are replaced by the bar built from the day's
    ticks so far. Run it in one transaction: the newest tick and the bars must come from the
    same snapshot for the chart to add exactly the stream's trades that are not in them."""
    where = "symbol = ?"
    params: list[object] = [symbol]
    if sources is not None:
        where += " AND list_contains(?, source)"
        params.append(list(sources))
    if until is not None:
        where += " AND ts <= ?"
        params.append(_us(until))
    row = one(con, f"SELECT epoch_us(max(ts)) FROM ticks WHERE {where}", params)
    last_tick_ns = int(row[0]) * 1000 if row and row[0] is not None else 0
    ties = 0
    if last_tick_ns:
        newest = datetime(1970, 1, 1) + timedelta(microseconds=last_tick_ns // 1000)
        tied = one(con, f"SELECT count(*) FROM ticks WHERE {where} AND ts = ?", [*params, newest])
        ties = int(tied[0]) if tied else 0
    if until is not None:
        until = until + timedelta(microseconds=1)  # the store's bounds leave `end` out

    splits: list[Split] = []
    note = ""
    if interval in INTRADAY:
        # recent sessions only: ticks recorded years apart (an earlier replay) must not be drawn
        # as if they were the sessions just before these
        start = None
        if last_tick_ns:
            start = datetime.fromtimestamp(last_tick_ns / 1e9, UTC) - timedelta(days=LOOKBACK_DAYS[interval])
        frame = store_bars(con, symbol, interval, start=start, end=until, last=last, sources=sources)
    else:
        daily = store_bars(
            con, symbol, "1d", end=until_day, last=None if interval == "1W" else last, sources=sources
        )
        # splits from the whole stored history up to today (a split taking effect today is known
        # at the open), not only from the bars shown
        through = until_day + timedelta(days=1) if until_day is not None else None
        splits = find_splits(store_bars(con, symbol, "1d", end=through, sources=[]))
        daily = daily.select("ts", "open", "high", "low", "close", "volume")
        if until_day is not None:
            today = store_bars(con, symbol, "1m", start=until_day, end=until, sources=sources)
            if not today.is_empty():
                day_bar = today.select(
                    pl.col("ts").first().dt.truncate("1d"),
                    pl.col("open").first(),
                    pl.col("high").max(),
                    pl.col("low").min(),
                    pl.col("close").last(),
                    pl.col("volume").sum(),
                )
                daily = pl.concat([daily, day_bar], how="vertical_relaxed")
        if adjusted:
            daily = split_adjust(daily, splits)
            note = "split-adjusted" + (f" ({', '.join(map(str, splits))})" if splits else " (no splits)")
        else:
            note = "unadjusted" + (f" · splits {', '.join(map(str, splits))}" if splits else "")
        frame = weekly(daily).tail(last) if interval == "1W" else daily
    return Loaded(Bars.from_frame(frame), splits, last_tick_ns, note, ties)
