"""The Kite feed against a loopback Kite ticker (binary protocol, official mock packets) and a
loopback Kite REST (instrument master, candles), through the real bus, store and session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trii_term.adapters.kite.feed import KiteFeed
from trii_term.adapters.kite.master import KiteMaster, ist_today
from trii_term.adapters.kite.wire import KiteOrderUpdate, TickParser
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
from trii_term.feeds import FeedContext, instruments_problem
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


def quote_at(price: int, vol: int, token: int = kd.INFY) -> bytes:
    """A quote packet of INFY trading at `price` paise inside its day (1561.05-1575.00)."""
    return kd.quote(token, price, 5, price, vol, 1, 1, 156915, 157500, 156105, 156780)


BASELINE = kd.message(quote_at(157300, 1_000))  # the first packet: volume 1,000, no trade yet


def test_a_message_promising_more_packets_than_it_holds_publishes_nothing() -> None:
    """The attack of issue 11: the header promised 3 packets and carried 1, whose price (Rs 1.23
    against ~Rs 1,573) was stored as a trade. Nothing of such a message is applied."""
    p = parser()
    p.parse(BASELINE, T0)
    phantom = quote_at(123, 1_500)  # a volume rise: it would be a trade at 1.23
    lying = struct.pack(">H", 3) + struct.pack(">H", len(phantom)) + phantom
    assert p.parse(lying, T0) == []
    assert p.malformed == 1
    # nothing of it was applied: the next true packet trades against the volume before it
    trades = [e for e in p.parse(kd.message(quote_at(157310, 1_200)), T0) if type(e) is Trade]
    assert [(t.price, t.size) for t in trades] == [(1573.1, 200.0)]


def test_a_message_whose_structure_is_wrong_is_dropped_whole() -> None:
    good, other = quote_at(157310, 1_100), quote_at(157320, 1_200)
    cases = [
        kd.message(good, other)[:-10],  # the second packet is cut short (its length lies)
        kd.message(good) + b"\x01\x02",  # bytes after the last packet
        kd.message(good, other)[: 2 + 2 + 44],  # the count says two, the message holds one
        struct.pack(">H", 1) + kd.message(good, other)[2:],  # the count says one, it holds two
        b"\x00\x00\x00",  # no packets, and a byte more
        kd.message(good, other)[:2] + struct.pack(">H", 45) + kd.message(good, other)[4:],  # a length lies
    ]
    for data in cases:
        p = parser()
        p.parse(BASELINE, T0)
        assert p.parse(data, T0) == [], data
        assert p.malformed == 1
        assert p.subs[kd.INFY][2:] == [1_000, 1573.0]  # the token's state is untouched


def test_in_a_well_formed_message_an_impossible_packet_is_skipped_and_the_others_kept() -> None:
    p = parser((kd.INFY, "NSE:INFY"), (kd.NIFTY, "NSE:NIFTY 50"))
    p.parse(BASELINE, T0)
    nifty = kd.index_quote(kd.NIFTY, 2_450_015, 2_461_000, 2_440_025, 2_445_050, 2_430_000)
    bad_packets = {
        "a token not subscribed": kd.with_token(quote_at(157310, 1_100), 999_999),
        "an unknown size": b"\x00" * 50,
        "an index in a stock's layout": kd.with_token(quote_at(157310, 1_100), kd.NIFTY),
        "a stock in an index's layout": kd.with_token(nifty, kd.INFY),
        "a negative last price": kd.quote(kd.INFY, 2**32 - 100, 5, 1, 1_100, 1, 1, 1, 1, 1, 1),
        "a negative ltp packet": kd.ltp(kd.INFY, 2**32 - 1),
        "a negative depth price": kd.with_token(kd.TICKER_FULL_PACKET[:64] + b"\xff" * 120, kd.INFY),
        "a last price below the day's low": quote_at(123, 1_100),
        "a last price above the day's high": quote_at(999_999, 1_100),
        "a negative open": kd.quote(kd.INFY, 157300, 5, 1, 1_100, 1, 1, 2**32 - 5, 157500, 156105, 156780),
        "a negative previous close": kd.quote(
            kd.INFY, 157300, 5, 1, 1_100, 1, 1, 156915, 157500, 156105, 2**31
        ),
        "a low above the high": kd.quote(kd.INFY, 157300, 5, 1, 1_100, 1, 1, 157300, 157000, 157500, 1),
        "volume without a price": kd.quote(kd.INFY, 0, 5, 1, 1_100, 1, 1, 0, 0, 0, 156780),
        "an index outside its day": kd.index_quote(kd.NIFTY, 100, 2_461_000, 2_440_025, 2_445_050, 1),
    }
    for n, (why, packet) in enumerate(bad_packets.items(), start=1):
        events = p.parse(kd.message(packet, nifty), T0)
        assert {e.symbol for e in events} == {"NSE:NIFTY 50"}, why  # the good packet is kept
        assert p.malformed == n, why
    assert p.subs[kd.INFY][2:] == [1_000, 1573.0]
    p.remove(kd.INFY)
    assert p.parse(BASELINE, T0) == [] and p.malformed == len(bad_packets)  # late, not malformed


def test_a_last_price_of_zero_is_not_traded_yet_never_a_trade_at_zero() -> None:
    p = parser((kd.INFY, "NSE:INFY"), (kd.NIFTY, "NSE:NIFTY 50"))
    # before the first trade of the day: no price, no volume; the previous close is news
    untraded = kd.quote(kd.INFY, 0, 0, 0, 0, 0, 0, 0, 0, 0, 156780)
    assert p.parse(kd.message(untraded), T0) == [
        DayStats(T0, "NSE:INFY", NSE.local(T0).date(), 1567.8, None, None, None, None, 0.0)
    ]
    assert p.parse(kd.message(kd.ltp(kd.INFY, 0)), T0) == []
    first = kd.quote(kd.INFY, 157300, 5, 157300, 40, 1, 1, 157300, 157300, 157300, 156780)
    assert [e for e in p.parse(kd.message(first), T0) if type(e) is Trade] == [
        Trade(T0, "NSE:INFY", 1573.0, 40.0)  # the day's first 40 shares, counted from 0
    ]
    p.parse(kd.message(kd.index_quote(kd.NIFTY, 2_450_015, 2_461_000, 2_440_025, 2_445_050, 2_430_000)), T0)
    zero = p.parse(kd.message(kd.index_quote(kd.NIFTY, 0, 0, 0, 0, 2_430_000)), T0)
    assert [type(e) for e in zero] == [DayStats] and zero[0].last is None
    assert p.subs[kd.NIFTY][3] == 24500.15  # the last price stays the last true one
    assert p.malformed == 0


def _packets() -> st.SearchStrategy[bytes]:
    """True packets of every layout, for the subscribed INFY and NIFTY 50."""
    # low <= last, open <= high, all above 0 (a day with trades)
    price = st.integers(1, 2**31 - 1)
    day = st.tuples(price, price, price, price).map(sorted)
    quote = st.builds(
        lambda d, vol: kd.quote(kd.INFY, d[1], 1, d[1], vol, 1, 1, d[2], d[3], d[0], 156780),
        day,
        st.integers(0, 2**32 - 1),
    )
    full = st.builds(
        lambda q, ts: q + kd.TICKER_FULL_PACKET[44:60] + struct.pack(">I", ts) + kd.TICKER_FULL_PACKET[64:],
        quote,
        st.integers(0, 2**32 - 1),
    )
    index = st.builds(lambda d: kd.index_quote(kd.NIFTY, d[1], d[3], d[0], d[2], 2_430_000), day)
    ltp = st.builds(kd.ltp, st.sampled_from([kd.INFY, kd.NIFTY]), st.integers(0, 2**31 - 1))
    return st.one_of(quote, full, index, ltp)


def _state(p: TickParser) -> list[list[Any]]:
    return [list(sub) for sub in p.subs.values()]


@settings(max_examples=300, deadline=None)
@given(st.lists(_packets(), min_size=1, max_size=6), st.data())
def test_fuzz_a_truncated_or_padded_message_publishes_nothing_and_changes_nothing(
    packets: list[bytes], data: st.DataObject
) -> None:
    message = kd.message(*packets)
    broken = data.draw(
        st.one_of(
            st.integers(2, len(message) - 1).map(lambda cut: message[:cut]),  # cut anywhere
            st.binary(min_size=1, max_size=20).map(lambda tail: message + tail),  # bytes after it
            st.integers(0, 2**16 - 1)  # a count that lies
            .filter(lambda c: c != len(packets))
            .map(lambda c: struct.pack(">H", c) + message[2:]),
        )
    )
    p = parser((kd.INFY, "NSE:INFY"), (kd.NIFTY, "NSE:NIFTY 50"))
    p.parse(kd.message(*packets), T0)
    before = _state(p)
    assert p.parse(broken, T0) == []
    assert p.malformed == 1 and _state(p) == before


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=700))
def test_fuzz_arbitrary_bytes_never_raise_nor_price_at_zero_or_below(data: bytes) -> None:
    p = parser((kd.INFY, "NSE:INFY"), (kd.NIFTY, "NSE:NIFTY 50"))
    p.parse(BASELINE, T0)
    for message in (data, struct.pack(">H", 1) + struct.pack(">H", len(data)) + data):
        events = p.parse(message, T0)
        assert all(type(e) in (Trade, DayStats, Quote) for e in events)
        assert all(e.price > 0 for e in events if type(e) is Trade)
        assert all(e.bid > 0 and e.ask > 0 for e in events if type(e) is Quote)


SUBSCRIBED_AS = {8: kd.INFY, 28: kd.NIFTY, 32: kd.NIFTY, 44: kd.INFY, 184: kd.INFY}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_packets(), st.binary(min_size=4, max_size=200)), max_size=8))
def test_fuzz_every_trade_is_a_price_its_own_packet_vouches_for(packets: list[bytes]) -> None:
    """Whatever well-formed message arrives (random bytes in every layout, for subscribed
    tokens), its packets are applied as if each came alone, and a trade's price is above 0 and
    within the day's low-high of its own packet."""
    tokened = [kd.with_token(b, SUBSCRIBED_AS[len(b)]) if len(b) in SUBSCRIBED_AS else b for b in packets]
    p = parser((kd.INFY, "NSE:INFY"), (kd.NIFTY, "NSE:NIFTY 50"))
    p.parse(BASELINE, T0)
    whole = p.parse(kd.message(*tokened), T0)
    p = parser((kd.INFY, "NSE:INFY"), (kd.NIFTY, "NSE:NIFTY 50"))
    p.parse(BASELINE, T0)
    one_by_one: list[Any] = []
    for packet in tokened:
        events = p.parse(kd.message(packet), T0)
        one_by_one += events
        stats = [e for e in events if type(e) is DayStats]
        for trade in (e for e in events if type(e) is Trade):
            assert trade.price > 0
            if stats:  # quote, full and index packets say their day
                assert trade.price == stats[0].last
                if stats[0].low is not None and stats[0].high is not None:
                    assert stats[0].low <= trade.price <= stats[0].high
        assert all(q.bid > 0 and q.ask > 0 for q in events if type(q) is Quote)
        assert all(d.prev_close is None or d.prev_close > 0 for d in stats)
        assert all(d.open is None or d.open > 0 for d in stats)
    assert whole == one_by_one


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
    reason = (
        "Kite refused the access token (expired or invalid), so the instrument master could not be "
        "downloaded: set a new TRII_KITE_ACCESS_TOKEN (the environment comes before the keyring), or "
        "unset it and log in again: `trii-term login kite`; then start trii-term again"
    )
    assert feed.status == FeedStatus("kite", FeedState.ERROR, reason)
    assert "yesterdays-token" not in feed.status.reason
    # a symbol looked up says why there are none, not "unknown symbol"
    assert "NSE:INFY" not in feed.instruments() and instruments_problem(feed.instruments()) == reason
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
        await ticker.push(
            kd.message(kd.quote(kd.INFY, 157400, 3, 157350, 1_176_086, 1, 1, 156915, 157500, 156105, 156780))
        )
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

    caplog.set_level(logging.INFO, logger="trii_term.adapters.kite.feed")
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


