"""The DuckDB store: schema versions, opening problems, the batched writer, bars."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from trii_term.domain import MarketBatch, Quote, Trade, to_ns
from trii_term.paths import shipped_data_dir
from trii_term.store import migrations
from trii_term.store.bars import bars
from trii_term.store.db import Store, StoreDamaged, StoreError, StoreLocked, StoreTooNew
from trii_term.store.history import history_range, import_shipped_history, load_instruments
from trii_term.store.writer import StoreWriter

from .conftest import store_held_by_another_process


def utc(*parts: int) -> int:
    return to_ns(datetime(*parts, tzinfo=UTC))  # type: ignore[misc]


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Store.open(tmp_path / "t.duckdb")
    yield s
    s.close()


# -- schema -------------------------------------------------------------------------------------


def test_new_store_is_migrated_and_reopening_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    s = Store.open(path)
    assert s.schema_version() == migrations.LATEST
    rows = s.con.execute("SELECT version, description FROM schema_version").fetchall()
    assert [r[0] for r in rows] == [m.version for m in migrations.MIGRATIONS]
    s.close()
    s2 = Store.open(path)
    assert s2.con.execute("SELECT count(*) FROM schema_version").fetchone() == (len(migrations.MIGRATIONS),)
    s2.close()


def test_a_store_from_a_newer_trii_term_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    s = Store.open(path)
    s.con.execute("INSERT INTO schema_version VALUES (99, 'from the future', now())")
    s.close()
    with pytest.raises(StoreTooNew, match="schema version 99"):
        Store.open(path)


def test_a_damaged_file_gets_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    path.write_bytes(b"this is not a database" * 500)
    with pytest.raises(StoreError) as info:
        Store.open(path)
    assert str(path) in str(info.value)
    assert "not a DuckDB database" in str(info.value) and "move it aside" in str(info.value)


def test_the_expected_schema_is_what_the_migrations_make(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "s.duckdb")
    try:
        assert migrations.schema_of(s.con) == migrations.expected_schema()
        assert migrations.schema_problems(migrations.schema_of(s.con), migrations.LATEST) == []
        # verified once, then recognised by its digest (the cheap path at every open)
        assert s.setting("store.schema_fingerprint") == migrations.fingerprint(
            migrations.schema_of(s.con), migrations.LATEST
        )
    finally:
        s.close()


def test_tables_and_columns_added_beside_trii_terms_are_allowed(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    s = Store.open(path)
    s.con.execute("CREATE TABLE my_notes (note VARCHAR)")
    s.con.execute("ALTER TABLE ticks ADD COLUMN venue VARCHAR")
    s.close()
    Store.open(path).close()
    Store.open(path, read_only=True).close()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("DROP TABLE fills", "the table fills is missing"),
        ("ALTER TABLE journal DROP COLUMN detail", "the column journal.detail is missing"),
        ("ALTER TABLE ticks ALTER COLUMN size TYPE VARCHAR", "the column ticks.size is VARCHAR, not DOUBLE"),
        ("DROP TABLE schema_version", "the table schema_version is missing"),
    ],
)
def test_a_changed_schema_is_refused_saying_what_changed(tmp_path: Path, change: str, says: str) -> None:
    path = tmp_path / "s.duckdb"
    Store.open(path).close()
    con = duckdb.connect(str(path))
    con.execute(change)
    con.close()
    for read_only in (False, True):
        with pytest.raises(StoreDamaged) as info:
            Store.open(path, read_only=read_only)
        assert says in str(info.value) and str(path) in str(info.value)
        assert "move it aside" in str(info.value)


def test_a_store_cut_short_is_refused_before_a_command_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    s = Store.open(path)
    s.con.execute(
        "INSERT INTO ticks SELECT make_timestamp(1362148200000000 + i), 'AAPL', i, 1, 'x' "
        "FROM range(500000) t(i)"
    )
    s.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreDamaged, match="cut short"):
        Store.open(path)


def test_an_empty_file_is_not_taken_for_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    path.write_bytes(b"")
    with pytest.raises(StoreDamaged, match="empty, 0 bytes"):
        Store.open(path)
    assert path.stat().st_size == 0  # left as it was


def test_a_store_held_by_another_process_says_who(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store.open(path).close()
    with store_held_by_another_process(path) as holder:
        with pytest.raises(StoreLocked) as info:
            Store.open(path)
        assert info.value.pid == holder.pid
        assert "--data-dir" in str(info.value)
        with pytest.raises(StoreLocked):  # read-only cannot share with a writer either
            Store.open(path, read_only=True)


# -- shipped history ----------------------------------------------------------------------------


def test_shipped_history_imports_once_with_the_right_columns(store: Store) -> None:
    n = import_shipped_history(store.con, shipped_data_dir())
    assert n == 3270 * 3 + 2148 + 196 + 5031 * 2
    assert import_shipped_history(store.con, shipped_data_dir()) == 0  # unchanged files: skipped
    first, last, symbols = history_range(store.con)
    assert (first, last, symbols) == (date(1999, 1, 4), date(2018, 12, 31), 7)
    row = store.con.execute(
        "SELECT open, high, low, close, volume, adj_close FROM bars "
        "WHERE symbol = 'AAPL' AND interval = '1d' AND ts = '2013-03-01'"
    ).fetchone()
    # the real AAPL bar of 2013-03-01 (volume and adjusted close in their own columns)
    assert row is not None
    assert row == pytest.approx((438.0, 438.1799, 429.98, 430.47, 19_730_300, 56.137353095488))
    spx = store.con.execute("SELECT close FROM bars WHERE symbol = 'SPX' AND ts = '1999-01-04'").fetchone()
    assert spx is not None and spx[0] == pytest.approx(1228.099976)
    instruments = load_instruments(store.con)
    assert instruments["SPX"].kind.value == "index" and instruments["AAPL"].currency == "USD"


# -- the writer ---------------------------------------------------------------------------------


def _batch(events: list, provider: str = "replay") -> MarketBatch:
    return MarketBatch(provider, events, time.monotonic_ns())


def test_writer_stores_trades_and_quotes_and_accounts_for_them(store: Store) -> None:
    w = StoreWriter(store, flush_interval=0.05)
    w.start()
    t0 = utc(2013, 3, 1, 14, 30)
    w.on_batch(
        _batch(
            [
                Quote(t0, "AAPL", 437.9, 438.0, 100, 200),
                Trade(t0 + 1_000, "AAPL", 438.0, 300),
                Trade(t0 + 2_000, "MSFT", 27.8, 50),
            ]
        )
    )
    assert w.flush()
    w.stop()
    ticks = store.con.execute("SELECT ts, symbol, price, size, source FROM ticks ORDER BY ts").fetchall()
    assert [(t[1], t[2], t[3], t[4]) for t in ticks] == [
        ("AAPL", 438.0, 300, "replay"),
        ("MSFT", 27.8, 50, "replay"),
    ]
    assert ticks[0][0] == datetime(2013, 3, 1, 14, 30, 0, 1)  # ns -> µs, UTC
    assert store.con.execute("SELECT bid, ask, bid_size, ask_size FROM quotes").fetchall() == [
        (437.9, 438.0, 100, 200)
    ]
    s = w.stats
    assert (s.trades, s.quotes, s.symbols) == (2, 1, {"AAPL", "MSFT"})
    assert s.first_ts == t0 and s.last_ts == t0 + 2_000


def test_a_tick_is_queryable_within_a_second(store: Store) -> None:
    w = StoreWriter(store)  # the default flush interval
    w.start()
    reader = store.cursor()
    try:
        start = time.monotonic()
        w.on_batch(_batch([Trade(utc(2013, 3, 1, 15), "IBM", 200.0, 10)]))
        while reader.execute("SELECT count(*) FROM ticks").fetchone() != (1,):
            assert time.monotonic() - start < 1.0, "tick not queryable within 1 s"
            time.sleep(0.01)
    finally:
        reader.close()
        w.stop()


def test_stop_writes_everything_queued(store: Store) -> None:
    w = StoreWriter(store, flush_interval=10.0)  # would not flush on its own for 10 s
    w.start()
    t0 = utc(2013, 3, 1, 14, 30)
    for i in range(20):
        w.on_batch(_batch([Trade(t0 + i * 1000 + j, "AAPL", 100.0 + j, 1) for j in range(1000)]))
    w.stop()
    assert store.con.execute("SELECT count(*) FROM ticks").fetchone() == (20_000,)


def test_a_failed_write_loses_nothing_and_is_retried(store: Store) -> None:
    w = StoreWriter(store, flush_interval=0.05)
    store.con.execute("ALTER TABLE ticks RENAME TO ticks_away")  # the next write fails for real
    w.start()
    w.on_batch(_batch([Trade(utc(2013, 3, 1, 15), "IBM", 200.0, 10)]))
    deadline = time.monotonic() + 5
    # failed, and the row back in the queue for the next try (each try takes it out a moment)
    while w.stats.failures == 0 or w.pending_rows != 1:
        assert time.monotonic() < deadline, (w.stats.failures, w.pending_rows)
        time.sleep(0.01)
    assert w.stats.last_error is not None and "ticks" in w.stats.last_error
    store.con.execute("ALTER TABLE ticks_away RENAME TO ticks")
    assert w.flush(timeout=10)
    w.stop()
    assert store.con.execute("SELECT count(*) FROM ticks").fetchone() == (1,)
    assert w.stats.last_error is None and w.stats.dropped == 0


def test_purge_replaces_one_source_in_one_range(store: Store) -> None:
    w = StoreWriter(store, flush_interval=0.05)
    w.start()
    t0, t1 = utc(2013, 3, 1, 14, 30), utc(2013, 3, 1, 21, 0)
    w.on_batch(_batch([Trade(t0 - 1000, "AAPL", 1.0, 1), Trade(t0, "AAPL", 2.0, 1)]))
    w.on_batch(_batch([Trade(t0 + 1000, "AAPL", 3.0, 1)], provider="alpaca"))
    w.on_batch(_batch([Trade(t1, "AAPL", 5.0, 1)]))  # the next session: outside the range
    w.purge("replay", t0, t1)
    w.on_batch(_batch([Trade(t0 + 5000, "AAPL", 4.0, 1)]))
    w.stop()
    rows = store.con.execute("SELECT price, source FROM ticks ORDER BY ts").fetchall()
    assert rows == [(1.0, "replay"), (3.0, "alpaca"), (4.0, "replay"), (5.0, "replay")]


def test_every_event_handed_over_is_accounted_for(store: Store) -> None:
    from trii_term.domain import DayStats

    w = StoreWriter(store, flush_interval=0.05)
    w.start()
    t0 = utc(2013, 3, 1, 14, 30)
    w.on_batch(_batch([DayStats(t0, "AAPL", date(2013, 3, 1), 441.4, None, None, None, None, 0.0)]))
    w.on_batch(_batch([Trade(t0, "AAPL", 438.0, 1), Quote(t0 + 1, "AAPL", 437.9, 438.1, 1, 1)]))
    w.stop()
    s = w.stats
    assert (s.received, s.trades, s.quotes, s.skipped, s.dropped) == (3, 1, 1, 1, 0)


def test_rows_that_cannot_be_written_by_stop_are_counted_as_lost(store: Store) -> None:
    w = StoreWriter(store, flush_interval=0.02)
    store.con.execute("ALTER TABLE ticks RENAME TO ticks_away")  # every write fails from now on
    w.start()
    w.on_batch(_batch([Trade(utc(2013, 3, 1, 15), "IBM", 200.0, 10)]))
    w.stop(timeout=10)
    s = w.stats
    assert s.trades == 0 and s.dropped == 1 and s.received == 1
    assert w.pending_rows == 0 and s.last_error is not None


# -- bars ---------------------------------------------------------------------------------------


def _ticks(store: Store, rows: list[tuple[int, str, float, float]]) -> None:
    w = StoreWriter(store)
    w.on_batch(_batch([Trade(*r) for r in rows]))
    w.flush()


def test_intraday_bars_from_ticks_by_hand(store: Store) -> None:
    import_shipped_history(store.con, shipped_data_dir())
    # 2013-03-04 is after the shipped stock history: only ticks make its bars
    _ticks(
        store,
        [
            (utc(2013, 3, 4, 14, 30, 5), "AAPL", 10.0, 100),  # 09:30:05 EST
            (utc(2013, 3, 4, 14, 30, 40), "AAPL", 12.0, 50),
            (utc(2013, 3, 4, 14, 30, 59), "AAPL", 9.5, 5),
            (utc(2013, 3, 4, 14, 31, 10), "AAPL", 11.0, 10),  # 09:31
            (utc(2013, 3, 4, 14, 36, 0), "AAPL", 11.5, 1),  # 09:36 (second 5m bar)
            (utc(2013, 3, 4, 15, 29, 59), "AAPL", 9.0, 7),  # 10:29:59 (still the 09:30 hour)
            (utc(2013, 3, 4, 15, 30, 0), "AAPL", 13.0, 3),  # 10:30 (the next hour)
            (utc(2013, 3, 4, 14, 30, 7), "MSFT", 27.0, 1),
        ],
    )
    m1 = bars(store.con, "AAPL", "1m")
    first = m1.row(0, named=True)
    assert first["ts"] == datetime(2013, 3, 4, 9, 30)
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (
        10.0,
        12.0,
        9.5,
        9.5,
        155.0,
    )
    assert m1["ts"].to_list()[1] == datetime(2013, 3, 4, 9, 31)
    assert set(m1["source"]) == {"ticks"}

    m5 = bars(store.con, "AAPL", "5m")
    assert m5["ts"].to_list()[:2] == [datetime(2013, 3, 4, 9, 30), datetime(2013, 3, 4, 9, 35)]
    assert m5.row(0, named=True)["close"] == 11.0

    m15 = bars(store.con, "AAPL", "15m")
    assert m15["ts"].to_list()[0] == datetime(2013, 3, 4, 9, 30)

    h1 = bars(store.con, "AAPL", "1h")
    assert h1["ts"].to_list() == [datetime(2013, 3, 4, 9, 30), datetime(2013, 3, 4, 10, 30)]
    assert h1.row(0, named=True)["close"] == 9.0 and h1.row(0, named=True)["volume"] == 173.0
    assert h1.row(1, named=True)["open"] == 13.0

    both = bars(store.con, ["MSFT", "AAPL"], "1m")
    assert both["symbol"].to_list()[0] == "AAPL" and "MSFT" in both["symbol"].to_list()

    last2 = bars(store.con, "AAPL", "1m", last=2)
    assert last2["ts"].to_list() == [datetime(2013, 3, 4, 10, 29), datetime(2013, 3, 4, 10, 30)]

    window = bars(
        store.con,
        "AAPL",
        "1m",
        start=datetime(2013, 3, 4, 14, 31, tzinfo=UTC),
        end=datetime(2013, 3, 4, 14, 40, tzinfo=UTC),
    )
    assert window["ts"].to_list() == [datetime(2013, 3, 4, 9, 31), datetime(2013, 3, 4, 9, 36)]


def test_daily_bars_merge_history_with_ticks(store: Store) -> None:
    import_shipped_history(store.con, shipped_data_dir())
    _ticks(
        store,
        [
            (utc(2013, 3, 1, 15, 0), "AAPL", 999.0, 1),  # a day the history has: history wins
            (utc(2013, 3, 4, 14, 30), "AAPL", 420.0, 10),  # the next day: from ticks
            (utc(2013, 3, 4, 20, 59), "AAPL", 425.0, 20),
            (utc(2013, 3, 5, 0, 30), "AAPL", 426.0, 5),  # 19:30 ET, post-market of 03-04
        ],
    )
    d = bars(store.con, "AAPL", "1d", start=date(2013, 2, 28))
    assert d["ts"].to_list() == [datetime(2013, 2, 28), datetime(2013, 3, 1), datetime(2013, 3, 4)]
    assert d["source"].to_list() == ["history", "history", "ticks"]
    assert d.row(1, named=True)["close"] == pytest.approx(430.47)
    assert d.row(1, named=True)["adj_close"] is not None
    last = d.row(2, named=True)
    assert (last["open"], last["high"], last["close"], last["volume"]) == (420.0, 426.0, 426.0, 35.0)


def test_bars_follow_daylight_saving_and_other_markets(store: Store) -> None:
    from trii_term.domain import Instrument
    from trii_term.store.history import upsert_instruments

    upsert_instruments(store.con, [Instrument("INFY", "Infosys", "NSE", "NSE", "INR")], source="test")
    _ticks(
        store,
        [
            (utc(2013, 3, 8, 14, 30), "IBM", 1.0, 1),  # 09:30 EST
            (utc(2013, 3, 11, 13, 30), "IBM", 2.0, 1),  # 09:30 EDT: DST began on 2013-03-10
            (utc(2013, 3, 11, 3, 45), "INFY", 3.0, 1),  # 09:15 IST
            (utc(2013, 3, 11, 4, 44), "INFY", 4.0, 1),  # 10:14 IST (same NSE hour)
        ],
    )
    h = bars(store.con, "IBM", "1h")
    assert h["ts"].to_list() == [datetime(2013, 3, 8, 9, 30), datetime(2013, 3, 11, 9, 30)]
    d = bars(store.con, "IBM", "1d")
    assert d["ts"].to_list() == [datetime(2013, 3, 8), datetime(2013, 3, 11)]
    n = bars(store.con, "INFY", "1h")
    assert n["ts"].to_list() == [datetime(2013, 3, 11, 9, 15)]
    assert n.row(0, named=True)["close"] == 4.0


def test_unknown_interval_is_refused(store: Store) -> None:
    from trii_term.store.bars import UnknownInterval

    with pytest.raises(UnknownInterval, match="1m, 5m, 15m, 1h, 1d"):
        bars(store.con, "AAPL", "2m")


def test_store_reads_leave_the_connection_usable(store: Store) -> None:
    """DuckDB 2.0 refuses con.sql() after an unfinished execute() (fetchone() does not finish
    one); every store read must leave the connection usable."""
    from trii_term.store.history import history_range
    from trii_term.watchlists import Watchlists

    def usable() -> None:
        assert store.con.sql("SELECT 42").fetchall() == [(42,)]

    import_shipped_history(store.con, shipped_data_dir())
    usable()
    lists = Watchlists(store.con)
    lists.load("Default", ["AAPL"])  # single-row reads and INSERT … RETURNING
    usable()
    lists.create("Other")
    usable()
    store.setting("watchlist.active")
    usable()
    assert store.schema_version() == migrations.LATEST
    usable()
    history_range(store.con)
    usable()


def test_writer_lag_reports_the_recent_worst(store: Store) -> None:
    w = StoreWriter(store, flush_interval=0.2)
    assert w.lag_seconds() == 0.0  # nothing written, nothing waiting
    w.start()
    try:
        w.on_batch(_batch([Trade(utc(2013, 3, 1, 15), "IBM", 200.0, 10)]))
        time.sleep(0.05)
        assert w.lag_seconds() >= 0.05  # waiting for the next flush
        assert w.flush()
        lag = w.lag_seconds()
        assert 0.0 < lag < 1.0  # just written: the commit's lag is still shown
        assert w.lag_seconds(window=0.0) == 0.0  # and it ages out
    finally:
        w.stop()


def test_writer_lag_counts_until_the_rows_are_committed(store: Store) -> None:
    """While a batch is being written its rows are not in the store yet: the lag goes on
    counting (it once read 0 ms during a slow write, then jumped)."""
    import threading

    w = StoreWriter(store, flush_interval=3600)  # no thread: flush() writes on the caller's
    start = utc(2013, 3, 1, 15)
    w.on_batch(_batch([Trade(start + k * 1000, "IBM", 200.0, 10) for k in range(300_000)]))
    writing = threading.Thread(target=w.flush)
    writing.start()
    seen: list[float] = []
    while writing.is_alive():
        lag = w.lag_seconds()
        if w.pending_rows == 0 and w.stats.trades == 0:  # taken from the queue, not committed
            seen.append(lag)
    writing.join()
    assert w.stats.trades == 300_000
    assert seen, "the write finished before it could be watched"
    assert min(seen) > 0.0


def test_caught_up_waits_for_what_was_handed_over_and_no_longer(store: Store) -> None:
    w = StoreWriter(store, flush_interval=3600)  # writes only when asked
    w.start()
    try:
        assert w.caught_up(timeout=1.0)  # nothing waiting: at once
        w.on_batch(_batch([Trade(utc(2013, 3, 1, 15), "IBM", 200.0, 10)]))
        assert w.caught_up()
        assert w.stats.trades == 1
        assert store.con.execute("SELECT count(*) FROM ticks").fetchone() == (1,)
    finally:
        w.stop()


def test_bars_can_be_limited_to_a_source(store: Store) -> None:
    w = StoreWriter(store)
    t0 = utc(2013, 3, 4, 14, 30)
    w.on_batch(_batch([Trade(t0, "AAPL", 10.0, 1)], provider="replay"))
    w.on_batch(_batch([Trade(t0 + 10**9, "AAPL", 20.0, 1)], provider="alpaca"))
    w.flush()
    both = bars(store.con, "AAPL", "1m")
    assert both.row(0, named=True)["close"] == 20.0
    live = bars(store.con, "AAPL", "1m", sources=["alpaca"])
    assert (live.row(0, named=True)["open"], live.height) == (20.0, 1)
    assert bars(store.con, "AAPL", "1m", sources=[]).height == 0


def test_close_waits_for_a_reader_on_another_thread(tmp_path: Path) -> None:
    """A chart loading bars on a worker thread while the trader quits: the store closes after
    the read, cleanly (DuckDB refuses to close a connection under a running query)."""
    import threading

    store = Store.open(tmp_path / "s.duckdb")
    started = threading.Event()
    result: list[object] = []

    def read() -> None:
        with store.reader() as con:
            started.set()
            result.append(con.execute("SELECT count(*) FROM range(300000000)").fetchall()[0][0])

    t = threading.Thread(target=read)
    t.start()
    assert started.wait(5)
    store.close()  # must not raise, must not cut the read short
    t.join(10)
    assert result == [300000000]
    with pytest.raises(StoreError, match="closed"), store.reader():
        pass


def test_an_event_the_store_cannot_hold_is_dropped_alone_and_later_rows_are_written(store: Store) -> None:
    """Found: a price of 10**20 (valid JSON from a provider) could never be written, so its batch
    was retried for ever and every later tick waited behind it."""
    w = StoreWriter(store, flush_interval=0.05)
    w.start()
    good = [Trade(utc(2013, 3, 1, 15, 0, i), "IBM", 200.0 + i, 10) for i in range(5)]
    w.on_batch(_batch([*good[:2], Trade(utc(2013, 3, 1, 15, 0, 9), "IBM", 10**20, 1), *good[2:]]))  # type: ignore[arg-type]
    assert w.flush(timeout=10)
    w.on_batch(_batch([Trade(utc(2013, 3, 1, 15, 1), "IBM", 201.0, 10)]))
    assert w.flush(timeout=10)
    w.stop()
    assert store.con.execute("SELECT count(*) FROM ticks").fetchone() == (6,)
    assert w.stats.dropped == 1 and w.stats.trades == 6 and w.stats.last_error is None


def test_recording_does_not_import_pandas_and_pandas_still_imports(tmp_path: Path) -> None:
    """Found: the writer's first Arrow column imported pandas (pyarrow asks whether a list is a
    pandas object): 0.2 s in every process that records. In a fresh process: ticks, quotes and
    bars are written, pandas is not imported, and it still can be afterwards."""
    import subprocess
    import sys

    code = """
import sys
from trii_term.domain import Bar, MarketBatch, Quote, Trade
from trii_term.store.db import Store
from trii_term.store.writer import StoreWriter
store = Store.open(__import__("pathlib").Path(sys.argv[1]))
w = StoreWriter(store, flush_interval=0.05)
w.start()
ns = 1_362_150_000_123_456_789
w.on_batch(MarketBatch("replay", [Trade(ns, "IBM", 201.5, 10), Quote(ns, "IBM", 201.4, 201.6, 3, 4),
                                   Bar(ns, "IBM", "1m", 201.0, 202.0, 200.5, 201.5, 1000.0)], 0))
assert w.flush(timeout=10)
w.stop()
print(store.con.execute("SELECT count(*) FROM ticks").fetchone()[0],
      store.con.execute("SELECT count(*) FROM quotes").fetchone()[0],
      store.con.execute("SELECT epoch_us(ts) FROM ticks").fetchone()[0],
      "pandas" in sys.modules)
import pandas
print(bool(pandas.__version__))
"""
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "s.duckdb")], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1", "1362150000123456", "False", "True"]
