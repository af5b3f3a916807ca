"""Broker adapters behind one protocol (`base.Broker`): `paper` (the default, offline), and the
live ones that plug into the same shape."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trii_term.config import Config
    from trii_term.domain import Instrument
    from trii_term.store.db import Store

LIVE_BROKERS = ("alpaca", "kite")


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
    from trii_term import credentials

    if name == "alpaca":
        from trii_term.adapters.alpaca.broker import AlpacaBroker

        settings = config.brokers.alpaca
        creds = credentials.require("alpaca" if settings.paper else "alpaca-live")
        broker: Any = AlpacaBroker(
            store,
            settings=settings,
            credentials=creds,
            instruments=instruments,
            clock_ns=clock_ns,
            dispatch=dispatch,
        )
    elif name == "kite":
        from trii_term.adapters.kite.broker import KiteBroker

        creds = credentials.require("kite")
        warning = credentials.kite_expiry_warning(creds)
        if warning:
            warn(warning)
        broker = KiteBroker(
            store,
            settings=config.brokers.kite,
            rest_root=config.brokers.kite.root or config.providers.kite.rest,
            credentials=creds,
            clock_ns=clock_ns,
            dispatch=dispatch,
        )
    else:
        raise config.error("brokers.default", f"unknown live broker {name!r}; use {', '.join(LIVE_BROKERS)}")
    notes = broker.start()
    return broker, list(notes or [])
