"""Imported daily history: the shipped real prices, instruments, and queries over them."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

from trii_term.domain import Instrument, InstrumentKind
from trii_term.store.sql import one, transaction

log = logging.getLogger(__name__)


# The shipped files and what is in them. Symbols for the indices follow common terminal usage.
SHIPPED_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("AAPL", "Apple Inc.", "NASDAQ", "US", "USD"),
    Instrument("MSFT", "Microsoft Corporation", "NASDAQ", "US", "USD"),
    Instrument("IBM", "International Business Machines", "NYSE", "US", "USD"),
    Instrument("GOOG", "Google Inc.", "NASDAQ", "US", "USD"),
    Instrument("FB", "Facebook, Inc.", "NASDAQ", "US", "USD"),
    Instrument("SPX", "S&P 500 Index", "INDEX", "US", "USD", InstrumentKind.INDEX),
    Instrument("COMP", "NASDAQ Composite Index", "INDEX", "US", "USD", InstrumentKind.INDEX),
)


@dataclass(frozen=True)
class ShippedFile:
    name: str
    symbol: str | None  # None: the file has a Ticker column
    date_format: str
    columns: tuple[str, ...]  # in file order: read_csv maps declared columns by position


_INDEX_COLUMNS = ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume")

SHIPPED_FILES: tuple[ShippedFile, ...] = (
    ShippedFile(
        "us_stocks_daily.csv.gz",
        None,
        "%Y-%m-%d",
        ("Ticker", "Date", "Open", "High", "Low", "Close", "Volume", "Adj Close"),
    ),
    ShippedFile("sp500_daily.csv.gz", "SPX", "%m/%d/%Y", _INDEX_COLUMNS),
    ShippedFile("nasdaq_daily.csv.gz", "COMP", "%m/%d/%Y", _INDEX_COLUMNS),
)

_COLUMN_TYPES = {
    "Ticker": "VARCHAR",
    "Date": "VARCHAR",
    "Open": "DOUBLE",
    "High": "DOUBLE",
    "Low": "DOUBLE",
    "Close": "DOUBLE",
    "Adj Close": "DOUBLE",
    "Volume": "DOUBLE",
}


@dataclass(frozen=True, slots=True)
class DailyBar:
    day: date
    open: float
    high: float
    low: float
    close: float
    volume: float
    adj_close: float | None = None  # split/dividend adjusted close, when the source has one


def reference_close(prev: DailyBar, today: DailyBar | None) -> float:
    """Yesterday's close as today's reference price: adjusted for a split or dividend that takes
    effect today, as exchanges set it (AAPL's 2:1 split on 2005-02-28 halves it), so a day's
    change is not a phantom -50 %."""
    if today is None or not prev.adj_close or not today.adj_close or not prev.close or not today.close:
        return prev.close
    ratio = (prev.adj_close / prev.close) / (today.adj_close / today.close)
    if abs(ratio - 1.0) < 1e-9:
        return prev.close
    return round(prev.close * ratio, 4)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def import_shipped_history(con: duckdb.DuckDBPyConnection, data_dir: Path) -> int:
    """Import (or re-import, when a file changed) the shipped daily bars. Returns rows imported.

    Missing files are logged and skipped: the replay then knows fewer instruments."""
    upsert_instruments(con, SHIPPED_INSTRUMENTS, source="history")
    imported = 0
    done = dict(con.execute("SELECT name, sha256 FROM imports").fetchall())
    for spec in SHIPPED_FILES:
        path = data_dir / spec.name
        if not path.is_file():
            log.warning("shipped history file missing: %s", path)
            continue
        digest = _sha256(path)
        if done.get(spec.name) == digest:
            continue
        imported += _import_file(con, path, spec, digest)
    return imported


def _import_file(con: duckdb.DuckDBPyConnection, path: Path, spec: ShippedFile, digest: str) -> int:
    ticker = "Ticker" if spec.symbol is None else f"'{spec.symbol}'"
    columns = {name: _COLUMN_TYPES[name] for name in spec.columns}
    header = _read_header(path)
    if header != list(spec.columns):
        raise ValueError(f"{path.name}: expected columns {list(spec.columns)}, found {header}")
    source = f"read_csv(?, header = true, columns = {_struct(columns)})"
    with transaction(con):
        # the file is read once, into a temporary table the three statements below share
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE shipped_import AS
                SELECT {ticker} AS symbol, strptime(Date, '{spec.date_format}') AS ts, Open, High, Low,
                       Close, coalesce(Volume, 0) AS volume, "Adj Close" AS adj_close, Open IS NOT NULL
                       AND High IS NOT NULL AND Low IS NOT NULL AND Close IS NOT NULL AS priced
                FROM {source}""",
            [str(path)],
        )
        con.execute(
            "DELETE FROM bars WHERE interval = '1d' AND source = 'history' "
            "AND symbol IN (SELECT DISTINCT symbol FROM shipped_import)"
        )
        con.execute(
            """INSERT OR REPLACE INTO bars
                SELECT symbol, '1d', ts, Open, High, Low, Close, volume, adj_close, 'history'
                FROM shipped_import WHERE priced"""
        )
        row = one(
            con,
            "SELECT count(*) FROM bars WHERE interval = '1d' AND source = 'history' "
            "AND symbol IN (SELECT DISTINCT symbol FROM shipped_import)",
        )
        rows = int(row[0]) if row else 0
        con.execute("DROP TABLE shipped_import")
        con.execute("INSERT OR REPLACE INTO imports VALUES (?, ?, ?, now())", [spec.name, digest, rows])
    log.info("imported %d daily bars from %s", rows, path.name)
    return rows


