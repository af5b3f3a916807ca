"""The Kite ticker path: binary parsing, and the whole way from socket to a queryable row.

(1) parse+publish: pre-built binary ticker messages go through `KiteFeed.on_message` (the
    method the websocket loop calls) into a Bus with one cheap listener. Realistic shapes:
    messages of 50 quote packets (quote mode, a busy watchlist: every packet a volume rise, so
    a Trade and a DayStats each), of 1 full packet (full mode, one symbol ticking: Trade,
    DayStats and Quote), of 50 full packets, and of 45 quote packets with 5 index packets (a
    watchlist with indices: two packet sizes, so the framing takes the slower of its checks).
    The baseline, measured in the same run, is the bare `struct.iter_unpack` of the same bytes
    (length prefix + packet per record; record by record for mixed sizes): what reading the
    numbers alone costs. Target: >= 500,000 packets/s.
(2) end to end: the loopback Kite ticker (the test fake, real websockets, in its own process as
    Kite's server is) sends N quote packets with rising volumes to a real KiteFeed; the Bus
    carries them to a StoreWriter on a DuckDB file in a temp dir. Rate: ticks/s from the first
    message sent to the last row committed. Latency per message: from MarketBatch.received_ns
    (message arrived) to the commit that made its rows queryable (see `CommitClock`).

    python bench/kite_ticker.py [--messages 4000] [--runs 5] [--e2e-ticks 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

from commit_clock import CommitClock  # (bench/ is on sys.path when run as a script)

from trii_term.adapters.kite.feed import KiteFeed
from trii_term.bus import Bus
from trii_term.clock import SessionClock
from trii_term.config import parse_config
from trii_term.domain import MarketBatch, Trade
from trii_term.feeds import FeedContext
from trii_term.store.db import Store
from trii_term.store.writer import StoreWriter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes import kite_data as kd

API_KEY, ACCESS_TOKEN = "bench-api-key", "bench-access-token"
TOKENS = [(5000 + i) << 8 | 1 for i in range(50)]  # NSE tokens (segment byte 1)
SYMBOLS = [f"NSE:BENCH{i:02d}" for i in range(50)]
INDICES = [(9000 + i) << 8 | 9 for i in range(5)]  # index tokens (segment byte 9)
MASTER = "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size," + (
    "instrument_type,segment,exchange\n"
    + "".join(
        f"{t},{t >> 8},BENCH{i:02d},BENCH {i},0.0,,0.0,0.05,1,EQ,NSE,NSE\n" for i, t in enumerate(TOKENS)
    )
)
NO_CANDLES = {"status": "success", "data": {"candles": []}}


def quote_packet(token: int, step: int) -> bytes:
    price = 150_000 + (step * 7 + token) % 500
    return kd.quote(token, price, 3, price, 10_000 + step * 10, 5, 5, 149_000, 151_000, 148_000, 149_500)


def index_packet(token: int, step: int) -> bytes:
    price = 2_450_000 + (step * 7 + token) % 500
    return kd.index_quote(token, price, 2_461_000, 2_440_000, 2_445_000, 2_430_000)


def full_packet(token: int, step: int, now: int) -> bytes:
    price = 150_000 + (step * 7) % 500
    depth = [(10 + i, price - 5 * (i + 1), 1) for i in range(5)] + [
        (10 + i, price + 5 * i, 1) for i in range(5)
    ]
    q = (price, 3, price, 10_000 + step * 10, 5, 5, 149_000, 151_000, 148_000, 149_500)
    return kd.full(token, *q, ltt=now + step // 50, oi=0, oih=0, oil=0, ts=now + step // 50, depth=depth)


def make_feed(
    bus: Bus, store: Store, ticker: str = "ws://127.0.0.1:9", root: str = "http://127.0.0.1:9"
) -> KiteFeed:
    """A real KiteFeed pointed at loopback addresses (nothing leaves the machine)."""
    config = parse_config(
        f'[feed]\nprovider = "kite"\n[providers.kite]\nticker_url = "{ticker}"\nroot = "{root}"\n'
    )
    return KiteFeed(FeedContext(bus, SessionClock(), config, store, Path(tempfile.gettempdir())))


def subscribe_directly(feed: KiteFeed) -> None:
    """For (1) only: the parser's subscriptions without a master (no network, no store)."""
    for token, symbol in zip(TOKENS, SYMBOLS, strict=True):
        feed.parser.add(token, symbol)
    for i, token in enumerate(INDICES):
        feed.parser.add(token, f"NSE:BENCHINDEX{i}")


_LENGTH = struct.Struct(">H").unpack_from


