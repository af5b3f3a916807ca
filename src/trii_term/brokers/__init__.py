"""Brokers behind one protocol (`base.Broker`), found by name through the entry-point group
`trii_term.brokers`: `paper` (the default, offline) is registered by trii-term itself, the live
ones by their venue packages (`adapters/<venue>/`), and a third party registers its own the
same way. Each name points to a `BrokerPlugin`: how to build the broker and how to say in words
where orders go."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from trii_term import venues

if TYPE_CHECKING:
    from trii_term.bus import Bus
    from trii_term.config import Config
    from trii_term.domain import Instrument
    from trii_term.store.db import Store

ENTRY_POINT_GROUP = venues.BROKER_GROUP


class BrokerPlugin(Protocol):
    """What an entry point of `trii_term.brokers` names."""

    name: str
    live: bool  # False: the paper broker, which the session builds from its own state

    def label(self, config: Config) -> str:
        """Where orders go, in words ("alpaca PAPER account", "kite (live account)")."""
        ...

    def tag(self, config: Config) -> str:
        """The account after the broker's name in the status bar (" PAPER", " LIVE"), or ""."""
        ...

    def mode(self, config: Config) -> str:
        """After "Trading through NAME" once it is ready (" (paper account)"), or ""."""
        ...

    def open(
        self,
        store: Store,
        config: Config,
        *,
        instruments: Mapping[str, Instrument],
        clock_ns: Callable[[], int],
        dispatch: Callable[[Callable[[], None]], Any],
        warn: Callable[[str], None],
    ) -> Any:
        """Build the live broker from the config and the keyring (not started yet). Blocking.
        Raises CredentialError (no or refused credentials: the message says how to log in)."""
        ...

    def listen(self, broker: Any, bus: Bus) -> list[Callable[[], None]]:
        """Subscribe the started broker to what its venue publishes on the bus (Kite's order
        postbacks arrive through the feed); returns the unsubscribers."""
        ...


@dataclass(frozen=True)
class PaperPlugin:
    """The paper broker: simulated fills against the streamed quotes, state in the store."""

    name: str = "paper"
    live: bool = False

    def label(self, config: Config) -> str:
        return "the paper broker (simulated)"

    def tag(self, config: Config) -> str:
        return ""

    def mode(self, config: Config) -> str:
        return ""

    def open(self, store: Store, config: Config, **wiring: Any) -> Any:
        raise TypeError("the session builds the paper broker itself (Session._paper_broker)")

    def listen(self, broker: Any, bus: Bus) -> list[Callable[[], None]]:
        return []


PAPER = PaperPlugin()


class UnknownBroker(LookupError):
    pass


def names() -> list[str]:
    """Every broker installed, by name (the CLI's `--broker` choices): paper, alpaca, kite, …"""
    return venues.names(ENTRY_POINT_GROUP)


def plugin(name: str) -> BrokerPlugin:
    """The broker named `name`. Raises UnknownBroker with what is installed."""
    ep = venues.entry(ENTRY_POINT_GROUP, name)
    if ep is None:
        raise UnknownBroker(f"no broker named {name!r} is installed; use {', '.join(names())}")
    try:
        found = ep.load()
    except Exception as exc:  # a broken plug-in: say which, never a traceback
        import logging

        logging.getLogger(__name__).exception("broker %s (%s) failed to load", name, ep.value)
        raise UnknownBroker(
            f"the broker {name!r} is installed but cannot be loaded ({type(exc).__name__}: {exc}); "
            f"reinstall the package that provides it, or choose another broker"
        ) from exc
    return found  # an entry point's object: a BrokerPlugin by contract


def open_live_broker(
    name: str,
    store: Store,
    config: Config,
    *,
    instruments: Mapping[str, Instrument],
    clock_ns: Callable[[], int],
    dispatch: Callable[[Callable[[], None]], Any] = lambda fn: fn(),
    warn: Callable[[str], None] = lambda text: None,
) -> tuple[Any, list[str]]:
    """Build a live broker from the config and the keyring, and start it (reconcile with the
    broker, start its order updates). Blocking: call it on a worker thread. Returns the broker
    and the notes its reconciliation produced. Raises CredentialError (no or refused
    credentials: the message says how to log in) or BrokerError."""
    live = [n for n in names() if n != PAPER.name]
    try:
        found = plugin(name)
    except UnknownBroker as exc:
        raise config.error("brokers.default", f"unknown live broker {name!r}; use {', '.join(live)}") from exc
    if not found.live:
        raise config.error("brokers.default", f"unknown live broker {name!r}; use {', '.join(live)}")
    broker = found.open(
        store, config, instruments=instruments, clock_ns=clock_ns, dispatch=dispatch, warn=warn
    )
    notes = broker.start()
    return broker, list(notes or [])
