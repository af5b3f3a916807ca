"""Kite end to end through one Session: the feed (loopback ticker and REST) and the broker
(loopback Kite trading REST, real kiteconnect). An order's update arrives as a text message on
the ticker and reaches the broker through the bus, before any poll could see it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal as D

import pytest

from trii_term.config import parse_config
from trii_term.domain.orders import OrderRequest, OrderStatus, OrderType, Side
from trii_term.paths import Paths
from trii_term.session import Session

from .conftest import wait_until
from .fakes import kite_data as kd
from .fakes.kite_trading import ACCESS_TOKEN, API_KEY, KiteTradingFake


@pytest.fixture
def kite(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[kd.KiteTickerFake, kd.KiteRestFake, KiteTradingFake]]:
    monkeypatch.setenv("TRII_KITE_API_KEY", API_KEY)
    monkeypatch.setenv("TRII_KITE_ACCESS_TOKEN", ACCESS_TOKEN)
    with (
        kd.KiteTickerFake(api_key=API_KEY, access_token=ACCESS_TOKEN) as ticker,
        kd.KiteRestFake(api_key=API_KEY, access_token=ACCESS_TOKEN) as rest,
    ):
        trading = KiteTradingFake().start()
        try:
            yield ticker, rest, trading
        finally:
            trading.stop()


async def test_an_order_update_on_the_ticker_reaches_the_kite_broker(kite, paths: Paths) -> None:  # type: ignore[no-untyped-def]
    ticker, rest, trading = kite
    config = parse_config(
        '[feed]\nprovider = "kite"\nsymbols = ["NSE:INFY"]\n'
        f'[providers.kite]\nticker_url = "{ticker.url}"\nroot = "{rest.url}"\n'
        f'[brokers]\ndefault = "kite"\n[brokers.kite]\nroot = "{trading.url}"\n'
    )
    session = Session(config, paths)
    await session.start()
    try:
        await wait_until(lambda: session.desk is not None, timeout=15)
        await wait_until(lambda: session.quotes.get("NSE:INFY") is not None)
        assert session.broker_label() == "kite (live account)"
        request = OrderRequest("NSE:INFY", Side.BUY, D(1), OrderType.LIMIT, limit_price=D("1500.03"))
        order = await asyncio.to_thread(session.desk.submit, request, source="test", confirmed=True)  # type: ignore[union-attr]
        (form,) = trading.place_forms()
        assert form["price"] == "1500" and form["tradingsymbol"] == "INFY"  # a buy limit rounds down to tick
        kite_id = trading.by_tag(form["tag"])["order_id"]

        # Kite says it filled — on the ticker only (its order book still says OPEN, so no poll
        # could have told the broker)
        update = trading.postback(kite_id)
        update.update(status="COMPLETE", filled_quantity=1, pending_quantity=0, average_price=1500.0)
        await ticker.push(json.dumps({"type": "order", "data": update}))
        await wait_until(lambda: session.broker.orders()[0].status is OrderStatus.FILLED)  # type: ignore[union-attr]
        filled = session.broker.orders()[0]  # type: ignore[union-attr]
        assert filled.id == order.id and filled.avg_fill_price == D("1500")
        events = [e.event for e in session.broker.journal.entries(order_id=order.id)]  # type: ignore[union-attr]
        assert events.count("filled") == 1
    finally:
        await session.stop()
