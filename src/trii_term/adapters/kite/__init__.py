"""Zerodha Kite: NSE and BSE. Market data from the binary ticker, candles and the instrument
master over REST, orders through kiteconnect, order postbacks over the ticker.

    wire.py          the ticker's binary packets and order postbacks
    feed.py          the market-data feed (entry point `trii_term.feeds: kite`)
    candles.py       REST candles: first history and gaps
    instruments.py   the instruments the feed can stream
    master.py        Kite's instrument master (tick and lot sizes), cached in the store
    broker.py        the live broker (entry point `trii_term.brokers: kite`)
    order_json.py    Kite's order JSON as our records
    token.py         the access token's expiry
    settings.py      [providers.kite] and [brokers.kite]
    login.py         `trii-term login kite`

This module declares the venue to the core (`VENUE`, `BROKER`) and imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from trii_term.adapters.kite.settings import KiteBrokerConfig, KiteProviderConfig
from trii_term.venues import CredentialSpec, Venue

if TYPE_CHECKING:
    from trii_term.bus import Bus
    from trii_term.config import Config
    from trii_term.domain import Instrument
    from trii_term.store.db import Store

NAME = "kite"


def _login(config: Any, ask: Any, *, live: bool = False) -> int:
    from trii_term.adapters.kite.login import login

    return login(config, ask, live=live)


def _token_detail(values: Mapping[str, str]) -> str:
    from trii_term.adapters.kite.token import token_detail

    return token_detail(values)


VENUE = Venue(
    NAME,
    provider_settings=KiteProviderConfig,
    broker_settings=KiteBrokerConfig,
    credentials=(
        CredentialSpec(
            "kite",
            ("api_key", "api_secret", "access_token", "expires_at"),
            ("api_key", "access_token"),  # the expiry is advisory
            {
                "api_key": "TRII_KITE_API_KEY",
                "api_secret": "TRII_KITE_API_SECRET",
                "access_token": "TRII_KITE_ACCESS_TOKEN",
            },
            detail=_token_detail,
            expired_fix="run `trii-term login kite` for a new access token",
        ),
    ),
    login=_login,
)


class KitePlugin:
    """Orders to Zerodha Kite (always the live account: Kite has no paper trading)."""

    name = NAME
    live = True

    def label(self, config: Config) -> str:
        return f"{NAME} (live account)"

    def tag(self, config: Config) -> str:
        return ""

    def mode(self, config: Config) -> str:
        return ""

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
        from trii_term.adapters.kite.broker import KiteBroker
        from trii_term.adapters.kite.token import kite_expiry_warning

        creds = credentials.require("kite")
        warning = kite_expiry_warning(creds)
        if warning:
            warn(warning)
        settings: KiteBrokerConfig = config.brokers.kite
        provider: KiteProviderConfig = config.providers.kite
        return KiteBroker(
            store,
            settings=settings,
            rest_root=settings.root or provider.rest,
            credentials=creds,
            clock_ns=clock_ns,
            dispatch=dispatch,
        )

    def listen(self, broker: Any, bus: Bus) -> list[Callable[[], None]]:
        """Kite's order postbacks arrive through the ticker (the feed publishes them)."""
        from trii_term.adapters.kite.wire import KiteOrderUpdate

        return [bus.subscribe(KiteOrderUpdate, lambda u: broker.on_order_update(u.data))]


BROKER = KitePlugin()
