"""The trader's vocabulary: markets, instruments, market-data events, feed states.

Standard library only. Market-data events are small immutable tuples because they are created
at high rates (hundreds of thousands per second in the benchmarks); everything that is money
(order prices, cash) is `Decimal` and arrives with the trading issue.

Timestamps in events are integers: nanoseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND


# --------------------------------------------------------------------------------------------
# Markets and their sessions
# --------------------------------------------------------------------------------------------


class SessionPhase(enum.StrEnum):
    """Where a market's trading day stands. Shown as text, never by colour alone."""

    PRE_MARKET = "pre-market"
    OPEN = "open"
    POST_MARKET = "post-market"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Market:
    """A trading venue's calendar: where its clock is and when it trades."""

    code: str  # "US", "NSE"
    label: str  # shown in the status bar
    tz_name: str
    tz_abbrev_std: str
    tz_abbrev_dst: str
    pre_open: time
    open: time
    close: time
    post_close: time
    currency: str
    day_shift_hours: float
    """UTC offset (hours) that maps every trade of a local trading day, extended hours included,
    onto that day's date: used by SQL to group ticks into daily bars without a time-zone lookup
    per row. US: -5 (04:00-20:00 ET lands inside the same date under EST and EDT)."""

    @property
    def tz(self) -> ZoneInfo:
        return _zone(self.tz_name)

    def local(self, ts_ns: int) -> datetime:
        """The exchange-local wall time of a UTC timestamp."""
        return datetime.fromtimestamp(ts_ns / NS_PER_SECOND, tz=self.tz)

    def tz_abbrev(self, when: datetime) -> str:
        return self.tz_abbrev_dst if when.dst() else self.tz_abbrev_std

    def at(self, day: date, t: time) -> int:
        """UTC nanoseconds of a local wall-clock time on a given day."""
        local = datetime.combine(day, t, tzinfo=self.tz)
        return to_ns(local)

    def session_bounds(self, day: date) -> tuple[int, int]:
        """UTC nanoseconds of the standard open and close on `day`, whatever the calendar says
        (`SessionClock.session_bounds` knows holidays and early closes)."""
        return self.at(day, self.open), self.at(day, self.close)

    def phase_at(
        self,
        ts_ns: int,
        *,
        trading_day: bool = True,
        extended: bool = True,
        hours: tuple[time, time] | None = None,
    ) -> SessionPhase:
        """The session phase at a UTC instant, for a day that trades (`trading_day`), whose
        session runs `hours` (exchange time; default the standard open and close)."""
        if not trading_day:
            return SessionPhase.CLOSED
        return self.phase_of(self.local(ts_ns).time(), hours=hours, extended=extended)

    def phase_of(
        self, t: time, *, hours: tuple[time, time] | None = None, extended: bool = True
    ) -> SessionPhase:
        """The session phase at exchange time `t` of a trading day whose session runs `hours`.
        Extended hours keep their length around that session: after a 13:00 early close in New
        York the post-market runs to 17:00; before a 18:00 Muhurat session the pre-open starts at
        17:45."""
        open_, close = hours if hours is not None else (self.open, self.close)
        s, o, c = _seconds(t), _seconds(open_), _seconds(close)
        if o <= s < c:
            return SessionPhase.OPEN
        if extended and o - (_seconds(self.open) - _seconds(self.pre_open)) <= s < o:
            return SessionPhase.PRE_MARKET
        if extended and c <= s < c + (_seconds(self.post_close) - _seconds(self.close)):
            return SessionPhase.POST_MARKET
        return SessionPhase.CLOSED


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


US = Market(
    code="US",
    label="NYSE",
    tz_name="America/New_York",
    tz_abbrev_std="EST",
    tz_abbrev_dst="EDT",
    pre_open=time(4, 0),
    open=time(9, 30),
    close=time(16, 0),
    post_close=time(20, 0),
    currency="USD",
    day_shift_hours=-5,
)

NSE = Market(
    code="NSE",
    label="NSE",
    tz_name="Asia/Kolkata",
    tz_abbrev_std="IST",
    tz_abbrev_dst="IST",
    pre_open=time(9, 0),
    open=time(9, 15),
    close=time(15, 30),
    post_close=time(16, 0),
    currency="INR",
    day_shift_hours=5.5,
)

MARKETS: dict[str, Market] = {m.code: m for m in (US, NSE)}


