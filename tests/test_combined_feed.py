"""One watchlist mixing US and Indian instruments: `feed.provider = ["alpaca", "kite"]` streams
AAPL from Alpaca (USD, NYSE hours) and NSE:INFY from Kite (INR, NSE hours) through one Session,
with one status that names the provider in trouble. Loopback Alpaca and Kite servers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from trii_term.config import ConfigError, parse_config
from trii_term.domain import NSE, US, FeedState, FeedStatus
from trii_term.feeds import instruments_problem
from trii_term.paths import Paths
from trii_term.session import Session

from .conftest import wait_until
from .fakes import kite_data as kd
from .fakes.alpaca_data import KEY, SECRET, AlpacaDataFake, AlpacaStreamFake, quote, trade

KITE_KEY, KITE_TOKEN = "kite-api-key-4711", "kite-access-token-0815"


@pytest.fixture
def fakes(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[AlpacaStreamFake, AlpacaDataFake, kd.KiteTickerFake, kd.KiteRestFake]]:
    monkeypatch.setenv("TRII_ALPACA_KEY_ID", KEY)
    monkeypatch.setenv("TRII_ALPACA_SECRET_KEY", SECRET)
    monkeypatch.setenv("TRII_KITE_API_KEY", KITE_KEY)
    monkeypatch.setenv("TRII_KITE_ACCESS_TOKEN", KITE_TOKEN)
    with (
        AlpacaStreamFake() as stream,
        AlpacaDataFake() as data,
        kd.KiteTickerFake(api_key=KITE_KEY, access_token=KITE_TOKEN) as ticker,
        kd.KiteRestFake(api_key=KITE_KEY, access_token=KITE_TOKEN) as rest,
    ):
        data.assets = [{"symbol": "AAPL", "name": "Apple Inc.", "exchange": "NASDAQ", "tradable": True}]
        yield stream, data, ticker, rest


def _config(stream: AlpacaStreamFake, data: AlpacaDataFake, ticker: kd.KiteTickerFake, rest: kd.KiteRestFake):  # type: ignore[no-untyped-def]
    return parse_config(
        '[feed]\nprovider = ["alpaca", "kite"]\nsymbols = ["AAPL", "NSE:INFY"]\n'
        f'[providers.alpaca]\nstream_url = "{stream.url}"\ndata_url = "{data.url}"\n'
        f'[brokers.alpaca]\nurl = "{data.url}"\n'
        f'[providers.kite]\nticker_url = "{ticker.url}"\nroot = "{rest.url}"\n'
    )


async def test_one_watchlist_streams_aapl_from_alpaca_and_infy_from_kite(fakes, paths: Paths) -> None:  # type: ignore[no-untyped-def]
    stream, _, ticker, _ = fakes
    session = Session(_config(*fakes), paths, writer_flush_interval=0.05)
    statuses: list[FeedStatus] = []
    session.bus.subscribe(FeedStatus, statuses.append)
    await session.start()
    try:
        assert session.provider_name == "alpaca+kite"
        assert session.subscribed() == ["AAPL", "NSE:INFY"]
        await wait_until(lambda: session.feed_status.state is FeedState.LIVE)
        # each provider was asked only for its own symbol
        assert {m.get("trades") and tuple(m["trades"]) for m in stream.subscribe_messages()} == {("AAPL",)}
        now = time.time_ns()
        stream.send([trade("AAPL", 231.5, 100, now), quote("AAPL", 231.49, 231.52, 3, 4, now)])
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.last == 231.5)
        await wait_until(lambda: session.quotes.get("NSE:INFY") is not None)
        await ticker.push(
            kd.message(kd.quote(kd.INFY, 157400, 3, 157350, 1_176_086, 1, 1, 156915, 157500, 156105, 156780))
        )
        await wait_until(lambda: session.quotes.get("NSE:INFY").last == 1574.0)  # type: ignore[union-attr]
        # instruments carry their exchange and currency; the clock follows each exchange
        aapl, infy = session.instruments["AAPL"], session.instruments["NSE:INFY"]
        assert (aapl.market, aapl.currency, infy.market, infy.currency) == ("US", "USD", "NSE", "INR")
        assert session.market_of("AAPL") is US and session.market_of("NSE:INFY") is NSE
        assert session.writer is not None and session.writer.flush()
        assert session.store is not None
        rows = session.store.con.execute(
            "SELECT symbol, source, count(*) FROM ticks GROUP BY ALL ORDER BY symbol"
        ).fetchall()
        assert rows == [("AAPL", "alpaca", 1), ("NSE:INFY", "kite", 1)]

        # one provider in trouble: the combined status says which, and recovers with it
        await ticker.drop()
        await wait_until(lambda: session.feed_status.state is FeedState.RECONNECTING)
        assert session.feed_status.reason.startswith("kite: ")
        assert session.feed_status.retry_at_monotonic is not None
        await wait_until(lambda: session.feed_status.state is FeedState.LIVE, timeout=15)
        assert all(s.provider == "alpaca+kite" for s in statuses)
    finally:
        await session.stop()


def test_replay_cannot_be_combined_and_a_provider_is_named_once() -> None:
    with pytest.raises(ConfigError, match="replay runs a simulated clock"):
        parse_config('[feed]\nprovider = ["replay", "alpaca"]\n')
    with pytest.raises(ConfigError, match="names a provider twice"):
        parse_config('[feed]\nprovider = ["kite", "kite"]\n')
    assert parse_config('[feed]\nprovider = ["alpaca", "kite"]\n').feed.providers == ("alpaca", "kite")


async def test_a_refused_kite_token_is_named_where_its_symbols_are_looked_up(  # type: ignore[no-untyped-def]
    fakes, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRII_KITE_ACCESS_TOKEN", "yesterdays-token")
    session = Session(_config(*fakes), paths, writer_flush_interval=0.05)
    await session.start()
    try:
        assert "AAPL" in session.instruments and "NSE:INFY" not in session.instruments
        problem = instruments_problem(session.instruments)
        assert problem.startswith("kite: Kite refused the access token (expired or invalid)")
        assert "`trii-term login kite`" in problem and "yesterdays-token" not in problem
        await wait_until(lambda: session.feed_status.state is FeedState.ERROR)
        assert session.feed_status.reason == problem  # the status names the provider too
        # the palette, typing a Kite symbol, is told the same — never "unknown symbol"
        from trii_term.commands import CommandContext, CommandError

        with pytest.raises(CommandError) as err:
            await session.commands.run("watch add NSE:INFY", CommandContext(session, source="palette"))
        assert "log in again" in str(err.value) and "Unknown symbol" not in str(err.value)
        assert err.value.exit_code == 1
        result = await session.commands.run("feed reconnect", CommandContext(session, source="palette"))
        assert "again" in result.message
    finally:
        await session.stop()
