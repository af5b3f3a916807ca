"""The session clock: the one notion of "now" that every component reads.

Live, it is the wall clock. In replay, it is simulated time driven by the replay feed: an anchor
(simulated instant, monotonic instant) and a speed, so `now()` moves smoothly between events and
paper fills, day-order expiry and alerts behave the same in replay as live.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import date, datetime

from trii_term.domain import MARKETS, NS_PER_SECOND, Market, SessionPhase


class TradingCalendar:
    """Which days a market trades, and whether extended hours exist.

    Live: weekdays (exchange holidays come with the live providers). Replay: exactly the days
    present in the history being replayed, with no extended hours.
    """

    def __init__(self, days: Iterable[date] | None = None, *, extended_hours: bool = True) -> None:
        self._days = frozenset(days) if days is not None else None
        self.extended_hours = extended_hours

    def is_trading_day(self, day: date) -> bool:
        if self._days is not None:
            return day in self._days
        return day.weekday() < 5


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

    def calendar(self, market: str) -> TradingCalendar:
        return self._calendars.get(market) or _WEEKDAYS

    def set_calendar(self, market: str, calendar: TradingCalendar) -> None:
        self._calendars[market] = calendar

    def phase(self, market: Market | str, ts_ns: int | None = None) -> SessionPhase:
        m = MARKETS[market] if isinstance(market, str) else market
        ts = self.now_ns() if ts_ns is None else ts_ns
        cal = self.calendar(m.code)
        day = m.local(ts).date()
        return m.phase_at(ts, trading_day=cal.is_trading_day(day), extended=cal.extended_hours)

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


_WEEKDAYS = TradingCalendar()