# --------------------------------------------------------------------------------------------
# Instruments
# --------------------------------------------------------------------------------------------


class InstrumentKind(enum.StrEnum):
    STOCK = "stock"
    INDEX = "index"
    ETF = "etf"


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    name: str
    exchange: str  # listing venue: NASDAQ, NYSE, INDEX, NSE ...
    market: str  # calendar code in MARKETS
    currency: str
    kind: InstrumentKind = InstrumentKind.STOCK
    tick_size: Decimal = Decimal("0.01")
    lot_size: int = 1

    @property
    def tradable(self) -> bool:
        return self.kind is not InstrumentKind.INDEX

    @property
    def price_decimals(self) -> int:
        exponent = self.tick_size.normalize().as_tuple().exponent
        return max(0, -exponent) if isinstance(exponent, int) else 2


def normalize_symbol(text: str) -> str:
    """How a trader types a symbol vs how we key it: trimmed, upper case."""
    return text.strip().upper()


# --------------------------------------------------------------------------------------------
# Market-data events (what every feed publishes)
# --------------------------------------------------------------------------------------------


class Trade(NamedTuple):
    """A print on the tape."""

    ts: int  # ns since epoch, UTC
    symbol: str
    price: float
    size: float


class Quote(NamedTuple):
    """Top of book."""

    ts: int
    symbol: str
    bid: float
    ask: float
    bid_size: float
    ask_size: float


class DayStats(NamedTuple):
    """The day so far for one symbol, as a snapshot: sent when a day starts, when a symbol is
    subscribed mid-day, and whenever a provider delivers it (Kite quote packets, Alpaca
    snapshots). Fields that are not known yet are None."""

    ts: int
    symbol: str
    day: date
    prev_close: float | None
    open: float | None
    high: float | None
    low: float | None
    last: float | None
    volume: float


class Bar(NamedTuple):
    """A provider's finished bar (Alpaca's minute bars, a REST backfill, Kite candles). The
    store keeps it in `bars`, keyed by its start: a bar received twice is stored once, and it
    wins over the bar the store would derive from ticks."""

    ts: int  # bar start, ns since epoch, UTC
    symbol: str
    interval: str  # "1m", "5m", "15m", "1h", "1d"
    open: float
    high: float
    low: float
    close: float
    volume: float


MarketEvent = Trade | Quote | DayStats | Bar


class MarketBatch(NamedTuple):
    """Market events in the order a provider delivered them. The bus carries batches so that
    high-rate listeners (the store writer, the quote book) pay per batch, not per event. A
    NamedTuple: built once per websocket message, at up to ~10^6 a second in the benchmarks
    (a third of the cost of a frozen dataclass)."""

    provider: str
    events: list[MarketEvent]
    received_ns: int  # time.monotonic_ns() at arrival, for writer lag and latency figures


# --------------------------------------------------------------------------------------------
# Feed status
# --------------------------------------------------------------------------------------------


class FeedState(enum.StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    STALE = "stale"
    RECONNECTING = "reconnecting"
    PAUSED = "paused"
    ENDED = "ended"
    ERROR = "error"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class FeedStatus:
    provider: str
    state: FeedState
    reason: str = ""
    simulated: bool = False
    retry_at_monotonic: float | None = None  # when the next reconnect happens


@dataclass(frozen=True, slots=True)
class SessionDay:
    """Published when the session clock enters a new trading day (replay day roll-over).

    `start_ns` is set when a replay resumes the day just after the paper account's latest act
    rather than at the open: its stream starts there. What came before was recorded by the run
    that acted and arrives as the day so far (`DayStats`), not tick by tick."""

    market: str
    day: date
    open_ns: int
    close_ns: int
    start_ns: int | None = None  # None: from the open

    @property
    def stream_from_ns(self) -> int:
        """The first instant this day streams: the open, or where a resumed day picks up."""
        return self.start_ns if self.start_ns is not None else self.open_ns


# --------------------------------------------------------------------------------------------
# Time helpers
# --------------------------------------------------------------------------------------------


def to_ns(when: datetime) -> int:
    """Nanoseconds since the epoch for an aware datetime."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: give it a time zone")
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1_000


def from_ns(ts_ns: int) -> datetime:
    """An aware UTC datetime (microsecond precision) from nanoseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=ts_ns // 1_000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
