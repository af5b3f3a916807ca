"""Zerodha Kite market data: the binary ticker over `websockets`, candles and the instrument
master over httpx (`feed.provider = "kite"`).

Why not the SDK's KiteTicker: it runs on Twisted's global reactor in a thread, which cannot be
restarted in one process and would hand every tick across threads. Here the ticker is one asyncio
task on the session's loop, and the binary parser is a tight loop over `struct` (see
`bench/kite_ticker.py`: it must parse and publish 500k packets/s on one core).

What a packet becomes (one `MarketBatch` per binary message, events in packet order):

- quote (44 B) and full (184 B): a `Trade` when the cumulative volume rises (size = the rise,
  price = LTP; the first packet of a token only sets the baseline, since what it traded before
  is unknown), then `DayStats` (prev_close = the packet's close, open/high/low, last, volume);
  full mode adds a `Quote` from the best bid and offer when both sides are present.
- price-only packets (ltp mode, 8 B; indices, 28/32 B) carry no volume: a change of price is a
  `Trade` of size 0, so the tape and the charts move; index packets also give `DayStats`, an
  ltp packet gives a `DayStats` with only `last` the first time a token is seen.
- timestamps: the exchange timestamp in full packets, else the arrival time (`time.time_ns()`).

A message is applied all or nothing, before anything of it is published (`TickParser.parse`):
a message whose structure is wrong (its packet count, a packet's length or its total size do
not add up) is dropped whole. Inside a well-formed message the lengths delimit each packet
exactly, so one packet that cannot be true is skipped alone and the others are kept: a size its
token's segment cannot have (indices send 8/28/32 bytes, everything else 8/44/184), a token not
subscribed, a negative price (prices are int32), a last price outside the day's low-high,
a low above the high, volume without a price. A last price of 0 means "not traded
yet": it never becomes a trade or a last price. Every fault is counted (`malformed`) and logged
at most every 10 s.

Candles (`/instruments/historical`) are published as `Bar`s when a symbol is first subscribed
(the recent session's minutes and a year of days) and after a reconnect (the gap), spaced to
Kite's 3 requests/s; only closed bars are sent, since a provider bar wins over the bar the store
derives from ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import re
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import httpx
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from trii_term import credentials
from trii_term.adapters.kite.master import KiteInstrument, KiteMaster, MasterError, price_divisor
from trii_term.domain import (
    NS_PER_SECOND,
    NSE,
    Bar,
    DayStats,
    FeedState,
    FeedStatus,
    Instrument,
    MarketBatch,
    MarketEvent,
    Quote,
    Trade,
    to_ns,
)
from trii_term.feeds import FeedContext

log = logging.getLogger(__name__)

MAX_TOKENS = 3000  # instruments per ticker connection (Kite's limit)
KITE_HEADERS = {"X-Kite-Version": "3"}
LOGIN_HINT = "run `trii-term login kite`"
MALFORMED_LOG_SECONDS = 10.0

# --------------------------------------------------------------------------------------------
# The binary ticker protocol
# --------------------------------------------------------------------------------------------

_U16 = struct.Struct(">H").unpack_from
_U16X2 = struct.Struct(">HH").unpack_from
_U32 = struct.Struct(">I").unpack_from
# Prices are int32 on the wire and read signed ("i"), so an impossible negative price reads
# as one (the SDK reads them unsigned: -1 paise would be a price of Rs 42,949,672.95).
_LTP = struct.Struct(">Ii").unpack_from
# only the fields the events need; "x" skips the rest (last qty, average price, buy/sell totals,
# last trade time, open interest) so no int object is made for them
_QUOTE = struct.Struct(">Ii8xI8x4i").unpack_from  # token, ltp, volume, open, high, low, close
# full: as the quote, then the exchange timestamp, the best bid (qty, price), its orders and
# padding and four more bids skipped (52 bytes), the best offer (qty, price)
_FULL = struct.Struct(">Ii8xI8x4i16xIIi52xIi").unpack_from
_INDEX = struct.Struct(">I5i").unpack_from  # token, ltp, high, low, open, close (change ignored)
_INDEX_FULL = struct.Struct(">I5i4xI").unpack_from  # ... + exchange timestamp at 28
_new = tuple.__new__  # building the event tuples without NamedTuple.__new__'s Python frame
_EPOCH_DAY = date(1970, 1, 1)
INDICES_SEGMENT = 9  # token & 0xff of an index: its packets are 8, 28 or 32 bytes
_IST_SECONDS = 19_800


@dataclass(frozen=True, slots=True)
class KiteOrderUpdate:
    """An order postback from the ticker (`{"type":"order","data":{...}}`), for the Kite broker.
    `data` is Kite's postback as sent (order_id, status, filled_quantity, average_price, ...)."""

    data: dict[str, Any]

    @property
    def order_id(self) -> str | None:
        value = self.data.get("order_id")
        return None if value is None else str(value)

    @property
    def status(self) -> str | None:
        value = self.data.get("status")
        return None if value is None else str(value)


