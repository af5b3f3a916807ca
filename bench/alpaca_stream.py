"""The Alpaca stream path: frame parsing, and the whole way from socket to a queryable row.

(1) parse+publish: pre-built JSON frames (trades and quotes, 1 and 50 per frame, as Alpaca
    batches them) go through `AlpacaFeed._on_frame` into a Bus with one cheap listener. The
    baseline is `json.loads` of the same frames in the same run; the ratio says how much of the
    cost is JSON decoding itself. Target: >= 200,000 messages/s.
(2) end to end: a loopback stream server (the test fake, real websockets and JSON) sends N
    trades to a real AlpacaFeed; the Bus carries them to a StoreWriter on a DuckDB file in a
    temp dir. Rate: ticks/s from the first frame received to the last row committed. Latency per
    frame: from MarketBatch.received_ns (frame arrived) to the commit that made its rows
    queryable (the writer's flush, measured by wrapping the store connection's commit point —
    see `CommitClock`), p50/p99 over all frames.

    python bench/alpaca_stream.py [--messages 200000] [--runs 5] [--e2e-trades 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from commit_clock import CommitClock  # (bench/ is on sys.path when run as a script)

from trii_term.adapters.alpaca.feed import AlpacaFeed
from trii_term.bus import Bus
from trii_term.clock import SessionClock
from trii_term.config import parse_config
from trii_term.domain import MarketBatch
from trii_term.feeds import FeedContext
from trii_term.store.db import Store
from trii_term.store.writer import StoreWriter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes.alpaca_data import KEY, SECRET, AlpacaDataFake, AlpacaStreamFake, quote, trade

SYMBOLS = [f"S{i:03d}" for i in range(50)]
T0 = 1_700_000_000_000_000_000  # 2023-11-14


def make_frames(messages: int, seed: int = 1) -> list[str]:
    """Half the messages in single-element frames, half in 50-element frames; 60 % trades."""
    rng = random.Random(seed)
    frames: list[str] = []
    ts = T0
    made = 0

    def element() -> dict:
        nonlocal ts
        ts += rng.randrange(1_000, 5_000_000)
        sym = rng.choice(SYMBOLS)
        price = round(100 + rng.random() * 50, 2)
        if rng.random() < 0.6:
            return trade(sym, price, rng.randrange(1, 500), ts, i=rng.randrange(1, 10**9))
        return quote(sym, price, round(price + 0.01, 2), rng.randrange(1, 9), rng.randrange(1, 9), ts)

    while made < messages:
        size = 1 if (made // 50) % 2 == 0 else 50
        size = min(size, messages - made)
        frames.append(json.dumps([element() for _ in range(size)], separators=(",", ":")))
        made += size
    return frames


def make_feed(
    bus: Bus, store: Store, stream_url: str = "ws://127.0.0.1:9/v2/iex", data_url: str = "http://127.0.0.1:9"
) -> AlpacaFeed:
    """A real AlpacaFeed pointed at loopback addresses (nothing leaves the machine)."""
    config = parse_config(
        f'[feed]\nprovider = "alpaca"\n[providers.alpaca]\nstream_url = "{stream_url}"\n'
        f'data_url = "{data_url}"\n[brokers.alpaca]\nurl = "{data_url}"\n'
    )
    feed = AlpacaFeed(FeedContext(bus, SessionClock(), config, store, Path(tempfile.gettempdir())))
    feed.subscribe(SYMBOLS)
    return feed


def bench_parse(frames: list[str], messages: int, runs: int) -> None:
    store = Store.open(None)
    parse_rates, json_rates = [], []
    for _ in range(runs):
        bus = Bus()
        got = [0]

        def listener(batch: MarketBatch, got: list[int] = got) -> None:
            got[0] += len(batch.events)

        bus.subscribe(MarketBatch, listener)
        feed = make_feed(bus, store)
        start = time.perf_counter()
        for f in frames:
            json.loads(f)
        json_rates.append(messages / (time.perf_counter() - start))
        start = time.perf_counter()
        on_frame = feed._on_frame
        for f in frames:
            on_frame(f, time.monotonic_ns())
        parse_rates.append(messages / (time.perf_counter() - start))
        assert got[0] == messages and feed.malformed == 0, (got, feed.malformed)
    store.close()
    p, j = statistics.median(parse_rates), statistics.median(json_rates)
    print(f"(1) parse+publish: {messages:,} messages in {len(frames):,} frames (1 and 50 per frame)")
    print(f"    runs: {runs}, 60 % trades / 40 % quotes, 50 symbols, one listener on the bus")
    print(
        f"    json.loads only (baseline):     median {j:>12,.0f} msg/s  "
        f"[{min(json_rates):,.0f}–{max(json_rates):,.0f}]"
    )
    print(
        f"    AlpacaFeed parse + Bus publish: median {p:>12,.0f} msg/s  "
        f"[{min(parse_rates):,.0f}–{max(parse_rates):,.0f}]"
    )
    print(
        f"    parse+publish / json.loads: {p / j:.0%}   target >= 200,000 msg/s: "
        f"{'met' if p >= 200_000 else 'NOT met'}"
    )


def _stream_server(pipe, trades_n: int, per_frame: int, rate: float) -> None:  # type: ignore[no-untyped-def]
    """The stream fake in its own process (as Alpaca's server is): waits for a subscribed
    client, then sends `trades_n` trades in frames of `per_frame`, paced at `rate` trades/s
    (0: as fast as it can)."""
    rng = random.Random(3)
    frames = []
    ts = T0
    for i in range(0, trades_n, per_frame):
        elements = []
        for _ in range(min(per_frame, trades_n - i)):
            ts += 1_000_000
            elements.append(trade(rng.choice(SYMBOLS), 100 + rng.random(), 1 + rng.randrange(100), ts))
        frames.append(json.dumps(elements, separators=(",", ":")))
    with AlpacaStreamFake() as fake:
        pipe.send(fake.url)
        while not fake.conns or not fake.current.subscribed["trades"]:
            time.sleep(0.01)
        pipe.send("ready")
        pipe.recv()

        async def push() -> None:
            ws = fake.current.ws
            start = time.perf_counter()
            for n, f in enumerate(frames):
                if rate:
                    due = start + n * per_frame / rate
                    if due > time.perf_counter():
                        await asyncio.sleep(due - time.perf_counter())
                await ws.send(f)

        asyncio.run_coroutine_threadsafe(push(), fake.server.loop).result()
        pipe.send("sent")
        pipe.recv()


async def run_e2e(trades_n: int, per_frame: int, rate: float, flush: float) -> tuple[float, list[float]]:
    """One end-to-end run; (ticks/s from first frame sent to last row committed, latencies ms)."""
    import multiprocessing

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_stream_server, args=(child, trades_n, per_frame, rate))
    server.start()
    arrivals: list[tuple[int, int]] = []  # (received_ns, rows so far including this frame)
    try:
        url = parent.recv()
        with tempfile.TemporaryDirectory(prefix="trii-bench-alpaca-") as d, AlpacaDataFake() as data:
            store = Store.open(Path(d) / "e2e.duckdb")
            bus = Bus()
            writer = StoreWriter(store, flush_interval=flush)
            clock = CommitClock(writer)
            writer.start()
            seen = [0]

            def on_batch(batch: MarketBatch) -> None:
                seen[0] += len(batch.events)
                arrivals.append((batch.received_ns, seen[0]))

            bus.subscribe(MarketBatch, on_batch)
            bus.subscribe(MarketBatch, writer.on_batch)
            os.environ["TRII_ALPACA_KEY_ID"], os.environ["TRII_ALPACA_SECRET_KEY"] = KEY, SECRET
            feed = make_feed(bus, store, url, data.url)
            await feed.prepare()
            task = asyncio.create_task(feed.run())
            assert await asyncio.to_thread(parent.recv) == "ready"
            start = time.perf_counter()
            parent.send("go")
            while seen[0] < trades_n:
                await asyncio.sleep(0.002)
            await asyncio.to_thread(writer.flush)
            elapsed = time.perf_counter() - start
            rows = store.con.execute("SELECT count(*) FROM ticks WHERE source = 'alpaca'").fetchone()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            writer.stop()
            store.close()
        assert rows == (trades_n,), (rows, trades_n)
        assert await asyncio.to_thread(parent.recv) == "sent"
        parent.send("bye")
    finally:
        server.join(10)
        if server.is_alive():
            server.terminate()
    return trades_n / elapsed, clock.latencies_ms(arrivals)


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))]


def bench_e2e(trades_n: int, per_frame: int, paced_rate: float, flush: float) -> None:
    print(
        f"(2) end to end: stream server (the test fake, own process) -> websocket -> AlpacaFeed -> Bus "
        f"-> StoreWriter (DuckDB file, flush every {flush * 1000:.0f} ms) -> rows committed"
    )
    print(
        "    latency = commit that made a frame's rows queryable (time StoreWriter._drain returned) "
        "- MarketBatch.received_ns"
    )
    rate, lat = asyncio.run(run_e2e(trades_n, per_frame, 0, flush))
    print(
        f"    flat out, {trades_n:,} trades, {per_frame}/frame: {rate:,.0f} ticks/s (first frame sent to "
        f"last row committed); latency p50 {_pct(lat, 0.5):.0f} ms, p99 {_pct(lat, 0.99):.0f} ms (queueing)"
    )
    n = int(paced_rate * 5)
    _, lat = asyncio.run(run_e2e(n, per_frame, paced_rate, flush))
    print(
        f"    paced at {paced_rate:,.0f} trades/s for 5 s: latency p50 {_pct(lat, 0.5):.0f} ms, "
        f"p99 {_pct(lat, 0.99):.0f} ms (flush interval {flush * 1000:.0f} ms)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--e2e-trades", type=int, default=200_000)
    ap.add_argument("--e2e-per-frame", type=int, default=20)
    ap.add_argument("--paced-rate", type=float, default=20_000)
    ap.add_argument("--flush", type=float, default=0.25, help="writer flush interval (the session's: 0.25)")
    args = ap.parse_args()
    frames = make_frames(args.messages)
    bench_parse(frames, args.messages, args.runs)
    bench_e2e(args.e2e_trades, args.e2e_per_frame, args.paced_rate, args.flush)


if __name__ == "__main__":
    main()
