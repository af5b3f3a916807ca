"""The exchange calendars shipped with trii-term: known holidays, closures, early closes and
Muhurat sessions; what lies outside the shipped years; damaged files; the warnings."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from trii_term import calendars
from trii_term.calendars import CalendarError, ExchangeCalendar, coverage_warning, exchange_calendar
from trii_term.cli import doctor_checks as doctor
from trii_term.paths import Paths, shipped_data_dir

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read the files again in this test (the loaded calendars are kept per process)."""
    monkeypatch.setattr(calendars, "_LOADED", {})


def hours(cal: ExchangeCalendar, day: date) -> tuple[str, str] | None:
    s = cal.session(day)
    return None if s is None else (s.open.strftime("%H:%M"), s.close.strftime("%H:%M"))


# -- NYSE -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (date(2013, 7, 4), "Independence Day"),
        (date(2013, 3, 29), "Good Friday"),
        (date(2012, 10, 29), "Hurricane Sandy"),
        (date(2012, 10, 30), "Hurricane Sandy, second day"),
        (date(2001, 9, 11), "September 11"),
        (date(2001, 9, 14), "the week after September 11"),
        (date(2004, 6, 11), "President Reagan's funeral"),
        (date(2018, 12, 5), "President G. H. W. Bush's day of mourning"),
        (date(2025, 1, 9), "President Carter's day of mourning"),
        (date(2027, 3, 26), "Good Friday, in the last shipped year"),
        (date(2013, 3, 2), "a Saturday"),
    ],
)
def test_nyse_does_not_trade_on(day: date, why: str) -> None:
    cal = exchange_calendar("US")
    assert not cal.is_trading_day(day), why
    assert cal.session(day) is None and cal.sessions(day) == ()


@pytest.mark.parametrize(
    "day", [date(2013, 7, 3), date(2013, 11, 29), date(2013, 12, 24), date(2026, 11, 27)]
)
def test_nyse_closes_early_at_13_00(day: date) -> None:
    cal = exchange_calendar("US")
    s = cal.regular_session(day)
    assert s is not None and (s.open, s.close, s.kind) == (time(9, 30), time(13, 0), "early close")
    assert not s.special


def test_an_ordinary_nyse_day_and_the_years_covered() -> None:
    cal = exchange_calendar("US")
    assert hours(cal, date(2013, 3, 1)) == ("09:30", "16:00")
    assert cal.session(date(2013, 3, 1)).kind == "regular"  # type: ignore[union-attr]
    assert cal.years == range(1999, 2028)
    assert (cal.exchange, cal.zone, cal.label) == ("XNYS", "America/New_York", "NYSE")
    assert cal.source.startswith("exchange_calendars ")


def test_the_shipped_history_trades_exactly_on_nyse_sessions() -> None:
    """Every day of the shipped daily history is an NYSE session, and every NYSE session between
    its first and last day is in it: two independent sources agree, holidays and closures
    included."""
    days: set[date] = set()
    for path in shipped_data_dir().glob("*.csv.gz"):
        with gzip.open(path, "rt", newline="") as f:
            for row in csv.DictReader(f):
                text = row["Date"]
                days.add(
                    date.fromisoformat(text) if "-" in text else datetime.strptime(text, "%m/%d/%Y").date()
                )
    cal = exchange_calendar("US")
    sessions = set()
    day = min(days)
    while day <= max(days):
        if cal.is_trading_day(day):
            sessions.add(day)
        day += timedelta(days=1)
    assert days == sessions
    assert len(days) == 5031  # 1999-01-04 to 2018-12-31


# -- NSE ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "day",
    [date(2024, 1, 26), date(2024, 8, 15), date(2025, 10, 2), date(2026, 1, 26), date(2026, 12, 25)],
)
def test_nse_holidays(day: date) -> None:
    """Republic Day, Independence Day, Gandhi Jayanti, Christmas: weekdays without a session."""
    assert day.weekday() < 5
    assert not exchange_calendar("NSE").is_trading_day(day)


def test_muhurat_trading_is_a_special_session_on_diwali() -> None:
    cal = exchange_calendar("NSE")
    diwali = date(2024, 11, 1)  # a Friday: no regular session, an evening hour of trading
    assert cal.regular_session(diwali) is None
    (muhurat,) = cal.special_sessions(diwali)
    assert (muhurat.open, muhurat.close, muhurat.kind, muhurat.special) == (
        time(18, 0),
        time(19, 0),
        "Muhurat trading",
        True,
    )
    assert cal.is_trading_day(diwali) and cal.session(diwali) == muhurat
    assert hours(cal, date(2025, 10, 21)) == ("13:45", "14:45")  # 2025's was in the afternoon
    assert cal.special_sessions(date(2024, 10, 31)) == ()


def test_nse_hours_follow_their_eras() -> None:
    cal = exchange_calendar("NSE")
    assert hours(cal, date(2005, 3, 1)) == ("09:55", "15:30")
    assert hours(cal, date(2010, 6, 1)) == ("09:00", "15:30")  # the 2010 pre-open pilot
    assert hours(cal, date(2024, 3, 1)) == ("09:15", "15:30")
    assert cal.years == range(1999, 2027)
    assert (cal.exchange, cal.zone) == ("XNSE", "Asia/Kolkata")


