"""Alpaca: US equities. Market data from its v2 stream and data REST API, orders through
alpaca-py's TradingClient with the `trade_updates` stream.

    wire.py          the stream's frames, times and error codes
    feed.py          the market-data feed (entry point `trii_term.feeds: alpaca`)
    history.py       REST history: snapshots, minute and daily bars, gaps
    instruments.py   the US instruments the feed knows
    broker.py        the live broker (entry point `trii_term.brokers: alpaca`)
    order_json.py    Alpaca's order JSON as our records
    trade_updates.py the order-update stream
    settings.py      [providers.alpaca] and [brokers.alpaca]
    login.py         `trii-term login alpaca [--live]`

This module declares the venue to the core (`VENUE`, `BROKER`) and imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from trii_term.adapters.alpaca.settings import AlpacaBrokerConfig, AlpacaProviderConfig
from trii_term.venues import CredentialSpec, Venue

if TYPE_CHECKING:
    from trii_term.bus import Bus
    from trii_term.config import Config
    from trii_term.domain import Instrument
    from trii_term.store.db import Store

NAME = "alpaca"
_KEYS = ("key_id", "secret_key")
_ENV = {"key_id": "TRII_ALPACA_KEY_ID", "secret_key": "TRII_ALPACA_SECRET_KEY"}


def _login(config: Any, ask: Any, *, live: bool = False) -> int:
    from trii_term.adapters.alpaca.login import login

    return login(config, ask, live=live)


VENUE = Venue(
    NAME,
    provider_settings=AlpacaProviderConfig,
    broker_settings=AlpacaBrokerConfig,
    credentials=(
        CredentialSpec("alpaca", _KEYS, _KEYS, _ENV),  # the paper account
        CredentialSpec("alpaca-live", _KEYS, _KEYS, _ENV, login="alpaca --live", live_of="alpaca"),
    ),
    login=_login,
)


class AlpacaPlugin:
    """Orders to Alpaca: the paper account unless `[brokers.alpaca] paper = false`."""

    name = NAME
    live = True

    def _paper(self, config: Config) -> bool:
        settings: AlpacaBrokerConfig = config.brokers.alpaca
        return settings.paper

    def label(self, config: Config) -> str:
        return f"alpaca {'PAPER' if self._paper(config) else 'LIVE'} account"

    def tag(self, config: Config) -> str:
        return " PAPER" if self._paper(config) else " LIVE"

    def mode(self, config: Config) -> str:
        return " (paper account)" if self._paper(config) else ""

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
        from trii_term import credentials
        from trii_term.adapters.alpaca.broker import AlpacaBroker

        settings: AlpacaBrokerConfig = config.brokers.alpaca
        creds = credentials.require("alpaca" if settings.paper else "alpaca-live")
        return AlpacaBroker(
            store,
            settings=settings,
            credentials=creds,
            instruments=instruments,
            clock_ns=clock_ns,
            dispatch=dispatch,
        )

    def listen(self, broker: Any, bus: Bus) -> list[Callable[[], None]]:
        return []  # Alpaca's order updates come over the broker's own trade_updates stream


BROKER = AlpacaPlugin()
