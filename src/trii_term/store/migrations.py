"""Forward-only schema migrations. A migration, once released, is never edited: add a new one.

Conventions
- `ticks.ts` and `quotes.ts` are UTC instants (TIMESTAMP, microseconds).
- `bars.ts` is the bar's start in the instrument's exchange-local time; daily bars are labelled
  with their trading date at 00:00.
- No primary key on `ticks`/`quotes`: an index would cost the batched writer most of its speed.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import duckdb

from trii_term.store.sql import one, transaction


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[duckdb.DuckDBPyConnection], None]


def _v1(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE instruments (
            symbol     VARCHAR PRIMARY KEY,
            name       VARCHAR NOT NULL,
            exchange   VARCHAR NOT NULL,
            market     VARCHAR NOT NULL,
            currency   VARCHAR NOT NULL,
            kind       VARCHAR NOT NULL,
            tick_size  VARCHAR NOT NULL,
            lot_size   INTEGER NOT NULL,
            source     VARCHAR NOT NULL,
            updated_at TIMESTAMP NOT NULL
        );
        CREATE TABLE ticks (
            ts     TIMESTAMP NOT NULL,
            symbol VARCHAR NOT NULL,
            price  DOUBLE NOT NULL,
            size   DOUBLE NOT NULL,
            source VARCHAR NOT NULL
        );
        CREATE TABLE quotes (
            ts       TIMESTAMP NOT NULL,
            symbol   VARCHAR NOT NULL,
            bid      DOUBLE,
            ask      DOUBLE,
            bid_size DOUBLE,
            ask_size DOUBLE,
            source   VARCHAR NOT NULL
        );
        CREATE TABLE bars (
            symbol    VARCHAR NOT NULL,
            interval  VARCHAR NOT NULL,
            ts        TIMESTAMP NOT NULL,
            open      DOUBLE NOT NULL,
            high      DOUBLE NOT NULL,
            low       DOUBLE NOT NULL,
            close     DOUBLE NOT NULL,
            volume    DOUBLE NOT NULL,
            adj_close DOUBLE,
            source    VARCHAR NOT NULL,
            PRIMARY KEY (symbol, interval, ts)
        );
        CREATE TABLE imports (
            name        VARCHAR PRIMARY KEY,
            sha256      VARCHAR NOT NULL,
            rows        BIGINT NOT NULL,
            imported_at TIMESTAMP NOT NULL
        );
        CREATE SEQUENCE watchlist_ids START 1;
        CREATE TABLE watchlists (
            id          INTEGER PRIMARY KEY DEFAULT nextval('watchlist_ids'),
            name        VARCHAR NOT NULL,
            position    INTEGER NOT NULL,
            sort_column VARCHAR,
            sort_desc   BOOLEAN NOT NULL DEFAULT false,
            created_at  TIMESTAMP NOT NULL DEFAULT now()
        );
        CREATE TABLE watchlist_items (
            watchlist_id INTEGER NOT NULL,
            symbol       VARCHAR NOT NULL,
            position     INTEGER NOT NULL
        );
        CREATE TABLE settings (
            key   VARCHAR PRIMARY KEY,
            value VARCHAR NOT NULL
        );
        """
    )


