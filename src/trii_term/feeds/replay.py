"""The offline default feed: real daily history replayed as intraday sessions.

It behaves like a live provider — it publishes `MarketBatch` (trades, quotes, day stats),
`FeedStatus` and `SessionDay` on the bus, and symbols are subscribed and unsubscribed — and it
drives the simulated session clock: each day starts at the regular open, runs at `speed`
simulated seconds per real second, pauses briefly after the close, then continues with the next
trading day in the history. A day's hours are the exchange's real ones (an early close ends the
day at 13:00). The history runs out on the last day every subscribed symbol has (an index's
longer history does not keep stocks waiting); then it starts again from the first day they share
(`at_end = "loop"`, the default) or stops (`"stop"`). Replaying a day replaces the rows an
earlier replay wrote for that day.

On the day of the paper account's latest fill or order change, the replay resumes just after it
rather than at the open (a restart, a second process, `replay goto` that day). The day before
that point was recorded by the run that acted, stays in the store, and arrives as the day so far
(open, high, low, last, volume and the standing quote), never as a replay of its quotes: they
would meet orders placed or changed after them.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import heapq
import logging
import time
from collections import deque
from collections.abc import Iterable
from datetime import date, timedelta

from trii_term.clock import TradingCalendar
from trii_term.domain import (
    US,
    DayStats,
    FeedState,
    FeedStatus,
    Instrument,
    InstrumentKind,
    MarketBatch,
    MarketEvent,
    SessionDay,
    Trade,
)
from trii_term.feeds import FeedContext
from trii_term.feeds.replay_path import DayPath, day_path
from trii_term.store.history import (
    DailyBar,
    daily_history,
    history_days,
    load_instruments,
    reference_close,
)

log = logging.getLogger(__name__)

CLOSE_PAUSE_SECONDS = 3.0  # real seconds the clock shows the closed market between days
RESUME_AFTER_NS = 1_000  # a resumed day picks up 1 µs after the account's last act (the store keeps µs)
HISTORY_WINDOW_DAYS = 92  # calendar days of daily bars held in memory ahead of the replay


class ReplayDateError(ValueError):
    """A date the history cannot replay (providers.replay.date, `replay goto`)."""


class _Cursor:
    """Where one symbol's replay stands within the day."""

    __slots__ = ("next_segment", "path", "pending")

    def __init__(self, path: DayPath | None) -> None:
        self.path = path
        self.next_segment = 0
        self.pending: deque[MarketEvent] = deque()

    def fill(self) -> bool:
        """Generate the next segment; False when the day is exhausted."""
        path = self.path
        if path is None or self.next_segment >= path.segments:
            return False
        trades, quotes = path.segment(self.next_segment)
        self.next_segment += 1
        self.pending.extend(heapq.merge(trades, quotes, key=lambda e: e.ts) if quotes else trades)
        return True

    def head_ts(self) -> int | None:
        while not self.pending:
            if not self.fill():
                return None
        return self.pending[0].ts


