"""Kite's settings: `[providers.kite]` (ticker, candles, instrument master) and `[brokers.kite]`
(orders). Each field is a config key; `config` checks them as declared here."""

from __future__ import annotations

from dataclasses import dataclass

from trii_term import venues


@dataclass(frozen=True, slots=True)
class KiteProviderConfig:
    mode: str = venues.ordered_choice(
        "quote",
        ("ltp", "quote", "full"),
        doc="What each tick carries: ltp, quote, or full (adds 5-level depth: bid/ask).",
    )
    ticker_url: str = venues.url("ws", "wss", doc='The ticker websocket; "" means wss://ws.kite.trade.')
    root: str = venues.url(
        "http", "https", doc='The REST root (history, instrument master); "" means https://api.kite.trade.'
    )

    @property
    def ticker(self) -> str:
        return self.ticker_url or "wss://ws.kite.trade"

    @property
    def rest(self) -> str:
        return (self.root or "https://api.kite.trade").rstrip("/")


@dataclass(frozen=True, slots=True)
class KiteBrokerConfig:
    root: str = venues.url(
        "http",
        "https",
        doc='The Kite REST root for orders; "" means providers.kite.root, else https://api.kite.trade.',
    )
    product: str = venues.choice(
        "CNC", "MIS", "NRML", doc="Kite's product for orders: CNC (delivery), MIS (intraday) or NRML."
    )
