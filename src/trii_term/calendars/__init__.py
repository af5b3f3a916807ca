"""Real exchange calendars: the days NYSE and NSE trade, and their hours on each day.

The sessions ship as small text files next to this module, one per exchange, generated at
development time by `tools/gen_calendars.py` (NYSE from exchange_calendars, NSE from
pandas_market_calendars, Muhurat trading included). They are read with the standard library on
first use, never at import, so start-up pays nothing and pandas is never needed at run time.

A file holds, in exchange time:

    hours FROM OPEN CLOSE          the regular hours from a day on (eras)
    closed DAY                     a weekday without a regular session (a holiday, a closure)
    session DAY OPEN CLOSE KIND    a day whose session has other hours (early close, late open)
    special DAY OPEN CLOSE NAME    a special session, besides or instead of the regular one
                                   (Muhurat trading, on Diwali, a holiday otherwise)

Outside the shipped years a market is taken to trade every weekday at its regular hours, and
`coverage_warning` says so.
"""

from __future__ import annotations

import bisect
import logging
from datetime import date, time, timedelta
from pathlib import Path
from typing import NamedTuple

from trii_term.domain import MARKETS

log = logging.getLogger(__name__)

FILES = {"US": "xnys.txt", "NSE": "xnse.txt"}
"""The shipped session file of each market code."""

REFRESH_DAYS = 45
"""`doctor` warns this many days before a market's shipped years run out."""

UPDATE_HINT = "update trii-term (pip install -U trii-term) for a release that ships the next year"


class CalendarError(ValueError):
    """A session file that cannot be read."""


class Session(NamedTuple):
    """One session of a day, in exchange time."""

    day: date
    open: time
    close: time
    kind: str = "regular"
    """`regular`, `early close`, `late open`, `late close`, `other hours`, or a special
    session's name (`Muhurat trading`)."""
    special: bool = False
    """A session besides or instead of the regular one (Muhurat trading on Diwali)."""


class ExchangeCalendar:
    """One exchange's sessions for the shipped years (`first`..`last`). A plain class, not a
    dataclass: building dataclasses costs milliseconds at import, and start-up matters."""

    __slots__ = (
        "_era_starts",
        "closed",
        "eras",
        "exchange",
        "first",
        "last",
        "market",
        "other_hours",
        "problem",
        "source",
        "specials",
        "zone",
    )

    def __init__(
        self,
        *,
        market: str,
        exchange: str,
        zone: str,
        first: date,
        last: date,
        source: str,
        eras: list[tuple[date, time, time]],
        closed: frozenset[date] = frozenset(),
        other_hours: dict[date, Session] | None = None,
        specials: dict[date, tuple[Session, ...]] | None = None,
        problem: str = "",
    ) -> None:
        self.market = market  # the market code ("US", "NSE")
        self.exchange = exchange  # its MIC ("XNYS", "XNSE")
        self.zone = zone
        self.first = first
        self.last = last
        self.source = source  # the library (and version) the file was generated from
        self.eras = sorted(eras)  # (from, open, close)
        self.closed = closed
        self.other_hours = other_hours or {}
        self.specials = specials or {}
        self.problem = problem  # why the shipped file could not be used (then it covers no day)
        self._era_starts = [start for start, _, _ in self.eras]

    def __repr__(self) -> str:
        problem = f", {self.problem}" if self.problem else ""
        return f"ExchangeCalendar({self.exchange}, {self.first}..{self.last}{problem})"

    # -- what is covered -----------------------------------------------------------------------

    @property
    def label(self) -> str:
        market = MARKETS.get(self.market)
        return market.label if market else self.market

    @property
    def years(self) -> range:
        """The calendar years the shipped file covers (empty when it could not be read)."""
        if self.problem:
            return range(0)
        return range(self.first.year, self.last.year + 1)

    def covers(self, day: date) -> bool:
        return not self.problem and self.first <= day <= self.last

    # -- the sessions of a day -----------------------------------------------------------------

    def regular_hours(self, day: date) -> tuple[time, time]:
        """The regular open and close in effect on `day` (before any early close)."""
        i = bisect.bisect_right(self._era_starts, day) - 1
        _, open_, close = self.eras[max(0, i)]
        return open_, close

    def regular_session(self, day: date) -> Session | None:
        """The day's regular session, an early close included; None on a weekend, a holiday, and
        a day with only a special session. Outside the shipped years, every weekday."""
        if self.covers(day):
            if day in self.closed:
                return None
            other = self.other_hours.get(day)
            if other is not None:
                return other
        if day.weekday() >= 5:
            return None
        open_, close = self.regular_hours(day)
        return Session(day, open_, close)

    def special_sessions(self, day: date) -> tuple[Session, ...]:
        """Special sessions held besides or instead of the regular one (Muhurat trading)."""
        return self.specials.get(day, ()) if self.covers(day) else ()

    def sessions(self, day: date) -> tuple[Session, ...]:
        """Every session of the day: the regular one first, then any special ones."""
        regular = self.regular_session(day)
        return ((regular,) if regular else ()) + self.special_sessions(day)

    def session(self, day: date) -> Session | None:
        """The day's trading session: the regular one (an early close included) or, on a day
        with only a special session, that one. None when the market does not trade."""
        regular = self.regular_session(day)
        if regular is not None:
            return regular
        specials = self.special_sessions(day)
        return specials[0] if specials else None

    def is_trading_day(self, day: date) -> bool:
        return self.session(day) is not None

    # -- reading a file ------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, name: str = "calendar") -> ExchangeCalendar:
        """Read a session file; CalendarError names the line that cannot be read."""
        head: dict[str, list[str]] = {}
        eras: list[tuple[date, time, time]] = []
        closed: set[date] = set()
        other: dict[date, Session] = {}
        specials: dict[date, list[Session]] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            word, *rest = line.split()
            try:
                if word == "hours":
                    eras.append((_day(rest[0]), _time(rest[1]), _time(rest[2])))
                elif word == "closed":
                    closed.add(_day(rest[0]))
                elif word in ("session", "special"):
                    day, open_, close = _day(rest[0]), _time(rest[1]), _time(rest[2])
                    kind = " ".join(rest[3:]) or "other hours"
                    if not open_ < close:
                        raise ValueError("the open is not before the close")
                    if word == "session":
                        other[day] = Session(day, open_, close, kind)
                    else:
                        specials.setdefault(day, []).append(Session(day, open_, close, kind, special=True))
                elif word in ("market", "exchange", "zone", "covers", "source"):
                    head[word] = rest
                else:
                    raise ValueError(f"unknown entry {word!r}")
            except (IndexError, ValueError) as exc:
                raise CalendarError(f"{name} line {number}: {exc or 'incomplete'}: {line}") from None
        try:
            first, last = _day(head["covers"][0]), _day(head["covers"][1])
            market, exchange, zone = head["market"][0], head["exchange"][0], head["zone"][0]
        except (KeyError, IndexError, ValueError):
            raise CalendarError(f"{name}: its market, exchange, zone or covers line is missing") from None
        if not eras:
            raise CalendarError(f"{name}: no regular hours")
        return cls(
            market=market,
            exchange=exchange,
            zone=zone,
            first=first,
            last=last,
            source=" ".join(head.get("source", [])),
            eras=eras,
            closed=frozenset(closed),
            other_hours=other,
            specials={d: tuple(sorted(s, key=lambda x: x.open)) for d, s in specials.items()},
        )

    @classmethod
    def weekdays(cls, market: str, problem: str) -> ExchangeCalendar:
        """Every weekday at the market's regular hours: what is left when the file is unusable."""
        m = MARKETS[market]
        return cls(
            market=market,
            exchange=market,
            zone=m.tz_name,
            first=date.max,
            last=date.min,
            source="",
            eras=[(date.min, m.open, m.close)],
            problem=problem,
        )