def _v2(con: duckdb.DuckDBPyConnection) -> None:
    # Money and quantities are DECIMAL(38, 10): exact, and summable in SQL.
    con.execute(
        """
        CREATE TABLE orders (
            id              VARCHAR PRIMARY KEY,
            broker          VARCHAR NOT NULL,
            client_order_id VARCHAR NOT NULL,
            symbol          VARCHAR NOT NULL,
            side            VARCHAR NOT NULL,
            qty             DECIMAL(38, 10) NOT NULL,
            type            VARCHAR NOT NULL,
            tif             VARCHAR NOT NULL,
            limit_price     DECIMAL(38, 10),
            stop_price      DECIMAL(38, 10),
            trail_amount    DECIMAL(38, 10),
            trail_pct       DECIMAL(38, 10),
            take_profit     DECIMAL(38, 10),
            stop_loss       DECIMAL(38, 10),
            status          VARCHAR NOT NULL,
            filled_qty      DECIMAL(38, 10) NOT NULL,
            avg_fill_price  DECIMAL(38, 10),
            parent_id       VARCHAR,
            oco_group       VARCHAR,
            triggered       BOOLEAN NOT NULL,
            trail_stop      DECIMAL(38, 10),
            reason          VARCHAR NOT NULL,
            currency        VARCHAR NOT NULL,
            source          VARCHAR NOT NULL,
            created_at      TIMESTAMP NOT NULL,
            updated_at      TIMESTAMP NOT NULL
        );
        CREATE TABLE fills (
            broker     VARCHAR NOT NULL,
            order_id   VARCHAR NOT NULL,
            symbol     VARCHAR NOT NULL,
            side       VARCHAR NOT NULL,
            qty        DECIMAL(38, 10) NOT NULL,
            price      DECIMAL(38, 10) NOT NULL,
            commission DECIMAL(38, 10) NOT NULL,
            realized   DECIMAL(38, 10) NOT NULL,  -- P&L this fill realized (average cost)
            currency   VARCHAR NOT NULL,
            ts         TIMESTAMP NOT NULL
        );
        CREATE SEQUENCE journal_seq;
        CREATE TABLE journal (
            seq             BIGINT PRIMARY KEY DEFAULT nextval('journal_seq'),
            ts              TIMESTAMP NOT NULL,
            event           VARCHAR NOT NULL,
            broker          VARCHAR NOT NULL,
            source          VARCHAR NOT NULL,
            order_id        VARCHAR,
            client_order_id VARCHAR,
            detail          VARCHAR NOT NULL
        );
        CREATE TABLE paper_accounts (
            broker        VARCHAR PRIMARY KEY,
            currency      VARCHAR NOT NULL,
            starting_cash DECIMAL(38, 10) NOT NULL,
            cash          DECIMAL(38, 10) NOT NULL,
            realized      DECIMAL(38, 10) NOT NULL,
            fees          DECIMAL(38, 10) NOT NULL,
            next_id       BIGINT NOT NULL,
            updated_at    TIMESTAMP NOT NULL
        );
        CREATE TABLE paper_positions (
            broker   VARCHAR NOT NULL,
            symbol   VARCHAR NOT NULL,
            qty      DECIMAL(38, 10) NOT NULL,
            cost     DECIMAL(38, 10) NOT NULL,
            realized DECIMAL(38, 10) NOT NULL,
            PRIMARY KEY (broker, symbol)
        );
        """
    )


def _v3(con: duckdb.DuckDBPyConnection) -> None:
    # Live brokers: the broker's own id for an order we placed (ours is `orders.id`, sent as the
    # client order id / tag), and Kite's instrument master, refreshed once a day.
    con.execute(
        """
        ALTER TABLE orders ADD COLUMN broker_order_id VARCHAR;
        CREATE TABLE kite_instruments (
            instrument_token BIGINT NOT NULL,
            exchange_token   BIGINT NOT NULL,
            tradingsymbol    VARCHAR NOT NULL,
            name             VARCHAR NOT NULL,
            expiry           DATE,
            strike           DOUBLE NOT NULL,
            tick_size        VARCHAR NOT NULL,  -- exact decimal as text
            lot_size         INTEGER NOT NULL,
            instrument_type  VARCHAR NOT NULL,
            segment          VARCHAR NOT NULL,
            exchange         VARCHAR NOT NULL,
            PRIMARY KEY (exchange, tradingsymbol)
        );
        CREATE TABLE kite_instrument_downloads (
            day        DATE PRIMARY KEY,  -- the IST day the master was downloaded for
            rows       BIGINT NOT NULL,
            fetched_at TIMESTAMP NOT NULL
        );
        """
    )


def _v4(con: duckdb.DuckDBPyConnection) -> None:
    # The AI desk's conversations: one row per conversation, one per message. A message's
    # content blocks (text, tool_use, tool_result) are the API's JSON; times are UTC epoch ns.
    con.execute(
        """
        CREATE TABLE ai_conversations (
            id         VARCHAR PRIMARY KEY,
            title      VARCHAR NOT NULL,
            persona    VARCHAR NOT NULL,
            model      VARCHAR NOT NULL,
            created_ns BIGINT NOT NULL,
            updated_ns BIGINT NOT NULL
        );
        CREATE TABLE ai_messages (
            conversation_id    VARCHAR NOT NULL,
            seq                INTEGER NOT NULL,
            role               VARCHAR NOT NULL,
            blocks             VARCHAR NOT NULL,
            created_ns         BIGINT NOT NULL,
            usage              VARCHAR,
            input_tokens       BIGINT NOT NULL DEFAULT 0,
            output_tokens      BIGINT NOT NULL DEFAULT 0,
            cost_usd           DECIMAL(38, 10) NOT NULL DEFAULT 0,
            partial            BOOLEAN NOT NULL DEFAULT false,
            PRIMARY KEY (conversation_id, seq)
        );
        """
    )