def _mixed_records(body: bytes) -> list[bytes]:
    out, off = [], 0
    while off < len(body):
        (length,) = _LENGTH(body, off)
        out.append(body[off + 2 : off + 2 + length])
        off += 2 + length
    return out


def bench_shape(label: str, messages: list[bytes], packets: int, record: str | None, runs: int) -> float:
    store = Store.open(None)
    rates, base_rates = [], []
    # the baseline reads the numbers of one record size; a message of mixed sizes is read
    # record by record with unpack_from (what the framing alone costs)
    unpack = struct.Struct(record).iter_unpack if record else _mixed_records
    for _ in range(runs):
        bus = Bus()
        got = [0]

        def listener(batch: MarketBatch, got: list[int] = got) -> None:
            got[0] += len(batch.events)

        bus.subscribe(MarketBatch, listener)
        feed = make_feed(bus, store)
        subscribe_directly(feed)
        start = time.perf_counter()
        n = 0
        for m in messages:
            for _ in unpack(m[2:]):
                n += 1
        base_rates.append(n / (time.perf_counter() - start))
        on_message = feed.on_message
        start = time.perf_counter()
        for m in messages:
            on_message(m, time.monotonic_ns())
        rates.append(packets / (time.perf_counter() - start))
        assert feed.malformed == 0 and feed.parser.packets == packets == n, (feed.malformed, n)
        assert got[0] > packets  # at least DayStats for each, plus trades (and quotes)
    store.close()
    r, b = statistics.median(rates), statistics.median(base_rates)
    print(f"    {label}")
    spread = f"[{min(base_rates):,.0f}–{max(base_rates):,.0f}]"
    print(f"      bare struct.iter_unpack (baseline): median {b:>12,.0f} packets/s  {spread}")
    spread = f"[{min(rates):,.0f}–{max(rates):,.0f}]"
    print(f"      KiteFeed parse + Bus publish:       median {r:>12,.0f} packets/s  {spread}")
    verdict = "met" if r >= 500_000 else "NOT met"
    print(f"      parse+publish / bare unpack: {r / b:.0%}   target >= 500,000 packets/s: {verdict}")
    return r


def bench_parse(n_messages: int, runs: int) -> None:
    now = int(time.time())  # exchange timestamps of today, as a live session has
    quote_msgs = [kd.message(*(quote_packet(t, step) for t in TOKENS)) for step in range(1, n_messages + 1)]
    full_one = [
        kd.message(full_packet(TOKENS[step % 50], step, now)) for step in range(1, n_messages * 10 + 1)
    ]
    full_msgs = [
        kd.message(*(full_packet(t, step, now) for t in TOKENS)) for step in range(1, n_messages + 1)
    ]
    mixed_msgs = [
        kd.message(*(quote_packet(t, step) for t in TOKENS[:45]), *(index_packet(t, step) for t in INDICES))
        for step in range(1, n_messages + 1)
    ]
    print(f"(1) parse+publish, runs: {runs}, 50 symbols, one listener on the bus")
    shapes = (
        ("50 quote packets (quote mode, a watchlist)", quote_msgs, 50, ">H44s"),
        ("1 full packet (full mode, one symbol)", full_one, 1, ">H184s"),
        ("50 full packets (full mode, a watchlist)", full_msgs, 50, ">H184s"),
        ("45 quote + 5 index packets (a watchlist with indices)", mixed_msgs, 50, None),
    )
    for label, msgs, per, record in shapes:
        bench_shape(f"{len(msgs):,} messages x {label}", msgs, len(msgs) * per, record, runs)
    print(
        "    (a 1-packet message pays the per-message costs alone: MarketBatch, Bus.publish, the "
        "list; Kite batches every changed instrument into one message per tick cycle)"
    )


def _ticker_server(pipe, messages_n: int, rate: float) -> None:  # type: ignore[no-untyped-def]
    """The ticker fake in its own process: waits until all 50 tokens are subscribed, then sends
    a baseline and `messages_n` messages of 50 quote packets (every packet a volume rise, so one
    tick each),
    paced at `rate` ticks/s (0: as fast as it can)."""
    # step 0 is the baseline (a token's first packet is not a trade: what it traded before is unknown)
    frames = [kd.message(*(quote_packet(t, step) for t in TOKENS)) for step in range(messages_n + 1)]
    with kd.KiteTickerFake(api_key=API_KEY, access_token=ACCESS_TOKEN) as fake:
        pipe.send(fake.url)
        while not fake.clients or len(fake.modes) < len(TOKENS):
            time.sleep(0.01)
        pipe.send("ready")
        pipe.recv()

        async def push() -> None:
            ws = fake.clients[0]
            start = time.perf_counter()
            for n, f in enumerate(frames):
                if rate:
                    due = start + n * len(TOKENS) / rate
                    if due > time.perf_counter():
                        await asyncio.sleep(due - time.perf_counter())
                await ws.send(f)

        asyncio.run_coroutine_threadsafe(push(), fake.loop).result()
        pipe.send("sent")
        pipe.recv()