def _day(text: str) -> date:
    return date.fromisoformat(text)


def _time(text: str) -> time:
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


_LOADED: dict[str, ExchangeCalendar] = {}


DIR = Path(__file__).parent
"""Where the session files are (next to this module, in a wheel too)."""


def calendar_file(market: str) -> Path:
    return DIR / FILES[market]


def exchange_calendar(market: str) -> ExchangeCalendar:
    """The shipped calendar of a market code, read on first use. A missing or damaged file is
    logged and leaves every weekday as a full session, with `problem` saying so."""
    cal = _LOADED.get(market)
    if cal is not None:
        return cal
    if market not in FILES:
        cal = ExchangeCalendar.weekdays(market, f"trii-term ships no calendar for {market}")
    else:
        path = calendar_file(market)
        try:
            cal = ExchangeCalendar.parse(path.read_text(encoding="utf-8"), path.name)
            if cal.market != market or cal.zone != MARKETS[market].tz_name:
                raise CalendarError(f"{path.name} is for {cal.market} ({cal.zone}), not {market}")
        except (OSError, UnicodeDecodeError, CalendarError) as exc:
            log.error("exchange calendar %s unusable: %s", path, exc)
            label = MARKETS[market].label
            cal = ExchangeCalendar.weekdays(
                market,
                f"the {label} calendar shipped with trii-term cannot be read ({exc}); every weekday "
                f"counts as a full session; reinstall trii-term",
            )
    _LOADED[market] = cal
    return cal


def coverage_warning(market: str, day: date) -> str | None:
    """One sentence when `day` lies outside the market's shipped calendar, else None."""
    cal = exchange_calendar(market)
    if cal.problem:
        return cal.problem[0].upper() + cal.problem[1:] + "."
    if day > cal.last:
        return (
            f"{cal.label} holidays and early closes are known up to {cal.last}: from "
            f"{cal.last + timedelta(days=1)} every weekday counts as a full session; {UPDATE_HINT}."
        )
    if day < cal.first:
        return (
            f"{cal.label} holidays and early closes are known from {cal.first}: before it every "
            f"weekday counts as a full session."
        )
    return None
