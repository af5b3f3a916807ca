"""The Kite broker with the real kiteconnect client against a loopback Kite Connect: form bodies
rounded to the instrument's tick and lot, AMO outside market hours, postbacks and polling
without double counting, reconciliation, errors in the trader's words, and a crash between the
journal and the answer."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import date
from datetime import time as dtime
from decimal import Decimal as D
from typing import Any

import pytest

from tests.fakes.alpaca_trading import wait_for
from tests.fakes.kite_trading import ACCESS_TOKEN, API_KEY, KiteTradingFake
from trii_term.adapters.kite.broker import KiteBroker
from trii_term.adapters.kite.errors import LOGIN
from trii_term.adapters.kite.master import KiteMaster
from trii_term.adapters.kite.settings import KiteBrokerConfig
from trii_term.brokers.base import BrokerAuthError, BrokerError, BrokerUnavailable, RateLimited
from trii_term.credentials import Credentials
from trii_term.domain import NSE
from trii_term.domain.orders import (
    TIF,
    Bracket,
    Event,
    OrderError,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)
from trii_term.store.db import Store

HEADER = "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,"
MASTER = (
    HEADER
    + """instrument_type,segment,exchange
408065,1594,INFY,INFOSYS,0.0,,0.0,0.05,1,EQ,NSE,NSE
779521,3045,SBIN,STATE BANK OF INDIA,0.0,,0.0,0.05,1,EQ,NSE,NSE
13368834,52222,NIFTY24MARFUT,NIFTY,0.0,2024-03-28,0.0,0.05,50,FUT,NFO-FUT,NFO
256265,1001,NIFTY 50,NIFTY 50,0.0,,0.0,0.0,0,EQ,INDICES,NSE
"""
)
MONDAY = date(2024, 3, 4)
OPEN_NS = NSE.at(MONDAY, dtime(10, 0))
EVENING_NS = NSE.at(MONDAY, dtime(18, 0))
SATURDAY_NS = NSE.at(date(2024, 3, 9), dtime(11, 0))
HOLIDAY_NS = NSE.at(date(2024, 3, 8), dtime(11, 0))  # Mahashivratri: a weekday NSE is closed


class Clock:
    def __init__(self, ns: int = OPEN_NS) -> None:
        self.ns = ns

    def __call__(self) -> int:
        self.ns += 1_000
        return self.ns


@pytest.fixture(scope="module")
def server() -> Iterator[KiteTradingFake]:
    with KiteTradingFake() as f:  # one server for the module: stopping one takes 0.5 s
        yield f


@pytest.fixture
def fake(server: KiteTradingFake) -> KiteTradingFake:
    server.reset()
    return server


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.open(None)
    KiteMaster(s.con).store_csv(MASTER)
    yield s
    s.close()


class Brokers:
    def __init__(self, fake: KiteTradingFake, store: Store) -> None:
        self.fake, self.store = fake, store
        self.made: list[KiteBroker] = []

    def __call__(self, *, product: str = "CNC", clock: Clock | None = None, **kw: Any) -> KiteBroker:
        creds = Credentials("kite", {"api_key": API_KEY, "access_token": ACCESS_TOKEN}, "environment")
        kw.setdefault("cache_seconds", 0.0)
        kw.setdefault("poll_interval", 0.05)
        broker = KiteBroker(
            self.store,
            settings=KiteBrokerConfig(product=product),
            rest_root=self.fake.url,
            credentials=creds,
            clock_ns=clock or Clock(),
            timeout=3.0,
            recheck_delay=0.2,
            **kw,
        )
        self.made.append(broker)
        return broker


@pytest.fixture
def make(fake: KiteTradingFake, store: Store) -> Iterator[Brokers]:
    brokers = Brokers(fake, store)
    yield brokers
    for b in brokers.made:
        b.stop()


def req(
    side: Side, qty: int | str, type_: OrderType = OrderType.MARKET, tif: TIF = TIF.DAY, **kw: Any
) -> OrderRequest:
    symbol = kw.pop("symbol", "NSE:INFY")
    return OrderRequest(symbol, side, D(str(qty)), type_, tif, **kw)


def fills(store: Store) -> list[tuple[Any, ...]]:
    return store.con.execute(
        "SELECT broker, order_id, symbol, side, qty, price, commission, realized FROM fills ORDER BY ts"
    ).fetchall()


def events_of(broker: KiteBroker, order_id: str) -> list[str]:
    return [e.event for e in broker.journal.entries(order_id=order_id)]


# -- the request Kite receives --------------------------------------------------------------


CASES = [
    (
        req(Side.BUY, 10),
        "CNC",
        {"order_type": "MARKET", "validity": "DAY", "transaction_type": "BUY", "quantity": "10"},
    ),
    (
        req(Side.BUY, 5, OrderType.LIMIT, limit_price=D("1500.57")),
        "CNC",
        {"order_type": "LIMIT", "price": "1500.55"},  # a buy limit rounds down to the 0.05 tick
    ),
    (
        req(Side.SELL, 5, OrderType.LIMIT, TIF.IOC, limit_price=D("1500.52")),
        "MIS",
        {
            "transaction_type": "SELL",
            "order_type": "LIMIT",
            "validity": "IOC",
            "price": "1500.55",
            "product": "MIS",
        },
    ),
    (
        req(Side.SELL, 5, OrderType.STOP, stop_price=D("1490.02")),
        "CNC",
        {"transaction_type": "SELL", "order_type": "SL-M", "trigger_price": "1490"},
    ),
    (
        req(Side.BUY, 5, OrderType.STOP_LIMIT, limit_price=D("1510.03"), stop_price=D("1505.08")),
        "CNC",
        {"order_type": "SL", "price": "1510", "trigger_price": "1505.1"},
    ),
    (
        req(Side.BUY, 120, OrderType.LIMIT, limit_price=D("22001.12"), symbol="NFO:NIFTY24MARFUT"),
        "NRML",
        {
            "exchange": "NFO",
            "tradingsymbol": "NIFTY24MARFUT",
            "quantity": "100",
            "product": "NRML",
            "order_type": "LIMIT",
            "price": "22001.1",
        },  # whole lots of 50
    ),
]


@pytest.mark.parametrize(
    ("request_", "product", "expected"), CASES, ids=[f"case{i}" for i in range(len(CASES))]
)
def test_every_order_type_and_validity_reaches_kite_rounded_to_tick_and_lot(
    make: Brokers, fake: KiteTradingFake, request_: OrderRequest, product: str, expected: dict[str, str]
) -> None:
    broker = make(product=product)
    order = broker.place(request_, source="ticket")
    (form,) = fake.place_forms()
    assert re.fullmatch(r"tt[0-9a-f]{18}", form["tag"]) and form["tag"] == order.id
    base = {
        "variety": "regular",
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "transaction_type": request_.side.value.upper(),
        "quantity": str(request_.qty),
        "product": product,
        "validity": "DAY",
        "tag": order.id,
    }
    assert form == base | expected
    assert [r.path for r in fake.http.requests if r.method == "POST"] == ["/orders/regular"]
    kite_id = fake.by_tag(order.id)["order_id"]
    assert events_of(broker, order.id) == ["submitted", "acknowledged"]
    assert broker.journal.entries(order_id=order.id)[1].detail == {
        "broker_order_id": kite_id,
        "variety": "regular",
        "via": "response",
    }


@pytest.mark.parametrize(
    "when", [EVENING_NS, SATURDAY_NS, HOLIDAY_NS], ids=["evening", "saturday", "holiday"]
)
def test_outside_market_hours_an_order_goes_as_amo(make: Brokers, fake: KiteTradingFake, when: int) -> None:
    broker = make(clock=Clock(when))
    order = broker.place(req(Side.BUY, 1, OrderType.LIMIT, limit_price=D("1500")), source="ticket")
    assert [r.path for r in fake.http.requests if r.method == "POST"] == ["/orders/amo"]
    assert fake.place_forms()[0]["variety"] == "amo"
    assert fake.by_tag(order.id)["status"] == "AMO REQ RECEIVED"
    assert broker.orders()[0].status is OrderStatus.NEW
    # and cancelling it uses its variety
    broker.cancel(order.id, source="cli")
    assert [r.path for r in fake.http.requests if r.method == "DELETE"] == [
        f"/orders/amo/{fake.by_tag(order.id)['order_id']}"
    ]


def test_prepare_refuses_what_kite_cannot_take(make: Brokers) -> None:
    broker = make()
    with pytest.raises(OrderError, match="NSE:NOSUCH is not in Kite's instrument master"):
        broker.prepare(req(Side.BUY, 1, symbol="NOSUCH"))
    with pytest.raises(OrderError, match="index"):
        broker.prepare(req(Side.BUY, 1, symbol="NSE:NIFTY 50"))
    with pytest.raises(OrderError, match="trades in lots of 50: 30 is less than one lot"):
        broker.prepare(req(Side.BUY, 30, symbol="NFO:NIFTY24MARFUT"))
    with pytest.raises(OrderError, match="not trailing_stop"):
        broker.prepare(req(Side.SELL, 1, OrderType.TRAILING_STOP, trail_amount=D("5")))
    with pytest.raises(OrderError, match="DAY or IOC, not GTC"):
        broker.prepare(req(Side.BUY, 1, OrderType.LIMIT, TIF.GTC, limit_price=D("1500")))
    with pytest.raises(OrderError, match="no bracket orders"):
        broker.prepare(req(Side.BUY, 1, OrderType.LIMIT, limit_price=D("1500"), bracket=Bracket(D("1600"))))
    with pytest.raises(OrderError, match="fractional"):
        broker.prepare(req(Side.BUY, "1.5"))
    assert broker.prepare(req(Side.BUY, 1, symbol="infy")).symbol == "NSE:INFY"
    caps = broker.capabilities
    assert set(caps.order_types) == {OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT}
    assert set(caps.tifs) == {TIF.DAY, TIF.IOC} and not caps.brackets and not caps.short


def test_an_empty_master_says_to_download_it(fake: KiteTradingFake) -> None:
    empty = Store.open(None)
    try:
        broker = Brokers(fake, empty)()
        with pytest.raises(OrderError, match="instrument master is not downloaded yet"):
            broker.prepare(req(Side.BUY, 1))
    finally:
        empty.close()


# -- order updates: postbacks and polling ---------------------------------------------------


def test_postbacks_and_polling_update_the_same_order_without_double_counting(
    make: Brokers, fake: KiteTradingFake, store: Store
) -> None:
    broker = make()
    assert broker.start() == []
    heard: list[Event] = []
    broker.on_update(heard.append)
    order = broker.place(req(Side.BUY, 5, OrderType.LIMIT, limit_price=D("1502")), source="ticket")
    kite_id = fake.by_tag(order.id)["order_id"]

    def polls() -> int:
        return sum(1 for r in fake.http.requests if r.method == "GET" and r.path == "/orders")

    fake.fill(kite_id, 2, "1500.5")
    broker.on_order_update(fake.postback(kite_id))  # the postback arrives first ...
    seen = polls()
    wait_for(lambda: polls() >= seen + 3)  # ... and the poller sees the same fill again
    assert fills(store) == [("kite", order.id, "NSE:INFY", "buy", D(2), D("1500.5"), D(0), D(0))]

    fake.fill(kite_id, None, "1501")  # this one only the poller sees first
    wait_for(lambda: len(fills(store)) == 2)
    broker.on_order_update(fake.postback(kite_id))  # the late postback adds nothing
    assert fills(store)[1] == ("kite", order.id, "NSE:INFY", "buy", D(3), D("1501"), D(0), D(0))
    (done,) = broker.orders()
    assert (done.status, done.filled_qty, done.avg_fill_price) == (OrderStatus.FILLED, D(5), D("1500.8"))
    assert [e.kind for e in heard] == ["accepted", "partially_filled", "filled"]
    assert events_of(broker, order.id) == ["submitted", "acknowledged", "partially_filled", "filled"]
    # nothing open: the poller stops asking
    seen = polls()
    time.sleep(0.3)
    assert polls() == seen


def test_a_rejection_in_a_postback(make: Brokers, fake: KiteTradingFake) -> None:
    broker = make()
    order = broker.place(req(Side.BUY, 5, OrderType.LIMIT, limit_price=D("1500")), source="ticket")
    kite_id = fake.by_tag(order.id)["order_id"]
    fake.reject(kite_id, "RMS:Margin Exceeds, Required:7500.00, Available:100.00")
    broker.on_order_update(fake.postback(kite_id))
    (o,) = broker.orders()
    assert o.status is OrderStatus.REJECTED
    assert o.reason == "rejected by Kite: RMS:Margin Exceeds, Required:7500.00, Available:100.00"
    assert events_of(broker, order.id)[-1] == "rejected"
    broker.on_order_update({"order_id": "x"})  # garbage is logged, not raised


def test_modify_and_cancel(make: Brokers, fake: KiteTradingFake) -> None:
    broker = make()
    order = broker.place(req(Side.BUY, 5, OrderType.LIMIT, limit_price=D("1500")), source="ticket")
    kite_id = fake.by_tag(order.id)["order_id"]
    changed = broker.replace(order.id, source="cli", qty=D(8), limit_price=D("1499.97"))
    (put,) = [r for r in fake.http.requests if r.method == "PUT"]
    assert put.path == f"/orders/regular/{kite_id}"
    assert {k: v[0] for k, v in put.form().items()} == {
        "variety": "regular",
        "order_id": kite_id,
        "quantity": "8",
        "price": "1499.95",
        "order_type": "LIMIT",
        "validity": "DAY",
    }
    assert (changed.request.qty, changed.request.limit_price) == (D(8), D("1499.95"))
    broker.cancel(order.id, source="cli")  # the journal of both: test_broker_contract
    with pytest.raises(OrderError, match="is canceled: nothing to cancel"):
        broker.cancel(order.id, source="cli")


def test_a_poll_answered_before_a_modify_does_not_undo_it(make: Brokers, fake: KiteTradingFake) -> None:
    """Found by the broker contract test: the poller read the order book, the trader modified the
    order, then the poller's (older) book was applied — the order went back to its old quantity
    and price for a moment, with a "replaced" in the journal that nobody made."""
    broker = make(poll_interval=3600.0)  # the test polls by hand
    order = broker.place(req(Side.BUY, 5, OrderType.LIMIT, limit_price=D("1500")), source="ticket")
    fake.hold_book = threading.Event()
    poller = threading.Thread(target=broker.poll)
    poller.start()
    assert fake.book_read.wait(5)  # the book is read: quantity 5 at 1500
    broker.replace(order.id, source="cli", qty=D(8), limit_price=D("1499.95"))
    fake.hold_book.set()  # ... and arrives after the modify
    poller.join(5)
    (o,) = broker.orders()
    assert (o.request.qty, o.request.limit_price) == (D(8), D("1499.95"))
    assert events_of(broker, order.id) == ["submitted", "acknowledged", "replaced"]
    broker.poll()  # the next poll reads the book as it is now, and it agrees
    assert events_of(broker, order.id) == ["submitted", "acknowledged", "replaced"]


# -- reconciliation -------------------------------------------------------------------------


def test_start_reconciles_orders_and_positions_with_kite(
    make: Brokers, fake: KiteTradingFake, store: Store
) -> None:
    first = make()
    filled = first.place(req(Side.BUY, 5, OrderType.LIMIT, limit_price=D("1500")), source="ticket")
    canceled = first.place(req(Side.BUY, 2, OrderType.LIMIT, limit_price=D("1400")), source="ticket")
    first.stop()
    fake.fill(fake.by_tag(filled.id)["order_id"], None, "1499.5")  # while trii-term was away
    fake.cancel(fake.by_tag(canceled.id)["order_id"])
    foreign = fake.add_order("NSE:SBIN", "SELL", 3, "310")
    fake.set_position("NSE:SBIN", 7, "300.5")

    second = make()
    notes = second.start()
    text = "\n".join(notes)
    assert f"{filled.id} (buy 5 NSE:INFY limit 1500): new → filled, 5 filled at 1499.5" in text
    assert f"{canceled.id} (buy 2 NSE:INFY limit 1400): new → canceled" in text
    assert (
        "Kite has an order trii-term did not know: sell 3 NSE:SBIN limit 310, new "
        f"(its id {foreign['order_id']})" in text
    )
    assert "NSE:SBIN: Kite holds 7, trii-term's record had 0 — now 7 at 300.5 on average" in text
    assert len(notes) == 4, notes
    assert sum(1 for e in second.journal.entries() if e.event == "reconciled") == 4
    assert fills(store) == [("kite", filled.id, "NSE:INFY", "buy", D(5), D("1499.5"), D(0), D(0))]
    second.stop()
    assert make().start() == []


def test_a_day_order_missing_from_todays_book_expired(make: Brokers, fake: KiteTradingFake) -> None:
    first = make()
    order = first.place(req(Side.BUY, 5, OrderType.LIMIT, limit_price=D("1500")), source="ticket")
    first.stop()
    fake.orders.clear()  # the next day: yesterday's orders are gone from the book and its history
    notes = make().start()
    assert notes == [
        f"{order.id} (buy 5 NSE:INFY limit 1500): new → expired (while trii-term was away from Kite)"
    ]
    (o,) = make().orders()
    assert o.status is OrderStatus.EXPIRED and "a DAY order ends with its session" in o.reason


# -- errors ---------------------------------------------------------------------------------


def test_an_expired_session_says_log_in_again(make: Brokers, fake: KiteTradingFake) -> None:
    fake.access_token = "a-newer-token"
    broker = make()
    with pytest.raises(BrokerAuthError) as info:
        broker.start()
    assert str(info.value) == LOGIN == "Kite session expired — log in again: `trii-term login kite`"
    with pytest.raises(BrokerAuthError):
        broker.place(req(Side.BUY, 1), source="ticket")
    assert ACCESS_TOKEN not in str(info.value)


def test_a_margin_refusal_keeps_kites_figures(make: Brokers, fake: KiteTradingFake) -> None:
    broker = make()
    message = "Insufficient funds. Required margin is 95417.84 but available margin is 74251.80."
    fake.fail_next("POST", "/orders/", 400, "MarginException", message)
    with pytest.raises(BrokerError) as info:
        broker.place(req(Side.BUY, 60, OrderType.LIMIT, limit_price=D("1590")), source="ticket")
    assert str(info.value) == f"Kite refused: {message}"
    (o,) = broker.orders()
    assert o.status is OrderStatus.REJECTED and events_of(broker, o.id) == ["submitted", "rejected"]


def test_input_and_order_exceptions_carry_kites_message(make: Brokers, fake: KiteTradingFake) -> None:
    broker = make()
    fake.fail_next("POST", "/orders/", 400, "InputException", "Invalid `price`.")
    with pytest.raises(BrokerError, match=r"^Kite refused the order: Invalid `price`\.$"):
        broker.place(req(Side.BUY, 1, OrderType.LIMIT, limit_price=D("1500")), source="ticket")
    order = broker.place(req(Side.BUY, 1, OrderType.LIMIT, limit_price=D("1500")), source="ticket")
    fake.fail_next(
        "DELETE", "/orders/", 400, "OrderException", "Order cannot be cancelled as it is being processed."
    )
    with pytest.raises(BrokerError, match=r"^Kite refused the cancel: Order cannot be cancelled"):
        broker.cancel(order.id, source="cli")


def test_429_is_rate_limited_and_returns_fast(make: Brokers, fake: KiteTradingFake) -> None:
    broker = make()
    fake.fail_next("POST", "/orders/", 429, "NetworkException", "Too many requests")
    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        broker.place(req(Side.BUY, 1), source="ticket")
    assert time.monotonic() - started < 1.0
    assert 0.5 < info.value.retry_at - started < 2 and "nothing was placed" in str(info.value)


# -- a crash between the journal and the answer ---------------------------------------------


def test_an_order_that_reached_kite_before_the_crash_is_found_by_its_tag(
    make: Brokers, fake: KiteTradingFake, store: Store
) -> None:
    first = make()
    fake.drop_next_post(create=True)
    with pytest.raises(BrokerUnavailable) as info:
        first.place(req(Side.BUY, 3, OrderType.LIMIT, limit_price=D("1500")), source="ticket")
    (lost,) = first.orders()
    assert f"checks Kite's order book for its tag ({lost.id})" in str(info.value)
    first.stop()
    assert store.con.execute("SELECT status, broker_order_id FROM orders").fetchall() == [("new", None)]
    notes = make().start()
    assert notes == [
        f"{lost.id} (buy 3 NSE:INFY limit 1500) reached Kite after all (found by its id): "
        "adopted, not sent again"
    ]
    kite_id = fake.by_tag(lost.id)["order_id"]
    assert store.con.execute("SELECT status, broker_order_id FROM orders").fetchall() == [("new", kite_id)]
    assert len(fake.place_forms()) == 1


def test_an_order_that_never_reached_kite_is_rejected_not_resent(
    make: Brokers, fake: KiteTradingFake
) -> None:
    first = make()
    fake.drop_next_post(create=False)
    with pytest.raises(BrokerUnavailable):
        first.place(req(Side.BUY, 3, OrderType.LIMIT, limit_price=D("1500")), source="ticket")
    first.stop()
    (lost,) = first.orders()
    notes = make().start()
    assert notes == [
        f"{lost.id} (buy 3 NSE:INFY limit 1500) never reached Kite (no order with that id there): "
        "marked rejected, not sent again"
    ]
    (o,) = make().orders()
    assert (o.status, o.reason) == (OrderStatus.REJECTED, "never reached Kite")
    assert len(fake.place_forms()) == 1 and fake.orders == {}


# -- account and positions ------------------------------------------------------------------


def test_account_and_positions_in_rupees(make: Brokers, fake: KiteTradingFake) -> None:
    fake.set_position("NSE:INFY", 10, "1500.25", product="CNC")
    fake.set_position("NSE:INFY", 5, "1510.1", product="MIS")
    broker = make()
    acct = broker.account()
    assert (acct.cash, acct.buying_power, acct.currency) == (D("245431.60"), D("99725.05"), "INR")
    assert acct.unrealized == D(150) and acct.equity == D("245581.60")
    (pos,) = broker.positions()
    assert (pos.symbol, pos.qty, pos.currency) == ("NSE:INFY", D(15), "INR")
    assert pos.avg_cost == D("1503.5333")  # over both products
    assert pos.unrealized_pnl == D(150)