async def run_e2e(ticks: int, rate: float, flush: float) -> tuple[float, list[float]]:
    """One end-to-end run; (ticks/s from first message sent to last row committed, latencies ms)."""
    messages_n = ticks // len(TOKENS)
    ticks = messages_n * len(TOKENS)
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_ticker_server, args=(child, messages_n, rate))
    server.start()
    arrivals: list[tuple[int, int]] = []  # (received_ns, ticks so far including this message)
    try:
        url = parent.recv()
        with (
            tempfile.TemporaryDirectory(prefix="trii-bench-kite-") as d,
            kd.KiteRestFake(api_key=API_KEY, access_token=ACCESS_TOKEN) as rest,
        ):
            rest.csv = MASTER
            rest.candles = {"minute": NO_CANDLES, "day": NO_CANDLES}
            store = Store.open(Path(d) / "e2e.duckdb")
            bus = Bus()
            writer = StoreWriter(store, flush_interval=flush)
            clock = CommitClock(writer)
            writer.start()
            seen = [0]

            def on_batch(batch: MarketBatch) -> None:
                seen[0] += sum(1 for e in batch.events if type(e) is Trade)
                arrivals.append((batch.received_ns, seen[0]))

            bus.subscribe(MarketBatch, on_batch)
            bus.subscribe(MarketBatch, writer.on_batch)
            os.environ["TRII_KITE_API_KEY"], os.environ["TRII_KITE_ACCESS_TOKEN"] = API_KEY, ACCESS_TOKEN
            feed = make_feed(bus, store, url, rest.url)
            await feed.prepare()
            feed.subscribe(SYMBOLS)
            task = asyncio.create_task(feed.run())
            assert await asyncio.to_thread(parent.recv) == "ready"
            start = time.perf_counter()
            parent.send("go")
            while seen[0] < ticks:
                await asyncio.sleep(0.002)
            await asyncio.to_thread(writer.flush)
            elapsed = time.perf_counter() - start
            rows = store.con.execute("SELECT count(*) FROM ticks WHERE source = 'kite'").fetchone()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            writer.stop()
            store.close()
        assert rows == (ticks,), (rows, ticks)
        assert feed.malformed == 0
        assert await asyncio.to_thread(parent.recv) == "sent"
        parent.send("bye")
    finally:
        server.join(10)
        if server.is_alive():
            server.terminate()
    return ticks / elapsed, clock.latencies_ms(arrivals)


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))]


def bench_e2e(ticks: int, paced_rate: float, flush: float) -> None:
    print(
        "(2) end to end: Kite ticker fake (own process) -> websocket -> KiteFeed -> Bus -> StoreWriter "
        f"(DuckDB file, flush every {flush * 1000:.0f} ms) -> rows committed; 50 quote packets per message"
    )
    print(
        "    latency = commit that made a message's rows queryable (time StoreWriter._drain returned) "
        "- MarketBatch.received_ns"
    )
    rate, lat = asyncio.run(run_e2e(ticks, 0, flush))
    print(
        f"    flat out, {ticks:,} ticks: {rate:,.0f} ticks/s (first message sent to last row committed); "
        f"latency p50 {_pct(lat, 0.5):.0f} ms, p99 {_pct(lat, 0.99):.0f} ms (queueing)"
    )
    _, lat = asyncio.run(run_e2e(int(paced_rate * 5), paced_rate, flush))
    print(
        f"    paced at {paced_rate:,.0f} ticks/s for 5 s: latency p50 {_pct(lat, 0.5):.0f} ms, "
        f"p99 {_pct(lat, 0.99):.0f} ms (flush interval {flush * 1000:.0f} ms)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--messages", type=int, default=4_000, help="50-packet messages (and 10x as many 1-packet)"
    )
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--e2e-ticks", type=int, default=200_000)
    ap.add_argument("--paced-rate", type=float, default=20_000)
    ap.add_argument("--flush", type=float, default=0.25, help="writer flush interval (the session's: 0.25)")
    args = ap.parse_args()
    bench_parse(args.messages, args.runs)
    bench_e2e(args.e2e_ticks, args.paced_rate, args.flush)


if __name__ == "__main__":
    main()
