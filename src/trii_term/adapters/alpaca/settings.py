"""Alpaca's settings: `[providers.alpaca]` (market data) and `[brokers.alpaca]` (orders). Each
field is a config key; `config` checks them as declared here."""

from __future__ import annotations

from dataclasses import dataclass

from trii_term import venues


@dataclass(frozen=True, slots=True)
class AlpacaProviderConfig:
    feed: str = venues.choice(
        "iex",
        "sip",
        "delayed_sip",
        "test",
        doc="Alpaca's data feed; test is the always-on test stream (symbol FAKEPACA); "
        "sip needs Algo Trader Plus.",
    )
    stream_url: str = venues.url(
        "ws", "wss", doc='The full websocket URL; "" means wss://stream.data.alpaca.markets/v2/<feed>.'
    )
    data_url: str = venues.url(
        "http", "https", doc='The REST data API (gap backfill); "" means https://data.alpaca.markets.'
    )

    @property
    def stream(self) -> str:
        return self.stream_url or f"wss://stream.data.alpaca.markets/v2/{self.feed}"

    @property
    def data(self) -> str:
        return (self.data_url or "https://data.alpaca.markets").rstrip("/")


@dataclass(frozen=True, slots=True)
class AlpacaBrokerConfig:
    paper: bool = venues.flag(
        True,
        doc="The Alpaca paper account; false is the live account (keys from trii-term login alpaca --live).",
    )
    url: str = venues.url("http", "https", doc='"" means the paper or the live trading API, per paper.')
    stream_url: str = venues.url("ws", "wss", doc='The trade_updates websocket; "" derives it from url.')

    @property
    def rest(self) -> str:
        if self.url:
            return self.url.rstrip("/")
        return "https://paper-api.alpaca.markets" if self.paper else "https://api.alpaca.markets"

    @property
    def stream(self) -> str:
        if self.stream_url:
            return self.stream_url
        base = self.rest
        scheme, _, rest = base.partition("://")
        return ("wss" if scheme == "https" else "ws") + "://" + rest + "/stream"
