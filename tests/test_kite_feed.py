"""The Kite feed against a loopback Kite ticker (binary protocol, official mock packets) and a
loopback Kite REST (instrument master, candles), through the real bus, store and session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trii_term.bus import Bus
from trii_term.clock import SessionClock
from trii_term.config import Config, parse_config
from trii_term.domain import (
    NSE,
    Bar,
    DayStats,
    FeedState,
    FeedStatus,
    InstrumentKind,
    MarketBatch,
    Quote,
    Trade,
    to_ns,
)
from trii_term.feeds import FeedContext
from trii_term.feeds.kite import KiteFeed, KiteOrderUpdate, TickParser
from trii_term.kite_master import KiteMaster, ist_today
from trii_term.paths import Paths
from trii_term.session import Session
from trii_term.store.db import Store

from .conftest import wait_until
from .fakes import kite_data as kd

API_KEY = "kite-api-key-4711"
ACCESS_TOKEN = "kite-access-token-0815"
T0 = 1_700_000_000_000_000_000  # an arrival time (ns)
SIZES = (8, 28, 32, 44, 184)


# --------------------------------------------------------------------------------------------
# Rig
# --------------------------------------------------------------------------------------------


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRII_KITE_API_KEY", API_KEY)
    monkeypatch.setenv("TRII_KITE_ACCESS_TOKEN", ACCESS_TOKEN)


@pytest.fixture
def ticker() -> Iterator[kd.KiteTickerFake]:
    with kd.KiteTickerFake(api_key=API_KEY, access_token=ACCESS_TOKEN) as fake:
        yield fake


@pytest.fixture
def rest() -> Iterator[kd.KiteRestFake]:
    with kd.KiteRestFake(api_key=API_KEY, access_token=ACCESS_TOKEN) as fake:
        yield fake


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.open(None)
    yield s
    s.close()


def kite_config(ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, mode: str = "quote") -> Config:
    return parse_config(
        '[feed]\nprovider = "kite"\nsymbols = ["NSE:INFY"]\n'
        f'[providers.kite]\nmode = "{mode}"\nticker_url = "{ticker.url}"\nroot = "{rest.url}"\n'
    )


class Tape:
    """Everything the feed published."""

    def __init__(self, bus: Bus) -> None:
        self.events: list[Any] = []
        self.batches: list[MarketBatch] = []
        self.status: list[FeedStatus] = []
        self.orders: list[KiteOrderUpdate] = []
        bus.subscribe(MarketBatch, self._batch)
        bus.subscribe(FeedStatus, self.status.append)
        bus.subscribe(KiteOrderUpdate, self.orders.append)

    def _batch(self, batch: MarketBatch) -> None:
        self.batches.append(batch)
        self.events.extend(batch.events)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if type(e) is kind]

    @property
    def state(self) -> FeedState | None:
        return self.status[-1].state if self.status else None


def make_feed(config: Config, store: Store, tmp_path: Path, **kw: Any) -> tuple[KiteFeed, Tape]:
    bus = Bus()
    tape = Tape(bus)
    params = {"backoff_base": 0.05, "backoff_max": 0.2, "history_spacing": 0.01, **kw}
    return KiteFeed(FeedContext(bus, SessionClock(), config, store, tmp_path), **params), tape


@contextlib.asynccontextmanager
async def running(feed: KiteFeed) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(feed.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def parser(*tokens_symbols: tuple[int, str]) -> TickParser:
    p = TickParser()
    for token, symbol in tokens_symbols or ((kd.INFY, "NSE:INFY"),):
        p.add(token, symbol)
    return p


def ist(text: str) -> int:
    return to_ns(datetime.fromisoformat(text))


# --------------------------------------------------------------------------------------------
# The binary parser, against the official mock packets
# --------------------------------------------------------------------------------------------


def test_the_official_quote_packet_gives_the_mock_day_stats() -> None:
    expected = kd.TICKER_QUOTE
    events = parser().parse(kd.message(kd.TICKER_QUOTE_PACKET), T0)
    assert events == [
        DayStats(
            T0,
            "NSE:INFY",
            NSE.local(T0).date(),
            expected["ohlc"]["close"],
            expected["ohlc"]["open"],
            expected["ohlc"]["high"],
            expected["ohlc"]["low"],
            expected["last_price"],
            float(expected["volume"]),
        )
    ]


def test_the_official_full_packet_gives_trade_stats_and_best_bid_offer_at_the_exchange_time() -> None:
    expected = kd.TICKER_FULL
    p = parser()
    p.parse(kd.message(kd.TICKER_QUOTE_PACKET), T0)  # the volume before: 1,175,986
    events = p.parse(kd.message(kd.TICKER_FULL_PACKET), T0)
    ts = ist(expected["timestamp"])
    bid, ask = expected["depth"]["buy"][0], expected["depth"]["sell"][0]
    assert events == [
        Trade(ts, "NSE:INFY", expected["last_price"], float(expected["volume"] - kd.TICKER_QUOTE["volume"])),
        DayStats(
            ts,
            "NSE:INFY",
            date(2021, 7, 5),
            expected["ohlc"]["close"],
            expected["ohlc"]["open"],
            expected["ohlc"]["high"],
            expected["ohlc"]["low"],
            expected["last_price"],
            float(expected["volume"]),
        ),
        Quote(ts, "NSE:INFY", bid["price"], ask["price"], float(bid["quantity"]), float(ask["quantity"])),
    ]


def test_an_ltp_packet_sets_the_last_price_then_a_change_is_a_trade_of_size_zero() -> None:
    p = parser()
    first = p.parse(kd.message(kd.ltp(kd.INFY, 157315)), T0)
    assert first == [DayStats(T0, "NSE:INFY", NSE.local(T0).date(), None, None, None, None, 1573.15, 0.0)]
    assert first[0].last == kd.TICKER_LTP["last_price"]
    assert p.parse(kd.message(kd.ltp(kd.INFY, 157315)), T0 + 1) == []  # unchanged: nothing traded
    assert p.parse(kd.message(kd.ltp(kd.INFY, 157320)), T0 + 2) == [Trade(T0 + 2, "NSE:INFY", 1573.2, 0.0)]


def test_index_packets_read_high_low_open_close_in_their_own_order() -> None:
    p = parser((kd.NIFTY, "NSE:NIFTY 50"))
    quote = kd.index_quote(
        kd.NIFTY, 2_450_015, high=2_461_000, low=2_440_025, open_=2_445_050, close=2_430_000
    )
    assert p.parse(kd.message(quote), T0) == [
        DayStats(T0, "NSE:NIFTY 50", NSE.local(T0).date(), 24300.0, 24450.5, 24610.0, 24400.25, 24500.15, 0.0)
    ]
    ts = ist("2024-11-20T11:30:05+05:30")
    full = kd.index_full(
        kd.NIFTY, 2_451_000, 2_461_000, 2_440_025, 2_445_050, 2_430_000, 21_000, ts=ts // 10**9
    )
    assert p.parse(kd.message(full), T0) == [
        Trade(ts, "NSE:NIFTY 50", 24510.0, 0.0),
        DayStats(ts, "NSE:NIFTY 50", date(2024, 11, 20), 24300.0, 24450.5, 24610.0, 24400.25, 24510.0, 0.0),
    ]


def test_prices_are_divided_per_segment() -> None:
    p = parser(
        (kd.USDINR, "CDS:USDINR24DECFUT"), (kd.EURINR_BCD, "BCD:EURINR24DECFUT"), (kd.SENSEX, "BSE:SENSEX")
    )
    events = p.parse(
        kd.message(
            kd.ltp(kd.USDINR, 842_512_500), kd.ltp(kd.EURINR_BCD, 890_125), kd.ltp(kd.SENSEX, 8_012_345)
        ),
        T0,
    )
    assert [(e.symbol, e.last) for e in events] == [
        ("CDS:USDINR24DECFUT", 84.25125),
        ("BCD:EURINR24DECFUT", 89.0125),
        ("BSE:SENSEX", 80123.45),
    ]


def test_a_trade_is_the_rise_in_cumulative_volume() -> None:
    p = parser()

    def q(vol: int, price: int) -> bytes:
        return kd.message(kd.quote(kd.INFY, price, 5, price, vol, 1, 1, 156915, 157500, 156105, 156780))

    trades = []
    for vol, price in ((1000, 157300), (1000, 157300), (1250, 157310), (1400, 157305), (10, 157000)):
        trades += [(e.price, e.size) for e in p.parse(q(vol, price), T0) if type(e) is Trade]
    # the first packet sets the baseline; a fall (a new day) resets it without a trade
    assert trades == [(1573.1, 250.0), (1573.05, 150.0)]


def test_malformed_packets_are_counted_and_skipped_and_good_ones_kept() -> None:
    p = parser()
    good = kd.TICKER_QUOTE_PACKET
    cases = [
        kd.message(good, kd.with_token(good, 999_999)),  # a token not subscribed
        kd.message(good, b"\x00" * 50),  # an unknown size
        kd.message(good, good)[:-10],  # the second packet is cut short (its length lies)
        kd.message(good) + b"\x01\x02",  # bytes after the last packet
        kd.message(good, good)[: 2 + 2 + 44],  # the count says two, the message holds one
    ]
    for n, data in enumerate(cases, start=1):
        events = p.parse(data, T0)
        assert [type(e) for e in events] == [DayStats], data
        assert p.malformed == n
    assert p.parse(kd.HEARTBEAT, T0) == [] and p.malformed == len(cases)
    p.remove(kd.INFY)
    assert p.parse(kd.message(good), T0) == [] and p.malformed == len(cases)  # late, not malformed


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=700))
def test_fuzz_arbitrary_bytes_never_raise(data: bytes) -> None:
    p = parser((kd.INFY, "NSE:INFY"), (kd.NIFTY, "NSE:NIFTY 50"))
    events = p.parse(data, T0)
    assert all(type(e) in (Trade, DayStats, Quote) for e in events)
    assert p.malformed >= 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=8), st.sampled_from([kd.INFY, kd.NIFTY, 12345]))
def test_fuzz_each_bad_packet_is_counted_once(bodies: list[bytes], token: int) -> None:
    """Packets of any size: those of a known size for a subscribed token parse, every other one
    is counted once."""
    packets = [token.to_bytes(4, "big") + b[4:] if len(b) >= 4 else b for b in bodies]
    p = parser((kd.INFY, "NSE:INFY"), (kd.NIFTY, "NSE:NIFTY 50"))
    p.parse(kd.message(*packets), T0)
    bad = sum(1 for b in packets if len(b) not in SIZES or token == 12345)
    assert p.malformed == bad


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["quote", "full", "ltp", "index"]), min_size=1, max_size=6),
    st.integers(min_value=0, max_value=10_000),
)
def test_fuzz_a_truncated_message_keeps_the_whole_packets_and_counts_one_fault(
    kinds: list[str], cut: int
) -> None:
    make = {
        "quote": kd.TICKER_QUOTE_PACKET,
        "full": kd.TICKER_FULL_PACKET,
        "ltp": kd.ltp(kd.INFY, 157315),
        "index": kd.index_quote(kd.NIFTY, 2_450_015, 2_461_000, 2_440_025, 2_445_050, 2_430_000),
    }
    packets = [make[k] for k in kinds]
    data = kd.message(*packets)
    cut = cut % len(data)
    whole, end = 0, 2
    for pkt in packets:
        if end + 2 + len(pkt) > cut:
            break
        end += 2 + len(pkt)
        whole += 1
    expected = parser((kd.INFY, "NSE:INFY"), (kd.NIFTY, "NSE:NIFTY 50")).parse(
        kd.message(*packets[:whole]), T0
    )
    p = parser((kd.INFY, "NSE:INFY"), (kd.NIFTY, "NSE:NIFTY 50"))
    assert p.parse(data[:cut], T0) == (expected if cut >= 2 else [])
    assert p.malformed == (1 if cut >= 2 else 0)  # fewer than 2 bytes is a heartbeat


# --------------------------------------------------------------------------------------------
# The instrument master
# --------------------------------------------------------------------------------------------


async def test_the_master_is_downloaded_once_per_ist_day(
    creds: None, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, store: Store, tmp_path: Path
) -> None:
    config = kite_config(ticker, rest)
    feed, _ = make_feed(config, store, tmp_path)
    await feed.prepare()
    [download] = rest.requests_to("/instruments")
    assert download.headers["x-kite-version"] == "3"
    assert download.headers["authorization"] == f"token {API_KEY}:{ACCESS_TOKEN}"
    assert KiteMaster(store.con).downloaded_on() == ist_today()

    again, _ = make_feed(config, store, tmp_path)
    await again.prepare()
    assert len(rest.requests_to("/instruments")) == 1  # same IST day: the cache serves
    assert again.status.state is FeedState.CONNECTING and "NSE:INFY" in again.instruments()


async def test_instruments_are_canonical_and_iterate_only_cash_and_indices(
    creds: None, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, store: Store, tmp_path: Path
) -> None:
    feed, _ = make_feed(kite_config(ticker, rest), store, tmp_path)
    await feed.prepare()
    instruments = feed.instruments()
    infy = instruments["NSE:INFY"]
    assert (infy.name, infy.market, infy.currency, str(infy.tick_size), infy.lot_size) == (
        "INFOSYS",
        "NSE",
        "INR",
        "0.05",
        1,
    )
    assert "INFY" not in instruments and "nse:infy" not in instruments
    assert instruments["NSE:NIFTY 50"].kind is InstrumentKind.INDEX
    keys = set(instruments)
    assert {"NSE:INFY", "NSE:NIFTY 50", "BSE:SENSEX", "BSE:COX&KINGS"} <= keys
    assert not any(k.startswith(("NFO:", "CDS:", "BCD:")) for k in keys)
    assert len(instruments) == len(keys) == 55 + 19 + 3
    option = instruments["NFO:BANKNIFTY18JAN23500CE"]  # not iterated, still found
    assert option.lot_size == 40


async def test_a_failed_download_uses_the_cached_master(
    creds: None, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, store: Store, tmp_path: Path
) -> None:
    KiteMaster(store.con).store_csv(kd.INSTRUMENTS_CSV, day=ist_today() - timedelta(days=1))
    rest.instruments_status = 500
    feed, _ = make_feed(kite_config(ticker, rest), store, tmp_path)
    await feed.prepare()
    assert len(rest.requests_to("/instruments")) == 1
    assert feed.status.state is FeedState.CONNECTING and "NSE:INFY" in feed.instruments()


async def test_a_rejected_token_without_a_cached_master_is_an_error_and_the_feed_idles(
    monkeypatch: pytest.MonkeyPatch,
    ticker: kd.KiteTickerFake,
    rest: kd.KiteRestFake,
    store: Store,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("TRII_KITE_API_KEY", API_KEY)
    monkeypatch.setenv("TRII_KITE_ACCESS_TOKEN", "yesterdays-token")
    feed, tape = make_feed(kite_config(ticker, rest), store, tmp_path)
    await feed.prepare()
    assert feed.status == FeedStatus(
        "kite", FeedState.ERROR, "Kite token expired or invalid — run `trii-term login kite`"
    )
    assert "yesterdays-token" not in feed.status.reason
    async with running(feed) as task:
        await asyncio.sleep(0.3)  # nothing to wait for: it must do nothing
        assert not task.done() and ticker.connections == 0
    assert tape.state is FeedState.ERROR


async def test_missing_credentials_are_an_error_that_says_how_to_log_in(
    monkeypatch: pytest.MonkeyPatch,
    ticker: kd.KiteTickerFake,
    rest: kd.KiteRestFake,
    store: Store,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("TRII_KITE_API_KEY", raising=False)
    monkeypatch.delenv("TRII_KITE_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    feed, _ = make_feed(kite_config(ticker, rest), store, tmp_path)
    await feed.prepare()
    assert feed.status.state is FeedState.ERROR
    assert feed.status.reason.startswith("no Kite credentials: run `trii-term login kite`")
    async with running(feed) as task:
        await asyncio.sleep(0.3)
        assert not task.done() and ticker.connections == 0 and rest.requests == []


# --------------------------------------------------------------------------------------------
# The ticker
# --------------------------------------------------------------------------------------------


async def test_streams_subscribes_and_changes_subscriptions_while_connected(
    creds: None, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, store: Store, tmp_path: Path
) -> None:
    feed, tape = make_feed(kite_config(ticker, rest), store, tmp_path)
    await feed.prepare()
    feed.subscribe(["NSE:INFY"])
    async with running(feed):
        await wait_until(lambda: tape.of(DayStats))
        assert tape.state is FeedState.LIVE
        assert ticker.queries[0]["api_key"] == [API_KEY] and ticker.queries[0]["access_token"] == [
            ACCESS_TOKEN
        ]
        assert ticker.headers[0]["x-kite-version"] == "3"
        assert ticker.control("subscribe") == [[kd.INFY]]
        assert ticker.control("mode") == [["quote", [kd.INFY]]]
        assert tape.of(DayStats)[0].last == kd.TICKER_QUOTE["last_price"]  # the snapshot Kite sends

        feed.subscribe(["NSE:NIFTY 50", "NSE:INFY"])  # INFY again: nothing to send for it
        await wait_until(lambda: len(ticker.control("mode")) == 2)
        assert ticker.control("subscribe")[1] == [kd.NIFTY]
        assert ticker.control("mode")[1] == ["quote", [kd.NIFTY]]
        feed.unsubscribe(["NSE:NIFTY 50"])
        await wait_until(lambda: ticker.control("unsubscribe") == [[kd.NIFTY]])
        assert ticker.subscribed == {kd.INFY}

        await ticker.push(kd.HEARTBEAT)
        batches = len(tape.batches)
        await ticker.push(kd.message(kd.quote(kd.INFY, 157400, 3, 157350, 1_176_086, 1, 1, 1, 1, 1, 1)))
        await wait_until(lambda: tape.of(Trade))
        assert tape.of(Trade)[0][1:] == ("NSE:INFY", 1574.0, 100.0)
        assert len(tape.batches) == batches + 1  # one batch per binary message; none for a heartbeat
        assert feed.malformed == 0


async def test_full_mode_is_asked_for_and_gives_quotes(
    creds: None, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, store: Store, tmp_path: Path
) -> None:
    feed, tape = make_feed(kite_config(ticker, rest, mode="full"), store, tmp_path)
    await feed.prepare()
    feed.subscribe(["NSE:INFY"])
    async with running(feed):
        await wait_until(lambda: tape.of(Quote))
        assert ticker.control("mode") == [["full", [kd.INFY]]]
        assert tape.of(Quote)[0][1:4] == ("NSE:INFY", 1573.4, 1573.7)


async def test_text_messages_order_updates_errors_and_garbage(
    creds: None,
    ticker: kd.KiteTickerFake,
    rest: kd.KiteRestFake,
    store: Store,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import json

    caplog.set_level(logging.INFO, logger="trii_term.feeds.kite")
    feed, tape = make_feed(kite_config(ticker, rest), store, tmp_path)
    await feed.prepare()
    feed.subscribe(["NSE:INFY"])
    async with running(feed):
        await wait_until(lambda: tape.state is FeedState.LIVE)
        await ticker.push(json.dumps({"type": "order", "data": kd.POSTBACK}))
        await wait_until(lambda: tape.orders)
        assert tape.orders[0].data == kd.POSTBACK
        assert (tape.orders[0].order_id, tape.orders[0].status) == ("220303000308932", "COMPLETE")

        await ticker.push(json.dumps({"type": "message", "data": "Market closes early today"}))
        await ticker.push(json.dumps({"type": "error", "data": "Invalid instrument token"}))
        await wait_until(lambda: "Invalid instrument token" in tape.status[-1].reason)
        assert tape.status[-1].state is FeedState.LIVE
        assert "Market closes early today" in caplog.text

        for junk in ("not json {", "[1, 2]", json.dumps({"type": "order", "data": "x"})):
            await ticker.push(junk)
        await ticker.push(kd.message(kd.TICKER_QUOTE_PACKET, b"\xff" * 13))
        await wait_until(lambda: feed.malformed == 4)
        assert tape.state is FeedState.LIVE  # still streaming
        assert len(tape.orders) == 1
    assert API_KEY not in caplog.text and ACCESS_TOKEN not in caplog.text


async def test_a_token_rejected_at_the_handshake_says_log_in_again_and_retries_late(
    creds: None, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, store: Store, tmp_path: Path
) -> None:
    ticker.reject_status = 403
    feed, tape = make_feed(kite_config(ticker, rest), store, tmp_path, token_retry=30.0)
    await feed.prepare()
    async with running(feed):
        await wait_until(lambda: tape.state is FeedState.RECONNECTING)
        status = tape.status[-1]
        assert "HTTP 403" in status.reason and "log in again: trii-term login kite" in status.reason
        assert status.retry_at_monotonic is not None and status.retry_at_monotonic - time.monotonic() > 25
        assert ACCESS_TOKEN not in status.reason
        assert FeedState.LIVE not in [s.state for s in tape.status]


async def test_too_many_connections_at_the_handshake_waits_the_limit_retry(
    creds: None, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, store: Store, tmp_path: Path
) -> None:
    ticker.reject_status = 429
    feed, tape = make_feed(kite_config(ticker, rest), store, tmp_path, limit_retry=20.0)
    await feed.prepare()
    async with running(feed):
        await wait_until(lambda: tape.state is FeedState.RECONNECTING)
        status = tape.status[-1]
        assert "HTTP 429" in status.reason and "3 ticker connections" in status.reason
        assert status.retry_at_monotonic is not None and status.retry_at_monotonic - time.monotonic() > 15


async def test_a_dropped_connection_reconnects_resubscribes_and_backfills_the_gap(
    creds: None, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, store: Store, tmp_path: Path
) -> None:
    feed, tape = make_feed(kite_config(ticker, rest), store, tmp_path, backoff_base=0.2, backoff_max=0.4)
    await feed.prepare()
    feed.subscribe(["NSE:INFY", "NSE:NIFTY 50"])
    minute_requests = "/instruments/historical/408065/minute"
    async with running(feed):
        await wait_until(lambda: tape.state is FeedState.LIVE)
        await wait_until(lambda: len(rest.requests_to(minute_requests)) == 1)
        dropped_at = time.monotonic()
        await ticker.drop()
        await wait_until(lambda: tape.state is FeedState.RECONNECTING)
        status = tape.status[-1]
        assert "connection to Kite was lost" in status.reason
        assert status.retry_at_monotonic is not None and status.retry_at_monotonic > dropped_at
        await wait_until(lambda: ticker.connections == 2 and tape.state is FeedState.LIVE)
        await wait_until(lambda: len(ticker.control("mode")) == 2)
        assert sorted(ticker.control("subscribe")[-1]) == sorted([kd.INFY, kd.NIFTY])
        assert ticker.control("mode")[-1][0] == "quote"
        assert sorted(ticker.control("mode")[-1][1]) == sorted([kd.INFY, kd.NIFTY])
        # the gap: minutes from just before the drop, for every subscribed symbol
        await wait_until(lambda: len(rest.requests_to(minute_requests)) == 2)
        gap = rest.requests_to(minute_requests)[-1]
        start = datetime.strptime(gap.query["from"][0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=NSE.tz)
        assert timedelta(0) < datetime.now(NSE.tz) - start < timedelta(minutes=3)


async def test_a_silent_connection_is_dropped_and_reopened(
    creds: None, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, store: Store, tmp_path: Path
) -> None:
    feed, tape = make_feed(kite_config(ticker, rest), store, tmp_path, silence_timeout=0.3)
    await feed.prepare()
    async with running(feed):
        await wait_until(lambda: tape.state is FeedState.RECONNECTING)
        assert "no data or heartbeat from Kite" in tape.status[-1].reason
        await wait_until(lambda: ticker.connections >= 2)


# --------------------------------------------------------------------------------------------
# Candles
# --------------------------------------------------------------------------------------------


async def test_candles_are_published_as_bars_on_first_subscribe_and_429_is_respected(
    creds: None, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, store: Store, tmp_path: Path
) -> None:
    rest.historical_429 = 2
    feed, tape = make_feed(kite_config(ticker, rest), store, tmp_path)
    await feed.prepare()
    feed.subscribe(["NSE:INFY"])
    async with running(feed):
        await wait_until(lambda: len(tape.of(Bar)) == 9)
    minutes = [b for b in tape.of(Bar) if b.interval == "1m"]
    days = [b for b in tape.of(Bar) if b.interval == "1d"]
    first = kd.HISTORICAL_MINUTE["data"]["candles"][0]
    assert minutes[0] == Bar(ist("2017-12-15T09:15:00+05:30"), "NSE:INFY", "1m", *map(float, first[1:6]))
    assert [b.ts for b in days] == [ist(f"2017-12-{d}T00:00:00+05:30") for d in (13, 14, 15)]
    history = rest.requests_to("/instruments/historical/")
    assert len(history) == 2 + 2  # two refused with 429, then asked again
    assert {r.path for r in history} == {
        "/instruments/historical/408065/minute",
        "/instruments/historical/408065/day",
    }
    day_request = history[-1]
    start = datetime.strptime(day_request.query["from"][0], "%Y-%m-%d %H:%M:%S")
    assert 360 <= (datetime.now() - start).days <= 370  # about a year of days


def test_unfinished_candles_are_left_out() -> None:
    from trii_term.feeds.kite import candles_to_bars

    now = ist("2024-11-20T10:00:30+05:30")
    candles = [
        ["2024-11-20T09:58:00+0530", 1, 2, 0.5, 1.5, 10],
        ["2024-11-20T09:59:00+0530", 1, 2, 0.5, 1.5, 10],
        ["2024-11-20T10:00:00+0530", 1, 2, 0.5, 1.5, 10],  # still forming
        ["garbage"],
    ]
    bars, bad = candles_to_bars(candles, "NSE:INFY", "minute", now)
    assert [b.ts for b in bars] == [ist("2024-11-20T09:58:00+05:30"), ist("2024-11-20T09:59:00+05:30")]
    assert bad == 1
    days = [
        ["2024-11-19T00:00:00+0530", 1, 2, 0.5, 1.5, 10],
        ["2024-11-20T00:00:00+0530", 1, 2, 0.5, 1.5, 10],
    ]
    bars, _ = candles_to_bars(days, "NSE:INFY", "day", now)
    assert [b.ts for b in bars] == [ist("2024-11-19T00:00:00+05:30")]  # today's day is not over


# --------------------------------------------------------------------------------------------
# End to end through a real Session
# --------------------------------------------------------------------------------------------


async def test_a_session_on_kite_stores_ticks_and_bars(
    creds: None, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, paths: Paths
) -> None:
    session = Session(kite_config(ticker, rest), paths)
    await session.start()
    try:
        assert session.subscribed() == ["NSE:INFY"]
        await wait_until(lambda: session.feed_status.state is FeedState.LIVE)
        await wait_until(lambda: session.quotes.get("NSE:INFY") is not None)
        for vol in (1_176_086, 1_176_336):  # +100, +250 on the snapshot's 1,175,986
            await ticker.push(
                kd.message(kd.quote(kd.INFY, 157400, 3, 157350, vol, 1, 1, 156915, 157500, 156105, 156780))
            )
        await wait_until(lambda: session.quotes.get("NSE:INFY").volume == 1_176_336.0)  # type: ignore[union-attr]
        assert session.quotes.get("NSE:INFY").prev_close == 1567.8  # type: ignore[union-attr]
        await wait_until(lambda: session.writer is not None and session.writer.stats.bars >= 9)
        assert session.writer is not None and session.writer.flush()
        assert session.store is not None
        con = session.store.con
        ticks = con.execute(
            "SELECT price, size, source FROM ticks WHERE symbol = 'NSE:INFY' ORDER BY ts"
        ).fetchall()
        assert ticks == [(1574.0, 100.0, "kite"), (1574.0, 250.0, "kite")]
        bars = con.execute(
            "SELECT interval, ts, open, volume FROM bars WHERE symbol = 'NSE:INFY' ORDER BY interval, ts"
        ).fetchall()
        # stored in exchange-local time: the store knows NSE:INFY is on the NSE calendar
        assert bars[0] == ("1d", datetime(2017, 12, 13), 1010.0, 4533187.0)
        assert bars[3] == ("1m", datetime(2017, 12, 15, 9, 15), 1704.5, 2499.0)
        assert len(bars) == 9
        market = con.execute("SELECT market, currency FROM instruments WHERE symbol = 'NSE:INFY'").fetchone()
        assert market == ("NSE", "INR")
    finally:
        await session.stop()


async def test_a_session_without_kite_credentials_shows_the_error(
    monkeypatch: pytest.MonkeyPatch, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, paths: Paths
) -> None:
    monkeypatch.delenv("TRII_KITE_API_KEY", raising=False)
    monkeypatch.delenv("TRII_KITE_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    session = Session(kite_config(ticker, rest), paths)
    await session.start()
    try:
        await wait_until(lambda: session.feed_status.state is FeedState.ERROR)
        assert "run `trii-term login kite`" in session.feed_status.reason
        assert ticker.connections == 0
    finally:
        await session.stop()
