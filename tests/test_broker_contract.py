"""What every broker promises alike, run against the paper broker, Alpaca (the real alpaca-py
client against a loopback Alpaca) and Kite (the real kiteconnect client against a loopback Kite):
an order is journalled and acknowledged, a fill reaches the order, the listeners and the
positions, a replace keeps the order's id, a cancel ends it once, a refused order leaves nothing
working, and a restart (a reconnect of a live broker) finds the working order again.

What a venue does its own way (request bodies, streams and postbacks, reconciliation notes, the
exact wording of its refusals) is tested in test_paper_broker.py, test_alpaca_broker.py and
test_kite_broker.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from datetime import time as dtime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.alpaca_trading import KEY_ID, SECRET, AlpacaTradingFake, wait_for
from tests.fakes.kite_trading import ACCESS_TOKEN, API_KEY, KiteTradingFake
from trii_term.adapters.alpaca.broker import AlpacaBroker
from trii_term.adapters.alpaca.settings import AlpacaBrokerConfig
from trii_term.adapters.kite.broker import KiteBroker
from trii_term.adapters.kite.master import KiteMaster
from trii_term.adapters.kite.settings import KiteBrokerConfig
from trii_term.brokers.paper import PaperBroker
from trii_term.credentials import Credentials
from trii_term.domain import NSE, Instrument, MarketBatch, Quote, Trade
from trii_term.domain.orders import TIF, Event, Order, OrderError, OrderRequest, OrderStatus, OrderType, Side
from trii_term.store.db import Store

US_INSTRUMENTS = {"AAPL": Instrument("AAPL", "Apple Inc.", "NASDAQ", "US", "USD")}
NSE_MONDAY = date(2024, 3, 4)
KITE_KEYS = Credentials("kite", {"api_key": API_KEY, "access_token": ACCESS_TOKEN}, "environment")
ALPACA_KEYS = Credentials("alpaca", {"key_id": KEY_ID, "secret_key": SECRET}, "environment")
KITE_MASTER = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,"
    "instrument_type,segment,exchange\n408065,1594,INFY,INFOSYS,0.0,,0.0,0.05,1,EQ,NSE,NSE\n"
)


class Venue:
    """One broker under test: how to make it, how its market fills or refuses an order."""

    name = ""
    symbol = ""
    currency = ""
    limit = D(0)  # a buy limit that rests (the market is above it)
    lower = D(0)  # a lower limit for a replace, on the tick

    def __init__(self, store: Store) -> None:
        self.store = store
        self.made: list[Any] = []

    def make(self) -> Any:
        """A new broker on the store, started (a live one reconciles with its venue)."""
        raise NotImplementedError

    def restart(self, broker: Any) -> tuple[Any, list[str]]:
        """Stop `broker` and start another on the same store: (the new one, what it had to say)."""
        raise NotImplementedError

    def fill(self, broker: Any, order: Order) -> None:
        """The market fills the whole order at its limit."""
        raise NotImplementedError

    def refused(self) -> OrderRequest:
        """An order the broker refuses: this account cannot pay for it."""
        return self.working(10_000)

    def working(self, qty: int = 10) -> OrderRequest:
        return OrderRequest(self.symbol, Side.BUY, D(qty), OrderType.LIMIT, TIF.DAY, limit_price=self.limit)

    def stop(self) -> None:
        for broker in self.made:
            if hasattr(broker, "stop"):
                broker.stop()


class PaperVenue(Venue):
    name, symbol, currency = "paper", "AAPL", "USD"
    limit, lower = D("95"), D("94.5")

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.ns = 1_362_148_200_000_000_000

    def clock(self) -> int:
        self.ns += 1_000_000
        return self.ns

    def _quote(self, broker: PaperBroker, bid: float, ask: float) -> None:
        events = [Quote(self.ns, self.symbol, bid, ask, 1000, 1000), Trade(self.ns, self.symbol, ask, 100)]
        broker.on_batch(MarketBatch("replay", events, 0))

    def make(self) -> PaperBroker:
        broker = PaperBroker(self.store.con, instruments=US_INSTRUMENTS, clock_ns=self.clock)
        self._quote(broker, 99.98, 100.02)
        self.made.append(broker)
        return broker

    def restart(self, broker: Any) -> tuple[Any, list[str]]:
        return self.make(), []  # its state is in the store

    def fill(self, broker: Any, order: Order) -> None:
        assert order.request.limit_price is not None
        limit = float(order.request.limit_price)
        self._quote(broker, limit - 0.02, limit)


class AlpacaVenue(Venue):
    name, symbol, currency = "alpaca", "AAPL", "USD"
    limit, lower = D("95"), D("94.5")

    def __init__(self, store: Store, fake: AlpacaTradingFake) -> None:
        super().__init__(store)
        self.fake = fake

    def make(self) -> AlpacaBroker:
        broker = AlpacaBroker(
            self.store,
            settings=AlpacaBrokerConfig(paper=True, url=self.fake.rest_url, stream_url=self.fake.stream_url),
            credentials=ALPACA_KEYS,
            instruments=US_INSTRUMENTS,
            clock_ns=time.time_ns,
            timeout=3.0,
            reconnect_delay=(0.05, 0.2),
            recheck_delay=0.2,
            cache_seconds=0.0,
        )
        self.made.append(broker)
        assert broker.start() == []
        return broker

    def restart(self, broker: Any) -> tuple[Any, list[str]]:
        broker.stop()
        again = AlpacaBroker(
            self.store,
            settings=broker.settings,
            credentials=ALPACA_KEYS,
            instruments=US_INSTRUMENTS,
            clock_ns=time.time_ns,
            timeout=3.0,
            reconnect_delay=(0.05, 0.2),
            recheck_delay=0.2,
            cache_seconds=0.0,
        )
        self.made.append(again)
        return again, again.start()

    def fill(self, broker: Any, order: Order) -> None:
        self.fake.fill(self.fake.by_client_id(order.id)["id"], None, str(order.request.limit_price))

    def refused(self) -> OrderRequest:  # the fake's account has $100,000 of buying power
        return OrderRequest(self.symbol, Side.BUY, D(10_000), OrderType.LIMIT, TIF.DAY, limit_price=D("4864"))


class KiteVenue(Venue):
    name, symbol, currency = "kite", "NSE:INFY", "INR"
    limit, lower = D("1500"), D("1499.95")

    def __init__(self, store: Store, fake: KiteTradingFake) -> None:
        super().__init__(store)
        self.fake = fake
        self.ns = NSE.at(NSE_MONDAY, dtime(10, 0))  # the market is open: regular orders
        KiteMaster(store.con).store_csv(KITE_MASTER)

    def clock(self) -> int:
        self.ns += 1_000
        return self.ns

    def _new(self) -> KiteBroker:
        broker = KiteBroker(
            self.store,
            settings=KiteBrokerConfig(product="CNC"),
            rest_root=self.fake.url,
            credentials=Credentials(
                "kite", {"api_key": API_KEY, "access_token": ACCESS_TOKEN}, "environment"
            ),
            clock_ns=self.clock,
            timeout=3.0,
            recheck_delay=0.2,
            cache_seconds=0.0,
            poll_interval=0.05,
        )
        self.made.append(broker)
        return broker

    def make(self) -> KiteBroker:
        broker = self._new()
        assert broker.start() == []
        return broker

    def restart(self, broker: Any) -> tuple[Any, list[str]]:
        broker.stop()
        again = self._new()
        return again, again.start()

    def fill(self, broker: Any, order: Order) -> None:
        kite_id = self.fake.by_tag(order.id)["order_id"]
        self.fake.fill(kite_id, None, str(order.request.limit_price))
        broker.on_order_update(self.fake.postback(kite_id))  # the postback the ticker carries

    def refused(self) -> OrderRequest:  # Kite's risk checks answer with a MarginException
        self.fake.fail_next(
            "POST",
            "/orders/",
            400,
            "MarginException",
            "Insufficient funds. Required margin is 95417.84 but available margin is 74251.80.",
        )
        return self.working(60)


@pytest.fixture(scope="module")
def alpaca_server() -> Iterator[AlpacaTradingFake]:
    with AlpacaTradingFake() as f:  # one server for the module: stopping one takes 0.5 s
        yield f


@pytest.fixture(scope="module")
def kite_server() -> Iterator[KiteTradingFake]:
    with KiteTradingFake() as f:
        yield f


@pytest.fixture(params=["paper", "alpaca", "kite"])
def venue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Venue]:
    store = Store.open(tmp_path / "contract.duckdb")
    made: Venue
    if request.param == "paper":
        made = PaperVenue(store)
    elif request.param == "alpaca":
        server = request.getfixturevalue("alpaca_server")
        server.reset()
        made = AlpacaVenue(store, server)
    else:
        server = request.getfixturevalue("kite_server")
        server.reset()
        made = KiteVenue(store, server)
    yield made
    made.stop()
    store.close()


def journal(broker: Any, order_id: str) -> list[tuple[str, str]]:
    return [(e.event, e.source) for e in broker.journal.entries(order_id=order_id)]


def test_an_order_is_journalled_acknowledged_and_working(venue: Venue) -> None:
    broker = venue.make()
    order = broker.place(venue.working(), source="ticket")
    assert order.status is OrderStatus.NEW
    assert journal(broker, order.id) == [("submitted", "ticket"), ("acknowledged", "ticket")]
    (working,) = broker.orders(open_only=True)
    assert (working.id, working.request.symbol, working.request.qty) == (order.id, venue.symbol, D(10))
    assert working.request.limit_price == venue.limit


def test_a_fill_reaches_the_order_the_listeners_and_the_positions(venue: Venue) -> None:
    broker = venue.make()
    heard: list[Event] = []
    broker.on_update(heard.append)
    order = broker.place(venue.working(), source="ticket")
    venue.fill(broker, order)
    wait_for(lambda: any(e.kind == "filled" and e.order.id == order.id for e in heard))
    (done,) = broker.orders()
    assert (done.id, done.status, done.filled_qty, done.avg_fill_price) == (
        order.id,
        OrderStatus.FILLED,
        D(10),
        venue.limit,
    )
    assert [e for e, _ in journal(broker, order.id)] == ["submitted", "acknowledged", "filled"]
    assert broker.orders(open_only=True) == []
    wait_for(lambda: [p.qty for p in broker.positions()] == [D(10)])
    (position,) = broker.positions()
    assert (position.symbol, position.avg_cost, position.currency) == (
        venue.symbol,
        venue.limit,
        venue.currency,
    )
    assert broker.account().currency == venue.currency


def test_a_replace_keeps_the_order_and_a_cancel_ends_it_once(venue: Venue) -> None:
    broker = venue.make()
    order = broker.place(venue.working(), source="ticket")
    changed = broker.replace(order.id, source="cli", qty=D(8), limit_price=venue.lower)
    assert (changed.id, changed.request.qty, changed.request.limit_price) == (order.id, D(8), venue.lower)
    assert [(o.id, o.request.qty) for o in broker.orders(open_only=True)] == [(order.id, D(8))]
    canceled = broker.cancel(order.id, source="cli")
    assert canceled.status is OrderStatus.CANCELED
    assert broker.orders(open_only=True) == []
    assert journal(broker, order.id) == [
        ("submitted", "ticket"),
        ("acknowledged", "ticket"),
        ("replaced", "cli"),
        ("canceled", "cli"),
    ]
    with pytest.raises(OrderError):  # (each venue says it in its own words)
        broker.cancel(order.id, source="cli")
    assert broker.orders()[0].status is OrderStatus.CANCELED
    assert journal(broker, order.id)[-1] == ("canceled", "cli")  # once


def test_a_refused_order_raises_and_leaves_nothing_working(venue: Venue) -> None:
    broker = venue.make()
    with pytest.raises(OrderError, match=r"(?i)insufficient"):
        broker.place(venue.refused(), source="ticket")
    assert broker.orders(open_only=True) == []
    assert all(o.status is OrderStatus.REJECTED for o in broker.orders())
    assert broker.positions() == []


def test_a_restart_finds_the_working_order_and_can_cancel_it(venue: Venue) -> None:
    broker = venue.make()
    order = broker.place(venue.working(), source="ticket")
    again, notes = venue.restart(broker)
    assert notes == []  # nothing changed while it was away: nothing to say
    (working,) = again.orders(open_only=True)
    assert (working.id, working.status, working.request) == (order.id, OrderStatus.NEW, order.request)
    assert again.cancel(order.id, source="cli").status is OrderStatus.CANCELED
    assert [e for e, _ in journal(again, order.id)] == ["submitted", "acknowledged", "canceled"]
