"""The session clock: the one notion of "now" that every component reads.

Live, it is the wall clock. In replay, it is simulated time driven by the replay feed: an anchor
(simulated instant, monotonic instant) and a speed, so `now()` moves smoothly between events and
paper fills, day-order expiry and alerts behave the same in replay as live.

Which days a market trades and its hours on each come from the exchange's real calendar
(`trii_term.calendars`: holidays, early closes, Muhurat trading), read on first use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import date, datetime
from datetime import time as dtime

from trii_term.calendars import ExchangeCalendar, coverage_warning, exchange_calendar
from trii_term.domain import MARKETS, NS_PER_SECOND, Market, SessionPhase

Hours = tuple[dtime, dtime]


class TradingCalendar:
    """Which days one market trades, its hours on each, and whether extended hours exist.

    Live (no `days`): the exchange's real calendar — holidays, early closes and special sessions
    such as Muhurat trading — for the shipped years, and every weekday at the regular hours
    outside them. Replay: exactly the days present in the history being replayed, each with the
    real calendar's hours (an early close in the history's years closes early), no extended hours.
    """

    _CACHE_DAYS = 64

    def __init__(
        self, market: Market | str, days: Iterable[date] | None = None, *, extended_hours: bool = True
    ) -> None:
        self.market = MARKETS[market] if isinstance(market, str) else market
        self.days = frozenset(days) if days is not None else None
        self.extended_hours = extended_hours
        self._exchange: ExchangeCalendar | None = None
        self._hours: dict[date, Hours | None] = {}

    @property
    def exchange(self) -> ExchangeCalendar:
        """The exchange's shipped calendar, read the first time it is needed."""
        if self._exchange is None:
            self._exchange = exchange_calendar(self.market.code)
        return self._exchange

    def is_trading_day(self, day: date) -> bool:
        return self.hours(day) is not None

    def hours(self, day: date) -> Hours | None:
        """The exchange-time open and close of the day's session — the regular one with any
        early close, or on a day that has only a special session (Muhurat), that one — or None
        when the market does not trade that day."""
        try:
            return self._hours[day]
        except KeyError:
            pass
        session = self.exchange.session(day)
        hours: Hours | None = None if session is None else (session.open, session.close)
        if self.days is not None:  # replay: the history's days, the real hours
            hours = (hours or self.exchange.regular_hours(day)) if day in self.days else None
        if len(self._hours) >= self._CACHE_DAYS:
            self._hours.clear()
        self._hours[day] = hours
        return hours

    def session_bounds(self, day: date) -> tuple[int, int] | None:
        """UTC nanoseconds of the day's session open and close, or None (see `hours`)."""
        hours = self.hours(day)
        if hours is None:
            return None
        return self.market.at(day, hours[0]), self.market.at(day, hours[1])


class SessionClock:
    def __init__(
        self,
        *,
        simulated: bool = False,
        calendars: dict[str, TradingCalendar] | None = None,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.simulated = simulated
        self._calendars = calendars or {}
        self._mono = monotonic_ns
        self._wall = wall_ns
        self._anchor_sim = wall_ns()
        self._anchor_mono = monotonic_ns()
        self._speed = 1.0
        self._paused = False

    # -- reading ---------------------------------------------------------------------------

    def now_ns(self) -> int:
        if not self.simulated:
            return self._wall()
        if self._paused:
            return self._anchor_sim
        return self._anchor_sim + int((self._mono() - self._anchor_mono) * self._speed)

    def now(self) -> datetime:
        from trii_term.domain import from_ns

        return from_ns(self.now_ns())

    @property
    def speed(self) -> float:
        return self._speed if self.simulated else 1.0

    @property
    def paused(self) -> bool:
        return self.simulated and self._paused

    def calendar(self, market: Market | str) -> TradingCalendar:
        """The market's calendar: the one the replay set, else the exchange's real one."""
        code = market if isinstance(market, str) else market.code
        cal = self._calendars.get(code)
        if cal is None:
            cal = self._calendars[code] = TradingCalendar(code)
        return cal

    def set_calendar(self, market: str, calendar: TradingCalendar) -> None:
        if calendar.market.code != market:
            raise ValueError(f"a {calendar.market.code} calendar cannot serve {market}")
        self._calendars[market] = calendar

    def phase(self, market: Market | str, ts_ns: int | None = None) -> SessionPhase:
        """Where the market's day stands at `ts_ns` (default: now), by its real calendar: closed
        on a holiday, closed after an early close, open during a Muhurat session."""
        m = MARKETS[market] if isinstance(market, str) else market
        ts = self.now_ns() if ts_ns is None else ts_ns
        cal = self.calendar(m.code)
        local = m.local(ts)
        hours = cal.hours(local.date())
        if hours is None:
            return SessionPhase.CLOSED
        return m.phase_of(local.time(), hours=hours, extended=cal.extended_hours)

    def session_bounds(self, market: Market | str, day: date) -> tuple[int, int] | None:
        """UTC nanoseconds of the open and close of the market's session on `day` — the regular
        session with any early close (on a day with only a Muhurat session, that session) — or
        None when the market does not trade that day. In replay, the history's days."""
        return self.calendar(market).session_bounds(day)

    def calendar_notices(self, markets: Iterable[Market | str]) -> list[str]:
        """A sentence for each market whose shipped calendar does not cover the clock's day (the
        shipped years ran out, or the file is damaged)."""
        notes: list[str] = []
        now = self.now_ns()
        for code in dict.fromkeys(m if isinstance(m, str) else m.code for m in markets):
            note = coverage_warning(code, self.trading_day(code, now))
            if note:
                notes.append(note)
        return notes

    def trading_day(self, market: Market | str, ts_ns: int) -> date:
        """The session date an instant belongs to: the exchange-local date (after the close, that
        day; before the open, that day too; on a holiday, the holiday itself)."""
        m = MARKETS[market] if isinstance(market, str) else market
        return m.local(ts_ns).date()

    # -- driving (replay) -------------------------------------------------------------------

    def set_time(self, sim_ns: int) -> None:
        """Jump the simulated clock to an instant (replay start, next trading day)."""
        self._anchor_sim = sim_ns
        self._anchor_mono = self._mono()

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._anchor_sim = self.now_ns()
        self._anchor_mono = self._mono()
        self._speed = float(speed)

    def pause(self) -> None:
        if not self._paused:
            self._anchor_sim = self.now_ns()
            self._paused = True

    def resume(self) -> None:
        if self._paused:
            self._anchor_mono = self._mono()
            self._paused = False

    def real_seconds_until(self, sim_ns: int) -> float:
        """How long, in real seconds, until the simulated clock reaches `sim_ns`."""
        if not self.simulated:
            return max(0.0, (sim_ns - self._wall()) / NS_PER_SECOND)
        if self._paused:
            return float("inf")
        return max(0.0, (sim_ns - self.now_ns()) / NS_PER_SECOND / self._speed)
