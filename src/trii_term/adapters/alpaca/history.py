"""Alpaca's data REST API (httpx): the day so far (snapshots), the recent minute bars, a year of
daily bars and the minute bars missed while the stream was down, every page, with the rate
limit honoured. A failure is logged and shown as the feed's reason; the stream carries on."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx

from trii_term.adapters.alpaca.wire import NAME, _bar, _day_stats, _short, format_time
from trii_term.domain import (
    NS_PER_SECOND,
    US,
    FeedState,
    FeedStatus,
    MarketBatch,
    MarketEvent,
)

if TYPE_CHECKING:
    from trii_term.bus import Bus
    from trii_term.clock import SessionClock

log = logging.getLogger(__name__)


REST_PAGE_LIMIT = 10_000
REST_SYMBOLS_PER_REQUEST = 200  # keeps the query string a sane length
REST_MAX_PAGES = 500  # a server that never stops paging is cut off, not followed forever
REST_RATE_LIMIT_TRIES = 5
DAILY_HISTORY_DAYS = 370


class AlpacaHistory:
    """The REST half of `AlpacaFeed` (mixed into it): history for new symbols and for gaps."""

    # what it uses of the feed (set in AlpacaFeed.__init__)
    _bus: Bus
    _clock: SessionClock
    _status: FeedStatus
    _symbols: dict[str, None]
    _http: httpx.AsyncClient | None
    _want_history: dict[str, None]
    _history_task: asyncio.Task[None] | None
    _tasks: set[asyncio.Task[None]]
    _history_problem: str
    _gap_from_ns: int | None
    data_url: str
    rest_feed: str
    rate_limit_max_wait: float

    if TYPE_CHECKING:

        def _bad(self, what: str, sample: object) -> None: ...

        def _set_status(self, state: FeedState, reason: str = "", retry_at: float | None = None) -> None: ...

    # -- REST history -----------------------------------------------------------------------

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_history(self) -> None:
        """New symbols get recent minute bars and a year of daily bars (one task drains them)."""
        if self._http is None or not self._want_history:
            return
        if self._history_task is None or self._history_task.done():
            self._history_task = asyncio.get_running_loop().create_task(
                self._history_loop(), name="alpaca-history"
            )

    async def _history_loop(self) -> None:
        while self._want_history:
            await asyncio.sleep(0)  # let a burst of subscribe() calls gather into one request
            symbols = list(self._want_history)
            self._want_history.clear()
            now = self._clock.now_ns()
            await self._snapshots(symbols)
            await self._backfill(symbols, "1Min", recent_session_start(now), now, _RECENT_MINUTES)
            await self._backfill(
                symbols, "1Day", now - DAILY_HISTORY_DAYS * 86_400 * NS_PER_SECOND, now, _DAILY_BARS
            )

    async def _fill_gap(self, start_ns: int) -> None:
        end = self._clock.now_ns()
        symbols = list(self._symbols)
        if symbols and not await self._backfill(symbols, "1Min", start_ns, end, _GAP_MINUTES):
            # try again after the next reconnect
            self._gap_from_ns = start_ns if self._gap_from_ns is None else min(start_ns, self._gap_from_ns)

    async def _backfill(
        self, symbols: list[str], timeframe: str, start_ns: int, end_ns: int, what: tuple[str, str]
    ) -> bool:
        """Fetch bars of `symbols` over REST (every page) and publish them. False on failure,
        which is logged and shown as the feed's reason, naming what could not be read and for
        which symbols (`what`: the bars, what follows); the stream carries on."""
        try:
            for i in range(0, len(symbols), REST_SYMBOLS_PER_REQUEST):
                await self._fetch_bars(symbols[i : i + REST_SYMBOLS_PER_REQUEST], timeframe, start_ns, end_ns)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            bars, after = what
            if not isinstance(exc, RestError | httpx.HTTPError):
                log.exception("Alpaca %s failed", bars)
            self._rest_problem(
                f"could not read {bars} of {_names(symbols)} from Alpaca ({_describe(exc)}); {after}"
            )
            return False
        if self._history_problem:
            self._history_problem = ""
            if self._status.state is FeedState.LIVE and self._status.reason.startswith("could not read"):
                self._set_status(FeedState.LIVE)
        return True

    def _rest_problem(self, reason: str) -> None:
        """A REST read failed: logged, and shown with the LIVE state until one succeeds (a stream
        that is down has the more important reason to show)."""
        log.warning("%s", reason)
        self._history_problem = reason
        if self._status.state is FeedState.LIVE:
            self._set_status(FeedState.LIVE, reason)

    async def _snapshots(self, symbols: list[str]) -> None:
        """The day so far per symbol (the previous close above all: the watchlist's change
        column), from `/v2/stocks/snapshots`, published as DayStats. The stream has no such
        message. A failure is logged; the stream carries on without it."""
        try:
            for i in range(0, len(symbols), REST_SYMBOLS_PER_REQUEST):
                chunk = symbols[i : i + REST_SYMBOLS_PER_REQUEST]
                body = await self._get_json(
                    f"{self.data_url}/v2/stocks/snapshots",
                    {"symbols": ",".join(chunk), "feed": self.rest_feed},
                )
                if not isinstance(body, dict):
                    raise RestError(f"unexpected answer from /v2/stocks/snapshots: {_short(body)}")
                events: list[MarketEvent] = []
                for sym, snap in body.items():
                    if sym not in self._symbols:
                        continue
                    try:
                        events.append(_day_stats(sym, snap))
                    except (KeyError, TypeError, ValueError, AttributeError) as exc:
                        self._bad(f"a bad snapshot ({type(exc).__name__}: {exc})", snap)
                if events:
                    self._bus.publish(MarketBatch(NAME, events, time.monotonic_ns()))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._rest_problem(
                f"could not read the day so far (the previous close) of {_names(symbols)} from Alpaca "
                f"({_describe(exc)}); their change column stays empty"
            )

    async def _fetch_bars(self, symbols: list[str], timeframe: str, start_ns: int, end_ns: int) -> None:
        interval = "1d" if timeframe == "1Day" else "1m"
        params: dict[str, str | int] = {
            "symbols": ",".join(symbols),
            "timeframe": timeframe,
            "start": format_time(start_ns),
            "end": format_time(end_ns),
            "limit": REST_PAGE_LIMIT,
            "feed": self.rest_feed,
            "adjustment": "raw",
        }
        for _ in range(REST_MAX_PAGES):
            body = await self._get_json(f"{self.data_url}/v2/stocks/bars", params)
            bars = body.get("bars") if isinstance(body, dict) else None
            if not isinstance(bars, dict):
                raise RestError(f"unexpected answer from /v2/stocks/bars: {_short(body)}")
            events: list[MarketEvent] = []
            for sym, rows in bars.items():
                if sym not in self._symbols or not isinstance(rows, list):
                    continue
                for row in rows:
                    try:
                        events.append(_bar(row, sym, interval))
                    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                        self._bad(f"a bad REST bar ({type(exc).__name__}: {exc})", row)
            if events:
                self._bus.publish(MarketBatch(NAME, events, time.monotonic_ns()))
            token = body.get("next_page_token")
            if not token:
                return
            if not isinstance(token, str) or token == params.get("page_token"):
                raise RestError(f"bad next_page_token {token!r}")
            params["page_token"] = token
        raise RestError(f"more than {REST_MAX_PAGES} pages; stopped")

    async def _get_json(self, url: str, params: dict[str, str | int]) -> Any:
        """GET with the rate limit honoured: a 429 waits per Retry-After / X-Ratelimit-Reset."""
        assert self._http is not None
        for _ in range(REST_RATE_LIMIT_TRIES):
            resp = await self._http.get(url, params=params)
            if resp.status_code == 429:
                wait = _rate_limit_wait(resp.headers, self.rate_limit_max_wait)
                log.warning("Alpaca data API rate limit (429); retrying in %.1fs", wait)
                await asyncio.sleep(wait)
                continue
            if resp.status_code != 200:
                raise RestError(f"HTTP {resp.status_code}: {_error_text(resp)}")
            try:
                return resp.json()
            except ValueError:
                raise RestError(f"the answer is not JSON: {resp.text[:120]!r}") from None
        raise RestError(f"rate limit (429) still hit after {REST_RATE_LIMIT_TRIES} tries")


class RestError(Exception):
    """A data REST call that failed in a way the trader can read."""


# what a failed REST read could not read, and what follows from it
_RECENT_MINUTES = ("the recent minute bars", "their charts start from live ticks")
_DAILY_BARS = ("a year of daily bars", "their daily charts show only what the store holds")
_GAP_MINUTES = ("the minute bars missed while the stream was down", "tried again after the next reconnect")
_NO_ASSETS = (
    "could not read Alpaca's list of assets ({}); any well-formed US ticker is accepted, shown "
    "without its name"
)


def _names(symbols: list[str], limit: int = 5) -> str:
    """AAPL, MSFT and 3 more"""
    if not symbols:
        return "no symbols"
    if len(symbols) <= limit:
        return ", ".join(symbols[:-1]) + (" and " if len(symbols) > 1 else "") + symbols[-1]
    return f"{', '.join(symbols[:limit])} and {len(symbols) - limit} more"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return str(exc) or type(exc).__name__


def _error_text(resp: httpx.Response) -> str:
    """The message of an Alpaca error body ({"message": ...}), else the start of the text."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:160] or resp.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"][:160]
    return _short(body)


def _rate_limit_wait(headers: httpx.Headers, cap: float) -> float:
    """Seconds to wait after a 429: Retry-After (seconds or an HTTP date), else
    X-Ratelimit-Reset (epoch seconds), else 1 s; never more than `cap`."""
    wait = 1.0
    retry_after = headers.get("retry-after")
    reset = headers.get("x-ratelimit-reset")
    try:
        if retry_after is not None:
            try:
                wait = float(retry_after)
            except ValueError:
                wait = (parsedate_to_datetime(retry_after) - datetime.now(UTC)).total_seconds()
        elif reset is not None:
            wait = float(reset) - time.time()
    except (ValueError, TypeError):
        wait = 1.0
    return min(cap, max(0.05, wait))


def recent_session_start(now_ns: int) -> int:
    """Where "recent minute bars" start: the pre-market open (04:00 New York) of the session
    before the latest one that has begun, so a holiday in between still leaves one session."""
    local = US.local(now_ns)
    day = local.date()
    if local.time() < US.pre_open:
        day -= timedelta(days=1)
    sessions = 0
    while True:
        if day.weekday() < 5:
            sessions += 1
            if sessions == 2:
                return US.at(day, US.pre_open)
        day -= timedelta(days=1)
