"""Kite's instrument master: the CSV dump of every instrument (token, tick size, lot size, ...),
downloaded once a day and cached in the store (`kite_instruments`). Traders type `NSE:INFY`
(or `INFY`, which means NSE); the ticker speaks instrument tokens; orders need the tick and lot.

Core module: no Textual, no network of its own (the caller downloads; see `download`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

import duckdb

from trii_term.domain import Instrument, InstrumentKind

COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)
DEFAULT_EXCHANGE = "NSE"
IST = timedelta(hours=5, minutes=30)

# the segment byte of an instrument token (token & 0xff) and the divisor of its prices in the
# ticker's packets (paise for most; CDS in 1e-7 rupees; BCD and NCO in 1e-4)
SEGMENTS = {
    1: "NSE",
    2: "NFO",
    3: "CDS",
    4: "BSE",
    5: "BFO",
    6: "BCD",
    7: "MCX",
    8: "MCXSX",
    9: "INDICES",
    12: "NCO",
}
PRICE_DIVISOR = {3: 10_000_000.0, 6: 10_000.0, 12: 10_000.0}


def price_divisor(token: int) -> float:
    return PRICE_DIVISOR.get(token & 0xFF, 100.0)


class MasterError(ValueError):
    """The instrument master could not be read; the message says what was wrong."""


@dataclass(frozen=True, slots=True)
class KiteInstrument:
    token: int
    exchange: str
    tradingsymbol: str
    name: str
    tick_size: Decimal
    lot_size: int
    instrument_type: str
    segment: str
    expiry: date | None = None

    @property
    def symbol(self) -> str:
        return f"{self.exchange}:{self.tradingsymbol}"

    def instrument(self) -> Instrument:
        index = self.segment == "INDICES" or self.instrument_type == "INDEX"
        return Instrument(
            symbol=self.symbol,
            name=self.name or self.tradingsymbol,
            exchange=self.exchange,
            market="NSE",  # NSE and BSE keep the same hours (09:15-15:30 IST)
            currency="INR",
            kind=InstrumentKind.INDEX if index else InstrumentKind.STOCK,
            tick_size=self.tick_size if self.tick_size > 0 else Decimal("0.05"),
            lot_size=max(1, self.lot_size),
        )


def split_symbol(text: str) -> tuple[str, str]:
    """`NSE:INFY` -> ("NSE", "INFY"); a bare `INFY` is on NSE."""
    text = text.strip().upper()
    exchange, sep, tradingsymbol = text.partition(":")
    if not sep:
        return DEFAULT_EXCHANGE, text
    return exchange, tradingsymbol


def ist_today(now: datetime | None = None) -> date:
    now = now or datetime.now(UTC)
    return (now.astimezone(UTC) + IST).date()


class KiteMaster:
    """The cached master in the store. Pass a connection (or a cursor for another thread)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._by_symbol: dict[str, KiteInstrument] = {}
        self._by_token: dict[int, KiteInstrument] = {}

    # -- refresh -------------------------------------------------------------------------------

    def downloaded_on(self) -> date | None:
        row = self._con.execute("SELECT max(day) FROM kite_instrument_downloads").fetchone()
        return row[0] if row and row[0] is not None else None

    def needs_refresh(self, today: date | None = None) -> bool:
        """The master is refreshed once per IST day (Kite regenerates it every morning)."""
        return self.downloaded_on() != (today or ist_today())

    def count(self) -> int:
        row = self._con.execute("SELECT count(*) FROM kite_instruments").fetchone()
        return int(row[0]) if row else 0

    def store_csv(self, text: str, day: date | None = None) -> int:
        """Replace the cached master with this CSV dump; returns the rows stored. A dump that is
        not the master (wrong header, no rows) raises MasterError and keeps the old one."""
        header = text.split("\n", 1)[0].strip().lstrip("\ufeff")
        names = [h.strip() for h in header.split(",")]
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise MasterError(
                f"the instrument master has no {', '.join(missing)} column(s); got header {header[:120]!r}"
            )
        fd, tmp = tempfile.mkstemp(suffix=".csv", prefix="kite-master-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            con = self._con
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute("DELETE FROM kite_instruments")
                con.execute(
                    """
                    INSERT OR REPLACE INTO kite_instruments
                    SELECT CAST(instrument_token AS BIGINT), CAST(exchange_token AS BIGINT),
                           tradingsymbol, coalesce(name, ''),
                           TRY_CAST(nullif(expiry, '') AS DATE),
                           coalesce(TRY_CAST(nullif(strike, '') AS DOUBLE), 0),
                           coalesce(nullif(tick_size, ''), '0.05'),
                           coalesce(TRY_CAST(nullif(lot_size, '') AS INTEGER), 1),
                           coalesce(instrument_type, ''), coalesce(segment, ''), exchange
                    FROM read_csv(?, header = true, all_varchar = true, quote = '"')
                    WHERE TRY_CAST(instrument_token AS BIGINT) IS NOT NULL
                      AND tradingsymbol IS NOT NULL AND exchange IS NOT NULL
                    """,
                    [tmp],
                )
                rows = self.count()
                if rows == 0:
                    raise MasterError("the instrument master has no instruments")
                con.execute(
                    "INSERT OR REPLACE INTO kite_instrument_downloads VALUES (?, ?, now())",
                    [day or ist_today(), rows],
                )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        except duckdb.Error as exc:
            raise MasterError(f"the instrument master could not be read ({exc})") from exc
        finally:
            os.unlink(tmp)
        self._by_symbol.clear()
        self._by_token.clear()
        return rows

    # -- lookups -------------------------------------------------------------------------------

    def _row(self, where: str, params: list[object]) -> KiteInstrument | None:
        row = self._con.execute(
            "SELECT instrument_token, exchange, tradingsymbol, name, tick_size, lot_size, "
            f"instrument_type, segment, expiry FROM kite_instruments WHERE {where} LIMIT 1",
            params,
        ).fetchone()
        if row is None:
            return None
        try:
            tick = Decimal(row[4])
        except InvalidOperation:
            tick = Decimal("0.05")
        ki = KiteInstrument(int(row[0]), row[1], row[2], row[3], tick, int(row[5]), row[6], row[7], row[8])
        self._by_symbol[ki.symbol] = ki
        self._by_token[ki.token] = ki
        return ki

    def lookup(self, symbol: str) -> KiteInstrument | None:
        """`NSE:INFY` or `INFY` (NSE)."""
        exchange, tradingsymbol = split_symbol(symbol)
        key = f"{exchange}:{tradingsymbol}"
        hit = self._by_symbol.get(key)
        if hit is not None:
            return hit
        return self._row("exchange = ? AND tradingsymbol = ?", [exchange, tradingsymbol])

    def by_token(self, token: int) -> KiteInstrument | None:
        hit = self._by_token.get(token)
        if hit is not None:
            return hit
        return self._row("instrument_token = ?", [token])

    def search(self, text: str, limit: int = 20) -> list[KiteInstrument]:
        """Instruments whose symbol or name starts with / contains `text` (for the palette)."""
        t = text.strip().upper()
        rows = self._con.execute(
            "SELECT exchange, tradingsymbol FROM kite_instruments "
            "WHERE tradingsymbol LIKE ? OR upper(name) LIKE ? "
            "ORDER BY tradingsymbol <> ?, exchange <> 'NSE', tradingsymbol LIMIT ?",
            [t + "%", "%" + t + "%", t, limit],
        ).fetchall()
        return [ki for ex, ts in rows if (ki := self.lookup(f"{ex}:{ts}")) is not None]


def canonical(symbol: str) -> str:
    """How a Kite symbol is keyed in trii-term: `EXCHANGE:TRADINGSYMBOL`."""
    exchange, tradingsymbol = split_symbol(symbol)
    return f"{exchange}:{tradingsymbol}"