class _IstDay:
    """The IST date of UTC timestamps, cached as the day's [lo, hi) in ns: two comparisons per
    lookup instead of two divisions and a date."""

    __slots__ = ("day", "hi", "lo")

    def __init__(self) -> None:
        self.lo = self.hi = 0
        self.day = _EPOCH_DAY

    def of(self, ts_ns: int) -> date:
        if not self.lo <= ts_ns < self.hi:
            number = (ts_ns // NS_PER_SECOND + _IST_SECONDS) // 86_400
            self.lo = (number * 86_400 - _IST_SECONDS) * NS_PER_SECOND
            self.hi = self.lo + 86_400 * NS_PER_SECOND
            self.day = _EPOCH_DAY + timedelta(days=number)
        return self.day


class TickParser:
    """Binary ticker messages -> market events, for the subscribed tokens.

    `subs[token]` is a small list `[symbol, divisor, last_volume, last_price]`: a list, not an
    object, because the hot loop reads and writes it for every packet. `_stocks` and `_indices`
    hold the same lists split by segment, so a packet is only read in a layout its token can
    have. A message is applied all or nothing, as the module docstring says: its structure is
    checked before any packet is read, and each packet before it changes anything."""

    def __init__(self) -> None:
        self.subs: dict[int, list[Any]] = {}
        self._stocks: dict[int, list[Any]] = {}  # the same lists, tokens outside the indices segment
        self._indices: dict[int, list[Any]] = {}  # index tokens (segment 9)
        self.retired: set[int] = set()  # unsubscribed: their late packets are dropped quietly
        self.malformed = 0
        self.packets = 0
        # two caches: arrival times and exchange times may sit on different days (a host clock
        # off by hours, a replayed snapshot) and must not evict each other on every message
        self._arrival_day = _IstDay()
        self._exchange_day = _IstDay()
        self._logged_at = -MALFORMED_LOG_SECONDS
        self._unlogged = 0

    def add(self, token: int, symbol: str) -> None:
        sub = [symbol, price_divisor(token), None, None]
        self.subs[token] = sub
        (self._indices if token & 0xFF == INDICES_SEGMENT else self._stocks)[token] = sub
        self.retired.discard(token)

    def remove(self, token: int) -> None:
        if self.subs.pop(token, None) is not None:
            self._stocks.pop(token, None)
            self._indices.pop(token, None)
            self.retired.add(token)

    def bad(self, why: str) -> None:
        self.malformed += 1
        now = time.monotonic()
        if now - self._logged_at < MALFORMED_LOG_SECONDS:
            self._unlogged += 1
            return
        more = f" (and {self._unlogged} more since the last report)" if self._unlogged else ""
        log.warning("Kite ticker sent malformed data: %s%s; %d so far", why, more, self.malformed)
        self._logged_at, self._unlogged = now, 0

    def _misfit(self, token: int, length: int) -> None:
        """A packet whose token is not ours in this layout: late (unsubscribed), a stranger,
        or a size its segment cannot have."""
        sub = self.subs.get(token)
        if sub is not None:
            sizes = "8, 28 or 32" if token & 0xFF == INDICES_SEGMENT else "8, 44 or 184"
            self.bad(f"a {length}-byte packet for {sub[0]}, whose packets are {sizes} bytes; skipped")
        elif token not in self.retired:
            self.bad(f"a packet for token {token}, which is not subscribed; skipped")

    def parse(self, data: bytes, arrival_ns: int) -> list[MarketEvent]:
        """Parse one binary message: int16 count, then per packet int16 length + packet."""
        events: list[MarketEvent] = []
        n = len(data)
        if n < 2:  # a heartbeat
            return events
        # the structure first, before anything is applied: the lengths must tile the message.
        # Packets of one size are checked by striding over the length fields, mixed sizes
        # (indices among stocks) by a regular expression, both at C speed; only a message
        # that fails both (a fault, or a packet of an unknown size) is walked in Python.
        if n >= 4:
            count, length = _U16X2(data, 0)  # the count and the first packet's length
            if count == 1:
                tiled = n == length + 4
            else:
                step = length + 2
                tiled = (
                    n == 2 + count * step
                    and data[2::step].count(length >> 8) == count
                    and data[3::step].count(length & 0xFF) == count
                )
        else:
            (count,) = _U16(data, 0)
            tiled = False
        if not tiled and not tiles(data, count):
            fault = frame_fault(data, count)
            if fault is not None:
                self.bad(f"{fault}; the message was dropped whole")
                return events
        append = events.append
        stocks = self._stocks
        today = self._arrival_day
        day = today.day if today.lo <= arrival_ns < today.hi else today.of(arrival_ns)
        xday = self._exchange_day
        off = 2
        for _ in range(count):
            (length,) = _U16(data, off)
            off += 2
            if length == 44:
                tok, ltp, vol, o, h, lo, c = _QUOTE(data, off)
                sub = stocks.get(tok)
                if sub is None:
                    self._misfit(tok, length)
                elif (not 0 < lo <= ltp <= h or (o | c) < 0) and self._unusual(
                    append, sub, arrival_ns, day, (ltp, vol, o, h, lo, c)
                ):
                    pass  # skipped as impossible, or not traded yet (handled)
                else:
                    sym = sub[0]
                    div = sub[1]
                    price = ltp / div
                    last_vol = sub[2]
                    if last_vol is not None and vol > last_vol:
                        append(_new(Trade, (arrival_ns, sym, price, float(vol - last_vol))))
                    sub[2] = vol
                    sub[3] = price
                    append(
                        _new(
                            DayStats,
                            (
                                arrival_ns,
                                sym,
                                day,
                                c / div if c else None,
                                o / div if o else None,
                                h / div if h else None,
                                lo / div if lo else None,
                                price,
                                float(vol),
                            ),
                        )
                    )
            elif length == 184:
                tok, ltp, vol, o, h, lo, c, xts, bq, bp, aq, ap = _FULL(data, off)
                sub = stocks.get(tok)
                ts = xts * NS_PER_SECOND if xts else arrival_ns
                if sub is None:
                    self._misfit(tok, length)
                elif (not 0 < lo <= ltp <= h or (o | c | bp | ap) < 0) and self._unusual(
                    append, sub, ts, None, (ltp, vol, o, h, lo, c, bp, ap)
                ):
                    pass  # skipped as impossible, or not traded yet (handled)
                else:
                    sym = sub[0]
                    div = sub[1]
                    price = ltp / div
                    last_vol = sub[2]
                    if last_vol is not None and vol > last_vol:
                        append(_new(Trade, (ts, sym, price, float(vol - last_vol))))
                    sub[2] = vol
                    sub[3] = price
                    append(
                        _new(
                            DayStats,
                            (
                                ts,
                                sym,
                                xday.day if xday.lo <= ts < xday.hi else xday.of(ts),
                                c / div if c else None,
                                o / div if o else None,
                                h / div if h else None,
                                lo / div if lo else None,
                                price,
                                float(vol),
                            ),
                        )
                    )
                    if bp and ap:
                        append(_new(Quote, (ts, sym, bp / div, ap / div, float(bq), float(aq))))
            elif length == 8:
                tok, ltp = _LTP(data, off)
                sub = self.subs.get(tok)
                if sub is None:
                    self._misfit(tok, length)
                elif ltp < 0:
                    self.bad(f"a negative last price for {sub[0]}; the packet was skipped")
                elif ltp:  # 0: not traded yet, nothing to say
                    self._price_only(sub, ltp, arrival_ns, day, append)
            elif length == 28 or length == 32:
                self._index(data, off, length, arrival_ns, day, append)
            elif length >= 4:
                (tok,) = _U32(data, off)
                self.bad(f"a packet of {length} bytes (token {tok}); known sizes are 8, 28, 32, 44, 184")
            else:
                self.bad(f"a packet of {length} bytes; known sizes are 8, 28, 32, 44, 184")
            off += length
        self.packets += count
        return events

    def _unusual(
        self,
        append: Callable[[MarketEvent], None],
        sub: list[Any],
        ts: int,
        day: date | None,
        fields: tuple[int, ...],
    ) -> bool:
        """A packet that missed the fast check (0 < low <= last <= high, no negative price):
        False when it is still true (before the first trade of the day the day's fields are
        0) and the normal path may take it; True when it was dealt with here: counted and
        skipped as impossible, or, not traded yet (last price 0), published as the day's
        previous close alone."""
        fault = price_fault(*fields)
        if fault is not None:
            self.bad(f"{fault} for {sub[0]}; the packet was skipped")
            return True
        ltp, vol, c = fields[0], fields[1], fields[5]
        if ltp:
            return False
        sub[2] = vol  # 0: the volume from which the day's first trade counts
        div = sub[1]
        when = day if day is not None else self._exchange_day.of(ts)
        append(_new(DayStats, (ts, sub[0], when, c / div if c else None, None, None, None, None, 0.0)))
        return True

    def _price_only(
        self, sub: list[Any], ltp: int, ts: int, day: date, append: Callable[[MarketEvent], None]
    ) -> None:
        price = ltp / sub[1]
        last = sub[3]
        if last is None:
            append(_new(DayStats, (ts, sub[0], day, None, None, None, None, price, 0.0)))
        elif price != last:
            append(_new(Trade, (ts, sub[0], price, 0.0)))
        sub[3] = price

    def _index(
        self, data: bytes, off: int, length: int, arrival_ns: int, day: date, append: Callable[..., None]
    ) -> None:
        if length == 32:
            tok, ltp, h, lo, o, c, xts = _INDEX_FULL(data, off)
        else:
            tok, ltp, h, lo, o, c = _INDEX(data, off)
            xts = 0
        sub = self._indices.get(tok)
        if sub is None:
            self._misfit(tok, length)
            return
        ts = xts * NS_PER_SECOND if xts else arrival_ns
        when = self._exchange_day.of(ts) if xts else day
        if (not 0 < lo <= ltp <= h or (o | c) < 0) and self._unusual(
            append, sub, ts, when, (ltp, 0, o, h, lo, c)
        ):
            return
        div = sub[1]
        price = ltp / div
        last = sub[3]
        if last is not None and price != last:
            append(_new(Trade, (ts, sub[0], price, 0.0)))
        sub[3] = price
        stats = (
            ts,
            sub[0],
            when,
            c / div if c else None,
            o / div if o else None,
            h / div if h else None,
            lo / div if lo else None,
            price,
            0.0,
        )
        append(_new(DayStats, stats))


# one packet of a known size: its int16 length, then that many bytes
_PACKET = rb"(?:\x00\x2c.{44}|\x00\xb8.{184}|\x00\x1c.{28}|\x00\x20.{32}|\x00\x08.{8})"
_TILINGS: dict[int, re.Pattern[bytes]] = {}  # packet count -> its pattern


def tiles(data: bytes, count: int) -> bool:
    """Whether `count` packets of known sizes fill the message after its count exactly."""
    pattern = _TILINGS.get(count)
    if pattern is None:
        if len(_TILINGS) >= 1024:
            _TILINGS.clear()
        pattern = _TILINGS[count] = re.compile(_PACKET + b"{%d}" % count, re.DOTALL)
    return pattern.fullmatch(data, 2) is not None


def frame_fault(data: bytes, count: int) -> str | None:
    """What is wrong with a binary message's structure, or None when its `count` packets and
    their lengths fill it exactly."""
    n = len(data)
    off = 2
    for k in range(count):
        if off + 2 > n:
            return f"the message says {count} packets but holds {k}"
        (length,) = _U16(data, off)
        off += 2 + length
        if off > n:
            return f"packet {k + 1} of {count} says {length} bytes but {n - off + length} are left"
    if off != n:
        return f"{n - off} bytes after the last of the message's {count} packets"
    return None


def price_fault(ltp: int, vol: int, o: int, h: int, lo: int, c: int, *depth: int) -> str | None:
    """Why a packet's prices cannot be true, or None; 0 means "none yet" (no trade today)."""
    if min(ltp, o, h, lo, c, *depth) < 0:
        return "a negative price"
    if not ltp:
        return "volume traded without a last price" if vol else None  # else: not traded yet
    if h and lo:
        if lo > h:
            return "a day's low above its high"
        if not lo <= ltp <= h:
            return "a last price outside the day's low-high"
    return None


# --------------------------------------------------------------------------------------------
# Instruments: the master behind a Mapping
# --------------------------------------------------------------------------------------------


class KiteInstruments(Mapping[str, Instrument]):
    """The instruments the Kite feed can stream, keyed `EXCHANGE:TRADINGSYMBOL`.

    Iteration covers the NSE/BSE equities and indices preloaded at `prepare` (the full master
    has ~100k rows, mostly derivatives) and whatever was looked up since. Any other key (an
    option, a future) is looked up in the cached master on demand, and a miss is remembered so
    that asking again costs nothing. A bare `INFY` is not a key: symbols are canonical.
    `problem` says why there are none at all (the token was refused, the master could not be
    downloaded): what a trader is told instead of "unknown symbol"."""

    def __init__(
        self,
        preloaded: dict[str, KiteInstrument],
        lookup: Callable[[str], KiteInstrument | None],
        problem: str = "",
    ):
        self._kite = preloaded
        self._lookup = lookup
        self.problem = problem
        self._made: dict[str, Instrument] = {}
        self._missing: set[str] = set()

    def kite(self, symbol: str) -> KiteInstrument | None:
        ki = self._kite.get(symbol)
        if ki is not None or symbol in self._missing:
            return ki
        if ":" in symbol and symbol == symbol.strip().upper():
            ki = self._lookup(symbol)
        if ki is None or ki.symbol != symbol:
            self._missing.add(symbol)
            return None
        self._kite[symbol] = ki
        return ki

    def __getitem__(self, symbol: str) -> Instrument:
        inst = self._made.get(symbol)
        if inst is None:
            ki = self.kite(symbol) if isinstance(symbol, str) else None
            if ki is None:
                raise KeyError(symbol)
            inst = self._made[symbol] = ki.instrument()
        return inst

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and self.kite(symbol) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._kite))

    def __len__(self) -> int:
        return len(self._kite)