class ReplayFeed:
    name = "replay"
    simulated = True

    def __init__(self, ctx: FeedContext) -> None:
        self._bus = ctx.bus
        self._clock = ctx.clock
        self._store = ctx.store
        self._cfg = ctx.config.replay
        self._rewind_problem = ctx.rewind_problem
        self._floor = ctx.replay_floor  # the paper account's latest act: never replayed from before it
        self._initial = list(ctx.config.feed.symbols)
        self._instruments: dict[str, Instrument] = {}
        self._days_of: dict[str, list[date]] = {}
        self._bars: dict[str, dict[date, DailyBar]] = {}
        self._loaded: tuple[date, date] | None = None
        self._con = None
        self.calendar_days: list[date] = []
        self._subscribed: dict[str, None] = {}
        self._cursors: dict[str, _Cursor] = {}
        self._status = FeedStatus(self.name, FeedState.CONNECTING, simulated=True)
        self._wake = asyncio.Event()
        self._goto: date | None = None
        self._prepared: tuple[date, int] | None = None  # the day and instant prepare() set the clock to
        self.start_day: date | None = None
        self.day: date | None = None  # the day being played (or, after the end, the last one)
        self.seed = self._cfg.seed
        self.market = US

    # -- Feed protocol ----------------------------------------------------------------------

    @property
    def status(self) -> FeedStatus:
        return self._status

    @property
    def ended(self) -> bool:
        return self._status.state is FeedState.ENDED

    def instruments(self) -> dict[str, Instrument]:
        return self._instruments

    def subscribe(self, symbols: Iterable[str]) -> None:
        for sym in symbols:
            if sym in self._instruments and sym not in self._subscribed:
                self._subscribed[sym] = None
        self._wake.set()

    def unsubscribe(self, symbols: Iterable[str]) -> None:
        for sym in symbols:
            self._subscribed.pop(sym, None)
            self._cursors.pop(sym, None)

    async def prepare(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        con = self._con = self._store.cursor()
        self._instruments = load_instruments(con, source="history")
        self._days_of = {s: d for s, d in history_days(con).items() if d and s in self._instruments}
        self._instruments = {s: i for s, i in self._instruments.items() if s in self._days_of}
        days: set[date] = set()
        for d in self._days_of.values():
            days.update(d)
        self.calendar_days = sorted(days)
        self._clock.set_calendar(self.market.code, TradingCalendar(self.market, days, extended_hours=False))
        self.start_day = self._choose_start_day()
        self._ensure_history(self.start_day)
        # the session clock reads the replay's time from now on, before the first event
        self._clock.set_speed(self._cfg.speed)
        start = self._start_of(self.start_day)
        self._clock.set_time(start)
        self._prepared = (self.start_day, start)

    def _ensure_history(self, day: date) -> None:
        """Make sure the bars of `day` and every symbol's previous close are in memory: loaded
        in windows of about three months, so a replay reads the history a little at a time."""
        if self._loaded is not None and self._loaded[0] <= day <= self._loaded[1]:
            return
        start = day
        for days in self._days_of.values():
            i = bisect.bisect_left(days, day)
            if i > 0:
                start = min(start, days[i - 1])
        end = day + timedelta(days=HISTORY_WINDOW_DAYS)
        loaded = daily_history(self._con, list(self._days_of), start, end)
        self._bars = {sym: {b.day: b for b in bars} for sym, bars in loaded.items()}
        # keep the window's lower edge at `day`: earlier days need a new load (for their prev close)
        self._loaded = (day, end)

    def _floor_ns(self) -> int | None:
        return self._floor() if self._floor is not None else None

    def _start_of(self, day: date) -> int:
        """Where a day's replay starts: its open — or, on the day of the paper account's latest
        fill or order change, just after it. A restart, or a second process, must not replay the
        quotes before it: they would fill a limit placed after them, or a replaced order at its
        new price. The day before that point arrives as the day so far (`_join`)."""
        open_ns, close_ns = self._bounds(day)
        floor = self._floor_ns()
        if floor is not None and self.market.local(floor).date() == day:
            return max(open_ns, min(floor + RESUME_AFTER_NS, close_ns))
        if floor is not None and floor >= close_ns:
            # the account acted after this day (past the history's end, say, on the running
            # clock of an ended replay): nothing of it plays again — only the day as it ended
            return close_ns
        return open_ns

    def _choose_start_day(self) -> date:
        if not self.calendar_days:
            raise ReplayDateError(
                "no shipped history was found to replay; reinstall trii-term (its data/ folder is missing)"
            )
        wanted = self._cfg.date
        if wanted is not None:
            self._check_day(wanted)
            day = wanted
        else:  # default: the last day on which every configured symbol with history has a bar
            common = self._common_days(self._initial)
            day = max(common) if common else self.calendar_days[-1]
        floor = self._floor_ns()
        if floor is not None:  # the paper account acted later in the history: go on from there
            acted = self.market.local(floor).date()
            traded = sorted(self._common_days(self._initial)) or self.calendar_days
            later = [d for d in traded if d >= acted]  # (days the watched stocks trade)
            if day < acted and later:  # (that day, or the first the history has after it)
                log.info("replay starts on %s, where the paper account last acted (not %s)", later[0], day)
                return later[0]
        return day

    def _check_day(self, day: date) -> None:
        if day in set(self.calendar_days):
            return
        i = bisect.bisect_left(self.calendar_days, day)
        near = [d.isoformat() for d in self.calendar_days[max(0, i - 1) : i + 1]]
        first, last = self.calendar_days[0], self.calendar_days[-1]
        what = "a weekend" if day.weekday() >= 5 else "not a trading day in the history"
        hint = f"nearest: {' or '.join(near)}" if near else f"history runs {first} to {last}"
        raise ReplayDateError(f"{day.isoformat()} is {what} ({hint})")

    def _common_days(self, symbols: Iterable[str]) -> set[date]:
        """The days on which every one of `symbols` that has history traded."""
        have = [s for s in symbols if self._days_of.get(s)]
        if not have:
            return set()
        common = set(self._days_of[have[0]])
        for s in have[1:]:
            common &= set(self._days_of[s])
        return common

    # -- controls ---------------------------------------------------------------------------

    def set_speed(self, speed: float) -> None:
        self._clock.set_speed(speed)
        self._wake.set()

    def pause(self) -> None:
        if self.ended:
            return
        self._clock.pause()
        self._set_status(FeedState.PAUSED, "replay paused")

    def resume(self) -> None:
        if self.ended:
            return
        self._clock.resume()
        self._set_status(FeedState.LIVE)
        self._wake.set()

    def goto(self, day: date) -> date:
        """Restart the replay at the open of `day` (also the day being played, or after the end)
        — or, on the day of the paper account's latest act, just after it (`resumes_at`)."""
        self._check_day(day)
        end = self._history_end()
        if day > end:  # a day only some watched symbols have: the others would sit stale
            lacking = sorted(s for s in self._watched() if (d := self._days_of.get(s)) and d[-1] < day)
            raise ReplayDateError(
                f"the history of {', '.join(lacking)} ends on {end}: their quotes would be stale "
                f"(replay a day up to {end}, or remove them from the watchlist)"
            )
        self._goto = day
        self._wake.set()
        return day

    def resumes_at(self, day: date) -> int | None:
        """The instant (UTC ns) a replay of `day` picks up at when that is not the open: just
        after the paper account's latest act on that day."""
        start = self._start_of(day)
        return start if start > self._bounds(day)[0] else None

    # -- streaming --------------------------------------------------------------------------

    async def run(self) -> None:
        if self.start_day is None:
            await self.prepare()
        assert self.start_day is not None
        day: date | None = self.start_day
        if self._clock.paused:  # paused before the first step: stay paused
            self._set_status(FeedState.PAUSED, "replay paused")
        else:
            self._set_status(FeedState.LIVE)
        try:
            while True:
                if day is None:  # the history has run out
                    day = await self._after_the_end()
                await asyncio.to_thread(self._ensure_history, day)
                finished = await self._play_day(day)
                if finished and self._goto is None:
                    await self._pause_after_close()
                if self._goto is not None:
                    day, self._goto = self._goto, None
                    continue
                day = self._next_day(day)
        finally:
            if not self.ended:
                self._set_status(FeedState.STOPPED)
            if self._con is not None:
                self._con.close()
                self._con = None

    def _bounds(self, day: date) -> tuple[int, int]:
        """UTC open and close of a history day, by the exchange's real calendar."""
        bounds = self._clock.session_bounds(self.market, day)
        return bounds if bounds is not None else self.market.session_bounds(day)

    def _watched(self) -> list[str]:
        return list(self._subscribed) or list(self._days_of)

    def _history_end(self) -> date:
        """The last day every watched symbol has history for. Past it a watched symbol has no
        day left and would sit stale for ever, while another with a longer history (the indices
        run to 2018, the stocks end in 2013) kept the replay going."""
        lasts = [days[-1] for s in self._watched() if (days := self._days_of.get(s))]
        return min(lasts) if lasts else self.calendar_days[-1]

    def _next_day(self, day: date) -> date | None:
        """The next day any watched symbol trades, up to the end of their shared history; None
        when the history has run out."""
        if day >= self._history_end():
            return None
        best: date | None = None
        for sym in self._watched():
            days = self._days_of.get(sym, [])
            i = bisect.bisect_right(days, day)
            if i < len(days) and (best is None or days[i] < best):
                best = days[i]
        return best

    async def _after_the_end(self) -> date:
        """Loop to the first day the subscribed symbols share, or stop until `replay goto`."""
        end = self._history_end()
        why = f"the history ends on {end}; replay goto DATE to go on"
        if self._cfg.at_end == "loop":
            common = self._common_days(self._watched())
            first = min(common) if common else self.calendar_days[0]
            problem = self._rewind_problem(first) if self._rewind_problem is not None else None
            if problem is None:
                self._set_status(FeedState.LIVE, f"the history ends on {end}; replaying again from {first}")
                return first
            # looping back would put the paper account's trades in the past: stop instead
            why = f"the history ends on {end}; not looping back to {first}: {problem}"
        self._set_status(FeedState.ENDED, why)
        while self._goto is None:
            self._serve_final_snapshots()
            self._wake.clear()
            await self._wake.wait()
        day, self._goto = self._goto, None
        self._set_status(FeedState.LIVE)
        return day

    def _serve_final_snapshots(self) -> None:
        """After the end, a symbol added to a watchlist still gets how the last day closed."""
        day = self.day
        if day is None:
            return
        events: list[MarketEvent] = []
        for sym in self._subscribed:
            if sym in self._cursors:
                continue
            self._cursors[sym] = _Cursor(None)
            bar, prev = self._bar(sym, day)
            if bar is None:
                events.append(DayStats(self._clock.now_ns(), sym, day, prev, None, None, None, prev, 0.0))
            else:
                events.append(
                    DayStats(
                        self._clock.now_ns(),
                        sym,
                        day,
                        prev,
                        bar.open,
                        bar.high,
                        bar.low,
                        bar.close,
                        bar.volume,
                    )
                )
        self._publish(events)

    async def _pause_after_close(self) -> None:
        """Show the closed market for a moment with the clock held just after the close (at high
        speeds it would otherwise run into the night; it never runs backwards)."""
        held = not self._clock.paused
        if held:
            self._clock.pause()
        try:
            end = time.monotonic() + CLOSE_PAUSE_SECONDS
            while self._goto is None and (
                time.monotonic() < end or self._status.state is FeedState.PAUSED  # the trader's pause
            ):
                self._wake.clear()
                await self._sleep(max(0.01, min(0.25, end - time.monotonic())))
        finally:
            if held and self._status.state is not FeedState.PAUSED:  # unless the trader paused
                self._clock.resume()

    async def _play_day(self, day: date) -> bool:
        """Stream one session. True when it ran to the close, False if interrupted (goto)."""
        open_ns, close_ns = self._bounds(day)
        self.day = day
        self._cursors = {}
        if self._prepared is not None and self._prepared[0] == day:  # prepare() set the clock
            start = self._prepared[1]
        else:
            start = self._start_of(day)
            self._clock.set_time(start)
        self._prepared = None
        if start > open_ns:  # resumed: the day before `start` is recorded and arrives summarised
            self._bus.publish(SessionDay(self.market.code, day, open_ns, close_ns, start))
            self._join(day, list(self._subscribed), before_ns=start, at_ns=start)
        else:
            self._bus.publish(SessionDay(self.market.code, day, open_ns, close_ns))
            self._publish([self._day_start(sym, day, open_ns) for sym in self._subscribed])
        while True:
            if self._goto is not None:
                return False
            now = self._clock.now_ns()
            self._start_new_symbols(day, now)
            batch, next_ts = self._due(now)
            if batch:
                self._publish(batch)
            if next_ts is None and now >= close_ns:
                return True
            wait = 0.25 if next_ts is None else self._clock.real_seconds_until(next_ts)
            self._wake.clear()
            await self._sleep(min(0.25, max(0.02, wait)))

    async def _sleep(self, seconds: float) -> None:
        """Sleep until woken (subscribe, speed, goto) or `seconds` pass. asyncio.timeout, not
        wait_for: on 3.11 wait_for can swallow a cancel that races with the wake-up."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    def _due(self, now: int) -> tuple[list[MarketEvent], int | None]:
        out: list[MarketEvent] = []
        next_ts: int | None = None
        for cursor in self._cursors.values():
            pending = cursor.pending
            while True:
                head = cursor.head_ts()
                if head is None:
                    break
                if head > now:
                    if next_ts is None or head < next_ts:
                        next_ts = head
                    break
                out.append(pending.popleft())
        if len(self._cursors) > 1:
            out.sort(key=lambda e: e.ts)
        return out, next_ts

    def _bar(self, sym: str, day: date) -> tuple[DailyBar | None, float | None]:
        """The symbol's bar on `day` (None if it did not trade) and the previous close, as the
        reference price for `day` (adjusted for a split or dividend that starts that day)."""
        days = self._days_of.get(sym, [])
        bars = self._bars.get(sym, {})
        i = bisect.bisect_left(days, day)
        bar = bars.get(day) if i < len(days) and days[i] == day else None
        prev_bar = bars.get(days[i - 1]) if i > 0 else None
        return bar, (reference_close(prev_bar, bar) if prev_bar else None)

    def _path(self, sym: str, bar: DailyBar, open_ns: int, close_ns: int) -> DayPath:
        inst = self._instruments[sym]
        is_index = inst.kind is InstrumentKind.INDEX
        return day_path(
            sym, bar, open_ns, close_ns, self.seed, tick=float(inst.tick_size), with_quotes=not is_index
        )

    def _day_start(self, sym: str, day: date, open_ns: int) -> DayStats:
        """Open a symbol's day at the open: its cursor and the stats a provider sends."""
        bar, prev = self._bar(sym, day)
        _, close_ns = self._bounds(day)
        self._cursors[sym] = _Cursor(self._path(sym, bar, open_ns, close_ns) if bar else None)
        last = None if bar else prev  # no bar today: it shows yesterday's close, untraded
        return DayStats(open_ns, sym, day, prev, None, None, None, last, 0.0)

    def _start_new_symbols(self, day: date, now: int) -> None:
        """Symbols subscribed during the session join at the current time."""
        new = [s for s in self._subscribed if s not in self._cursors]
        if new:
            self._join(day, new, before_ns=now + 1, at_ns=now)

    def _join(self, day: date, symbols: list[str], *, before_ns: int, at_ns: int) -> None:
        """Start `symbols` mid-day: their events before `before_ns` are not streamed but summarised
        the way a live provider's snapshot does — the day's open, high, low, last and volume so
        far (stamped `at_ns`), and the quote standing then; the stream goes on from there."""
        open_ns, close_ns = self._bounds(day)
        events: list[MarketEvent] = []
        for sym in symbols:
            bar, prev = self._bar(sym, day)
            if bar is None:
                self._cursors[sym] = _Cursor(None)
                events.append(DayStats(at_ns, sym, day, prev, None, None, None, prev, 0.0))
                continue
            cursor = self._cursors[sym] = _Cursor(self._path(sym, bar, open_ns, close_ns))
            first = hi = lo = last = None
            volume = 0.0
            last_quote = None
            while (head := cursor.head_ts()) is not None and head < before_ns:
                ev = cursor.pending.popleft()
                if type(ev) is Trade:
                    price = ev.price
                    first = price if first is None else first
                    hi = price if hi is None else max(hi, price)
                    lo = price if lo is None else min(lo, price)
                    last = price
                    volume += ev.size
                else:
                    last_quote = ev
            events.append(DayStats(at_ns, sym, day, prev, first, hi, lo, last, volume))
            if last_quote is not None:
                events.append(last_quote)
        self._publish(events)

    def _publish(self, events: list[MarketEvent]) -> None:
        if events:
            self._bus.publish(MarketBatch(self.name, events, time.monotonic_ns()))

    def _set_status(self, state: FeedState, reason: str = "") -> None:
        self._status = FeedStatus(self.name, state, reason, simulated=True)
        self._bus.publish(self._status)
