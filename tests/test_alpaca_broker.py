"""The Alpaca broker with the real alpaca-py client against a loopback Alpaca (REST and the
trade_updates websocket): order bodies, the journal before the send, fills from the stream,
reconciliation at start and after a reconnect, errors in the trader's words, and a crash between
the journal and the answer."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest

from tests.fakes.alpaca_trading import KEY_ID, SECRET, AlpacaTradingFake, wait_for
from trii_term.adapters.alpaca.broker import AlpacaBroker, alpaca_tick
from trii_term.adapters.alpaca.settings import AlpacaBrokerConfig
from trii_term.brokers.base import BrokerAuthError, BrokerError, BrokerUnavailable, RateLimited
from trii_term.credentials import Credentials
from trii_term.domain import Instrument, InstrumentKind
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

INSTRUMENTS = {
    "AAPL": Instrument("AAPL", "Apple Inc.", "NASDAQ", "US", "USD"),
    "SIRI": Instrument("SIRI", "Sirius XM", "NASDAQ", "US", "USD", tick_size=D("0.0001")),
    "SPX": Instrument("SPX", "S&P 500", "INDEX", "US", "USD", InstrumentKind.INDEX),
    "NSE:INFY": Instrument("NSE:INFY", "Infosys", "NSE", "NSE", "INR", tick_size=D("0.05")),
}


@pytest.fixture(scope="module")
def server() -> Iterator[AlpacaTradingFake]:
    with AlpacaTradingFake() as f:  # one server for the module: stopping one takes 0.5 s
        yield f


@pytest.fixture
def fake(server: AlpacaTradingFake) -> AlpacaTradingFake:
    server.reset()
    return server


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.open(None)
    yield s
    s.close()


class Brokers:
    """Makes brokers on one store and stops them all at the end."""

    def __init__(self, fake: AlpacaTradingFake, store: Store) -> None:
        self.fake, self.store = fake, store
        self.made: list[AlpacaBroker] = []

    def __call__(self, *, secret: str = SECRET, **kw: Any) -> AlpacaBroker:
        settings = AlpacaBrokerConfig(paper=True, url=self.fake.rest_url, stream_url=self.fake.stream_url)
        creds = Credentials("alpaca", {"key_id": KEY_ID, "secret_key": secret}, "environment")
        kw.setdefault("cache_seconds", 0.0)
        broker = AlpacaBroker(
            self.store,
            settings=settings,
            credentials=creds,
            instruments=INSTRUMENTS,
            clock_ns=time.time_ns,
            timeout=3.0,
            reconnect_delay=(0.05, 0.2),
            recheck_delay=0.2,
            **kw,
        )
        self.made.append(broker)
        return broker


@pytest.fixture
def make(fake: AlpacaTradingFake, store: Store) -> Iterator[Brokers]:
    brokers = Brokers(fake, store)
    yield brokers
    for b in brokers.made:
        b.stop()


def req(
    side: Side, qty: int | str, type_: OrderType = OrderType.MARKET, tif: TIF = TIF.DAY, **kw: Any
) -> OrderRequest:
    symbol = kw.pop("symbol", "AAPL")
    return OrderRequest(symbol, side, D(str(qty)), type_, tif, **kw)


def journal(broker: AlpacaBroker, order_id: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    return [(e.event, e.detail) for e in broker.journal.entries(order_id=order_id)]


def fills(store: Store) -> list[tuple[Any, ...]]:
    return store.con.execute(
        "SELECT broker, order_id, symbol, side, qty, price, commission, realized FROM fills ORDER BY ts"
    ).fetchall()


# -- the request Alpaca receives ---------------------------------------------------------------


CASES = [
    (req(Side.BUY, 10), {"type": "market", "time_in_force": "day", "side": "buy", "qty": "10"}),
    (
        req(Side.BUY, 5, OrderType.LIMIT, TIF.GTC, limit_price=D("170.129")),
        {"type": "limit", "time_in_force": "gtc", "limit_price": "170.12"},  # a buy limit rounds down
    ),
    (
        req(Side.SELL, 5, OrderType.LIMIT, TIF.IOC, limit_price=D("170.121")),
        {"type": "limit", "time_in_force": "ioc", "side": "sell", "limit_price": "170.13"},  # a sell up
    ),
    (
        req(Side.BUY, 1, OrderType.LIMIT, TIF.FOK, limit_price=D("99")),
        {"time_in_force": "fok", "limit_price": "99"},
    ),
    (req(Side.SELL, 3, OrderType.STOP, stop_price=D("95.555")), {"type": "stop", "stop_price": "95.56"}),
    (
        req(Side.BUY, 3, OrderType.STOP_LIMIT, TIF.GTC, limit_price=D("101.009"), stop_price=D("100.5")),
        {"type": "stop_limit", "time_in_force": "gtc", "limit_price": "101", "stop_price": "100.5"},
    ),
    (
        req(Side.SELL, 2, OrderType.TRAILING_STOP, trail_amount=D("1.254")),
        {"type": "trailing_stop", "trail_price": "1.25"},
    ),
    (
        req(Side.SELL, 2, OrderType.TRAILING_STOP, TIF.GTC, trail_pct=D("1.5")),
        {"type": "trailing_stop", "time_in_force": "gtc", "trail_percent": "1.5"},
    ),
    (
        req(Side.BUY, 100, OrderType.LIMIT, limit_price=D("0.12349"), symbol="SIRI"),
        {"symbol": "SIRI", "limit_price": "0.1234"},  # below $1: hundredths of a cent
    ),
    (
        req(Side.BUY, 4, OrderType.LIMIT, limit_price=D("100"), bracket=Bracket(D("110.004"), D("95.006"))),
        {
            "limit_price": "100",
            "order_class": "bracket",
            "take_profit": {"limit_price": "110.01"},  # the exit sells: rounded up
            "stop_loss": {"stop_price": "95.01"},
        },
    ),
    (
        req(Side.BUY, 4, OrderType.LIMIT, TIF.GTC, limit_price=D("100"), bracket=Bracket(D("110"), None)),
        {"limit_price": "100", "order_class": "oto", "take_profit": {"limit_price": "110"}},
    ),
]


@pytest.mark.parametrize(("request_", "expected"), CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_every_order_type_and_tif_reaches_alpaca_as_exact_strings(
    make: Brokers, fake: AlpacaTradingFake, request_: OrderRequest, expected: dict[str, Any]
) -> None:
    broker = make()
    order = broker.place(request_, source="ticket")
    (body,) = fake.post_bodies()
    assert re.fullmatch(r"tt-[0-9a-f]{20}", body["client_order_id"])
    assert body["client_order_id"] == order.id == order.request.client_order_id
    base = {
        "symbol": request_.symbol,
        "qty": str(request_.qty),
        "side": request_.side.value,
        "type": request_.type.value,
        "time_in_force": request_.tif.value,
        "client_order_id": order.id,
    }
    assert body == base | expected
    assert all(not isinstance(v, float) for v in body.values())


def test_bracket_legs_are_followed_as_children(make: Brokers, fake: AlpacaTradingFake) -> None:
    broker = make()
    entry = broker.place(
        req(Side.BUY, 4, OrderType.LIMIT, limit_price=D("100"), bracket=Bracket(D("110"), D("95"))),
        source="ticket",
    )
    legs = [o for o in broker.orders() if o.parent_id == entry.id]
    assert sorted((o.side, o.request.type, o.request.limit_price, o.request.stop_price) for o in legs) == [
        (Side.SELL, OrderType.LIMIT, D("110"), None),
        (Side.SELL, OrderType.STOP, None, D("95")),
    ]
    assert {o.oco_group for o in legs} == {entry.id}


def test_prepare_refuses_what_alpaca_cannot_take(make: Brokers) -> None:
    broker = make()
    with pytest.raises(OrderError, match=r"whole shares: 1\.5 is fractional"):
        broker.prepare(req(Side.BUY, "1.5"))
    with pytest.raises(OrderError, match="index"):
        broker.prepare(req(Side.BUY, 1, symbol="SPX"))
    with pytest.raises(OrderError, match="US stocks only"):
        broker.prepare(req(Side.BUY, 1, symbol="NSE:INFY"))
    with pytest.raises(OrderError, match="unknown symbol"):
        broker.prepare(req(Side.BUY, 1, symbol="ZZZZ"))
    assert alpaca_tick(D("1")) == D("0.01") and alpaca_tick(D("0.9999")) == D("0.0001")
    assert broker.capabilities.brackets and not broker.capabilities.fractional
    assert set(broker.capabilities.order_types) == set(OrderType) and set(broker.capabilities.tifs) == set(
        TIF
    )


def test_the_order_is_journalled_before_the_request_leaves(
    make: Brokers, fake: AlpacaTradingFake, store: Store
) -> None:
    broker = make()
    seen_at_post: list[tuple[Any, ...]] = []
    reader = store.cursor()

    def check(body: dict[str, Any]) -> None:
        seen_at_post.extend(
            reader.execute(
                "SELECT o.status, o.broker_order_id, j.event FROM orders o "
                "JOIN journal j ON j.order_id = o.id WHERE o.client_order_id = ?",
                [body["client_order_id"]],
            ).fetchall()
        )

    fake.on_post = check
    order = broker.place(req(Side.BUY, 10, OrderType.LIMIT, limit_price=D("100")), source="cli")
    assert seen_at_post == [("new", None, "submitted")]
    assert [e for e, _ in journal(broker, order.id)] == ["submitted", "acknowledged"]
    alpaca_id = fake.by_client_id(order.id)["id"]
    row = store.con.execute("SELECT broker_order_id, source FROM orders WHERE id = ?", [order.id]).fetchall()
    assert row == [(alpaca_id, "cli")]


# -- the stream ---------------------------------------------------------------------------------


def test_fills_from_the_stream_reach_the_journal_the_fills_table_and_listeners(
    make: Brokers, fake: AlpacaTradingFake, store: Store
) -> None:
    loop_calls: list[str] = []

    def dispatch(fn: Any) -> None:  # the session passes loop.call_soon_threadsafe
        loop_calls.append(threading.current_thread().name)
        fn()

    broker = make(dispatch=dispatch)
    assert broker.start() == []
    events: list[Event] = []
    broker.on_update(events.append)
    order = broker.place(req(Side.BUY, 10, OrderType.LIMIT, limit_price=D("100")), source="ticket")
    alpaca_id = fake.by_client_id(order.id)["id"]
    fake.fill(alpaca_id, 4, "99.5")
    fake.fill(alpaca_id, None, "99")
    wait_for(lambda: len(events) >= 3)
    assert [e.kind for e in events] == ["accepted", "partially_filled", "filled"]
    assert [(e.fill.qty, e.fill.price) for e in events if e.fill] == [(D(4), D("99.5")), (D(6), D(99))]
    assert "alpaca-trade-updates" in loop_calls
    (done,) = broker.orders()
    assert (done.status, done.filled_qty, done.avg_fill_price) == (OrderStatus.FILLED, D(10), D("99.2"))
    assert [e for e, _ in journal(broker, order.id)] == [
        "submitted",
        "acknowledged",
        "partially_filled",
        "filled",
    ]
    assert fills(store) == [
        ("alpaca", order.id, "AAPL", "buy", D(4), D("99.5"), D(0), D(0)),
        ("alpaca", order.id, "AAPL", "buy", D(6), D("99"), D(0), D(0)),
    ]
    # a sale realizes P&L by average cost (99.20)
    sale = broker.place(req(Side.SELL, 5, OrderType.LIMIT, limit_price=D("101")), source="ticket")
    fake.fill(fake.by_client_id(sale.id)["id"], None, "101")
    wait_for(lambda: len(fills(store)) == 3)
    assert fills(store)[-1][-1] == D("9.00")
    assert broker.fills_since(0)[-1][:5] == ("AAPL", D(-5), D(101), D(9), D(0))  # Alpaca: no commission
    assert broker.fills_of(order.id) == [(D(4), D("99.5"), D(0)), (D(6), D(99), D(0))]
    assert broker.recorded_position("AAPL").qty == D(5)


def test_an_order_rejected_on_the_stream(make: Brokers, fake: AlpacaTradingFake) -> None:
    broker = make()
    broker.start()
    events: list[Event] = []
    broker.on_update(events.append)
    order = broker.place(req(Side.BUY, 1, OrderType.LIMIT, limit_price=D("100")), source="ticket")
    fake.reject(fake.by_client_id(order.id)["id"])
    wait_for(lambda: any(e.kind == "rejected" for e in events))
    (o,) = broker.orders()
    assert o.status is OrderStatus.REJECTED and o.reason == "rejected by Alpaca"
    assert [e for e, _ in journal(broker, order.id)][-1] == "rejected"


def test_cancel_and_replace(make: Brokers, fake: AlpacaTradingFake, store: Store) -> None:
    broker = make()
    broker.start()
    order = broker.place(req(Side.BUY, 10, OrderType.LIMIT, limit_price=D("100")), source="ticket")
    first_id = fake.by_client_id(order.id)["id"]
    changed = broker.replace(order.id, source="cli", qty=D(8), limit_price=D("101.005"))
    patch = [r for r in fake.http.requests if r.method == "PATCH"]
    assert [(r.path, r.json()) for r in patch] == [
        (f"/v2/orders/{first_id}", {"qty": "8", "limit_price": "101"})
    ]
    assert (changed.id, changed.request.qty, changed.request.limit_price) == (order.id, D(8), D(101))
    second_id = fake.orders[first_id]["replaced_by"]
    row = store.con.execute("SELECT broker_order_id FROM orders WHERE id = ?", [order.id]).fetchall()
    assert row == [(second_id,)]
    # a fill on the replacement is our same order
    fake.fill(second_id, 3, "100.5")
    wait_for(lambda: broker.orders()[0].filled_qty == 3)
    with pytest.raises(OrderError, match="cancel it and place a new one for the remaining 5"):
        broker.replace(order.id, source="cli", limit_price=D("102"))
    canceled = broker.cancel(order.id, source="cli")
    assert canceled.status is OrderStatus.CANCELED and canceled.filled_qty == 3
    with pytest.raises(OrderError, match="is canceled: nothing to cancel"):
        broker.cancel(order.id, source="cli")


# -- reconciliation -------------------------------------------------------------------------


def test_start_reconciles_orders_and_positions_with_alpaca(
    make: Brokers, fake: AlpacaTradingFake, store: Store
) -> None:
    first = make()
    first.start()
    filled = first.place(req(Side.BUY, 10, OrderType.LIMIT, limit_price=D("100")), source="ticket")
    canceled = first.place(req(Side.BUY, 2, OrderType.LIMIT, limit_price=D("90")), source="ticket")
    first.stop()
    # while trii-term is away: a fill, a cancel, an order from the website, shares bought elsewhere
    fake.fill(fake.by_client_id(filled.id)["id"], None, "99.75", silent=True)
    fake.cancel(fake.by_client_id(canceled.id)["id"], silent=True)
    foreign = fake.add_order("TSLA", "sell", 3, limit="250")
    fake.set_position("MSFT", D(7), D("300.5"))

    second = make()
    notes = second.start()
    text = "\n".join(notes)
    assert f"{filled.id} (buy 10 AAPL limit 100): new → filled, 10 filled at 99.75" in text
    assert f"{canceled.id} (buy 2 AAPL limit 90): new → canceled" in text
    assert (
        f"Alpaca has an order trii-term did not know: sell 3 TSLA limit 250, new (its id {foreign['id']})"
        in text
    )
    assert "MSFT: Alpaca holds 7, trii-term's record had 0 — now 7 at 300.5 on average" in text
    assert len(notes) == 4, notes
    reconciled = [e.detail for e in second.journal.entries() if e.event == "reconciled"]
    assert len(reconciled) == 4
    assert {"position": "MSFT", "ours": "0", "broker": "7", "avg_cost": "300.5"} in reconciled
    assert fills(store) == [("alpaca", filled.id, "AAPL", "buy", D(10), D("99.75"), D(0), D(0))]
    by_id = {o.id: o for o in second.orders()}
    assert by_id[filled.id].status is OrderStatus.FILLED and by_id[canceled.id].status is OrderStatus.CANCELED
    assert by_id[foreign["client_order_id"]].request.symbol == "TSLA"
    second.stop()
    # the truth is already ours: a third start finds nothing to say
    assert make().start() == []
    assert len(fills(store)) == 1


def test_a_fill_missed_while_the_stream_was_down_is_caught_up_on_reconnect(
    make: Brokers, fake: AlpacaTradingFake, store: Store
) -> None:
    broker = make()
    broker.start()
    order = broker.place(req(Side.BUY, 5, OrderType.LIMIT, limit_price=D("100")), source="ticket")
    fake.fill(fake.by_client_id(order.id)["id"], None, "99.9", silent=True)
    fake.drop_stream()
    wait_for(lambda: broker.orders()[0].status is OrderStatus.FILLED)
    assert fills(store) == [("alpaca", order.id, "AAPL", "buy", D(5), D("99.9"), D(0), D(0))]
    assert [e.event for e in broker.journal.entries(order_id=order.id)][-2:] == ["filled", "reconciled"]
    wait_for(lambda: fake.listening() == 1)


# -- errors in the trader's words -----------------------------------------------------------


def test_insufficient_buying_power_with_alpacas_figures(make: Brokers, fake: AlpacaTradingFake) -> None:
    broker = make()
    with pytest.raises(BrokerError) as info:
        broker.place(req(Side.BUY, 10_000, OrderType.LIMIT, limit_price=D("4864")), source="ticket")
    assert str(info.value) == (
        "Alpaca refused: insufficient buying power — $100,000.00 available, the order needs $48,640,000.00"
    )
    (o,) = broker.orders()
    assert o.status is OrderStatus.REJECTED and "insufficient buying power" in o.reason
    assert [e for e, _ in journal(broker, o.id)] == ["submitted", "rejected"]
    with pytest.raises(OrderError, match=r"insufficient buying power at Alpaca: \$48,640,000.00 needed"):
        broker.check_cash(req(Side.BUY, 10_000, OrderType.LIMIT, limit_price=D("4864")))


def test_422_names_the_field(make: Brokers, fake: AlpacaTradingFake) -> None:
    broker = make()
    fake.fail_next(
        "POST", "/v2/orders", 422, {"code": 42210000, "message": "stop price must be less than current price"}
    )
    with pytest.raises(BrokerError) as info:
        broker.place(req(Side.SELL, 1, OrderType.STOP, stop_price=D("120")), source="ticket")
    assert (
        str(info.value) == "Alpaca refused the order (stop price): stop price must be less than current price"
    )


def test_429_is_rate_limited_with_a_retry_time_and_returns_fast(
    make: Brokers, fake: AlpacaTradingFake
) -> None:
    broker = make()
    fake.rate_limit_next("POST", "/v2/orders", reset_in=8)
    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        broker.place(req(Side.BUY, 1), source="ticket")
    assert time.monotonic() - started < 1.5  # the SDK's 3 x 3 s retries are off
    assert 6 < info.value.retry_at - started < 9
    assert "nothing was placed" in str(info.value)
    assert len(fake.post_bodies()) == 1


def test_refused_keys_say_how_to_log_in(make: Brokers, fake: AlpacaTradingFake) -> None:
    broker = make(secret="wrong")
    with pytest.raises(BrokerAuthError) as info:
        broker.start()
    assert str(info.value) == "Alpaca refused the keys — run `trii-term login alpaca`"
    assert "wrong" not in str(info.value)
    with pytest.raises(BrokerAuthError):
        broker.place(req(Side.BUY, 1), source="ticket")


# -- a crash between the journal and the answer ---------------------------------------------


def test_an_order_that_reached_alpaca_before_the_crash_is_adopted_not_resent(
    make: Brokers, fake: AlpacaTradingFake, store: Store
) -> None:
    first = make()
    fake.drop_next_post(create=True)
    with pytest.raises(BrokerUnavailable) as info:
        first.place(req(Side.BUY, 3, OrderType.LIMIT, limit_price=D("100")), source="ticket")
    (lost,) = first.orders()
    assert f"checks it with Alpaca by its id ({lost.id})" in str(info.value)
    assert info.value.journalled  # type: ignore[attr-defined]  # the desk need not journal it rejected
    assert "do not place it again" in str(info.value)
    first.stop()  # the process dies
    row = store.con.execute("SELECT status, broker_order_id FROM orders").fetchall()
    assert row == [("new", None)]

    notes = make().start()
    assert notes == [
        f"{lost.id} (buy 3 AAPL limit 100) reached Alpaca after all (found by its id): "
        "adopted, not sent again"
    ]
    alpaca_id = fake.by_client_id(lost.id)["id"]
    assert store.con.execute("SELECT status, broker_order_id FROM orders").fetchall() == [("new", alpaca_id)]
    assert len(fake.post_bodies()) == 1
    events = [e.event for e in make().journal.entries(order_id=lost.id)]
    assert events == ["submitted", "acknowledged", "reconciled"]


def test_an_order_that_never_reached_alpaca_is_rejected_not_resent(
    make: Brokers, fake: AlpacaTradingFake, store: Store
) -> None:
    first = make()
    fake.drop_next_post(create=False)
    with pytest.raises(BrokerUnavailable):
        first.place(req(Side.BUY, 3, OrderType.LIMIT, limit_price=D("100")), source="ticket")
    first.stop()
    (lost,) = first.orders()
    notes = make().start()
    assert notes == [
        f"{lost.id} (buy 3 AAPL limit 100) never reached Alpaca (no order with that id there): "
        "marked rejected, not sent again"
    ]
    (o,) = make().orders()
    assert (o.status, o.reason) == (OrderStatus.REJECTED, "never reached Alpaca")
    assert len(fake.post_bodies()) == 1 and fake.orders == {}


def test_a_running_broker_checks_an_unanswered_order_by_itself(
    make: Brokers, fake: AlpacaTradingFake
) -> None:
    broker = make()
    fake.drop_next_post(create=True)
    with pytest.raises(BrokerUnavailable):
        broker.place(req(Side.BUY, 3, OrderType.LIMIT, limit_price=D("100")), source="ticket")
    wait_for(lambda: broker.orders()[0].status is OrderStatus.NEW and not broker._unacknowledged())
    assert len(fake.post_bodies()) == 1


# -- account and positions ------------------------------------------------------------------


def test_account_and_positions_are_exact_cached_and_refreshed_after_fills(
    make: Brokers, fake: AlpacaTradingFake
) -> None:
    fake.set_position("AAPL", D(10), D("99.125"))
    broker = make(cache_seconds=60.0)
    assert len(broker.start()) == 1  # the position is news to our record
    acct = broker.account()
    assert (acct.cash, acct.buying_power, acct.currency) == (D(100000), D(100000), "USD")
    assert acct.equity == D(101000)
    (pos,) = broker.positions()
    assert (pos.symbol, pos.qty, pos.avg_cost, pos.last, pos.market_value) == (
        "AAPL",
        D(10),
        D("99.125"),
        D(100),
        D(1000),
    )
    assert pos.unrealized_pnl == D("8.75")
    for _ in range(5):
        broker.account()
        broker.positions()

    def gets(path: str) -> int:
        return sum(1 for r in fake.http.requests if r.method == "GET" and r.path == path)

    assert (gets("/v2/account"), gets("/v2/positions")) == (1, 1)  # both read once, at start
    # a fill: both are read again at once, in the background
    order = broker.place(req(Side.BUY, 5, OrderType.LIMIT, limit_price=D("100")), source="ticket")
    fake.fill(fake.by_client_id(order.id)["id"], None, "100")
    wait_for(lambda: (gets("/v2/account"), gets("/v2/positions")) == (2, 2))
    wait_for(lambda: broker.account().cash == D(99500))
    wait_for(lambda: [p.qty for p in broker.positions()] == [D(15)])
    assert (gets("/v2/account"), gets("/v2/positions")) == (2, 2)  # and no more: the copies are fresh
