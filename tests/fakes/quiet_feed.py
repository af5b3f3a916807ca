"""A third-party provider (installed through a `trii_term.feeds` entry point) that sends one
trade, says it is live, then goes quiet until told to speak: how a provider looks when its
stream stalls. It runs a simulated clock set inside US market hours, so tests do not depend on
when they run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import date
from datetime import time as clock_time

from trii_term.domain import US, FeedState, FeedStatus, Instrument, MarketBatch, Trade


class QuietFeed:
    name = "quiet"
    simulated = True

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        self._bus = ctx.bus
        self._clock = ctx.clock
        self.speak = asyncio.Event()
        self._status = FeedStatus(self.name, FeedState.CONNECTING, simulated=True)

    @property
    def status(self) -> FeedStatus:
        return self._status

    def instruments(self) -> dict[str, Instrument]:
        return {"AAPL": Instrument("AAPL", "Apple Inc.", "NASDAQ", "US", "USD")}

    def subscribe(self, symbols: Iterable[str]) -> None: ...

    def unsubscribe(self, symbols: Iterable[str]) -> None: ...

    async def prepare(self) -> None:
        self._clock.set_speed(1)
        self._clock.set_time(US.at(date(2013, 3, 1), clock_time(11, 0)))

    async def run(self) -> None:
        self._status = FeedStatus(self.name, FeedState.LIVE, simulated=True)
        self._bus.publish(self._status)
        while True:
            trade = Trade(self._clock.now_ns(), "AAPL", 100.0, 1)
            self._bus.publish(MarketBatch(self.name, [trade], time.monotonic_ns()))
            self.speak.clear()
            await self.speak.wait()