def _read_header(path: Path) -> list[str]:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [c.strip() for c in f.readline().strip().split(",")]


def _struct(columns: dict[str, str]) -> str:
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"


def upsert_instruments(
    con: duckdb.DuckDBPyConnection, instruments: Iterable[Instrument], *, source: str
) -> None:
    """Insert or update instruments; rows already identical are left alone (no write)."""
    instruments = list(instruments)
    have = load_instruments(con, source=source)
    rows = [
        (
            i.symbol,
            i.name,
            i.exchange,
            i.market,
            i.currency,
            i.kind.value,
            str(i.tick_size),
            i.lot_size,
            source,
        )
        for i in instruments
        if have.get(i.symbol) != i
    ]
    # a statement per 500 rows: DuckDB's executemany prepares and runs each row on its own
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, now())"] * len(chunk))
        con.execute(f"INSERT OR REPLACE INTO instruments VALUES {values}", [v for row in chunk for v in row])


def load_instruments(con: duckdb.DuckDBPyConnection, source: str | None = None) -> dict[str, Instrument]:
    sql = "SELECT symbol, name, exchange, market, currency, kind, tick_size, lot_size FROM instruments"
    params: list[object] = []
    if source is not None:
        sql += " WHERE source = ?"
        params.append(source)
    out: dict[str, Instrument] = {}
    for sym, name, exch, market, ccy, kind, tick, lot in con.execute(sql, params).fetchall():
        out[sym] = Instrument(sym, name, exch, market, ccy, InstrumentKind(kind), Decimal(tick), int(lot))
    return out


def daily_history(
    con: duckdb.DuckDBPyConnection,
    symbols: Sequence[str],
    start: date | None = None,
    end: date | None = None,
) -> dict[str, list[DailyBar]]:
    """Imported daily bars per symbol, oldest first, optionally from `start` to `end` inclusive."""
    out: dict[str, list[DailyBar]] = {s: [] for s in symbols}
    if not symbols:
        return out
    sql = """SELECT symbol, CAST(ts AS DATE), open, high, low, close, volume, adj_close FROM bars
             WHERE interval = '1d' AND source = 'history' AND list_contains(?, symbol)"""
    params: list[object] = [list(symbols)]
    if start is not None:
        sql += " AND ts >= ?"
        params.append(start)
    if end is not None:
        sql += " AND ts <= ?"
        params.append(end)
    for sym, day, o, h, lo, c, v, adj in con.execute(sql + " ORDER BY symbol, ts", params).fetchall():
        out[sym].append(DailyBar(day, o, h, lo, c, v, adj))
    return out


def history_days(con: duckdb.DuckDBPyConnection) -> dict[str, list[date]]:
    """The trading dates of each symbol's imported daily history, oldest first."""
    rows = con.execute(
        """SELECT symbol, list(CAST(ts AS DATE) ORDER BY ts) FROM bars
           WHERE interval = '1d' AND source = 'history' GROUP BY symbol"""
    ).fetchall()
    return {sym: days for sym, days in rows}


def history_range(con: duckdb.DuckDBPyConnection) -> tuple[date | None, date | None, int]:
    row = one(
        con,
        """SELECT CAST(min(ts) AS DATE), CAST(max(ts) AS DATE), count(DISTINCT symbol)
                      FROM bars WHERE interval = '1d' AND source = 'history'""",
    )
    if not row:
        return None, None, 0
    return row[0], row[1], int(row[2])