def _v5(con: duckdb.DuckDBPyConnection) -> None:
    # The journal's ts becomes the wall clock (one clock, never backwards); the market's clock
    # (simulated in replay) is kept beside it.
    con.execute("ALTER TABLE journal ADD COLUMN market_ts TIMESTAMP")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "instruments, ticks, quotes, bars, imports, watchlists, settings", _v1),
    Migration(2, "orders, fills, journal, paper accounts and positions", _v2),
    Migration(3, "broker order ids, Kite instrument master", _v3),
    Migration(4, "AI desk conversations and messages", _v4),
    Migration(5, "journal: the market's time beside the wall clock", _v5),
)

LATEST = MIGRATIONS[-1].version


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = one(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_version'")
    if not exists or not exists[0]:
        return 0
    row = one(con, "SELECT max(version) FROM schema_version")
    return int(row[0]) if row and row[0] is not None else 0


def migrate(con: duckdb.DuckDBPyConnection, upto: int = LATEST) -> list[int]:
    """Apply every migration newer than the store's version (up to `upto`), each in its own
    transaction. Returns the versions applied."""
    con.execute(
        """CREATE TABLE IF NOT EXISTS schema_version (
               version     INTEGER NOT NULL,
               description VARCHAR NOT NULL,
               applied_at  TIMESTAMP NOT NULL DEFAULT now()
           )"""
    )
    have = current_version(con)
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version <= have or migration.version > upto:
            continue
        with transaction(con):
            migration.apply(con)
            con.execute(
                "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                [migration.version, migration.description],
            )
        applied.append(migration.version)
    return applied


# -- verifying a store's schema ---------------------------------------------------------------

Schema = dict[str, dict[str, str]]  # table -> column -> DuckDB type

_COLUMNS = (
    "SELECT table_name, column_name, data_type FROM duckdb_columns() "
    "WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal"
)


def schema_of(con: duckdb.DuckDBPyConnection) -> Schema:
    """The tables and columns a database has (its catalog: no data is read)."""
    schema: Schema = {}
    for table, column, kind in con.execute(_COLUMNS).fetchall():
        schema.setdefault(table, {})[column] = kind
    return schema


def expected_schema(version: int = LATEST) -> Schema:
    """Every table and column a store at `version` has: the migrations themselves, applied to an
    empty in-memory database (~40 ms, once per process and version), so the check can never
    disagree with what the migrations create."""
    return {table: dict(columns) for table, columns in _expected(version)}


@functools.lru_cache(maxsize=4)
def _expected(version: int) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    con = duckdb.connect(":memory:")
    try:
        migrate(con, upto=version)
        return tuple((t, tuple(cols.items())) for t, cols in sorted(schema_of(con).items()))
    finally:
        con.close()


def schema_problems(actual: Mapping[str, Mapping[str, str]], version: int) -> list[str]:
    """What a store at `version` lacks or has changed, in words ("the table journal is missing").
    Tables and columns added beside trii-term's are not problems."""
    problems: list[str] = []
    for table, columns in expected_schema(version).items():
        have = actual.get(table)
        if have is None:
            problems.append(f"the table {table} is missing")
            continue
        for column, kind in columns.items():
            if column not in have:
                problems.append(f"the column {table}.{column} is missing")
            elif have[column] != kind:
                problems.append(f"the column {table}.{column} is {have[column]}, not {kind}")
    return problems


def fingerprint(schema: Mapping[str, Mapping[str, str]], version: int) -> str:
    """A short digest of a catalog: a store whose catalog still has the digest recorded when it
    was last verified needs no comparison with `expected_schema` (the cheap path at open)."""
    text = "\n".join(f"{t}.{c}:{k}" for t in sorted(schema) for c, k in sorted(schema[t].items()))
    return hashlib.sha256(f"{version}\n{text}".encode()).hexdigest()[:32]
