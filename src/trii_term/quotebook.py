"""The quote book: last, bid/ask and the day so far, per symbol.

It listens to market batches on the bus and keeps one mutable `QuoteState` per symbol, plus the
set of symbols changed since the UI last looked. The UI never sees individual ticks: it drains
the dirty set on a timer and redraws only those rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

from trii_term.domain import DayStats, MarketBatch, Quote, Trade

FLASH_SECONDS = 0.6


class QuoteState:
    __slots__ = (
        "ask",
        "ask_size",
        "bid",
        "bid_size",
        "day",
        "direction",
        "flash",
        "flash_until",
        "high",
        "last",
        "last_size",
        "low",
        "open",
        "prev_close",
        "symbol",
        "updated_ns",
        "volume",
    )

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.last: float | None = None
        self.last_size: float = 0.0
        self.bid: float | None = None
        self.ask: float | None = None
        self.bid_size: float = 0.0
        self.ask_size: float = 0.0
        self.open: float | None = None
        self.high: float | None = None
        self.low: float | None = None
        self.volume: float = 0.0
        self.prev_close: float | None = None
        self.day = None
        self.updated_ns: int | None = None  # session-clock time of the last update (event ts)
        self.direction = 0  # +1 last trade was an uptick, -1 downtick, 0 none yet
        self.flash = 0  # +1/-1 while a price change is being flashed
        self.flash_until = 0.0  # time.monotonic() when the flash ends

    @property
    def change(self) -> float | None:
        if self.last is None or self.prev_close is None:
            return None
        return self.last - self.prev_close

    @property
    def change_pct(self) -> float | None:
        if self.last is None or not self.prev_close:
            return None
        return (self.last - self.prev_close) / self.prev_close * 100.0


class QuoteBook:
    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._states: dict[str, QuoteState] = {}
        self._dirty: set[str] = set()
        self._monotonic = monotonic

    def get(self, symbol: str) -> QuoteState | None:
        return self._states.get(symbol)

    def state(self, symbol: str) -> QuoteState:
        st = self._states.get(symbol)
        if st is None:
            st = self._states[symbol] = QuoteState(symbol)
        return st

    def symbols(self) -> list[str]:
        return list(self._states)

    def seed_last(self, last: dict[str, float]) -> None:
        """Last prices known from elsewhere (the store's last trades, when nothing streams)."""
        for symbol, price in last.items():
            self.state(symbol).last = price

    def restart_day(self, day: date) -> None:
        """A replay plays `day` again (`replay goto` the day being played, or a day resumed where
        the paper account acted): the day's figures so far are replaced by what the feed sends
        next, never added to — the volume counted twice, the high of hours gone back over."""
        for st in self._states.values():
            if st.day == day:
                st.day = None  # the next DayStats starts the day's figures afresh

    def drain_dirty(self) -> set[str]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    def on_batch(self, batch: MarketBatch) -> None:
        states = self._states
        dirty = self._dirty
        flash_end = self._monotonic() + FLASH_SECONDS
        for ev in batch.events:
            kind = type(ev)
            st = states.get(ev.symbol)
            if st is None:
                st = states[ev.symbol] = QuoteState(ev.symbol)
            if kind is Trade:
                price = ev.price
                prev = st.last
                if prev is not None and price != prev:
                    move = 1 if price > prev else -1
                    st.direction = move
                    st.flash = move
                    st.flash_until = flash_end
                st.last = price
                st.last_size = ev.size
                st.volume += ev.size
                if st.open is None:
                    st.open = price
                if st.high is None or price > st.high:
                    st.high = price
                if st.low is None or price < st.low:
                    st.low = price
            elif kind is Quote:
                st.bid, st.ask = ev.bid, ev.ask
                st.bid_size, st.ask_size = ev.bid_size, ev.ask_size
            elif kind is DayStats:
                self._apply_day(st, ev)
            else:
                continue
            st.updated_ns = ev.ts
            dirty.add(ev.symbol)

    @staticmethod
    def _apply_day(st: QuoteState, ev: DayStats) -> None:
        if st.day != ev.day:  # a new trading day: the day's figures start again
            st.day = ev.day
            st.open = st.high = st.low = None
            st.volume = 0.0
            st.direction = 0
            st.flash = 0
            st.prev_close = ev.prev_close  # None on a first day: the change is unknown, not stale
        elif ev.prev_close is not None:
            st.prev_close = ev.prev_close
        if ev.open is not None:
            st.open = ev.open
        if ev.high is not None:
            st.high = ev.high
        if ev.low is not None:
            st.low = ev.low
        if ev.last is not None:
            st.last = ev.last
        if ev.volume:
            st.volume = ev.volume
