"""Kite's historical candles over REST: the first history of a new symbol and the minutes missed
while the ticker was down, as our bars."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx

from trii_term.adapters.kite.master import KiteInstrument
from trii_term.domain import (
    NS_PER_SECOND,
    NSE,
    Bar,
    MarketBatch,
    to_ns,
)

if TYPE_CHECKING:
    from trii_term.adapters.kite.wire import TickParser
    from trii_term.bus import Bus

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Candles
# --------------------------------------------------------------------------------------------


class _Backfill(NamedTuple):
    token: int
    symbol: str
    interval: str  # "minute" | "day"
    start: datetime  # aware
    end: datetime


INTERVALS = {"minute": "1m", "day": "1d"}
KITE_TIME = "%Y-%m-%d %H:%M:%S"


def kite_time(when: datetime) -> str:
    """Kite's `from`/`to`: IST wall time, `yyyy-mm-dd hh:mm:ss`."""
    return when.astimezone(NSE.tz).strftime(KITE_TIME)


def recent_session_open(now: datetime) -> datetime:
    """The open of the latest NSE session that has started (weekdays; holidays are unknown)."""
    local = now.astimezone(NSE.tz)
    day = local.date()
    while True:
        opened = datetime.combine(day, NSE.open, tzinfo=NSE.tz)
        if day.weekday() < 5 and opened <= local:
            return opened
        day -= timedelta(days=1)


def candles_to_bars(candles: Any, symbol: str, interval: str, now_ns: int) -> tuple[list[Bar], int]:
    """Kite candles `[date, open, high, low, close, volume(, oi)]` -> closed `Bar`s, and how many
    candles were malformed. A minute still forming, or today's day before the close, is left
    out: a provider bar replaces the one the store derives from ticks, so it must be final."""
    bars: list[Bar] = []
    bad = 0
    label = INTERVALS[interval]
    for candle in candles if isinstance(candles, list) else []:
        try:
            start = datetime.strptime(candle[0], "%Y-%m-%dT%H:%M:%S%z")
            o, h, lo, c, v = (float(x) for x in candle[1:6])
        except (TypeError, ValueError, IndexError):
            bad += 1
            continue
        # a candle that cannot be true (a price at or below 0, the open or close outside the
        # low-high, "1e400"): it would replace the bar built from the ticks
        if not (0 < lo <= min(o, c) and max(o, c) <= h < math.inf and 0 <= v < math.inf):
            bad += 1
            continue
        ts = to_ns(start)
        if interval == "minute":
            closes = ts + 60 * NS_PER_SECOND
        else:
            closes = NSE.at(start.astimezone(NSE.tz).date(), NSE.close)
        if closes > now_ns:
            continue
        bars.append(Bar(ts, symbol, label, o, h, lo, c, v))
    return bars, bad


def kite_error(response: httpx.Response) -> tuple[str, str]:
    """(error_type, message) from Kite's error envelope, or ("", a short description)."""
    try:
        body = response.json()
    except ValueError:
        return "", f"HTTP {response.status_code}"
    if isinstance(body, dict):
        return str(body.get("error_type") or ""), str(body.get("message") or f"HTTP {response.status_code}")
    return "", f"HTTP {response.status_code}"


class KiteCandles:
    """The candles half of `KiteFeed` (mixed into it): a queue of backfills, one worker."""

    # what it uses of the feed (set in KiteFeed.__init__)
    name: str
    _bus: Bus
    _parser: TickParser
    _http: httpx.AsyncClient | None
    _history: asyncio.Queue[_Backfill]
    _history_blocked: str
    _next_history_at: float
    history_spacing: float
    history_retries: int

    if TYPE_CHECKING:

        def _auth_headers(self) -> dict[str, str]: ...

        def _scrub(self, text: str) -> str: ...

    # -- candles ----------------------------------------------------------------------------

    def _queue_first_history(self, ki: KiteInstrument) -> None:
        now = datetime.now(UTC)
        self._history.put_nowait(_Backfill(ki.token, ki.symbol, "minute", recent_session_open(now), now))
        self._history.put_nowait(_Backfill(ki.token, ki.symbol, "day", now - timedelta(days=365), now))

    def _queue_gap(self, lost_at: datetime) -> None:
        now = datetime.now(UTC)
        start = lost_at.replace(second=0, microsecond=0) - timedelta(minutes=1)
        for token, sub in list(self._parser.subs.items()):
            self._history.put_nowait(_Backfill(token, sub[0], "minute", start, now))

    async def _history_worker(self) -> None:
        while True:
            job = await self._history.get()
            if job.token not in self._parser.subs:
                continue  # unsubscribed meanwhile
            if self._history_blocked:
                continue
            try:
                bars = await self._candles(job)
            except Exception:  # one bad answer must not end the backfill
                log.exception("Kite candles for %s failed", job.symbol)
                continue
            if bars:
                self._bus.publish(MarketBatch(self.name, bars, time.monotonic_ns()))

    async def _candles(self, job: _Backfill) -> list[Bar]:
        assert self._http is not None
        params = {"from": kite_time(job.start), "to": kite_time(job.end)}
        path = f"/instruments/historical/{job.token}/{job.interval}"
        for attempt in range(self.history_retries):
            wait = self._next_history_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_history_at = time.monotonic() + self.history_spacing
            try:
                response = await self._http.get(path, params=params, headers=self._auth_headers())
            except httpx.HTTPError as exc:
                log.warning("Kite candles for %s: %s", job.symbol, type(exc).__name__)
                return []
            if response.status_code == 429:
                pause = self._retry_after(response, attempt)
                log.info("Kite candles rate-limited (429); waiting %.1fs", pause)
                self._next_history_at = time.monotonic() + pause
                continue
            if response.status_code != 200:
                self._history_refused(job, response)
                return []
            try:
                candles = response.json()["data"]["candles"]
            except (ValueError, KeyError, TypeError):
                log.warning("Kite candles for %s: an answer without data.candles; skipped", job.symbol)
                return []
            bars, bad = candles_to_bars(candles, job.symbol, job.interval, time.time_ns())
            if bad:
                log.warning("Kite candles for %s: %d malformed candle(s) skipped", job.symbol, bad)
            return bars
        log.warning(
            "could not read the %s candles of %s from Kite (rate limit (429) still hit after %d tries); "
            "its chart starts from live ticks",
            job.interval,
            job.symbol,
            attempt + 1,
        )
        return []

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        try:
            return max(0.0, float(response.headers.get("retry-after", "")))
        except ValueError:
            return self.history_spacing * 3 * (attempt + 1)

    def _history_refused(self, job: _Backfill, response: httpx.Response) -> None:
        error_type, message = kite_error(response)
        message = self._scrub(message)
        if response.status_code == 403:
            # no historical-data add-on, or the token expired: stop asking until a reconnect
            self._history_blocked = message
            log.warning(
                "Kite refused candles (%s: %s); charts start from live ticks until the next reconnect",
                error_type or "HTTP 403",
                message,
            )
        else:
            log.warning("Kite candles for %s refused: %s %s", job.symbol, error_type, message)