@pytest.fixture
def keyring_creds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Kite credentials in a keyring (an in-memory backend), as `trii-term login kite` leaves them."""
    import keyring

    from trii_term import credentials

    from .fakes.memory_keyring import MemoryKeyring

    monkeypatch.delenv("TRII_KITE_API_KEY", raising=False)
    monkeypatch.delenv("TRII_KITE_ACCESS_TOKEN", raising=False)
    before = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    credentials.save("kite", {"api_key": API_KEY, "access_token": "yesterdays-token"})
    try:
        yield
    finally:
        keyring.set_keyring(before)


async def test_a_token_refused_at_the_handshake_is_an_error_until_a_new_login(
    keyring_creds: None, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, store: Store, tmp_path: Path
) -> None:
    """A refused token never works again (it retried every 5 minutes for ever): the reason and
    what to do; a login in another shell (a new token in the keyring) connects again."""
    from trii_term import credentials

    rest.access_token = "yesterdays-token"  # the master downloads; the ticker refuses the token
    ticker.reject_status = 403
    feed, tape = make_feed(kite_config(ticker, rest), store, tmp_path, credential_poll=0.02)
    await feed.prepare()
    feed.subscribe(["NSE:INFY"])
    async with running(feed):
        await wait_until(lambda: tape.state is FeedState.ERROR)
        assert tape.status[-1] == FeedStatus(
            "kite",
            FeedState.ERROR,
            "Kite refused the access token (HTTP 403: expired or invalid): "
            "log in again: `trii-term login kite`",
        )
        await asyncio.sleep(0.3)  # many poll periods: it must not ask Kite again with this token
        assert len(ticker.queries) == 1 and tape.state is FeedState.ERROR
        ticker.reject_status = None
        credentials.save("kite", {"api_key": API_KEY, "access_token": ACCESS_TOKEN})  # a new login
        await wait_until(lambda: tape.state is FeedState.LIVE)
        assert ticker.queries[-1]["access_token"] == [ACCESS_TOKEN]
        await wait_until(lambda: tape.of(DayStats))


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


async def test_a_rate_limit_that_holds_names_the_candles_not_read(
    creds: None,
    ticker: kd.KiteTickerFake,
    rest: kd.KiteRestFake,
    store: Store,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rest.historical_429 = 2  # the minute candles, twice: every try
    feed, tape = make_feed(kite_config(ticker, rest), store, tmp_path, history_retries=2)
    await feed.prepare()
    feed.subscribe(["NSE:INFY"])
    async with running(feed):
        await wait_until(lambda: len(tape.of(Bar)) == 3)  # the days came
    assert (
        "could not read the minute candles of NSE:INFY from Kite (rate limit (429) still hit after 2 "
        "tries); its chart starts from live ticks"
    ) in caplog.text


def test_unfinished_candles_are_left_out() -> None:
    from trii_term.adapters.kite.candles import candles_to_bars

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


def test_impossible_candles_are_counted_and_left_out() -> None:
    from trii_term.adapters.kite.candles import candles_to_bars

    now = ist("2024-11-20T10:00:30+05:30")
    candles = [
        ["2024-11-20T09:50:00+0530", 1, 2, 0.5, 1.5, 10],  # true
        ["2024-11-20T09:51:00+0530", 0, 2, 0, 1.5, 10],  # a price of 0
        ["2024-11-20T09:52:00+0530", 1, 2, 2.5, 1.5, 10],  # low above high
        ["2024-11-20T09:53:00+0530", 3, 2, 0.5, 1.5, 10],  # open above high
        ["2024-11-20T09:54:00+0530", 1, 2, 0.5, 1.5, -10],  # negative volume
        ["2024-11-20T09:55:00+0530", 1, "1e400", 0.5, 1.5, 10],  # reads as inf
        ["2024-11-20T09:56:00+0530", 1, 2, 0.5, 1.5, "nan"],
    ]
    bars, bad = candles_to_bars(candles, "NSE:INFY", "minute", now)
    assert [b.ts for b in bars] == [ist("2024-11-20T09:50:00+05:30")]
    assert bad == 6


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


async def test_no_phantom_trade_from_a_malformed_message_reaches_the_quotes_or_the_store(
    creds: None, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake, paths: Paths
) -> None:
    session = Session(kite_config(ticker, rest), paths)
    await session.start()
    try:
        await wait_until(lambda: session.quotes.get("NSE:INFY") is not None)  # the snapshot: 1,175,986

        def infy(price: int, vol: int) -> bytes:
            return kd.quote(kd.INFY, price, 3, price, vol, 1, 1, 156915, 157500, 156105, 156780)

        phantom = infy(123, 1_176_036)  # Rs 1.23, a rise of 50 shares
        await ticker.push(struct.pack(">HH", 3, len(phantom)) + phantom)  # promises 3, holds 1
        await ticker.push(kd.message(phantom, kd.TICKER_QUOTE_PACKET))  # well-formed, one packet false
        await ticker.push(kd.message(infy(157400, 1_176_086)))
        await wait_until(lambda: session.quotes.get("NSE:INFY").volume == 1_176_086.0)  # type: ignore[union-attr]
        assert session.quotes.get("NSE:INFY").last == 1574.0  # type: ignore[union-attr]
        assert session.writer is not None and session.writer.flush()
        assert session.store is not None
        ticks = session.store.con.execute(
            "SELECT price, size FROM ticks WHERE symbol = 'NSE:INFY'"
        ).fetchall()
        assert ticks == [(1574.0, 100.0)]  # the rise since the snapshot, at the true price
        assert session.feed is not None and session.feed.malformed == 2  # type: ignore[attr-defined]
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
