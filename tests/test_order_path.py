"""The one order path at the desk: a replace is an order (validity, tick, every rule, the cash
account, confirmation, the journal), flatten and reverse, cancel all, the preview's buying power
equal to the account after the fill, and the journal's one clock."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from trii_term.config import RiskLimits
from trii_term.domain.orders import TIF, Bracket, OrderError, OrderRequest, OrderStatus, OrderType, Side
from trii_term.store.db import Store
from trii_term.store.journal import Journal
from trii_term.trading.desk import ConfirmationNeeded, OrderDesk, RiskRefused

from .test_paper_broker import US_FEES, Clock, broker, quote


def make_desk(tmp_path: Path, **kw) -> tuple[OrderDesk, Store]:  # type: ignore[no-untyped-def]
    limits = kw.pop("limits", RiskLimits())
    store, clock = Store.open(tmp_path / "s.duckdb"), Clock()
    b = broker(store, clock, **kw)
    quote(b, "AAPL", 99.98, 100.02, last=100.00)
    d = OrderDesk(
        b,
        limits=limits,
        journal=b.journal,
        price_of=lambda s: b.marks().get(s),
        quote_of=b.quote,
        fee_of=lambda _s: US_FEES,
        clock_ns=clock,
        day_of=lambda: "2013-03-01",
    )
    return d, store


def limit(side: Side, qty: int, price: str, tif: TIF = TIF.GTC, **kw) -> OrderRequest:  # type: ignore[no-untyped-def]
    return OrderRequest("AAPL", side, D(qty), OrderType.LIMIT, tif, limit_price=D(price), **kw)


def test_growing_a_limit_through_replace_is_refused_by_the_rules_and_journalled(tmp_path: Path) -> None:
    """Found: growing a 100-share limit to 50,000 through `r` filled with no dialog and cash went
    to −1,299,061 on a 100k account. A replace is an order: every rule runs on the order as it
    would be after the change."""
    d, _store = make_desk(tmp_path)
    working = d.submit(limit(Side.BUY, 100, "99.50"), source="ticket", confirmed=True)
    with pytest.raises(RiskRefused, match="max_order_notional"):
        d.replace(working.id, source="key", confirmed=True, qty=D(50000))
    (still,) = d.broker.orders(open_only=True)
    assert still.request.qty == 100  # nothing changed
    assert d.broker.account().cash == D("100000")
    intent, rejected = d.journal.entries()[-2:]
    assert (intent.event, intent.source, intent.order_id) == ("intent", "key", working.id)
    assert intent.detail["action"] == "replace" and intent.detail["changes"] == {"qty": "50000"}
    assert intent.detail["before"]["qty"] == "100" and intent.detail["request"]["qty"] == "50000"
    assert rejected.event == "rejected" and rejected.detail["rule"] == "max_order_notional"
    assert {c["rule"] for c in rejected.detail["checks"]} >= {"max_order_qty", "max_position_pct"}


def test_a_replace_that_the_cash_account_cannot_carry_is_refused(tmp_path: Path) -> None:
    d, _store = make_desk(tmp_path, limits=RiskLimits(max_order_notional=None, max_position_pct=None))
    working = d.submit(limit(Side.BUY, 100, "99.50"), source="ticket", confirmed=True)
    with pytest.raises(OrderError, match="insufficient buying power"):
        d.replace(working.id, source="palette", confirmed=True, qty=D(2000))
    assert d.journal.entries()[-1].detail["action"] == "replace"
    assert d.broker.orders(open_only=True)[0].request.qty == 100
    # its own hold is released by the change: replacing with all the cash there is fits
    fits = d.replace(working.id, source="palette", confirmed=True, qty=D(1004))
    assert fits.request.qty == 1004


def test_a_replace_needs_the_same_confirmation_rounds_to_the_tick_and_journals_the_outcome(
    tmp_path: Path,
) -> None:
    d, _store = make_desk(tmp_path)
    working = d.submit(limit(Side.BUY, 10, "99.50"), source="ticket", confirmed=True)
    with pytest.raises(ConfirmationNeeded):
        d.replace(working.id, source="palette", confirmed=False, limit_price=D("99.617"))
    assert d.broker.orders(open_only=True)[0].request.limit_price == D("99.50")
    preview = d.preview_replace(working.id, limit_price=D("99.617"))
    assert preview.request.limit_price == D("99.61") and preview.action == "replace"  # a buy: down
    assert preview.releasing[0].id == working.id and preview.ok
    done = d.replace(working.id, source="palette", confirmed=True, limit_price=D("99.617"))
    assert done.request.limit_price == D("99.61")
    events = [(e.event, e.source) for e in d.journal.entries(order_id=working.id)]
    assert events[-3:] == [("intent", "palette"), ("checked", "palette"), ("replaced", "palette")]
    with pytest.raises(OrderError, match="nothing to change"):
        d.replace(working.id, source="palette", confirmed=True, limit_price=D("99.61"))
    with pytest.raises(OrderError, match="has no stop price"):
        d.replace(working.id, source="palette", confirmed=True, stop_price=D("99"))
    with pytest.raises(OrderError, match="not working"):
        d.replace("P999999", source="palette", confirmed=True, qty=D(1))


def test_the_band_applies_to_every_price_of_a_bracket(tmp_path: Path) -> None:
    d, _store = make_desk(tmp_path)
    far = OrderRequest(
        "AAPL", Side.BUY, D(10), OrderType.LIMIT, TIF.DAY, limit_price=D("99.90"),
        bracket=Bracket(D("101"), D("60")),
    )  # fmt: skip
    p = d.preview(far)
    band = next(c for c in p.checks if c.rule == "price_band_pct")
    assert not band.ok and "stop-loss 60.00 is 40.0 %" in band.reason
    with pytest.raises(RiskRefused, match="stop-loss"):
        d.submit(far, source="cli", confirmed=True)


def test_buying_power_after_is_the_account_after_the_fill(tmp_path: Path) -> None:
    d, _store = make_desk(tmp_path)
    for request in (
        OrderRequest("AAPL", Side.BUY, D(100)),
        OrderRequest("AAPL", Side.SELL, D(40)),
        OrderRequest("AAPL", Side.SELL, D(60)),
    ):
        p = d.preview(request)
        d.submit(request, source="cli", confirmed=True)
        assert d.broker.account().buying_power == p.buying_power_after, request
    # a sale's proceeds count, its commission too
    assert d.broker.account().buying_power == D("100000") - 100 * D("100.02") + 100 * D("99.98") - 3 * D(
        "1.00"
    )


def test_working_buys_hold_their_commission(tmp_path: Path) -> None:
    d, _store = make_desk(tmp_path)
    d.submit(limit(Side.BUY, 10, "90"), source="cli", confirmed=True)
    assert d.broker.account().buying_power == D("100000") - D("900") - D("1.00")


def test_flatten_cancels_the_symbols_working_orders_then_sells_at_market(tmp_path: Path) -> None:
    d, _store = make_desk(tmp_path)
    d.submit(OrderRequest("AAPL", Side.BUY, D(50)), source="cli", confirmed=True)
    exit_order = d.submit(limit(Side.SELL, 50, "105"), source="cli", confirmed=True)
    p = d.preview_close("AAPL")
    assert p.ok and p.request.side is Side.SELL and p.request.qty == 50  # its working sell is released
    assert [o.id for o in p.releasing] == [exit_order.id]
    with pytest.raises(ConfirmationNeeded):
        d.close("AAPL", source="key", confirmed=False)
    assert d.broker.orders(open_only=True)  # nothing canceled unconfirmed
    canceled, order = d.close("AAPL", source="key", confirmed=True)
    assert [o.id for o in canceled] == [exit_order.id] and order.status is OrderStatus.FILLED
    assert d.broker.positions() == [] and d.broker.orders(open_only=True) == []
    with pytest.raises(OrderError, match="no position in AAPL to flatten"):
        d.preview_close("AAPL")


def test_reverse_needs_shorting_and_flatten_is_refused_whole_by_a_rule(tmp_path: Path) -> None:
    d, _store = make_desk(tmp_path)
    d.submit(OrderRequest("AAPL", Side.BUY, D(20)), source="cli", confirmed=True)
    p = d.preview_close("AAPL", reverse=True)
    assert p.request.qty == 40 and not p.ok and "short selling is off" in p.problems[0]
    stop = d.submit(OrderRequest("AAPL", Side.SELL, D(20), OrderType.STOP, TIF.GTC, stop_price=D(95)),
                    source="cli", confirmed=True)  # fmt: skip
    d.limits = RiskLimits(restricted=frozenset({"AAPL"}), daily_loss_limit=None)
    with pytest.raises(RiskRefused, match="restricted"):
        d.close("AAPL", source="cli", confirmed=True)
    assert [o.id for o in d.broker.orders(open_only=True)] == [stop.id]  # its stop is still working


def test_reverse_on_a_short_enabled_account(tmp_path: Path) -> None:
    d, _store = make_desk(tmp_path, allow_short=True)
    d.submit(OrderRequest("AAPL", Side.BUY, D(20)), source="cli", confirmed=True)
    _, order = d.close("AAPL", source="palette", confirmed=True, reverse=True)
    assert order.request.side is Side.SELL and order.filled_qty == 40
    assert [p.qty for p in d.broker.positions()] == [-20]


def test_cancel_all_cancels_every_working_order_of_a_symbol(tmp_path: Path) -> None:
    d, _store = make_desk(tmp_path)
    quote(d.broker, "IBM", 199.9, 200.1, last=200.0)
    a = d.submit(limit(Side.BUY, 1, "95"), source="cli", confirmed=True)
    b = d.submit(limit(Side.BUY, 2, "96"), source="cli", confirmed=True)
    ibm = d.submit(
        OrderRequest("IBM", Side.BUY, D(1), OrderType.LIMIT, TIF.GTC, limit_price=D(190)), source="cli",
        confirmed=True,
    )  # fmt: skip
    done, failed = d.cancel_all(source="palette", symbol="AAPL")
    assert {o.id for o in done} == {a.id, b.id} and failed == []
    assert [o.id for o in d.broker.orders(open_only=True)] == [ibm.id]
    done, _ = d.cancel_all(source="palette")
    assert [o.id for o in done] == [ibm.id]


def test_the_journal_is_on_one_clock_that_never_runs_backwards(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.duckdb")
    wall = [1_765_000_000_000_000_000]
    journal = Journal(store.con, wall_ns=lambda: wall[0])
    replay_day = 1_362_148_200_000_000_000  # 2013-03-01 14:30 UTC, a replayed market time
    journal.record("intent", broker="paper", source="cli", ts_ns=replay_day)
    journal.record("intent", broker="paper", source="cli", ts_ns=wall[0])  # live: market time = wall
    wall[0] -= 5_000_000_000  # the machine's clock steps back 5 s
    journal.record("intent", broker="paper", source="cli")
    first, second, third = journal.entries()
    assert first.ts < second.ts < third.ts  # never backwards, never two at one instant
    assert first.market_ts is not None and first.market_ts.year == 2013  # replay's time kept beside
    assert second.market_ts is None and third.market_ts is None
    assert first.as_json()["ts"].endswith("Z") and first.as_json()["market_ts"].startswith("2013-03-01T14:30")
    store.close()
    # a new process continues after the newest entry, whatever its clock says
    store = Store.open(tmp_path / "s.duckdb")
    again = Journal(store.con, wall_ns=lambda: 1_000_000_000)
    again.record("intent", broker="paper", source="cli")
    assert again.entries()[-1].ts > third.ts
    store.close()


def test_a_paper_reset_keeps_the_old_account_and_ids_never_repeat(tmp_path: Path) -> None:
    d, store = make_desk(tmp_path)
    bought = d.submit(OrderRequest("AAPL", Side.BUY, D(10)), source="cli", confirmed=True)
    resting = d.submit(limit(Side.BUY, 5, "90"), source="cli", confirmed=True)
    paper = d.broker
    archive = paper.reset(source="palette")
    assert archive == "paper#1"
    assert paper.positions() == [] and paper.orders() == [] and paper.account().cash == D("100000")
    kept = store.con.execute("SELECT id, status FROM orders WHERE broker = 'paper#1' ORDER BY id").fetchall()
    assert kept == [(bought.id, "filled"), (resting.id, "canceled")]
    assert store.con.execute("SELECT count(*) FROM fills WHERE broker = 'paper#1'").fetchone() == (1,)
    assert paper.last_fill_ns() is None
    fresh = d.submit(OrderRequest("AAPL", Side.BUY, D(1)), source="cli", confirmed=True)
    assert fresh.id == "P000003"  # counts on: ids are unique in the store for ever
    assert d.journal.entries()[-6].event == "reset" or any(e.event == "reset" for e in d.journal.entries())
    store.close()


def test_two_journals_on_one_store_share_one_clock(tmp_path: Path) -> None:
    """Found: a live broker writes through two Journal objects, each with its own clock; with the
    machine's clock stepping back, their entries ran backwards in sequence order."""
    store = Store.open(tmp_path / "s.duckdb")
    wall = [1_765_000_000_000_000_000]
    a = Journal(store.cursor(), wall_ns=lambda: wall[0])
    b = Journal(store.cursor(), wall_ns=lambda: wall[0])
    a.record("intent", broker="alpaca", source="cli")
    wall[0] += 2_000_000_000
    b.record("submitted", broker="alpaca", source="cli")
    wall[0] -= 1_000_000_000  # the clock steps back a second
    a.record("acknowledged", broker="alpaca", source="broker")
    times = [e.ts for e in a.entries()]
    assert times == sorted(times) and len(set(times)) == 3
    store.close()


