"""Kite's binary ticker on the wire: packets (ltp, quote, full, index) parsed into our events,
with every impossible number refused, and the order postbacks the ticker carries."""

from __future__ import annotations

import logging
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from trii_term.adapters.kite.master import price_divisor
from trii_term.domain import (
    NS_PER_SECOND,
    DayStats,
    MarketEvent,
    Quote,
    Trade,
)

log = logging.getLogger(__name__)

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
