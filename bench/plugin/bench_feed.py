"""A synthetic market-data provider for benchmarks, installed as a third-party plug-in would be
(an entry point in the `trii_term.feeds` group). N symbols S000…, each printing a trade and a
quote R times a second (env TRII_BENCH_SYMBOLS, TRII_BENCH_RATE), in batches every 20 ms."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterable

from trii_term.domain import (
    FeedState,
    FeedStatus,
    Instrument,
    MarketBatch,
    Quote,
    Trade,
)

PERIOD = 0.02


class SyntheticFeed:
    name = "bench"
    simulated = False

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        self._bus = ctx.bus
        n = int(os.environ.get("TRII_BENCH_SYMBOLS", "500"))
        self.rate = float(os.environ.get("TRII_BENCH_RATE", "10"))
        self._instruments = {
            f"S{i:03d}": Instrument(f"S{i:03d}", f"Synthetic {i}", "NYSE", "US", "USD") for i in range(n)
        }
        self._subscribed: list[str] = []
        self._price = {s: 100.0 + i for i, s in enumerate(self._instruments)}
        self._status = FeedStatus(self.name, FeedState.CONNECTING)

    @property
    def status(self) -> FeedStatus:
        return self._status

    def instruments(self) -> dict[str, Instrument]:
        return self._instruments

    def subscribe(self, symbols: Iterable[str]) -> None:
        self._subscribed = sorted(set(self._subscribed) | set(symbols))

    def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = set(symbols)
        self._subscribed = [s for s in self._subscribed if s not in gone]

    async def prepare(self) -> None:
        return None

    async def run(self) -> None:
        self._status = FeedStatus(self.name, FeedState.LIVE)
        self._bus.publish(self._status)
        rng = random.Random(1)
        owed = 0.0
        next_at = time.monotonic()
        while True:
            next_at += PERIOD
            owed += len(self._subscribed) * self.rate * PERIOD
            n, owed = int(owed), owed - int(owed)
            events: list = []
            now = time.time_ns()
            for k in range(n):
                sym = self._subscribed[rng.randrange(len(self._subscribed))]
                p = max(1.0, round(self._price[sym] + rng.choice((-0.01, 0.01, -0.02, 0.02)), 2))
                self._price[sym] = p
                events.append(Trade(now + k, sym, p, float(rng.randint(1, 9) * 100)))
                events.append(Quote(now + k + 1, sym, round(p - 0.01, 2), round(p + 0.01, 2), 500.0, 700.0))
            if events:
                self._bus.publish(MarketBatch(self.name, events, time.monotonic_ns()))
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
