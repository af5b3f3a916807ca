"""1-minute bars for 100 symbols over 10 M ticks, through the chart's API `store.bars.bars()`.

The ticks: 5 sessions × 390 minutes × 100 symbols, ~20,000 per symbol-day, in a new file-backed
store. Baseline, same run: the plain DuckDB query the performance anchors measured
(date_trunc('minute') + arg_min/arg_max, fetched with .pl()), which returns UTC buckets and does
none of the exchange-time labelling or merging with stored bars that `bars()` does.

Target: ≤ 0.3 s warm.

    python bench/bars.py [--ticks 10000000] [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from trii_term.domain import Instrument
from trii_term.store.bars import bars
from trii_term.store.db import Store
from trii_term.store.history import upsert_instruments

BASELINE = """
SELECT symbol, date_trunc('minute', ts) AS ts,
       arg_min(price, ts) AS open, max(price) AS high, min(price) AS low,
       arg_max(price, ts) AS close, sum(size) AS volume
FROM ticks GROUP BY ALL ORDER BY symbol, ts
"""


def build(store: Store, n: int, symbols: int) -> None:
    upsert_instruments(
        store.con,
        [Instrument(f"S{i:03d}", f"Stock {i}", "NYSE", "US", "USD") for i in range(symbols)],
        source="bench",
    )
    per_session = n // 5
    # five regular sessions, 2013-03-04 .. 03-08, 09:30-16:00 EST = 14:30-21:00 UTC
    store.con.execute(
        f"""
        INSERT INTO ticks
        SELECT TIMESTAMP '2013-03-04 14:30:00' + INTERVAL (i // {per_session}) DAY
                 + to_microseconds(CAST((i % {per_session}) * (23400000000 / {per_session}) AS BIGINT)),
               'S' || lpad(CAST(i % {symbols} AS VARCHAR), 3, '0'),
               100 + (hash(i) % 1000) / 100.0,
               1 + hash(i * 7) % 300,
               'bench'
        FROM range({n}) t(i)
        """
    )
    store.con.execute("CHECKPOINT")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=10_000_000)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="trii-bench-bars-") as d:
        path = Path(d) / "bars.duckdb"
        store = Store.open(path)
        t = time.perf_counter()
        build(store, args.ticks, args.symbols)
        print(
            f"built {args.ticks:,} ticks for {args.symbols} symbols in {time.perf_counter() - t:.1f}s "
            f"({path.stat().st_size / 1e6:.0f} MB)"
        )
        store.close()

        store = Store.open(path)  # a fresh connection: the first query is "cold"
        symbols = [f"S{i:03d}" for i in range(args.symbols)]
        t = time.perf_counter()
        frame = bars(store.con, symbols, "1m")
        cold = time.perf_counter() - t
        ours, base = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            frame = bars(store.con, symbols, "1m")
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            raw = store.con.sql(BASELINE).pl()
            base.append(time.perf_counter() - t)
        assert frame.height == raw.height, (frame.height, raw.height)
        assert frame["close"].to_list() == raw["close"].to_list()
        store.close()
    mo, mb = statistics.median(ours), statistics.median(base)
    print(f"bars: {frame.height:,} one-minute bars")
    print(
        f"baseline raw DuckDB query (UTC buckets): median {mb * 1000:.0f} ms  "
        f"[{min(base) * 1000:.0f}–{max(base) * 1000:.0f}]"
    )
    print(
        f"trii-term bars(symbols, '1m') cold {cold * 1000:.0f} ms, warm median {mo * 1000:.0f} ms  "
        f"[{min(ours) * 1000:.0f}–{max(ours) * 1000:.0f}]  n={args.runs}"
    )
    print(
        f"ratio bars() / baseline: {mo / mb:.2f}   target ≤ 300 ms warm: {'met' if mo <= 0.3 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