_PRELOAD_SQL = """
    SELECT instrument_token, exchange, tradingsymbol, name, tick_size, lot_size, instrument_type,
           segment, expiry
    FROM kite_instruments
    WHERE exchange IN ('NSE', 'BSE') AND (instrument_type IN ('EQ', 'INDEX') OR segment = 'INDICES')
"""


def _kite_instrument(row: tuple[Any, ...]) -> KiteInstrument:
    from decimal import Decimal, InvalidOperation

    try:
        tick = Decimal(row[4])
    except InvalidOperation:
        tick = Decimal("0.05")
    return KiteInstrument(int(row[0]), row[1], row[2], row[3], tick, int(row[5]), row[6], row[7], row[8])


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


# --------------------------------------------------------------------------------------------
# The feed
# --------------------------------------------------------------------------------------------


class KiteFeed:
    name = "kite"
    simulated = False

    def __init__(
        self,
        ctx: FeedContext,
        *,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        credential_poll: float = 5.0,
        limit_retry: float = 30.0,
        silence_timeout: float = 30.0,
        open_timeout: float = 10.0,
        history_spacing: float = 0.34,
        history_retries: int = 5,
    ) -> None:
        self._bus = ctx.bus
        self._store = ctx.store
        self._cfg = ctx.config.providers.kite
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.credential_poll = credential_poll  # after a refused token: how often to look for a new one
        self.limit_retry = limit_retry
        self.silence_timeout = silence_timeout
        self.open_timeout = open_timeout
        self.history_spacing = history_spacing
        self.history_retries = history_retries
        self._parser = TickParser()
        self._status = FeedStatus(self.name, FeedState.CONNECTING)
        self._creds: credentials.Credentials | None = None
        self._expiry_note = ""
        self._fatal = ""  # set when the feed cannot stream at all (no credentials, no master)
        self._prepared = False
        self._db_lock = threading.Lock()
        self._con: Any = None
        self._master: KiteMaster | None = None
        self._instruments = KiteInstruments({}, self._lookup)
        self._ws: Any = None
        self._lost_at: datetime | None = None
        self._history: asyncio.Queue[_Backfill] = asyncio.Queue()
        self._history_blocked = ""
        self._next_history_at = 0.0
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.last_message_ns = 0  # time.monotonic_ns() of the last message, heartbeats included
        self.connections = 0
        self._retry_now = asyncio.Event()  # set by reconnect(): try again after a refused token

    # -- Feed protocol ----------------------------------------------------------------------

    @property
    def status(self) -> FeedStatus:
        return self._status

    @property
    def malformed(self) -> int:
        return self._parser.malformed

    @property
    def parser(self) -> TickParser:
        return self._parser

    def instruments(self) -> KiteInstruments:
        return self._instruments

    def subscribe(self, symbols: Iterable[str]) -> None:
        parser = self._parser
        added: list[int] = []
        for sym in symbols:
            ki = self._instruments.kite(sym)
            if ki is None:
                log.warning("Kite: %s is not in the instrument master; not streamed", sym)
                continue
            if ki.token in parser.subs:
                continue
            if len(parser.subs) >= MAX_TOKENS:
                log.warning(
                    "Kite streams at most %d instruments per connection; %s left out", MAX_TOKENS, sym
                )
                continue
            parser.add(ki.token, ki.symbol)
            added.append(ki.token)
            self._queue_first_history(ki)
        if added and self._ws is not None:
            self._send_soon([self._subscribe_msg(added), self._mode_msg(added)])

    def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone: list[int] = []
        for sym in symbols:
            ki = self._instruments.kite(sym)
            if ki is not None and ki.token in self._parser.subs:
                self._parser.remove(ki.token)
                gone.append(ki.token)
        if gone and self._ws is not None:
            self._send_soon([json.dumps({"a": "unsubscribe", "v": gone})])

    async def prepare(self) -> None:
        """Credentials, then the instrument master: cached in the store, downloaded once per IST
        day. Problems become an ERROR status with what to do; nothing raises."""
        self._prepared = True
        self._creds, why = await asyncio.to_thread(self._load_credentials)
        if self._con is None:
            self._con = self._store.cursor()
            self._master = KiteMaster(self._con)
        if self._creds is None:
            self._fail(why)
        else:
            warning = credentials.kite_expiry_warning(self._creds)
            if warning:
                log.warning("%s", warning)
            if "expired" in warning:
                self._expiry_note = warning
            await self._refresh_master()
        preloaded = await asyncio.to_thread(self._preload)
        if not preloaded and not self._fatal:
            self._fail("the Kite instrument master is empty: no instruments to stream")
        self._instruments = KiteInstruments(preloaded, self._lookup, "" if preloaded else self._fatal)

    async def run(self) -> None:
        if not self._prepared:
            await self.prepare()
        try:
            if self._fatal:
                # said again: prepare() ran before the session listened to the bus
                self._set_status(FeedState.ERROR, self._fatal)
                await asyncio.Event().wait()  # nothing to stream; the status says why
            self._http = httpx.AsyncClient(base_url=self._cfg.rest, timeout=30.0)
            self._spawn(self._history_worker())
            await self._connect_forever()
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=2.0)
            if self._http is not None:
                await self._http.aclose()
                self._http = None
            self._close_db()
            if self._status.state is not FeedState.ERROR:
                self._set_status(FeedState.STOPPED)

    # -- credentials and the master -----------------------------------------------------------

    def _load_credentials(self) -> tuple[credentials.Credentials | None, str]:
        missing = f"no Kite credentials: {LOGIN_HINT} (or set TRII_KITE_API_KEY and TRII_KITE_ACCESS_TOKEN)"
        try:
            creds = credentials.load("kite")
        except credentials.CredentialError as exc:
            log.warning("Kite credentials unavailable: %s", exc)
            return None, missing
        return creds, "" if creds is not None else missing

    def _auth_headers(self) -> dict[str, str]:
        assert self._creds is not None
        token = f"token {self._creds['api_key']}:{self._creds['access_token']}"
        return {**KITE_HEADERS, "Authorization": token}

    def _scrub(self, text: str) -> str:
        """Never let a key or token reach a status line or the log (the log also masks them)."""
        if self._creds is not None:
            for field in ("api_key", "access_token"):
                value = self._creds.get(field)
                if value:
                    text = text.replace(value, "****")
        return text

    async def _refresh_master(self) -> None:
        have = await asyncio.to_thread(self._db, lambda m: m.count())
        if not await asyncio.to_thread(self._db, lambda m: m.needs_refresh()):
            return
        problem = await self._download_master()
        if problem is None:
            return
        if have:
            log.warning("%s; using the cached instrument master (%d instruments)", problem, have)
        else:
            self._fail(problem)

    async def _download_master(self) -> str | None:
        """Download and store the master; None when done, else what went wrong."""
        url = f"{self._cfg.rest}/instruments"
        try:
            async with httpx.AsyncClient(timeout=60.0) as client:
                response = await client.get(url, headers=self._auth_headers())
        except httpx.HTTPError as exc:
            log.warning("Kite instrument master download failed: %s", type(exc).__name__, exc_info=True)
            return f"the Kite instrument master could not be downloaded ({type(exc).__name__})"
        if response.status_code != 200:
            error_type, message = kite_error(response)
            if response.status_code == 403 or error_type == "TokenException":
                return (
                    "Kite refused the access token (expired or invalid), so the instrument master "
                    f"could not be downloaded: {self._relogin()}; then start trii-term again"
                )
            return self._scrub(f"the Kite instrument master could not be downloaded: {message}")
        ctype = response.headers.get("content-type", "")
        if "csv" not in ctype:
            return f"Kite answered the instrument master download with {ctype or 'no content type'}, not CSV"
        try:
            rows = await asyncio.to_thread(self._db, lambda m: m.store_csv(response.text))
        except MasterError as exc:
            return f"the Kite instrument master was not usable: {exc}"
        log.info("Kite instrument master: %d instruments stored", rows)
        return None

    def _db(self, work: Callable[[KiteMaster], Any]) -> Any:
        """Run `work(master)` on the feed's own cursor, one thread at a time."""
        with self._db_lock:
            if self._master is None:
                raise MasterError("the Kite feed has stopped")
            return work(self._master)

    def _preload(self) -> dict[str, KiteInstrument]:
        with self._db_lock:
            if self._con is None:
                return {}
            rows = self._con.execute(_PRELOAD_SQL).fetchall()
        out: dict[str, KiteInstrument] = {}
        for row in rows:
            ki = _kite_instrument(row)
            out[ki.symbol] = ki
        return out

    def _lookup(self, symbol: str) -> KiteInstrument | None:
        try:
            return self._db(lambda m: m.lookup(symbol))  # type: ignore[no-any-return]
        except MasterError:
            return None

    def _close_db(self) -> None:
        with self._db_lock:
            if self._con is not None:
                with contextlib.suppress(Exception):
                    self._con.close()
            self._con = None
            self._master = None

    # -- the ticker ---------------------------------------------------------------------------

    def _ticker_url(self) -> str:
        assert self._creds is not None
        base = self._cfg.ticker
        sep = "&" if "?" in base else "?"
        return f"{base}{sep}api_key={self._creds['api_key']}&access_token={self._creds['access_token']}"

    def _subscribe_msg(self, tokens: list[int]) -> str:
        return json.dumps({"a": "subscribe", "v": tokens})

    def _mode_msg(self, tokens: list[int]) -> str:
        return json.dumps({"a": "mode", "v": [self._cfg.mode, tokens]})

    def backoff(self, attempt: int) -> float:
        """Jittered exponential backoff: 50-100 % of base * 2**attempt, capped at the max."""
        return min(self.backoff_max, self.backoff_base * 2 ** min(attempt, 30)) * random.uniform(0.5, 1.0)

    async def _connect_forever(self) -> None:
        attempt = 0
        while True:
            if attempt:
                await self._reload_credentials()
            self._set_status(FeedState.CONNECTING, self._expiry_note)
            floor = 0.0
            refused = False
            try:
                async with websockets.connect(
                    self._ticker_url(),
                    additional_headers=KITE_HEADERS,
                    open_timeout=self.open_timeout,
                    close_timeout=2.0,
                    max_size=16 * 1024 * 1024,
                ) as ws:
                    self.connections += 1
                    await self._on_connected(ws)
                    attempt = 0
                    reason = await self._stream(ws)
            except InvalidStatus as exc:
                status = exc.response.status_code
                refused = status == 403
                reason, floor = self._rejected(status)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                reason = f"the connection to Kite was lost (close code {code})"
            except TimeoutError:
                reason = f"the Kite ticker did not answer within {self.open_timeout:.0f}s"
            except (OSError, InvalidHandshake, InvalidURI) as exc:
                reason = f"cannot reach the Kite ticker ({type(exc).__name__})"
                log.info("Kite ticker connect failed: %s", exc)
            except Exception as exc:  # a bug must not stop the feed: log it, reconnect
                log.exception("Kite ticker failed")
                reason = f"the Kite ticker stopped unexpectedly ({type(exc).__name__}; see the log)"
            finally:
                if self._ws is not None:
                    self._lost_at = datetime.now(UTC)
                self._ws = None
            if refused:  # no retry with this token can help
                await self._wait_for_login(reason)
                attempt = 0
                continue
            delay = max(floor, self.backoff(attempt))
            attempt += 1
            reason = self._scrub(reason)
            log.warning("Kite ticker: %s; reconnecting in %.1fs", reason, delay)
            self._set_status(
                FeedState.RECONNECTING,
                f"{reason}; retrying in {delay:.0f}s",
                retry_at=time.monotonic() + delay,
            )
            await asyncio.sleep(delay)

    def _rejected(self, status: int) -> tuple[str, float]:
        if status == 403:
            note = f"; {self._expiry_note}" if self._expiry_note else ""
            return (
                f"Kite refused the access token (HTTP 403: expired or invalid{note}): {self._relogin()}",
                0.0,
            )
        if status == 429:
            return (
                "Kite refused the connection (HTTP 429): too many connections or requests — Kite "
                "allows 3 ticker connections per API key; close other Kite apps",
                self.limit_retry,
            )
        return f"the Kite ticker refused the connection (HTTP {status})", 0.0

    def _relogin(self) -> str:
        """What to do about a refused token: where the token came from decides."""
        if self._creds is not None and self._creds.source == "environment":
            return (
                "set a new TRII_KITE_ACCESS_TOKEN (the environment comes before the keyring), or "
                "unset it and log in again: `trii-term login kite`"
            )
        return "log in again: `trii-term login kite`"

    async def _wait_for_login(self, reason: str) -> None:
        """Kite refused the token: no retry with it can help (tokens expire at 6 AM IST). Say
        what to do (ERROR) and return once there is a new token (a login in another shell,
        noticed by reading the keyring every `credential_poll` s; no network) or `reconnect()`."""
        reason = self._scrub(reason)
        if self._status.state is not FeedState.ERROR or self._status.reason != reason:
            log.error("Kite ticker: %s", reason)
            self._set_status(FeedState.ERROR, reason)
        refused = self._creds
        self._retry_now.clear()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.credential_poll):
                    await self._retry_now.wait()
                    log.info("Kite ticker: connecting again, as asked")
                    return
            creds, _ = await asyncio.to_thread(self._load_credentials)
            if creds is not None and creds != refused:
                log.info("Kite ticker: a new access token; connecting again")
                await self._reload_credentials()
                return

    def reconnect(self) -> None:
        """Connect again now if the ticker waits after a refused token (a trader's action)."""
        self._retry_now.set()

    async def _reload_credentials(self) -> None:
        """A new login (`trii-term login kite` in another shell) is picked up on the next try."""
        creds, _ = await asyncio.to_thread(self._load_credentials)
        if creds is not None:
            self._creds = creds
            warning = credentials.kite_expiry_warning(creds)
            self._expiry_note = warning if "expired" in warning else ""

    async def _on_connected(self, ws: Any) -> None:
        tokens = list(self._parser.subs)
        self._ws = ws
        self._history_blocked = ""
        if tokens:
            await ws.send(self._subscribe_msg(tokens))
            await ws.send(self._mode_msg(tokens))
        if self._lost_at is not None:
            self._queue_gap(self._lost_at)
            self._lost_at = None
        self.last_message_ns = time.monotonic_ns()
        self._set_status(FeedState.LIVE, self._expiry_note)

    async def _stream(self, ws: Any) -> str:
        """Read until the connection drops (raises) or goes silent (returns the reason)."""
        on_message = self.on_message
        silence = self.silence_timeout
        while True:
            try:
                async with asyncio.timeout(silence):
                    message = await ws.recv()
            except TimeoutError:
                return f"no data or heartbeat from Kite for {silence:.0f}s"
            on_message(message, time.monotonic_ns())

    def on_message(self, message: bytes | str, received_ns: int) -> None:
        """One websocket message: binary market data as one MarketBatch (a heartbeat only marks
        the line alive), or a text message (order update, error, broker message)."""
        self.last_message_ns = received_ns
        if type(message) is bytes:
            events = self._parser.parse(message, time.time_ns())
            if events:
                self._bus.publish(MarketBatch(self.name, events, received_ns))
        else:
            self._on_text(message)

    def _on_text(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            self._parser.bad(f"a text message that is not JSON ({len(text)} characters)")
            return
        if not isinstance(msg, dict):
            self._parser.bad("a text message that is not a JSON object")
            return
        kind, data = msg.get("type"), msg.get("data")
        if kind == "order" and isinstance(data, dict):
            self._bus.publish(KiteOrderUpdate(data))
        elif kind == "error":
            said = self._scrub(str(data))[:200]
            log.warning("Kite ticker error: %s", said)
            self._set_status(
                self._status.state, f"Kite says: {said}", retry_at=self._status.retry_at_monotonic
            )
        elif kind == "message":
            log.info("Kite message: %s", self._scrub(str(data))[:500])
        else:
            self._parser.bad(f"a text message of type {str(kind)[:40]!r} without the expected data")

    def _send_soon(self, messages: list[str]) -> None:
        ws = self._ws

        async def send() -> None:
            try:
                for text in messages:
                    await ws.send(text)
            except ConnectionClosed:
                log.info(
                    "Kite ticker closed before a subscription change was sent; it is resent on reconnect"
                )

        self._spawn(send())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    # -- status -----------------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        self._fatal = reason
        log.error("Kite feed cannot stream: %s", reason)
        self._set_status(FeedState.ERROR, reason)

    def _set_status(self, state: FeedState, reason: str = "", *, retry_at: float | None = None) -> None:
        self._status = FeedStatus(self.name, state, reason, simulated=False, retry_at_monotonic=retry_at)
        self._bus.publish(self._status)
