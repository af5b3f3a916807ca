"""Typed in-process publish/subscribe on the asyncio loop.

Data flows down: a feed publishes, listeners (store writer, quote book, later the paper matcher
and alerts) receive. Delivery is synchronous and in subscription order, so a listener must be
quick; one that raises is logged and counted, and never stops the others or the feed.

The bus is owned by the event loop's thread. Code on another thread hands messages over with
`loop.call_soon_threadsafe(bus.publish, msg)`.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from trii_term.domain import MarketBatch

log = logging.getLogger(__name__)

M = TypeVar("M")


class RateMeter:
    """Counts per whole second; `rate()` is the count of the last complete second."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._second = int(clock())
        self._current = 0
        self._last = 0
        self.total = 0

    def add(self, n: int) -> None:
        now = int(self._clock())
        if now != self._second:
            self._last = self._current if now == self._second + 1 else 0
            self._second = now
            self._current = 0
        self._current += n
        self.total += n

    def rate(self) -> int:
        now = int(self._clock())
        if now == self._second:
            return self._last
        if now == self._second + 1:
            return self._current
        return 0


class Bus:
    def __init__(self) -> None:
        self._subscribers: dict[type, list[Callable[[Any], None]]] = defaultdict(list)
        self.market_rate = RateMeter()
        self.listener_errors = 0

    def subscribe(self, kind: type[M], listener: Callable[[M], None]) -> Callable[[], None]:
        """Call `listener(msg)` for every published message of exactly type `kind`.
        Returns a function that unsubscribes."""
        listeners = self._subscribers[kind]
        listeners.append(listener)

        def unsubscribe() -> None:
            if listener in listeners:
                listeners.remove(listener)

        return unsubscribe

    def publish(self, msg: object) -> None:
        if type(msg) is MarketBatch:
            self.market_rate.add(len(msg.events))
        for listener in tuple(self._subscribers.get(type(msg), ())):
            try:
                listener(msg)
            except Exception:
                self.listener_errors += 1
                log.exception("bus listener %r failed on %s", listener, type(msg).__name__)
