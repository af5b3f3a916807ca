"""A third-party provider whose stream dies: one trade, then the connection fails."""

from __future__ import annotations

import time
from collections.abc import Iterable

from trii_term.domain import FeedState, FeedStatus, Instrument, MarketBatch, Trade


class BrokenFeed:
    name = "broken"
    simulated = False

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        self._bus = ctx.bus
        self._status = FeedStatus(self.name, FeedState.CONNECTING)

    @property
    def status(self) -> FeedStatus:
        return self._status

    def instruments(self) -> dict[str, Instrument]:
        return {"AAPL": Instrument("AAPL", "Apple Inc.", "NASDAQ", "US", "USD")}

    def subscribe(self, symbols: Iterable[str]) -> None: ...

    def unsubscribe(self, symbols: Iterable[str]) -> None: ...

    async def prepare(self) -> None: ...

    async def run(self) -> None:
        self._bus.publish(FeedStatus(self.name, FeedState.LIVE))
        self._bus.publish(
            MarketBatch(self.name, [Trade(time.time_ns(), "AAPL", 100.0, 1)], time.monotonic_ns())
        )
        raise ConnectionError("the provider closed the connection")
