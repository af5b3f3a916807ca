"""The session clock on the exchanges' real calendars: phases on holidays, early closes and
Muhurat sessions; session bounds and the trading day of an instant; replay calendars; and that
importing the clock reads no calendar file (start-up pays nothing for it)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, time

import pytest

from trii_term.clock import SessionClock, TradingCalendar
from trii_term.domain import NSE, US, Market, SessionPhase, to_ns


def at(market: Market, day: date, hh: int, mm: int = 0) -> int:
    return to_ns(datetime.combine(day, time(hh, mm), tzinfo=market.tz))


@pytest.fixture
def clock() -> SessionClock:
    return SessionClock()


@pytest.mark.parametrize(
    "day",
    [date(2013, 7, 4), date(2013, 3, 29), date(2012, 10, 29), date(2012, 10, 30), date(2025, 1, 9)],
)
def test_an_nyse_holiday_is_closed_all_day(clock: SessionClock, day: date) -> None:
    """Independence Day, Good Friday, Hurricane Sandy, a national day of mourning."""
    for hh in (5, 10, 15, 18):
        assert clock.phase(US, at(US, day, hh)) is SessionPhase.CLOSED
    assert clock.session_bounds(US, day) is None
    assert not clock.calendar(US).is_trading_day(day)


def test_after_an_early_close_the_market_is_no_longer_open(clock: SessionClock) -> None:
    day = date(2013, 7, 3)
    assert clock.phase(US, at(US, day, 9, 29)) is SessionPhase.PRE_MARKET
    assert clock.phase(US, at(US, day, 12, 59)) is SessionPhase.OPEN
    assert clock.phase(US, at(US, day, 13, 0)) is SessionPhase.POST_MARKET
    assert clock.phase(US, at(US, day, 16, 59)) is SessionPhase.POST_MARKET  # 4 h, as after 16:00
    assert clock.phase(US, at(US, day, 17, 0)) is SessionPhase.CLOSED
    # an ordinary day, for contrast
    assert clock.phase(US, at(US, date(2013, 7, 2), 15, 59)) is SessionPhase.OPEN
    assert clock.phase(US, at(US, date(2013, 7, 2), 19, 59)) is SessionPhase.POST_MARKET


def test_session_bounds_in_utc(clock: SessionClock) -> None:
    assert clock.session_bounds(US, date(2013, 7, 3)) == (
        at(US, date(2013, 7, 3), 9, 30),
        at(US, date(2013, 7, 3), 13, 0),
    )
    assert clock.session_bounds("US", date(2013, 7, 2)) == (
        at(US, date(2013, 7, 2), 9, 30),
        at(US, date(2013, 7, 2), 16, 0),
    )
    # in UTC: 13:30-17:00 in summer (EDT), 14:30-21:00 in winter (EST)
    o, c = clock.session_bounds(US, date(2013, 12, 24))  # type: ignore[misc]
    assert (datetime.utcfromtimestamp(o / 1e9).hour, datetime.utcfromtimestamp(c / 1e9).hour) == (14, 18)
    assert clock.session_bounds(US, date(2013, 3, 2)) is None  # a Saturday
    assert clock.session_bounds("NSE", date(2024, 3, 1)) == (
        at(NSE, date(2024, 3, 1), 9, 15),
        at(NSE, date(2024, 3, 1), 15, 30),
    )


def test_muhurat_trading_opens_the_nse_on_diwali_evening(clock: SessionClock) -> None:
    diwali = date(2024, 11, 1)
    assert clock.phase(NSE, at(NSE, diwali, 10)) is SessionPhase.CLOSED  # no regular session
    assert clock.phase(NSE, at(NSE, diwali, 17, 50)) is SessionPhase.PRE_MARKET  # 15 min before
    assert clock.phase(NSE, at(NSE, diwali, 18, 30)) is SessionPhase.OPEN
    assert clock.phase(NSE, at(NSE, diwali, 19, 10)) is SessionPhase.POST_MARKET
    assert clock.session_bounds(NSE, diwali) == (at(NSE, diwali, 18), at(NSE, diwali, 19))


def test_the_trading_day_of_an_instant(clock: SessionClock) -> None:
    day = date(2013, 7, 3)
    assert clock.trading_day(US, at(US, day, 7)) == day  # before the open
    assert clock.trading_day(US, at(US, day, 22)) == day  # after the close (03:00 UTC next day)
    assert clock.trading_day("US", at(US, date(2013, 7, 4), 12)) == date(2013, 7, 4)  # a holiday
    assert clock.trading_day(NSE, at(NSE, date(2024, 11, 1), 18, 30)) == date(2024, 11, 1)


def test_a_replay_calendar_trades_the_historys_days_at_the_real_hours() -> None:
    days = {date(2013, 7, 3), date(2013, 7, 5)}
    clock = SessionClock(simulated=True)
    clock.set_calendar("US", TradingCalendar(US, days, extended_hours=False))
    assert clock.session_bounds(US, date(2013, 7, 3)) == (
        at(US, date(2013, 7, 3), 9, 30),
        at(US, date(2013, 7, 3), 13, 0),
    )
    assert clock.session_bounds(US, date(2013, 7, 2)) is None  # not in the history
    assert clock.phase(US, at(US, date(2013, 7, 3), 13, 30)) is SessionPhase.CLOSED  # no extended
    assert clock.phase(US, at(US, date(2013, 7, 5), 10)) is SessionPhase.OPEN
    with pytest.raises(ValueError, match="NSE calendar cannot serve US"):
        clock.set_calendar("US", TradingCalendar(NSE, days))


def test_the_calendar_notices_name_each_market_once(clock: SessionClock) -> None:
    january = SessionClock(wall_ns=lambda: at(NSE, date(2027, 1, 4), 10))
    notes = january.calendar_notices([NSE, "NSE", US])
    assert len(notes) == 1 and notes[0].startswith("NSE holidays and early closes are known up to 2026-12-31")
    june = SessionClock(wall_ns=lambda: at(NSE, date(2026, 6, 1), 10))
    assert june.calendar_notices([NSE, US]) == []


def test_importing_the_clock_and_the_session_reads_no_calendar_file() -> None:
    code = (
        "import sys\n"
        "opened = []\n"
        "sys.addaudithook(lambda ev, args: ev == 'open' and str(args[0]).endswith('.txt')"
        " and opened.append(str(args[0])))\n"
        "import trii_term.clock, trii_term.session, trii_term.calendars as c\n"
        "print(len(opened), len(c._LOADED))\n"
        "from trii_term.clock import SessionClock\n"
        "SessionClock().phase('US')\n"
        "print(len(opened), len(c._LOADED))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0", "1", "1"]  # nothing at import; the US file on first use