# -- outside the shipped years --------------------------------------------------------------------


def test_past_the_shipped_years_every_weekday_is_a_full_session() -> None:
    cal = exchange_calendar("NSE")
    assert hours(cal, date(2027, 1, 26)) == ("09:15", "15:30")  # Republic Day, not known yet
    assert cal.session(date(2027, 1, 30)) is None  # a Saturday
    assert cal.special_sessions(date(2027, 10, 29)) == ()


def test_the_warning_when_the_shipped_years_run_out() -> None:
    assert coverage_warning("NSE", date(2026, 12, 31)) is None
    assert coverage_warning("US", date(2027, 1, 4)) is None
    note = coverage_warning("NSE", date(2027, 1, 4))
    assert note == (
        "NSE holidays and early closes are known up to 2026-12-31: from 2027-01-01 every weekday "
        "counts as a full session; update trii-term (pip install -U trii-term) for a release that "
        "ships the next year."
    )
    assert "known from 1999-01-01" in (coverage_warning("US", date(1998, 12, 31)) or "")


def test_doctor_warns_before_the_years_run_out() -> None:
    ok = doctor._calendars(date(2026, 6, 1))
    assert (ok.status, ok.label) == ("ok", "calendars")
    assert ok.detail == "NYSE 1999-2027, NSE 1999-2026 (holidays, early closes, Muhurat)"
    soon = doctor._calendars(date(2026, 12, 7))
    assert soon.status == "warn" and "NSE runs out on 2026-12-31 (24 days left)" in soon.detail
    assert "pip install -U trii-term" in soon.fix
    late = doctor._calendars(date(2028, 1, 3))
    assert late.status == "warn"
    assert "NYSE ran out on 2027-12-31" in late.detail and "NSE ran out on 2026-12-31" in late.detail


def test_a_session_past_the_shipped_years_says_so(
    paths: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None
) -> None:
    """The replay of 2013-03-01 with an NYSE file that stops at 2005: the session's notices say
    what the trader must know."""
    import asyncio

    from trii_term.config import parse_config
    from trii_term.session import Session

    text = (
        (calendars.DIR / "xnys.txt")
        .read_text()
        .replace("covers 1999-01-01 2027-12-31", "covers 1999-01-01 2005-12-31")
    )
    (tmp_path / "xnys.txt").write_text(text)
    monkeypatch.setattr(calendars, "DIR", tmp_path)

    async def run() -> list[str]:
        session = Session(parse_config('[feed]\nsymbols = ["IBM"]\n'), paths)
        try:
            await session.start()
            return session.notices
        finally:
            await session.stop()

    notices = asyncio.run(run())
    assert any(n.startswith("NYSE holidays and early closes are known up to 2005-12-31") for n in notices)


# -- damaged files --------------------------------------------------------------------------------


def test_a_damaged_file_names_its_line() -> None:
    good = (calendars.DIR / "xnys.txt").read_text()
    bad = good.replace("closed 2013-07-04", "closed 2013-07-34")
    line = bad.splitlines().index("closed 2013-07-34") + 1
    with pytest.raises(CalendarError, match=f"xnys.txt line {line}: .*closed 2013-07-34"):
        ExchangeCalendar.parse(bad, "xnys.txt")
    with pytest.raises(CalendarError, match="line 1: unknown entry 'holiday'"):
        ExchangeCalendar.parse("holiday 2013-07-04\n" + good, "xnys.txt")
    with pytest.raises(CalendarError, match="covers line is missing"):
        ExchangeCalendar.parse(good.replace("covers", "# covers"), "xnys.txt")


def test_a_missing_file_leaves_weekdays_and_says_reinstall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None
) -> None:
    monkeypatch.setattr(calendars, "DIR", tmp_path)  # nothing there
    cal = exchange_calendar("US")
    assert cal.problem and cal.years == range(0)
    assert hours(cal, date(2013, 7, 4)) == ("09:30", "16:00")  # a weekday, holiday unknown
    note = coverage_warning("US", date(2013, 7, 4))
    assert note is not None and note.startswith("The NYSE calendar shipped with trii-term cannot be read")
    assert note.endswith("reinstall trii-term.")
    check = doctor._calendars(date(2026, 6, 1))
    assert check.status == "warn" and "cannot be read" in check.detail


# -- the libraries they come from (skipped where they are not installed) --------------------------


def _generator(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_calendars", ROOT / "tools" / "gen_calendars.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gen_calendars", module)  # its dataclasses look themselves up
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore:Series.values returning an ndarray")  # inside exchange_calendars
@pytest.mark.parametrize(
    ("market", "library"), [("US", "exchange_calendars"), ("NSE", "pandas_market_calendars")]
)
def test_the_shipped_files_match_the_libraries_day_by_day(
    market: str, library: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip(library, reason=f"{library} is a development tool (tools/gen_calendars.py)")
    gen = _generator(monkeypatch)
    shipped = calendars.DIR / calendars.FILES[market]
    cal = ExchangeCalendar.parse(shipped.read_text(), shipped.name)
    build = gen.nyse if market == "US" else gen.nse
    gen.verify(shipped.read_text(), build(cal.first, cal.last))
