"""The order desk: one path for every order — intent, validity, risk, confirmation, broker —
and a preview that runs the same checks and sends nothing."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from trii_term.config import RiskLimits
from trii_term.domain.ledger import FeeModel
from trii_term.domain.orders import TIF, OrderError, OrderRequest, OrderStatus, OrderType, Side
from trii_term.store.db import Store
from trii_term.trading.desk import ConfirmationNeeded, OrderDesk, RiskRefused

from .test_paper_broker import T0, US_FEES, Clock, broker, quote


def desk(tmp_path: Path, **limits) -> tuple[OrderDesk, Store]:  # type: ignore[no-untyped-def]
    store, clock = Store.open(tmp_path / "s.duckdb"), Clock()
    b = broker(store, clock)
    quote(b, "AAPL", 99.98, 100.02, last=100.00)
    d = OrderDesk(
        b,
        limits=RiskLimits(**limits) if limits else RiskLimits(),
        journal=b.journal,
        price_of=lambda s: b.marks().get(s),
        fee_of=lambda _s: US_FEES,
        clock_ns=clock,
        day_of=lambda: "2013-03-01",
    )
    return d, store


def req(side: Side = Side.BUY, qty: int = 100, **kw) -> OrderRequest:  # type: ignore[no-untyped-def]
    return OrderRequest("AAPL", side, D(qty), kw.pop("type", OrderType.MARKET), kw.pop("tif", TIF.DAY), **kw)


def test_preview_shows_cost_commission_buying_power_position_and_every_check(tmp_path: Path) -> None:
    d, store = desk(tmp_path)
    p = d.preview(req(qty=100, type=OrderType.LIMIT, limit_price=D("99.507")))
    assert p.request.limit_price == D("99.50")  # as it will be sent
    assert (p.notional, p.commission, p.cash_change) == (D("9950.00"), D("1.00"), D("-9951.00"))
    assert p.buying_power_after == D("100000") - D("9951.00")
    assert (p.position_before, p.position_after) == (D(0), D(100))
    assert p.ok and {c.rule for c in p.checks} >= {"max_order_notional", "price_band_pct", "max_position_pct"}
    assert d.journal.entries() == []  # a preview sends and records nothing
    too_big = d.preview(req(qty=300))
    assert not too_big.ok and [c.rule for c in too_big.checks if not c.ok] == ["max_position_pct"]
    store.close()


def test_submit_needs_confirmation_and_journals_every_step(tmp_path: Path) -> None:
    d, store = desk(tmp_path)
    with pytest.raises(ConfirmationNeeded, match="press y"):
        d.submit(req(qty=10), source="cli", confirmed=False)
    assert d.broker.orders() == []  # nothing reached the broker
    order = d.submit(req(qty=10), source="cli", confirmed=True)
    assert order.status is OrderStatus.FILLED
    events = [(e.event, e.source) for e in d.journal.entries()]
    assert events == [
        ("intent", "cli"),  # the unconfirmed attempt…
        ("checked", "cli"),  # …passed every rule…
        ("rejected", "cli"),  # …recorded as not confirmed
        ("intent", "cli"),
        ("checked", "cli"),
        ("submitted", "cli"),
        ("acknowledged", "cli"),
        ("filled", "cli"),
    ]
    store.close()


def test_a_risk_refusal_is_journalled_as_rejected_with_the_rule(tmp_path: Path) -> None:
    d, store = desk(tmp_path, restricted=frozenset({"AAPL"}))
    with pytest.raises(RiskRefused, match="refused by risk rule restricted: AAPL is on the restricted list"):
        d.submit(req(qty=1), source="macro", confirmed=True)
    last = d.journal.entries()[-1]
    assert last.event == "rejected" and last.source == "macro" and last.detail["rule"] == "restricted"
    assert last.detail["request"]["qty"] == "1"
    assert d.broker.orders() == []
    with pytest.raises(OrderError, match="unknown symbol ZZZ"):
        d.submit(OrderRequest("ZZZ", Side.BUY, D(1)), source="ai", confirmed=True)
    assert d.journal.entries()[-1].detail["error"] == "unknown symbol ZZZ"
    store.close()


def test_the_daily_loss_limit_counts_from_the_sessions_start(tmp_path: Path) -> None:
    d, store = desk(tmp_path, daily_loss_limit=D("500"))
    d.submit(req(qty=200), source="ticket", confirmed=True)  # 200 at 100.02, fees 1.00
    assert d.day_pnl() == D("-5.00")  # from the first order of the day: the spread paid and the fee
    quote(d.broker, "AAPL", 97.40, 97.45, last=97.40)  # −525 on the day
    with pytest.raises(RiskRefused, match="daily_loss_limit"):
        d.submit(req(qty=1), source="ticket", confirmed=True)
    sell = d.submit(req(Side.SELL, 200), source="ticket", confirmed=True)  # closing is allowed
    assert sell.status is OrderStatus.FILLED
    store.close()


def test_fee_model_feeds_the_preview(tmp_path: Path) -> None:
    d, store = desk(tmp_path)
    d._fee_of = lambda _s: FeeModel(pct=D("0.1"), minimum=D("0"))  # type: ignore[method-assign]
    assert d.preview(req(qty=10)).commission == D("1.00")  # 0.1 % of 1,000.20
    store.close()


def test_day_pnl_counts_carried_positions_from_the_close_and_new_ones_from_their_fills(
    tmp_path: Path,
) -> None:
    d, store = desk(tmp_path)
    d.submit(req(qty=100), source="ticket", confirmed=True)  # at 100.02: "yesterday"
    overnight = d._now()  # the session day begins
    d.submit(
        req(qty=50, type=OrderType.LIMIT, limit_price=D("101")), source="ticket", confirmed=True
    )  # 100.02
    d.submit(req(Side.SELL, 30), source="ticket", confirmed=True)  # at the bid, 99.98
    quote(d.broker, "AAPL", 100.48, 100.52, last=100.50)
    view = d.day_view(overnight, lambda _s: D("99.00"))
    # 120 × 100.50 − 100 × 99.00 (the close) − 50 × 100.02 + 30 × 99.98
    assert view.pnl["AAPL"] == D("120") * D("100.50") - D("100") * D("99.00") - 50 * D("100.02") + 30 * D(
        "99.98"
    )
    assert view.realized == 30 * (D("99.98") - D("100.02"))  # sold at 99.98 what cost 100.02
    store.close()


def test_flatten_cancels_the_exits_a_partly_filled_bracket_entry_places_as_it_ends(tmp_path: Path) -> None:
    """A canceled bracket entry protects what filled (its exits are placed); flatten then must
    cancel those too, or they would open a new position after the close."""
    from trii_term.domain.orders import Bracket

    store, clock = Store.open(tmp_path / "s.duckdb"), Clock()
    b = broker(store, clock, partial_fills=True)
    quote(b, "AAPL", 99.98, 100.02, last=100.00, size=100)
    d = OrderDesk(b, limits=RiskLimits(), journal=b.journal, price_of=lambda s: b.marks().get(s),
                  fee_of=lambda _s: US_FEES, clock_ns=clock, day_of=lambda: "2013-03-01")  # fmt: skip
    entry = d.submit(
        req(qty=200, type=OrderType.LIMIT, limit_price=D("100.05"), bracket=Bracket(D("103"), D("97"))),
        source="cli",
        confirmed=True,
    )
    assert entry.filled_qty == 100 and [o.id for o in b.orders(open_only=True)] == [entry.id]
    canceled, order = d.close("AAPL", source="cli", confirmed=True)
    assert order.status is OrderStatus.FILLED and b.positions() == []
    assert b.orders(open_only=True) == []  # the entry and the two exits it placed as it ended
    assert {o.id for o in canceled} >= {entry.id} and len(canceled) == 3
    store.close()


def test_after_the_close_the_preview_says_a_market_order_waits_for_the_open(tmp_path: Path) -> None:
    from trii_term.commands.order_preview import preview_lines

    store, clock = Store.open(tmp_path / "s.duckdb"), Clock()
    is_open = {"now": True}
    b = broker(store, clock, opened_at=lambda _s, _ts: T0 if is_open["now"] else None)
    quote(b, "AAPL", 99.98, 100.02, last=100.00)
    d = OrderDesk(b, limits=RiskLimits(), journal=b.journal, price_of=lambda s: b.marks().get(s),
                  fee_of=lambda _s: US_FEES, clock_ns=clock, day_of=lambda: "2013-03-01")  # fmt: skip
    assert d.preview(req(qty=10)).notes == ()
    is_open["now"] = False
    p = d.preview(req(qty=10))
    assert p.ok and p.notes == ("the market is closed: it waits for the open, and fills at the quotes then",)
    assert ("note", p.notes[0]) in preview_lines(p)
    order = d.submit(req(qty=10), source="cli", confirmed=True)
    assert order.status is OrderStatus.NEW and b.positions() == []
    quote(b, "AAPL", 99.98, 100.02, last=100.00)  # still closed
    assert b.positions() == []
    is_open["now"] = True
    quote(b, "AAPL", 100.10, 100.14, last=100.12)
    assert [(p.qty, p.avg_cost) for p in b.positions()] == [(10, D("100.14"))]
    store.close()
