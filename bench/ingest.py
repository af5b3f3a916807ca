"""Sustained ingest through the real store writer, against raw Arrow INSERT … SELECT.

Both write the same rows into a new file-backed DuckDB store. The writer is fed the way the
bus feeds it — MarketBatch objects of 1,000 events, as fast as the producer can hand them over —
and timed from the first batch to the last row committed. The raw baseline inserts a prebuilt
Arrow table of the same rows in 100k-row statements (the fastest path measured here), timed to
its last row committed too: neither side's time includes a checkpoint (it used to be in the
baseline's only). The two alternate which runs first.

Targets: ≥ 1,000,000 ticks/s and ≥ 50 % of the raw rate.

    python bench/ingest.py [--rows 3000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from trii_term.domain import MarketBatch, Trade
from trii_term.store.db import Store
from trii_term.store.writer import StoreWriter

BATCH = 1_000


def make_trades(n: int, symbols: int = 100) -> list[Trade]:
    rng = random.Random(7)
    names = [f"S{i:03d}" for i in range(symbols)]
    t0 = 1_362_148_200_000_000_000
    return [
        Trade(t0 + i * 1_000, names[i % symbols], 100.0 + rng.random(), float(1 + i % 500)) for i in range(n)
    ]


def run_writer(trades: list[Trade], folder: Path) -> float:
    store = Store.open(folder / "writer.duckdb")
    writer = StoreWriter(store, track_symbols=True)
    writer.start()
    batches = [trades[i : i + BATCH] for i in range(0, len(trades), BATCH)]
    start = time.perf_counter()
    for events in batches:
        writer.on_batch(MarketBatch("bench", events, time.monotonic_ns()))
    writer.stop()  # writes everything queued, then returns
    elapsed = time.perf_counter() - start
    count = store.con.execute("SELECT count(*) FROM ticks").fetchone()
    store.close()
    assert count == (len(trades),), count
    return elapsed


def run_raw(table: pa.Table, folder: Path) -> float:
    store = Store.open(folder / "raw.duckdb")
    con = store.con
    chunks = [table.slice(i, 100_000) for i in range(0, table.num_rows, 100_000)]
    start = time.perf_counter()
    for chunk in chunks:  # noqa: B007 (read by DuckDB by name)
        con.execute("INSERT INTO ticks SELECT * FROM chunk")  # each statement commits
    elapsed = time.perf_counter() - start
    count = con.execute("SELECT count(*) FROM ticks").fetchone()
    store.close()
    assert count == (table.num_rows,), count
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    trades = make_trades(args.rows)
    ts, sym, price, size = zip(*trades, strict=True)
    table = pa.table(
        {
            "ts": pa.array([t // 1000 for t in ts], pa.timestamp("us")),
            "symbol": pa.array(sym, pa.string()),
            "price": pa.array(price, pa.float64()),
            "size": pa.array(size, pa.float64()),
            "source": pa.array(["bench"] * len(ts), pa.string()),
        }
    )
    writer_rates, raw_rates = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="trii-bench-ingest-") as d:
            if run % 2 == 0:
                raw_rates.append(args.rows / run_raw(table, Path(d)))
                writer_rates.append(args.rows / run_writer(trades, Path(d)))
            else:
                writer_rates.append(args.rows / run_writer(trades, Path(d)))
                raw_rates.append(args.rows / run_raw(table, Path(d)))
    w, r = statistics.median(writer_rates), statistics.median(raw_rates)
    print(f"rows per run: {args.rows:,} (100 symbols), runs: {args.runs}, load average {load:.2f}")
    print(
        f"raw Arrow INSERT…SELECT (100k rows/statement): median {r:,.0f} rows/s  "
        f"[{min(raw_rates):,.0f}–{max(raw_rates):,.0f}]"
    )
    print(
        f"trii-term StoreWriter (1k-event batches in):   median {w:,.0f} ticks/s  "
        f"[{min(writer_rates):,.0f}–{max(writer_rates):,.0f}]"
    )
    print(
        f"writer / raw: {w / r:.0%}   targets: ≥ 1,000,000 ticks/s ({'met' if w >= 1e6 else 'NOT met'}), "
        f"≥ 50 % of raw ({'met' if w / r >= 0.5 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
