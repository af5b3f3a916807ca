"""Market-data providers behind one small protocol, found by name.

Every feed is registered under the entry-point group `trii_term.feeds` (name -> class): the
replay feed by trii-term, each venue's by its package (`adapters/<venue>/`), and a third party's
the same way, as harlequin finds its database adapters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from trii_term import venues
from trii_term.domain import FeedStatus, Instrument

if TYPE_CHECKING:
    from trii_term.bus import Bus
    from trii_term.clock import SessionClock
    from trii_term.config import Config
    from trii_term.store.db import Store

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = venues.FEED_GROUP


@dataclass
class FeedContext:
    """What a feed is given: where to publish, the clock, its settings, and the store for
    reading history (never for writing: the store writer listens to the bus)."""

    bus: Bus
    clock: SessionClock
    config: Config
    store: Store
    data_dir: Path
    # replay: why going back to a day would put new orders before the paper account's latest ones
    rewind_problem: Callable[[date], str | None] | None = None
    # replay: the market instant of the paper account's latest fill or order change (a replay
    # never starts before it)
    replay_floor: Callable[[], int | None] | None = None


@runtime_checkable
class Feed(Protocol):
    name: str
    simulated: bool

    @property
    def status(self) -> FeedStatus: ...

    def instruments(self) -> dict[str, Instrument]:
        """The instruments this feed can stream, by symbol."""
        ...

    def subscribe(self, symbols: Iterable[str]) -> None: ...

    def unsubscribe(self, symbols: Iterable[str]) -> None: ...

    async def prepare(self) -> None:
        """Blocking set-up that must finish before `run` (history, instrument lists)."""
        ...

    async def run(self) -> None:
        """Stream until cancelled. Publishes MarketBatch and FeedStatus on the bus."""
        ...


def instruments_problem(instruments: Mapping[str, Instrument]) -> str:
    """Why a feed knows no instruments at all, or "": a feed whose instrument list could not be
    read (its token was refused, say) sets `problem` on the mapping it hands out, and a symbol
    looked up in it is then answered with that reason and what to do, never "unknown symbol"."""
    problem = getattr(instruments, "problem", "")
    return problem if isinstance(problem, str) else ""


class UnknownFeed(LookupError):
    pass


def available_feeds() -> list[str]:
    return venues.names(ENTRY_POINT_GROUP)


def feed_class(name: str) -> type:
    ep = venues.entry(ENTRY_POINT_GROUP, name)
    if ep is None:
        raise UnknownFeed(
            f"no market-data provider named {name!r} is installed; available: {', '.join(available_feeds())}"
        )
    try:
        return ep.load()
    except Exception as exc:  # a broken plug-in: say which, never a traceback
        log.exception("provider %s (%s) failed to load", name, ep.value)
        raise UnknownFeed(
            f"the provider {name!r} is installed but cannot be loaded ({type(exc).__name__}: {exc}); "
            f"reinstall the package that provides it, or choose another provider"
        ) from exc
