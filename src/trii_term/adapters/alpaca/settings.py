"""Alpaca's settings: `[providers.alpaca]` (market data) and `[brokers.alpaca]` (orders). Each
field is a config key; `config` checks them as declared here."""

from __future__ import annotations

from dataclasses import dataclass

from trii_term import venues


@dataclass(frozen=True, slots=True)
class AlpacaProviderConfig:
    feed: str = venues.choice("iex", "sip", "delayed_sip", "test")
    stream_url: str = venues.url(
        "ws", "wss"
    )  # full websocket URL; default wss://stream.data.alpaca.markets/v2/<feed>
    data_url: str = venues.url("http", "https")  # default https://data.alpaca.markets

    @property
    def stream(self) -> str:
        return self.stream_url or f"wss://stream.data.alpaca.markets/v2/{self.feed}"

    @property
    def data(self) -> str:
        return (self.data_url or "https://data.alpaca.markets").rstrip("/")


@dataclass(frozen=True, slots=True)
class AlpacaBrokerConfig:
    paper: bool = venues.flag(True)
    url: str = venues.url("http", "https")  # default: the paper or live trading API per `paper`
    stream_url: str = venues.url("ws", "wss")  # trade_updates websocket; default from `url`

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
