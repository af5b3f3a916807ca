"""The US instruments the Alpaca feed knows: Alpaca's asset list, or any well-formed ticker."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal

from trii_term.domain import (
    US,
    Instrument,
    InstrumentKind,
)

US_TICKER = re.compile(r"^[A-Z][A-Z0-9]{0,5}([./][A-Z]{1,2})?$")  # AAPL, BRK.B, BF/B


class UsInstruments(Mapping[str, Instrument]):
    """The instruments the feed knows; when `open_ended` (Alpaca's asset list could not be
    loaded), also any well-formed US ticker, as a plain US stock in USD."""

    def __init__(self, known: dict[str, Instrument], *, open_ended: bool) -> None:
        self._known = known
        self.open_ended = open_ended

    def __getitem__(self, symbol: str) -> Instrument:
        inst = self._known.get(symbol)
        if inst is None:
            if not (self.open_ended and isinstance(symbol, str) and US_TICKER.match(symbol)):
                raise KeyError(symbol)
            inst = self._known[symbol] = _instrument(symbol, symbol, "US")
        return inst

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._known or bool(
            self.open_ended and isinstance(symbol, str) and US_TICKER.match(symbol)
        )

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._known))

    def __len__(self) -> int:
        return len(self._known)


def _instrument(symbol: str, name: str, exchange: str) -> Instrument:
    return Instrument(symbol, name, exchange, US.code, "USD", InstrumentKind.STOCK, Decimal("0.01"))
