"""The Alpaca feed against loopback fakes of the v2 stream and the data REST API (the real wire
protocol, JSON framing): handshake, subscriptions, parsing, bad input, error codes, reconnects
with the REST backfill of the gap, instruments, missing credentials."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trii_term.adapters.alpaca.feed import LOGIN_HINT, AlpacaFeed
from trii_term.adapters.alpaca.wire import error_reason, parse_time_ns
from trii_term.bus import Bus
from trii_term.clock import SessionClock
from trii_term.config import parse_config
from trii_term.domain import (
    US,
    Bar,
    DayStats,
    FeedState,
    FeedStatus,
    Instrument,
    InstrumentKind,
    MarketBatch,
    Quote,
    Trade,
    to_ns,
)
from trii_term.feeds import FeedContext
from trii_term.paths import Paths
from trii_term.session import Session
from trii_term.store.db import Store
from trii_term.store.history import upsert_instruments

from .conftest import wait_until
from .fakes.alpaca_data import KEY, SECRET, AlpacaDataFake, AlpacaStreamFake, bar, quote, rfc3339, trade
from .fakes.loopback import Response

MIN = 60_000_000_000
FAST = {"backoff_base": 0.02, "backoff_max": 0.1}
CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars")


def sub(action: str, symbols: list[str], channels: tuple[str, ...] = CHANNELS) -> dict[str, Any]:
    return {"action": action, **{c: symbols for c in channels}}


@pytest.fixture
def stream() -> Iterator[AlpacaStreamFake]:
    with AlpacaStreamFake() as fake:
        yield fake


@pytest.fixture
def data() -> Iterator[AlpacaDataFake]:
    with AlpacaDataFake() as fake:
        yield fake


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRII_ALPACA_KEY_ID", KEY)
    monkeypatch.setenv("TRII_ALPACA_SECRET_KEY", SECRET)


class Running:
    """A feed on a Bus, with everything it published."""

    def __init__(self, feed: AlpacaFeed, bus: Bus) -> None:
        self.feed = feed
        self.batches: list[MarketBatch] = []
        self.statuses: list[tuple[float, FeedStatus]] = []
        bus.subscribe(MarketBatch, self.batches.append)
        bus.subscribe(FeedStatus, lambda s: self.statuses.append((time.monotonic(), s)))
        self.task: asyncio.Task[None] | None = None

    @property
    def events(self) -> list[Any]:
        return [e for b in self.batches for e in b.events]

    def states(self) -> list[FeedState]:
        return [s.state for _, s in self.statuses]

    def has(self, state: FeedState, reason: str | None = None) -> bool:
        return any(s.state is state and (reason is None or s.reason == reason) for _, s in self.statuses)


def config_text(
    stream_url: str, data_url: str, *, feed: str = "iex", symbols: tuple[str, ...] = ("AAPL",)
) -> str:
    quoted = ", ".join(f'"{s}"' for s in symbols)
    return (
        f'[feed]\nprovider = "alpaca"\nsymbols = [{quoted}]\n'
        f'[providers.alpaca]\nfeed = "{feed}"\nstream_url = "{stream_url}"\ndata_url = "{data_url}"\n'
        f'[brokers.alpaca]\nurl = "{data_url}"\n'
    )


@pytest.fixture
async def start(
    stream: AlpacaStreamFake, data: AlpacaDataFake, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    """start(symbols=..., feed=..., run=True, store=None) -> Running (prepared, and running)."""
    made: list[tuple[Running, Store]] = []

    async def _start(
        symbols: tuple[str, ...] = ("AAPL",),
        feed: str = "iex",
        run: bool = True,
        store: Store | None = None,
        stream_url: str | None = None,
        **settings: float,
    ) -> Running:
        store = store or Store.open(None)
        bus = Bus()
        config = parse_config(config_text(stream_url or stream.url, data.url, feed=feed, symbols=symbols))
        alpaca = AlpacaFeed(FeedContext(bus, SessionClock(), config, store, tmp_path), **{**FAST, **settings})
        running = Running(alpaca, bus)
        made.append((running, store))
        await alpaca.prepare()
        alpaca.subscribe(symbols)
        if run:
            running.task = asyncio.create_task(alpaca.run())
        return running

    yield _start
    for running, store in made:
        if running.task is not None:
            running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running.task
        store.close()


def ns(text: str) -> int:
    """An independent reading of a UTC time with up to 9 fractional digits."""
    head, _, frac = text.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(head).replace(tzinfo=UTC)
    return to_ns(whole) + int((frac or "0").ljust(9, "0"))


# --------------------------------------------------------------------------------------------
# handshake, subscriptions, data
# --------------------------------------------------------------------------------------------


async def test_handshake_subscribe_and_batched_data_become_exact_events(
    start: Callable[..., Any], stream: AlpacaStreamFake, keys: None
) -> None:
    run = await start(("AAPL",))
    await wait_until(lambda: run.feed.status.state is FeedState.LIVE)
    conn = stream.current
    assert conn.received[:2] == [{"action": "auth", "key": KEY, "secret": SECRET}, sub("subscribe", ["AAPL"])]
    assert stream.server.headers[-1]["content-type"] == "application/json"
    assert run.states() == [FeedState.CONNECTING, FeedState.LIVE]
    assert run.feed.server_subscription["trades"] == ["AAPL"]

    # the documented examples, batched in one frame with kinds we skip and a symbol we did not ask for
    stream.send(
        '[{"T":"t","i":96921,"S":"AAPL","x":"D","p":126.55,"s":1,"t":"2021-02-22T15:51:44.208Z","c":["@","I"],"z":"C"},'
        '{"T":"q","S":"AAPL","bx":"U","bp":87.66,"bs":1,"ax":"Q","ap":87.68,"as":4,'
        '"t":"2021-02-22T15:51:45.335689322Z","c":["R"],"z":"C"},'
        '{"T":"t","i":1,"S":"TSLA","x":"D","p":700.1,"s":3,"t":"2021-02-22T15:51:46Z","c":[],"z":"C"},'
        '{"T":"b","S":"AAPL","o":388.985,"h":389.13,"l":388.975,"c":389.12,"v":49378,"n":461,"vw":389.06,'
        '"t":"2021-02-22T19:15:00Z"},'
        '{"T":"s","S":"AAPL","sc":"H","sm":"Trading Halt","rc":"T12","rm":"halted",'
        '"t":"2021-02-22T19:15:01Z","z":"C"},'
        '{"T":"l","S":"AAPL","u":130.1,"d":120.2,"i":"B","t":"2021-02-22T19:15:02Z","z":"C"},'
        '{"T":"u","S":"AAPL","o":388.985,"h":389.2,"l":388.975,"c":389.15,"v":49400,"t":"2021-02-22T19:15:00Z"},'
        '{"T":"d","S":"AAPL","o":380.0,"h":390.0,"l":379.5,"c":389.15,"v":9100000,"t":"2021-02-22T05:00:00Z"}]'
    )
    stream.send([trade("AAPL", 126.6, 5, ns("2021-02-22T19:15:03.000000001Z"))])
    await wait_until(lambda: len(run.batches) == 2)
    first, second = run.batches
    assert first.provider == "alpaca" and isinstance(first.received_ns, int)
    assert first.received_ns <= second.received_ns <= time.monotonic_ns()
    assert first.events == [
        Trade(ns("2021-02-22T15:51:44.208Z"), "AAPL", 126.55, 1),
        Quote(ns("2021-02-22T15:51:45.335689322Z"), "AAPL", 87.66, 87.68, 1, 4),
        Bar(ns("2021-02-22T19:15:00Z"), "AAPL", "1m", 388.985, 389.13, 388.975, 389.12, 49378),
        Bar(ns("2021-02-22T19:15:00Z"), "AAPL", "1m", 388.985, 389.2, 388.975, 389.15, 49400),
        Bar(ns("2021-02-22T05:00:00Z"), "AAPL", "1d", 380.0, 390.0, 379.5, 389.15, 9100000),
    ]
    assert second.events == [Trade(1614021303000000001, "AAPL", 126.6, 5)]
    assert run.feed.skipped == {"unsubscribed": 1, "s": 1, "l": 1}
    assert run.feed.malformed == 0


async def test_subscribe_and_unsubscribe_while_connected_and_the_whole_set_after_a_drop(
    start: Callable[..., Any], stream: AlpacaStreamFake, data: AlpacaDataFake, keys: None
) -> None:
    run = await start(("AAPL",))
    await wait_until(lambda: run.feed.status.state is FeedState.LIVE)
    run.feed.subscribe(["MSFT", "AAPL"])  # AAPL is already subscribed: only MSFT goes out
    await wait_until(lambda: len(stream.subscribe_messages()) == 2)
    run.feed.unsubscribe(["AAPL", "IBM"])  # IBM was never subscribed
    await wait_until(lambda: len(stream.subscribe_messages()) == 3)
    assert stream.subscribe_messages() == [
        sub("subscribe", ["AAPL"]),
        sub("subscribe", ["MSFT"]),
        sub("unsubscribe", ["AAPL"]),
    ]
    await wait_until(lambda: stream.current.subscribed["trades"] == ["MSFT"])
    # MSFT is new: its history is asked for on its own
    await wait_until(lambda: any(r.query["symbols"] == ["MSFT"] for r in data.bar_requests("1Min")))

    stream.send([trade("AAPL", 1.0, 1, 1_000), trade("MSFT", 2.0, 2, 2_000)])
    await wait_until(lambda: len(run.events) == 1)
    assert run.events == [Trade(2_000, "MSFT", 2.0, 2)]

    run.feed.subscribe(["IBM"])
    await wait_until(lambda: stream.current.subscribed["trades"] == ["MSFT", "IBM"])
    stream.drop()
    await wait_until(lambda: len(stream.conns) == 2 and run.feed.status.state is FeedState.LIVE)
    assert stream.subscribe_messages(stream.conns[1]) == [sub("subscribe", ["MSFT", "IBM"])]
    lost = [s for _, s in run.statuses if s.state is FeedState.RECONNECTING]
    assert lost[0].reason == "connection lost (code 1006)" and lost[0].retry_at_monotonic is not None


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------

GOOD = '{"T":"t","S":"AAPL","p":10.5,"s":3,"t":"2024-01-02T15:00:00.5Z"}'


async def test_garbage_is_counted_logged_once_and_skipped_and_good_elements_are_kept(
    start: Callable[..., Any], stream: AlpacaStreamFake, keys: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="trii_term.adapters.alpaca.feed")
    run = await start(("AAPL",))
    await wait_until(lambda: run.feed.status.state is FeedState.LIVE)
    stream.send("this is not JSON")
    stream.send(b"\x00\x01binary")
    stream.send('{"T":"t","S":"AAPL"}')  # not an array
    stream.send(
        '[1, "x", null, [], '
        '{"S":"AAPL"}, '  # no type
        '{"T":"t","S":"AAPL"}, '  # no fields
        '{"T":"t","S":"AAPL","p":"10.5","s":3,"t":"2024-01-02T15:00:00Z"}, '  # price as text
        '{"T":"t","S":"AAPL","p":10.5,"s":true,"t":"2024-01-02T15:00:00Z"}, '  # size a bool
        '{"T":"t","S":"AAPL","p":10.5,"s":3,"t":"yesterday"}, '  # not a time
        '{"T":"q","S":"AAPL","bp":NaN,"ap":1,"bs":1,"as":1,"t":"2024-01-02T15:00:00Z"}, '  # NaN
        '{"T":"b","S":"AAPL","o":1,"h":1,"l":1,"c":1,"t":"2024-01-02T15:00:00Z"}, '  # no volume
        '{"T":"??"}, '  # unknown type
        '{"T":"t","S":["AAPL"],"p":1,"s":1,"t":"2024-01-02T15:00:00Z"}, '  # symbol a list
        f"{GOOD}]"
    )
    await wait_until(lambda: run.feed.malformed == 3 + 13)
    await wait_until(lambda: len(run.batches) == 1)
    assert run.events == [Trade(ns("2024-01-02T15:00:00.5Z"), "AAPL", 10.5, 3)]
    for _ in range(300):  # a flood of garbage: still one log line
        stream.send("garbage")
    stream.send(f"[{GOOD}]")
    await wait_until(lambda: len(run.batches) == 2)
    assert run.feed.malformed == 16 + 300
    assert run.task is not None and not run.task.done()
    assert run.feed.status.state is FeedState.LIVE and run.feed.connections == 1
    warnings = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(warnings) == 1
    assert "Alpaca sent 1 malformed message(s)" in warnings[0].getMessage()


def _frames() -> st.SearchStrategy[str | bytes]:
    scalar = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8)
    )
    json_ish = st.recursive(
        scalar,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
        max_leaves=12,
    )
    number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**20), 10**20), scalar)
    when = st.one_of(
        st.builds(rfc3339, st.integers(0, 253402300799 * 10**9), st.integers(0, 9)),
        st.text(max_size=32),
        scalar,
    )
    fields = {k: number for k in ("p", "s", "bp", "ap", "bs", "as", "o", "h", "l", "c", "v")}
    element = st.fixed_dictionaries(
        {
            "T": st.sampled_from(["t", "q", "b", "u", "d", "s", "l", "c", "x", "i", "??", 1, None]),
            "S": st.sampled_from(["AAPL", "MSFT", "TSLA", 5, None]),
        },
        optional={**fields, "t": when},
    )
    return st.one_of(
        st.text(max_size=60),
        st.binary(max_size=60),
        json_ish.map(json.dumps),
        st.lists(st.one_of(element, json_ish), max_size=8).map(json.dumps),
    )


def test_fuzzed_frames_never_raise_and_every_element_is_accounted_for(tmp_path: Path) -> None:
    bus = Bus()
    batches: list[MarketBatch] = []
    bus.subscribe(MarketBatch, batches.append)
    store = Store.open(None)
    config = parse_config(config_text("ws://127.0.0.1:9/v2/iex", "http://127.0.0.1:9"))
    feed = AlpacaFeed(FeedContext(bus, SessionClock(), config, store, tmp_path))
    feed.subscribe(["AAPL", "MSFT"])

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(frame=_frames())
    def check(frame: str | bytes) -> None:
        batches.clear()
        malformed, skipped = feed.malformed, sum(feed.skipped.values())
        feed._on_frame(frame, 1)
        events = [e for b in batches for e in b.events]
        assert len(batches) <= 1
        for e in events:
            assert type(e) in (Trade, Quote, Bar) and e.symbol in ("AAPL", "MSFT") and type(e.ts) is int
            numbers = e[2:] if type(e) is not Bar else e[3:]
            assert all(type(x) in (int, float) and not math.isnan(x) for x in numbers)
        try:
            decoded = json.loads(frame) if isinstance(frame, str) else None
        except (ValueError, RecursionError):
            decoded = None
        if not isinstance(decoded, list):
            assert (feed.malformed - malformed, events) == (1, [])
            return
        controls = sum(
            1 for x in decoded if isinstance(x, dict) and x.get("T") in ("success", "error", "subscription")
        )
        accounted = (
            len(events) + (feed.malformed - malformed) + (sum(feed.skipped.values()) - skipped) + controls
        )
        assert accounted == len(decoded)

    try:
        check()
    finally:
        store.close()


@settings(max_examples=300, deadline=None)
@given(
    when=st.integers(86_400 * 10**9, time.time_ns()),  # from 1970 to now
    digits=st.integers(0, 9),
    offset_minutes=st.integers(-23 * 60, 23 * 60),
)
def test_rfc3339_times_parse_to_the_nanosecond(when: int, digits: int, offset_minutes: int) -> None:
    text = rfc3339(when, digits)
    expected = when - when % 10 ** (9 - digits)
    assert parse_time_ns(text) == expected
    assert parse_time_ns(text) == expected  # again, from the cache
    # the same instant written with a UTC offset (slow path)
    local = datetime(1970, 1, 1) + timedelta(microseconds=expected // 1000, minutes=offset_minutes)
    if 1 <= local.year <= 9999:
        sign = "+" if offset_minutes >= 0 else "-"
        hh, mm = divmod(abs(offset_minutes), 60)
        frac = f"{expected % 10**9:09d}"[:digits]
        shown = (
            local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if digits else "") + f"{sign}{hh:02d}:{mm:02d}"
        )
        assert parse_time_ns(shown) == expected


def test_a_time_more_than_a_day_ahead_is_refused() -> None:
    """No market data comes from the future; past 2262 a time cannot even be stored."""
    soon = time.time_ns() + 3600 * 10**9
    assert parse_time_ns(rfc3339(soon)) == soon
    for text in (
        "9999-12-31T23:59:59Z",
        rfc3339(time.time_ns() + 2 * 86_400 * 10**9),
        "2300-01-01T00:00:00+05:30",
    ):
        with pytest.raises(ValueError, match="more than a day ahead"):
            parse_time_ns(text)
        with pytest.raises(ValueError, match="more than a day ahead"):
            parse_time_ns(text)  # and never from the cache


async def test_impossible_numbers_never_reach_the_store_nor_stall_its_writer(
    stream: AlpacaStreamFake, data: AlpacaDataFake, paths: Paths, keys: None
) -> None:
    """A price of 10**20 (a valid JSON number) or a time in 9999 stalled the store writer: the
    batch could not be written, was retried for ever and every tick after it was lost."""
    session = Session(parse_config(config_text(stream.url, data.url)), paths, writer_flush_interval=0.05)
    await session.start()
    try:
        await wait_until(lambda: session.feed_status.state is FeedState.LIVE)
        now = time.time_ns()
        good = trade("AAPL", 101.5, 10, now)
        stream.send(
            "["
            + ", ".join(
                [
                    json.dumps(trade("AAPL", 10**20, 1, now)),
                    json.dumps(trade("AAPL", 1.25, 1, now)).replace("1.25", "1e400"),  # reads as inf
                    json.dumps(trade("AAPL", 0.0, 10, now)),
                    json.dumps(trade("AAPL", -5.0, 10, now)),
                    json.dumps(trade("AAPL", 101.0, -10, now)),
                    json.dumps({**trade("AAPL", 101.0, 10, now), "t": "9999-12-31T23:59:59Z"}),
                    json.dumps({**quote("AAPL", -1.0, 101.6, 1, 1, now)}),
                    json.dumps(bar("AAPL", now - now % MIN, 100, 101, 102, 100.5, 10)),  # low above high
                    json.dumps(bar("AAPL", now - now % MIN, 0, 101, 0, 100.5, 10)),  # a price of 0
                    json.dumps(good),
                ]
            )
            + "]"
        )
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.last == 101.5)
        assert session.writer is not None and session.writer.flush(timeout=5)
        assert session.writer.stats.failures == 0
        assert session.store is not None
        ticks = session.store.con.execute("SELECT price, size FROM ticks WHERE symbol = 'AAPL'").fetchall()
        assert ticks == [(101.5, 10.0)]
        assert session.feed is not None and session.feed.malformed == 9  # type: ignore[attr-defined]
    finally:
        await session.stop()


# --------------------------------------------------------------------------------------------
# error codes
# --------------------------------------------------------------------------------------------


async def test_refused_keys_402_are_an_error_that_waits_for_new_keys(
    start: Callable[..., Any],
    stream: AlpacaStreamFake,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Keys that Alpaca refuses will never work: no retry with them (it retried every few
    seconds for ever), the reason and what to do; a login (new keys) connects again."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TRII_ALPACA_KEY_ID", "PKWRONGKEY99")
    monkeypatch.setenv("TRII_ALPACA_SECRET_KEY", "wrong-secret-value")
    run = await start(("AAPL",), credential_poll=0.02)
    await wait_until(lambda: run.feed.status.state is FeedState.ERROR)
    assert run.feed.status.reason == (
        "Alpaca refused the API key (402 auth failed): fix TRII_ALPACA_KEY_ID and "
        "TRII_ALPACA_SECRET_KEY (they come first), or unset them"
    )
    assert run.feed.status.retry_at_monotonic is None
    await asyncio.sleep(0.3)  # nothing to wait for: it must not try again with these keys
    assert len(stream.conns) == 1 and run.states().count(FeedState.ERROR) == 1
    monkeypatch.setenv("TRII_ALPACA_KEY_ID", KEY)  # a new login
    monkeypatch.setenv("TRII_ALPACA_SECRET_KEY", SECRET)
    await wait_until(lambda: run.feed.status.state is FeedState.LIVE)
    assert len(stream.conns) == 2
    # even at DEBUG (websockets dumps every frame there) the client logs neither key nor secret
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("websockets.server"))
    assert "wrong-secret-value" not in ours and "PKWRONGKEY99" not in ours


async def test_the_connection_limit_406_is_an_error_tried_again_quietly_now_and_then(
    start: Callable[..., Any], stream: AlpacaStreamFake, keys: None
) -> None:
    stream.auth_error = (406, "connection limit exceeded")
    run = await start(("AAPL",), limit_retry=0.05)
    await wait_until(lambda: run.feed.status.state is FeedState.ERROR)
    assert run.feed.status.reason == (
        "Alpaca allows one market-data stream per account, and another program holds it "
        "(406 connection limit exceeded): close the other program streaming with these keys "
        "(another trii-term, a script, a notebook)"
    )
    await wait_until(lambda: len(stream.conns) >= 3)  # tried again now and then, quietly:
    assert run.states() == [FeedState.CONNECTING, FeedState.ERROR]  # no flicker, no new message
    stream.auth_error = None  # the other program closed
    await wait_until(lambda: run.feed.status.state is FeedState.LIVE)


async def test_insufficient_subscription_409_says_which_feed_and_where_to_change_it(
    start: Callable[..., Any], stream: AlpacaStreamFake, keys: None
) -> None:
    stream.forbidden = {"trades", "quotes", "bars"}
    run = await start(("AAPL",), feed="sip", stream_url=stream.server.url + "/v2/sip", credential_poll=0.02)
    await wait_until(lambda: run.feed.status.state is FeedState.ERROR)
    assert run.feed.status.reason == (
        "Alpaca refused the market-data stream (409 insufficient subscription): your plan does not "
        'include the "sip" feed (SIP data needs the Algo Trader Plus plan; every plan streams IEX). '
        "To stream IEX, under [providers.alpaca] in your config file (`trii-term doctor` shows where), "
        'set feed = "iex" and stream_url = "wss://stream.data.alpaca.markets/v2/iex" (or remove stream_url)'
    )
    assert run.feed.status.retry_at_monotonic is None
    await asyncio.sleep(0.3)  # many backoff and poll periods: no new connection may come
    assert len(stream.conns) == 1 and run.feed.status.state is FeedState.ERROR
    assert run.task is not None and not run.task.done()
    stream.forbidden = set()  # the plan was upgraded: the trader asks to connect again
    run.feed.reconnect()
    await wait_until(lambda: run.feed.status.state is FeedState.LIVE)
    assert len(stream.conns) == 2


def test_the_409_advice_follows_the_feed_asked_for() -> None:
    config = Path("/home/me/.config/trii-term/config.toml")
    assert error_reason(409, "insufficient subscription", "sip", config_file=config) == (
        "Alpaca refused the market-data stream (409 insufficient subscription): your plan does not "
        'include the "sip" feed (SIP data needs the Algo Trader Plus plan; every plan streams IEX). '
        f'To stream IEX, set feed = "iex" under [providers.alpaca] in {config}'
    )
    assert "delayed_sip" in error_reason(409, "", "delayed_sip", config_file=config)
    iex = error_reason(409, "insufficient subscription", "iex", config_file=config)
    assert "these keys have no IEX market data, which every Alpaca plan includes" in iex
    assert 'set feed = "iex"' not in iex  # it is iex already: that advice would be no help
    assert error_reason(402, "auth failed", "iex") == (
        "Alpaca refused the API key (402 auth failed): log in again: `trii-term login alpaca`"
    )


async def test_symbol_limit_405_keeps_streaming_with_a_reason(
    start: Callable[..., Any], stream: AlpacaStreamFake, keys: None
) -> None:
    stream.symbol_limit = 1
    run = await start(("AAPL",))
    await wait_until(lambda: run.feed.status.state is FeedState.LIVE)
    run.feed.subscribe(["MSFT"])
    await wait_until(lambda: run.feed.status.reason.startswith("symbol limit (405)"))
    assert run.feed.status.state is FeedState.LIVE
    stream.send([trade("AAPL", 3.0, 1, 5_000)])
    await wait_until(lambda: run.events == [Trade(5_000, "AAPL", 3.0, 1)])
    assert len(stream.conns) == 1


@pytest.mark.parametrize("backend", ["memory", "fail"])
async def test_without_credentials_the_feed_shows_error_and_idles(
    start: Callable[..., Any], stream: AlpacaStreamFake, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    import keyring
    from keyring.backends.fail import Keyring as FailKeyring

    from .fakes.memory_keyring import MemoryKeyring

    monkeypatch.delenv("TRII_ALPACA_KEY_ID", raising=False)
    monkeypatch.delenv("TRII_ALPACA_SECRET_KEY", raising=False)
    before = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring() if backend == "memory" else FailKeyring())
    try:
        run = await start(("AAPL",))
        await wait_until(lambda: run.feed.status.state is FeedState.ERROR)
    finally:
        keyring.set_keyring(before)
    if backend == "memory":  # a keyring without Alpaca keys
        assert run.feed.status.reason == LOGIN_HINT == "no Alpaca credentials: run `trii-term login alpaca`"
    else:  # no usable keyring: the credentials module's own advice
        assert run.feed.status.reason.startswith("No usable OS keyring")
        assert "TRII_ALPACA_KEY_ID" in run.feed.status.reason
    await asyncio.sleep(0.1)
    assert run.task is not None and not run.task.done()  # idles until cancelled
    assert stream.conns == []


# --------------------------------------------------------------------------------------------
# REST history
# --------------------------------------------------------------------------------------------


async def test_history_pages_and_waits_out_a_rate_limit(
    start: Callable[..., Any], data: AlpacaDataFake, keys: None
) -> None:
    now = time.time_ns()
    minute = now - now % MIN - 10 * MIN
    data.page_size = 2
    data.publish(
        "AAPL", "1Min", [(minute + i * MIN, 10 + i, 11 + i, 9 + i, 10.5 + i, 100 * i) for i in range(5)]
    )
    day = to_ns(datetime.now(UTC).replace(hour=5, minute=0, second=0, microsecond=0)) - 86_400 * 10**9
    data.publish("AAPL", "1Day", [(day - i * 86_400 * 10**9, 5, 6, 4, 5.5, 1e6) for i in range(3)])
    data.failures.append(Response(429, {"message": "too many requests"}, {"Retry-After": "0"}))
    run = await start(("AAPL",))
    await wait_until(lambda: len([e for e in run.events if type(e) is Bar]) == 8)
    bars = [e for e in run.events if type(e) is Bar]
    assert bars[:5] == [
        Bar(minute + i * MIN, "AAPL", "1m", 10 + i, 11 + i, 9 + i, 10.5 + i, 100 * i) for i in range(5)
    ]
    assert {(b.interval, b.ts) for b in bars[5:]} == {("1d", day - i * 86_400 * 10**9) for i in range(3)}
    minutes = data.bar_requests("1Min")
    assert [r.query.get("page_token") for r in minutes] == [
        None,
        None,
        ["page-2"],
        ["page-4"],
    ]  # 429, then 3 pages
    q = minutes[0].query
    assert (q["symbols"], q["feed"], q["limit"], q["adjustment"]) == (["AAPL"], ["iex"], ["10000"], ["raw"])
    assert q["start"][0].endswith("T09:00:00Z") or q["start"][0].endswith("T08:00:00Z")  # 04:00 New York
    assert (
        minutes[0].headers["apca-api-key-id"] == KEY and minutes[0].headers["apca-api-secret-key"] == SECRET
    )


async def test_a_rest_error_is_reported_and_the_stream_goes_on(
    start: Callable[..., Any], stream: AlpacaStreamFake, data: AlpacaDataFake, keys: None
) -> None:
    run = await start(("AAPL",))
    await wait_until(lambda: run.feed.status.state is FeedState.LIVE and len(data.bar_requests("1Day")) == 1)
    data.failures.append(Response(403, {"message": "subscription does not permit querying recent SIP data"}))
    run.feed.subscribe(["MSFT"])
    reason = (
        "could not read the recent minute bars of MSFT from Alpaca (HTTP 403: "
        "subscription does not permit querying recent SIP data); their charts start from live ticks"
    )
    await wait_until(lambda: run.feed.status.reason == reason)
    assert run.feed.status.state is FeedState.LIVE
    stream.send([trade("MSFT", 4.0, 2, 7_000)])
    await wait_until(lambda: Trade(7_000, "MSFT", 4.0, 2) in run.events)


async def test_a_rate_limit_429_that_holds_names_what_could_not_be_read(
    start: Callable[..., Any], stream: AlpacaStreamFake, data: AlpacaDataFake, keys: None
) -> None:
    limited = Response(429, {"message": "too many requests"}, {"Retry-After": "0"})
    data.http.route("GET", "/v2/assets", lambda req: limited)
    data.http.route("GET", "/v2/stocks/snapshots", lambda req: limited)
    data.failures += [limited] * 5  # the recent minute bars: every try
    run = await start(("AAPL", "MSFT"), rate_limit_max_wait=0.01)
    await wait_until(lambda: run.feed.status.state is FeedState.LIVE and len(data.bar_requests("1Day")) == 1)
    said = [s.reason for _, s in run.statuses]
    assert (
        "could not read Alpaca's list of assets (rate limit (429): too many requests); any well-formed "
        "US ticker is accepted, shown without its name"
    ) in said
    assert (
        "could not read the day so far (the previous close) of AAPL and MSFT from Alpaca (rate limit "
        "(429) still hit after 5 tries); their change column stays empty"
    ) in said
    assert (
        "could not read the recent minute bars of AAPL and MSFT from Alpaca (rate limit (429) still hit "
        "after 5 tries); their charts start from live ticks"
    ) in said
    await wait_until(lambda: run.feed.status.reason == "")  # the daily bars came: nothing to say
    assert run.feed.status.state is FeedState.LIVE


# --------------------------------------------------------------------------------------------
# instruments
# --------------------------------------------------------------------------------------------


async def test_instruments_come_from_the_store_the_config_and_the_asset_list(
    start: Callable[..., Any], data: AlpacaDataFake, keys: None
) -> None:
    store = Store.open(None)
    upsert_instruments(
        store.con,
        [
            Instrument("AAPL", "Apple Inc.", "NASDAQ", "US", "USD"),
            Instrument("SPX", "S&P 500 Index", "INDEX", "US", "USD", InstrumentKind.INDEX),
            Instrument("INFY", "Infosys", "NSE", "NSE", "INR", tick_size=Decimal("0.05")),
        ],
        source="history",
    )
    data.assets = [
        {"symbol": "TSLA", "name": "Tesla, Inc. Common Stock", "exchange": "NASDAQ", "tradable": True},
        {"symbol": "SPY", "name": "SPDR S&P 500 ETF Trust", "exchange": "ARCA", "tradable": True},
        {"symbol": "AAPL", "name": "Apple Inc. Common Stock", "exchange": "NASDAQ", "tradable": True},
        {"symbol": "OLDCO", "name": "Old Co", "exchange": "OTC", "tradable": False},
        {"name": "no symbol"},
        "garbage",
    ]
    run = await start(("AAPL", "ZZZ"), feed="test", run=False, store=store)
    inst = run.feed.instruments()
    assert set(inst) == {"AAPL", "TSLA", "SPY", "OLDCO", "ZZZ", "FAKEPACA"}
    assert inst["AAPL"].name == "Apple Inc."  # what the store knows wins
    assert (inst["SPY"].exchange, inst["SPY"].name) == ("ARCA", "SPDR S&P 500 ETF Trust")
    assert run.feed.untradable == {"OLDCO"}
    assert all(
        (i.market, i.currency, i.tick_size, i.kind) == ("US", "USD", Decimal("0.01"), InstrumentKind.STOCK)
        for i in inst.values()
    )
    assets = [r for r in data.http.requests if r.path == "/v2/assets"]
    assert assets[0].query == {"status": ["active"], "asset_class": ["us_equity"]}
    # with the asset list loaded, a symbol Alpaca does not list is unknown
    assert "NOTLISTED" not in inst


async def test_an_unreachable_asset_list_is_logged_and_ignored(
    start: Callable[..., Any], data: AlpacaDataFake, keys: None, caplog: pytest.LogCaptureFixture
) -> None:
    data.http.route("GET", "/v2/assets", lambda req: Response(500, {"message": "internal error"}))
    run = await start(("AAPL", "MSFT"), run=False)
    inst = run.feed.instruments()
    assert set(inst) == {"AAPL", "MSFT"}
    assert (
        "could not read Alpaca's list of assets (HTTP 500: internal error); any well-formed US "
        "ticker is accepted, shown without its name"
    ) in caplog.text
    # without it, any well-formed US ticker can still be added to a watchlist and streamed
    assert "NVDA" in inst and "BRK.B" in inst and inst["NVDA"].currency == "USD"
    assert "NSE:INFY" not in inst and "not a ticker" not in inst


# --------------------------------------------------------------------------------------------
# end to end: a drop mid-stream, through a real Session and store
# --------------------------------------------------------------------------------------------


async def test_a_drop_mid_stream_reconnects_and_the_backfill_leaves_no_hole(
    stream: AlpacaStreamFake, data: AlpacaDataFake, paths: Paths, keys: None
) -> None:
    session = Session(parse_config(config_text(stream.url, data.url)), paths, writer_flush_interval=0.05)
    statuses: list[FeedStatus] = []
    session.bus.subscribe(FeedStatus, statuses.append)
    await session.start()
    try:
        feed = session.feed
        assert isinstance(feed, AlpacaFeed)
        feed.backoff_base = 0.05
        await wait_until(lambda: session.feed_status.state is FeedState.LIVE)
        # the first history requests are answered (empty) before the "exchange" makes any bar
        await wait_until(lambda: len(data.bar_requests("1Min")) == 1 and len(data.bar_requests("1Day")) == 1)
        await wait_until(lambda: feed._history_task is not None and feed._history_task.done())

        now = time.time_ns()
        minutes = [now - now % MIN - 12 * MIN + k * MIN for k in range(10)]

        def make(k: int) -> tuple[int, float, float, float, float, float]:
            return (minutes[k], 100 + k, 101 + k, 99 + k, 100.5 + k, 1000 + k)

        def stream_bars(ks: range) -> None:
            for k in ks:
                data.publish("AAPL", "1Min", [make(k)])
                stream.send([trade("AAPL", 100 + k, 10, minutes[k] + 30 * 10**9), bar("AAPL", *make(k))])

        stream_bars(range(5))
        await wait_until(lambda: feed._last_bar_ns == minutes[4])
        data.publish("AAPL", "1Min", [make(k) for k in range(5, 8)])  # made while we are cut off
        stream.drop()
        await wait_until(lambda: len(stream.conns) == 2 and session.feed_status.state is FeedState.LIVE)
        lost = [s for s in statuses if s.state is FeedState.RECONNECTING]
        assert lost and lost[0].reason == "connection lost (code 1006)" and lost[0].retry_at_monotonic
        assert stream.subscribe_messages(stream.conns[1]) == [sub("subscribe", ["AAPL"])]
        stream_bars(range(8, 10))

        # the gap is asked for from the last minute received before the drop
        await wait_until(lambda: len(data.bar_requests("1Min")) == 2)
        gap = data.bar_requests("1Min")[1].query
        assert gap["start"] == [rfc3339(minutes[4])] and gap["symbols"] == ["AAPL"]

        def stored() -> list[tuple[datetime, float]]:
            assert session.store is not None
            return session.store.con.execute(
                "SELECT ts, open FROM bars WHERE symbol = 'AAPL' AND interval = '1m' ORDER BY ts"
            ).fetchall()

        await wait_until(lambda: len(stored()) >= 10)
        assert session.writer is not None
        await asyncio.to_thread(session.writer.flush)
        rows = stored()
        assert [ts for ts, _ in rows] == [US.local(m).replace(tzinfo=None) for m in minutes]  # no hole
        assert len({ts for ts, _ in rows}) == len(rows) == 10  # no duplicate
        assert [o for _, o in rows] == [100 + k for k in range(10)]
        ticks = session.store.con.execute("SELECT count(*) FROM ticks WHERE symbol = 'AAPL'").fetchone()
        assert ticks == (7,)
    finally:
        await session.stop()


async def test_a_snapshot_gives_the_day_so_far_and_the_previous_close(
    start: Callable[..., Any], data: AlpacaDataFake, keys: None
) -> None:
    data.snapshots["AAPL"] = {
        "latestTrade": {
            "t": "2026-11-20T15:59:59.5Z",
            "p": 231.25,
            "s": 10,
            "x": "V",
            "i": 7,
            "c": [],
            "z": "C",
        },
        "dailyBar": {"t": "2026-11-20T05:00:00Z", "o": 228.5, "h": 232.0, "l": 227.75, "c": 231.2, "v": 5e6},
        "prevDailyBar": {"t": "2026-11-19T05:00:00Z", "o": 225, "h": 229, "l": 224, "c": 228.0, "v": 4e6},
    }
    data.snapshots["MSFT"] = {"dailyBar": {"t": "2026-11-20T05:00:00Z", "o": "not a number"}}
    run = await start(("AAPL", "MSFT"))
    await wait_until(lambda: any(type(e) is DayStats for e in run.events))
    stats = [e for e in run.events if type(e) is DayStats]
    assert stats == [
        DayStats(
            ns("2026-11-20T05:00:00Z"), "AAPL", date(2026, 11, 20), 228.0, 228.5, 232.0, 227.75, 231.25, 5e6
        )
    ]
    assert run.feed.malformed == 1  # MSFT's snapshot was garbage: counted, skipped
    snap = next(r for r in data.http.requests if r.path == "/v2/stocks/snapshots")
    assert snap.query["symbols"] == ["AAPL,MSFT"] and snap.query["feed"] == ["iex"]
