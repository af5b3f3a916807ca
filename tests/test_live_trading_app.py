"""Trading on a live broker as a trader does it, at 80×24: the workstation on loopback Alpaca
(market-data stream, data REST, trading REST and trade_updates), real alpaca-py as the client.
Ticket → confirm → the order reaches Alpaca (only after `y`) → the fill arrives on the stream →
journal and portfolio; and a broker whose keys are refused leaves the workstation running."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal as D

import pytest

from trii_term.domain.orders import OrderStatus
from trii_term.paths import Paths
from trii_term.screens.portfolio import PortfolioScreen
from trii_term.screens.ticket import ConfirmScreen, TicketScreen

from .conftest import wait_until
from .fakes.alpaca_data import AlpacaDataFake, AlpacaStreamFake, quote, trade
from .fakes.alpaca_trading import KEY_ID, SECRET, AlpacaTradingFake
from .test_app import asking, make_app, screen_text


@pytest.fixture
def alpaca(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[AlpacaStreamFake, AlpacaDataFake, AlpacaTradingFake]]:
    monkeypatch.setenv("TRII_ALPACA_KEY_ID", KEY_ID)
    monkeypatch.setenv("TRII_ALPACA_SECRET_KEY", SECRET)
    with (
        AlpacaStreamFake(KEY_ID, SECRET) as stream,
        AlpacaDataFake(KEY_ID, SECRET) as data,
        AlpacaTradingFake() as trading,
    ):
        data.assets = [{"symbol": "AAPL", "name": "Apple Inc.", "exchange": "NASDAQ", "tradable": True}]
        yield stream, data, trading


def _config(stream: AlpacaStreamFake, data: AlpacaDataFake, trading: AlpacaTradingFake) -> str:
    return (
        '[feed]\nprovider = "alpaca"\nsymbols = ["AAPL"]\n'
        f'[providers.alpaca]\nstream_url = "{stream.url}"\ndata_url = "{data.url}"\n'
        f'[brokers]\ndefault = "alpaca"\n'
        f'[brokers.alpaca]\nurl = "{trading.rest_url}"\nstream_url = "{trading.stream_url}"\n'
        "[risk]\nprice_band_pct = 50\n"
    )


def _priced(stream: AlpacaStreamFake) -> None:
    now = time.time_ns()
    stream.send([trade("AAPL", 231.5, 100, now), quote("AAPL", 231.49, 231.52, 3, 4, now)])


async def test_a_live_order_is_sent_only_after_y_and_its_fill_reaches_journal_and_portfolio(
    paths: Paths, alpaca
) -> None:  # type: ignore[no-untyped-def]
    stream, data, trading = alpaca
    app = make_app(paths, _config(stream, data, trading))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: app.ready and app.session.desk is not None, timeout=20)
        await wait_until(lambda: stream.conns and stream.subscribe_messages())
        _priced(stream)
        await wait_until(lambda: "231.50" in screen_text(app))
        await wait_until(lambda: "⇄ alpaca PAPER" in screen_text(app))

        await pilot.press("b")
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        await pilot.press("5")
        await wait_until(lambda: "position AAPL 0 → 5" in screen_text(app))
        await pilot.press("enter")
        await wait_until(lambda: asking(app))
        assert "To alpaca PAPER account" in screen_text(app)
        assert "commission 0.00" in screen_text(app)  # Alpaca charges none ([fees] is the paper broker's)
        assert trading.post_bodies() == []  # nothing reaches Alpaca before the confirmation
        await pilot.press("y")
        await wait_until(lambda: len(trading.post_bodies()) == 1)
        body = trading.post_bodies()[0]
        assert (body["symbol"], body["side"], body["qty"], body["type"]) == ("AAPL", "buy", "5", "market")
        await wait_until(lambda: not isinstance(app.screen, (ConfirmScreen, TicketScreen)))
        (order,) = app.session.broker.orders()
        assert order.request.client_order_id == body["client_order_id"]

        broker_order = trading.by_client_id(body["client_order_id"])
        trading.fill(broker_order["id"], 5, "231.52")
        await wait_until(lambda: app.session.broker.orders()[0].status is OrderStatus.FILLED)
        line = app.workstation.message_line
        await wait_until(lambda: line.message.startswith("Filled: buy 5 AAPL at 231.52"))
        events = [e.event for e in app.session.broker.journal.entries()]
        assert events == ["intent", "checked", "submitted", "acknowledged", "filled"]
        assert app.session.broker.orders()[0].avg_fill_price == D("231.52")

        await pilot.press("o")
        await wait_until(lambda: isinstance(app.screen, PortfolioScreen))
        await wait_until(lambda: "AAPL" in screen_text(app) and "231.52" in screen_text(app))
        # valued at the streamed last (231.50), not at the broker's position snapshot
        (pos,) = app.session.broker.positions()
        assert (pos.qty, pos.avg_cost, pos.last, pos.unrealized_pnl) == (
            5,
            D("231.52"),
            D("231.50"),
            D("-0.10"),
        )
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def test_refused_keys_leave_the_workstation_streaming_and_the_ticket_says_why(
    paths: Paths, alpaca, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    stream, data, trading = alpaca
    app = make_app(paths, _config(stream, data, trading))
    # the data keys work; the trading API refuses them (a paper key used against live, say)
    trading.fail_next("GET", "/v2/account", 401, {"message": "request is not authorized"})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: app.ready)
        await wait_until(
            lambda: bool(app.session.broker_note) and "connecting" not in app.session.broker_note
        )
        await wait_until(lambda: "✖ alpaca PAPER" in screen_text(app))
        await wait_until(lambda: stream.conns and stream.subscribe_messages())
        _priced(stream)
        await wait_until(lambda: "231.50" in screen_text(app))  # quotes keep streaming
        await pilot.press("b")
        line = app.workstation.message_line
        await wait_until(lambda: line.message.startswith("Trading unavailable") and line.level == "error")
        assert "refused" in line.message and "trii-term login alpaca" in line.message, line.message
        assert not isinstance(app.screen, TicketScreen)
        assert trading.post_bodies() == []
        await pilot.press("ctrl+q")


async def test_a_live_replace_runs_every_rule_and_reaches_alpaca_only_after_y(paths: Paths, alpaca) -> None:  # type: ignore[no-untyped-def]
    stream, data, trading = alpaca
    app = make_app(paths, _config(stream, data, trading))

    def patches() -> list[dict]:  # type: ignore[type-arg]
        return [r.json() for r in trading.http.requests if r.method == "PATCH"]

    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: app.ready and app.session.desk is not None, timeout=20)
        await wait_until(lambda: stream.conns and stream.subscribe_messages())
        _priced(stream)
        await wait_until(lambda: "231.50" in screen_text(app))
        await app.execute("buy 10 AAPL lmt 225 gtc", source="palette")
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        await pilot.press("enter")
        await wait_until(lambda: asking(app))
        await pilot.press("y")
        await wait_until(
            lambda: len(trading.post_bodies()) == 1 and app.session.broker.orders(open_only=True)
        )
        (working,) = app.session.broker.orders(open_only=True)

        result = await app.execute(f"order replace {working.id} qty 5000", source="palette")
        assert result is not None and result.level == "error" and "max_order_notional" in result.message
        assert patches() == []  # refused by the rules: nothing reached Alpaca
        await pilot.press("escape")

        await app.execute(f"order replace {working.id} lmt 226.004", source="key")
        await wait_until(lambda: asking(app))
        await wait_until(lambda: "To alpaca PAPER account" in screen_text(app))
        assert "limit 226.00" in screen_text(app)
        assert patches() == []  # not before y
        await pilot.press("y")
        await wait_until(lambda: len(patches()) == 1)
        assert patches()[0] == {"limit_price": "226"}  # 226.004 on Alpaca's tick: a buy rounded down

        def events() -> list[tuple[str, str]]:
            return [(e.event, e.source) for e in app.session.broker.journal.entries(order_id=working.id)]

        await wait_until(lambda: ("replaced", "key") in events())  # journaled once Alpaca has answered
        assert ("checked", "key") in events() and ("replaced", "key") in events()
        await pilot.press("ctrl+q")