def test_two_journals_on_one_store_in_memory_share_one_clock() -> None:
    """Found: journals shared their clock through the store's file, and an in-memory store (the
    workstation's when the file is held by another process) has none: each had its own clock."""
    store = Store.open(None)
    other = Store.open(None)  # another store in memory keeps its own clock
    wall = [1_765_000_000_000_000_000]
    a = Journal(store.cursor(), wall_ns=lambda: wall[0], share=store)
    b = Journal(store.cursor(), wall_ns=lambda: wall[0], share=store)
    c = Journal(other.cursor(), wall_ns=lambda: wall[0], share=other)
    a.record("intent", broker="alpaca", source="cli")
    wall[0] += 2_000_000_000
    b.record("submitted", broker="alpaca", source="cli")
    wall[0] -= 1_000_000_000  # the clock steps back a second
    a.record("acknowledged", broker="alpaca", source="broker")
    times = [e.ts for e in a.entries()]
    assert times == sorted(times) and len(set(times)) == 3
    c.record("intent", broker="paper", source="cli")  # not pushed after the other store's entries
    assert c.entries()[0].ts < times[1]
    store.close()
    other.close()


def test_a_cancel_journals_who_asked_and_a_refused_one_is_journalled_too(tmp_path: Path) -> None:
    d, _store = make_desk(tmp_path)
    working = d.submit(limit(Side.BUY, 1, "95"), source="cli", confirmed=True)
    d.cancel(working.id, source="key")
    intent, canceled = [e for e in d.journal.entries(order_id=working.id)][-2:]
    assert (intent.event, intent.source, intent.detail["action"]) == ("intent", "key", "cancel")
    assert (canceled.event, canceled.source) == ("canceled", "key")
    with pytest.raises(OrderError, match="not working"):
        d.cancel("P999999", source="cli")
    refused = d.journal.entries(order_id="P999999")
    assert [e.event for e in refused] == ["intent", "rejected"] and "not working" in refused[-1].detail[
        "error"
    ]
