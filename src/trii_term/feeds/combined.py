"""Several live providers as one feed: `feed.provider = ["alpaca", "kite"]` streams AAPL from
Alpaca and NSE:INFY from Kite into one watchlist.

Each symbol goes to the first provider that knows it (in the order configured). Market data is
published by the providers themselves, under their own names (the store records which provider
each row came from). Their states are combined into one status for the status bar: the worst
state wins, and its reason names the provider ("kite: token expired …").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from trii_term.domain import FeedState, FeedStatus, Instrument
from trii_term.feeds import Feed, FeedContext, instruments_problem

log = logging.getLogger(__name__)

# worst first: the combined state is the first of these any provider is in
SEVERITY = (
    FeedState.ERROR,
    FeedState.RECONNECTING,
    FeedState.STALE,
    FeedState.CONNECTING,
    FeedState.PAUSED,
    FeedState.ENDED,
    FeedState.STOPPED,
    FeedState.LIVE,
)


class _StatusBus:
    """What a provider inside a combined feed publishes to: everything goes to the real bus,
    except its FeedStatus, which the combined feed merges with the others'."""

    def __init__(self, bus: Any, on_status: Any) -> None:
        self._bus = bus
        self._on_status = on_status
        self.market_rate = bus.market_rate

    def publish(self, msg: object) -> None:
        if type(msg) is FeedStatus:
            self._on_status(msg)
        else:
            self._bus.publish(msg)

    def subscribe(self, kind: type, listener: Any) -> Any:
        return self._bus.subscribe(kind, listener)


class _Instruments(Mapping[str, Instrument]):
    """Every provider's instruments, first provider first, without copying them (a live
    instrument master holds tens of thousands)."""

    def __init__(self, maps: list[Mapping[str, Instrument]], names: list[str]) -> None:
        self._maps = maps
        self._names = names

    @property
    def problem(self) -> str:
        """Why a provider knows no instruments ("kite: Kite refused the access token …")."""
        problems = [(name, instruments_problem(m)) for name, m in zip(self._names, self._maps, strict=True)]
        return "; ".join(f"{name}: {p}" for name, p in problems if p)

    def __getitem__(self, symbol: str) -> Instrument:
        for m in self._maps:
            inst = m.get(symbol)
            if inst is not None:
                return inst
        raise KeyError(symbol)

    def __contains__(self, symbol: object) -> bool:
        return any(symbol in m for m in self._maps)

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for m in self._maps:
            for symbol in m:
                if symbol not in seen:
                    seen.add(symbol)
                    yield symbol

    def __len__(self) -> int:
        return sum(1 for _ in self)


class CombinedFeed:
    simulated = False

    def __init__(self, ctx: FeedContext, feeds: list[type]) -> None:
        self._ctx = ctx
        self._statuses: dict[str, FeedStatus] = {}
        proxy = _StatusBus(ctx.bus, self._merge)
        sub_ctx = replace(ctx, bus=proxy)
        self.feeds: list[Feed] = [cls(sub_ctx) for cls in feeds]
        self.name = "+".join(f.name for f in self.feeds)
        self._owner: dict[str, Feed] = {}
        self._status = FeedStatus(self.name, FeedState.CONNECTING)

    @property
    def status(self) -> FeedStatus:
        return self._status

    def _merge(self, status: FeedStatus) -> None:
        self._statuses[status.provider] = status
        states = [self._statuses.get(f.name) for f in self.feeds]
        known = [s for s in states if s is not None]
        worst = min(known, key=lambda s: SEVERITY.index(s.state))
        waiting = len(known) < len(self.feeds) and worst.state is FeedState.LIVE
        state = FeedState.CONNECTING if waiting else worst.state
        reasons = [f"{s.provider}: {s.reason}" for s in known if s.reason and s.state is not FeedState.LIVE]
        retry = [s.retry_at_monotonic for s in known if s.retry_at_monotonic]
        self._status = FeedStatus(self.name, state, "; ".join(reasons), False, min(retry) if retry else None)
        self._ctx.bus.publish(self._status)

    def instruments(self) -> Mapping[str, Instrument]:
        return _Instruments([f.instruments() for f in self.feeds], [f.name for f in self.feeds])

    def _route(self, symbols: Iterable[str]) -> dict[Feed, list[str]]:
        out: dict[Feed, list[str]] = {}
        for symbol in symbols:
            feed = self._owner.get(symbol) or next((f for f in self.feeds if symbol in f.instruments()), None)
            if feed is None:
                log.warning("no provider of %s knows %s", self.name, symbol)
                continue
            self._owner[symbol] = feed
            out.setdefault(feed, []).append(symbol)
        return out

    def subscribe(self, symbols: Iterable[str]) -> None:
        for feed, mine in self._route(symbols).items():
            feed.subscribe(mine)

    def unsubscribe(self, symbols: Iterable[str]) -> None:
        for feed, mine in self._route(symbols).items():
            feed.unsubscribe(mine)
            for s in mine:
                self._owner.pop(s, None)

    def reconnect(self) -> None:
        """Every provider that waits after a refusal connects again now."""
        for feed in self.feeds:
            again = getattr(feed, "reconnect", None)
            if again is not None:
                again()

    async def prepare(self) -> None:
        await asyncio.gather(*(f.prepare() for f in self.feeds))

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._run_one(f), name=f"feed:{f.name}") for f in self.feeds]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_one(self, feed: Feed) -> None:
        """One provider failing does not stop the others: its error is its status."""
        try:
            await feed.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("provider %s stopped with an error", feed.name)
            self._merge(FeedStatus(feed.name, FeedState.ERROR, f"{type(exc).__name__}: {exc}"))
