"""The instruments the Kite feed can stream: the instrument master behind a Mapping."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from trii_term.adapters.kite.master import KiteInstrument
from trii_term.domain import (
    Instrument,
)

# --------------------------------------------------------------------------------------------
# Instruments: the master behind a Mapping
# --------------------------------------------------------------------------------------------


class KiteInstruments(Mapping[str, Instrument]):
    """The instruments the Kite feed can stream, keyed `EXCHANGE:TRADINGSYMBOL`.

    Iteration covers the NSE/BSE equities and indices preloaded at `prepare` (the full master
    has ~100k rows, mostly derivatives) and whatever was looked up since. Any other key (an
    option, a future) is looked up in the cached master on demand, and a miss is remembered so
    that asking again costs nothing. A bare `INFY` is not a key: symbols are canonical.
    `problem` says why there are none at all (the token was refused, the master could not be
    downloaded): what a trader is told instead of "unknown symbol"."""

    def __init__(
        self,
        preloaded: dict[str, KiteInstrument],
        lookup: Callable[[str], KiteInstrument | None],
        problem: str = "",
    ):
        self._kite = preloaded
        self._lookup = lookup
        self.problem = problem
        self._made: dict[str, Instrument] = {}
        self._missing: set[str] = set()

    def kite(self, symbol: str) -> KiteInstrument | None:
        ki = self._kite.get(symbol)
        if ki is not None or symbol in self._missing:
            return ki
        if ":" in symbol and symbol == symbol.strip().upper():
            ki = self._lookup(symbol)
        if ki is None or ki.symbol != symbol:
            self._missing.add(symbol)
            return None
        self._kite[symbol] = ki
        return ki

    def __getitem__(self, symbol: str) -> Instrument:
        inst = self._made.get(symbol)
        if inst is None:
            ki = self.kite(symbol) if isinstance(symbol, str) else None
            if ki is None:
                raise KeyError(symbol)
            inst = self._made[symbol] = ki.instrument()
        return inst

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and self.kite(symbol) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._kite))

    def __len__(self) -> int:
        return len(self._kite)


_PRELOAD_SQL = """
    SELECT instrument_token, exchange, tradingsymbol, name, tick_size, lot_size, instrument_type,
           segment, expiry
    FROM kite_instruments
    WHERE exchange IN ('NSE', 'BSE') AND (instrument_type IN ('EQ', 'INDEX') OR segment = 'INDICES')
"""


def _kite_instrument(row: tuple[Any, ...]) -> KiteInstrument:
    from decimal import Decimal, InvalidOperation

    try:
        tick = Decimal(row[4])
    except InvalidOperation:
        tick = Decimal("0.05")
    return KiteInstrument(int(row[0]), row[1], row[2], row[3], tick, int(row[5]), row[6], row[7], row[8])
