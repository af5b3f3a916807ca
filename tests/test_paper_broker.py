"""The paper broker on a real store: fills against the stream, the cash account's rules, the
journal, and a restart that restores everything exactly."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from trii_term.brokers.paper import PaperBroker
from trii_term.domain import Instrument, InstrumentKind, MarketBatch, Quote, Trade
from trii_term.domain.ledger import FeeModel
from trii_term.domain.orders import TIF, OrderError, OrderRequest, OrderStatus, OrderType, Side
from trii_term.store.db import Store

T0 = 1_362_148_200_000_000_000
INSTRUMENTS = {
    "AAPL": Instrument("AAPL", "Apple Inc.", "NASDAQ", "US", "USD"),
    "IBM": Instrument("IBM", "IBM", "NYSE", "US", "USD"),
    "SPX": Instrument("SPX", "S&P 500", "INDEX", "US", "USD", InstrumentKind.INDEX),
}
US_FEES = FeeModel(per_share=D("0.005"), minimum=D("1.00"))


class Clock:
    def __init__(self) -> None:
        self.ns = T0

    def __call__(self) -> int:
        self.ns += 1_000_000
        return self.ns


def broker(store: Store, clock: Clock, **kw) -> PaperBroker:  # type: ignore[no-untyped-def]
    return PaperBroker(
        store.con,
        instruments=INSTRUMENTS,
        clock_ns=clock,
        fees=lambda _s, q, p: US_FEES(q, p),
        **kw,
    )


def quote(
    b: PaperBroker, symbol: str, bid: float, ask: float, last: float | None = None, size: float = 1000
) -> None:
    events: list[object] = [Quote(T0, symbol, bid, ask, size, size)]
    if last is not None:
        events.append(Trade(T0, symbol, last, 100))
    b.on_batch(MarketBatch("replay", events, 0))


def buy(qty: int, symbol: str = "AAPL", **kw) -> OrderRequest:  # type: ignore[no-untyped-def]
    return OrderRequest(
        symbol, Side.BUY, D(qty), kw.pop("type", OrderType.MARKET), kw.pop("tif", TIF.DAY), **kw
    )


def sell(qty: int, symbol: str = "AAPL", **kw) -> OrderRequest:  # type: ignore[no-untyped-def]
    return OrderRequest(
        symbol, Side.SELL, D(qty), kw.pop("type", OrderType.MARKET), kw.pop("tif", TIF.DAY), **kw
    )


def test_a_market_buy_fills_at_the_ask_and_is_journalled(tmp_path: Path) -> None:
    store, clock = Store.open(tmp_path / "s.duckdb"), Clock()
    b = broker(store, clock)
    quote(b, "AAPL", 437.96, 438.06, last=438.00)
    order = b.place(buy(100), source="ticket")
    assert order.status is OrderStatus.FILLED and order.avg_fill_price == D("438.06")
    acct = b.account()
    assert acct.cash == D("100000") - D("43806") - D("1.00")
    assert acct.fees == D("1.00") and acct.currency == "USD"
    (pos,) = b.positions()
    assert (pos.symbol, pos.qty, pos.avg_cost, pos.last) == ("AAPL", D(100), D("438.06"), D("438.00"))
    assert pos.unrealized_pnl == D("-6.00")
    events = [e.event for e in b.journal.entries(order_id=order.id)]
    assert events == ["submitted", "acknowledged", "filled"]
    entry = b.journal.entries(order_id=order.id)[-1]
    assert entry.source == "ticket" and entry.detail["fill"] == {
        "qty": "100",
        "price": "438.06",
        "commission": "1.00",
    }
    store.close()


def test_a_restart_restores_cash_positions_and_working_orders(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    store, clock = Store.open(path), Clock()
    b = broker(store, clock)
    quote(b, "AAPL", 99.98, 100.02, last=100.00)
    quote(b, "IBM", 199.9, 200.1, last=200.0)
    b.place(buy(30), source="cli")
    b.place(sell(10, type=OrderType.LIMIT, limit_price=D("105")), source="ticket")
    working = b.place(buy(5, "IBM", type=OrderType.LIMIT, tif=TIF.GTC, limit_price=D("190")), source="ticket")
    before = (b.account(), b.positions(), [(o.id, o.status, o.request) for o in b.orders()])
    store.close()

    store = Store.open(path)
    again = broker(store, clock)
    quote(again, "AAPL", 99.98, 100.02, last=100.00)
    quote(again, "IBM", 199.9, 200.1, last=200.0)
    after = (again.account(), again.positions(), [(o.id, o.status, o.request) for o in again.orders()])
    assert after == before
    # the working order keeps working, and new ids do not collide with old ones
    quote(again, "IBM", 189.0, 189.5, last=189.4)
    assert next(o for o in again.orders() if o.id == working.id).status is OrderStatus.FILLED
    fresh = again.place(buy(1), source="cli")
    assert fresh.id not in {o[0] for o in before[2]}
    store.close()


def test_cash_account_rules_and_instrument_rules(tmp_path: Path) -> None:
    store, clock = Store.open(tmp_path / "s.duckdb"), Clock()
    b = broker(store, clock, starting_cash=D("10000"))
    quote(b, "AAPL", 99.98, 100.02, last=100.00)
    with pytest.raises(OrderError, match="holds 0 and short selling is off"):
        b.place(sell(1), source="ticket")
    with pytest.raises(
        OrderError,
        match=r"insufficient buying power: 10,003.00 USD needed \(commission included\), 10,000.00 available",
    ):
        b.place(buy(100), source="ticket")
    with pytest.raises(OrderError, match="SPX is an index"):
        b.place(buy(1, "SPX"), source="ticket")
    with pytest.raises(OrderError, match="whole shares"):
        b.place(OrderRequest("AAPL", Side.BUY, D("1.5")), source="ticket")
    resting = b.place(buy(50, type=OrderType.LIMIT, tif=TIF.GTC, limit_price=D("99.057")), source="ticket")
    assert resting.request.limit_price == D("99.05")  # to the tick, never above what was asked
    with pytest.raises(OrderError, match="insufficient buying power"):
        b.place(buy(60), source="ticket")  # the working buy holds 4,952.50 of the cash
    assert [e.event for e in b.journal.entries()] == ["submitted", "acknowledged"]  # refusals sent nothing
    store.close()


def test_cancel_replace_and_the_days_end(tmp_path: Path) -> None:
    store, clock = Store.open(tmp_path / "s.duckdb"), Clock()
    b = broker(store, clock)
    quote(b, "AAPL", 99.98, 100.02, last=100.00)
    day = b.place(buy(10, type=OrderType.LIMIT, limit_price=D("95")), source="ticket")
    gtc = b.place(buy(10, type=OrderType.LIMIT, tif=TIF.GTC, limit_price=D("94")), source="ticket")
    b.replace(gtc.id, source="ticket", qty=D(20), limit_price=D("94.50"))  # (checked in test_broker_contract)
    b.cancel(gtc.id, source="cli")
    assert [o.id for o in b.expire_day()] == [day.id]
    statuses = {o.id: o.status for o in b.orders()}
    assert statuses == {day.id: OrderStatus.EXPIRED, gtc.id: OrderStatus.CANCELED}
    events = [(e.order_id, e.event, e.source) for e in b.journal.entries()]
    assert (day.id, "expired", "session") in events
    store.close()


def test_order_ids_are_never_reused_across_restarts_even_with_nothing_working(tmp_path: Path) -> None:
    """Found: three `trii-term order buy 1 AAPL --yes` on a fresh store all returned P000001 —
    ids counted only from the working orders restored, and a filled order left none."""
    path = tmp_path / "s.duckdb"
    clock = Clock()
    ids = []
    for _ in range(3):
        store = Store.open(path)
        b = broker(store, clock)
        quote(b, "AAPL", 99.98, 100.02, last=100.00)
        ids.append(b.place(buy(1), source="cli").id)
        store.close()
    assert ids == ["P000001", "P000002", "P000003"]
    store = Store.open(path)
    b = broker(store, clock)
    assert sorted(o.id for o in b.orders()) == ids  # every order kept its own row
    fills = store.con.execute("SELECT order_id FROM fills ORDER BY ts").fetchall()
    assert [f[0] for f in fills] == ids
    # even if the account row is lost, the next id counts on from the orders the store holds
    store.con.execute("DELETE FROM paper_accounts")
    store.close()
    store = Store.open(path)
    b = broker(store, clock)
    quote(b, "AAPL", 99.98, 100.02, last=100.00)
    assert b.place(buy(1), source="cli").id == "P000004"
    store.close()


def test_a_new_order_never_overwrites_another_orders_row(tmp_path: Path) -> None:
    store, clock = Store.open(tmp_path / "s.duckdb"), Clock()
    b = broker(store, clock)
    quote(b, "AAPL", 99.98, 100.02, last=100.00)
    first = b.place(buy(1), source="cli")
    b._next_id = 1  # as if the counter were lost: the store refuses the duplicate, nothing is changed
    with pytest.raises(Exception, match=r"(?i)duplicate|constraint"):
        b.place(buy(2), source="cli")
    (row,) = store.con.execute("SELECT id, qty FROM orders").fetchall()
    assert row[0] == first.id and D(row[1]) == 1
    store.close()


def test_a_change_the_store_cannot_save_is_undone_in_memory_too(tmp_path: Path) -> None:
    """Found: with the disk full, a buy failed to commit but the account in memory had bought
    (cash down, a position, a working exit): the blotter showed trades the store never had, and
    the next change saved them. Here a second writer holds the account row (DuckDB refuses the
    commit as it refuses one on a full disk); the change is undone and the trader told why."""
    from trii_term.brokers.paper import NotSaved

    store, clock = Store.open(tmp_path / "s.duckdb"), Clock()
    b = broker(store, clock)
    quote(b, "AAPL", 99.98, 100.02, last=100.00)
    resting = b.place(buy(5, type=OrderType.LIMIT, tif=TIF.GTC, limit_price=D("90")), source="cli")
    before = (b.account(), b.positions(), [(o.id, o.status, o.request.qty) for o in b.orders()])

    other = store.con.cursor()  # another writer, mid-change on the account's rows
    other.execute("BEGIN TRANSACTION")
    other.execute("UPDATE paper_accounts SET cash = cash + 1, next_id = next_id + 1 WHERE broker = 'paper'")
    other.execute("UPDATE orders SET qty = qty + 1, status = status WHERE id = ?", [resting.id])
    with pytest.raises(NotSaved, match=r"(?i)conflict"):
        b.place(buy(10), source="cli")
    with pytest.raises(NotSaved):
        b.replace(resting.id, source="cli", qty=D(8))
    with pytest.raises(NotSaved):
        b.cancel(resting.id, source="cli")
    quote(b, "AAPL", 89.0, 89.5, last=89.2)  # would fill the resting buy: it cannot be saved either
    other.execute("ROLLBACK")

    after = (b.account(), b.positions(), [(o.id, o.status, o.request.qty) for o in b.orders()])
    assert after == before  # nothing of the four changes is left in memory
    assert [o.id for o in b._matcher.orders.values()] == [resting.id]
    assert b._matcher.orders[resting.id].request.qty == 5
    # the store can save again: the order works on and fills; ids count on without a gap
    quote(b, "AAPL", 89.0, 89.5, last=89.2)
    (done,) = b.orders()
    assert done.status is OrderStatus.FILLED and done.filled_qty == 5
    assert b.place(buy(1), source="cli").id == "P000002"
    store.close()


def test_a_restart_keeps_a_trailing_stop_where_it_got_to_and_a_triggered_stop_filling(tmp_path: Path) -> None:
    """Found: a trailing stop's stop moved only in memory (a restart, or any failed save,
    put it back where it started); a stop triggered and part-filled was restored as an
    untriggered stop and never filled again."""
    path = tmp_path / "s.duckdb"
    store, clock = Store.open(path), Clock()
    b = broker(store, clock, partial_fills=True)
    quote(b, "AAPL", 99.98, 100.02, last=100.00)
    b.place(buy(600), source="cli")
    trail = b.place(sell(10, type=OrderType.TRAILING_STOP, tif=TIF.GTC, trail_amount=D("5")), source="cli")
    for last in (105.0, 110.0, 120.0):
        quote(b, "AAPL", last - 0.02, last + 0.02, last=last)
    store.close()

    store = Store.open(path)
    b = broker(store, clock, partial_fills=True)
    (restored,) = b.orders(open_only=True)
    assert restored.id == trail.id and restored.trail_stop == D("115.00")  # not 95.00
    quote(b, "AAPL", 113.98, 114.02, last=114.00)  # through 115: it fills
    assert b.orders(open_only=True) == []
    stop = b.place(sell(500, type=OrderType.STOP, tif=TIF.GTC, stop_price=D("90")), source="cli")
    quote(b, "AAPL", 89.0, 89.1, last=89.05, size=100)  # triggered: 100 of 500 fill
    assert {o.id: o.filled_qty for o in b.orders(open_only=True)} == {stop.id: 100}
    store.close()

    store = Store.open(path)
    again = broker(store, clock, partial_fills=True)
    quote(again, "AAPL", 80.0, 80.1, last=80.05, size=1000)  # the rest fills at the next quote
    assert next(o for o in again.orders() if o.id == stop.id).status is OrderStatus.FILLED
    store.close()
