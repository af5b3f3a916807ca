"""Pre-trade risk rules: each stops what it should, says why, and lets the rest through."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from trii_term.config import RiskLimits
from trii_term.domain.orders import TIF, OrderRequest, OrderType, Side
from trii_term.trading.risk import RiskContext, check, refused

LIMITS = RiskLimits(
    max_order_notional=D("250000"),
    max_position_pct=D(25),
    daily_loss_limit=D("5000"),
    price_band_pct=D(10),
    max_order_qty=D(100000),
    restricted=frozenset({"GME"}),
)
CTX = RiskContext(last=D("100.00"), equity=D("100000"), position=D(0), day_pnl=D(0))


def req(side: str = "buy", qty: int = 100, symbol: str = "AAPL", **kw) -> OrderRequest:  # type: ignore[no-untyped-def]
    return OrderRequest(
        symbol, Side(side), D(qty), kw.pop("type", OrderType.MARKET), kw.pop("tif", TIF.DAY), **kw
    )


def stopped_by(r: OrderRequest, ctx: RiskContext = CTX) -> str | None:
    first = refused(check(r, ctx, LIMITS))
    return None if first is None else first.rule


def test_an_ordinary_order_passes_every_rule_and_each_says_so() -> None:
    checks = check(req(qty=100), CTX, LIMITS)
    assert refused(checks) is None
    assert {c.rule for c in checks} == {
        "restricted",
        "max_order_qty",
        "max_order_notional",
        "max_position_pct",
        "daily_loss_limit",
    }
    assert all(c.reason for c in checks)


@pytest.mark.parametrize(
    ("order", "ctx", "rule"),
    [
        (req(symbol="GME"), CTX, "restricted"),
        (req(qty=100001), CTX, "max_order_qty"),
        (req(qty=2600), CTX, "max_order_notional"),  # 260,000 at 100
        (req(qty=300), CTX, "max_position_pct"),  # 30,000 of 100,000 equity
        (req(type=OrderType.LIMIT, limit_price=D("111")), CTX, "price_band_pct"),
        (
            req(type=OrderType.LIMIT, limit_price=D("100")),
            RiskContext(None, D("1e5"), D(0), D(0)),
            "price_band_pct",
        ),
        (req(), RiskContext(None, D("1e5"), D(0), D(0)), "max_order_notional"),  # no price: fail closed
        (req(qty=10), RiskContext(D("100"), D("100000"), D(0), D("-5000")), "daily_loss_limit"),
    ],
)
def test_each_rule_stops_what_it_should(order, ctx, rule) -> None:  # type: ignore[no-untyped-def]
    assert stopped_by(order, ctx) == rule


def test_after_the_daily_loss_limit_closing_orders_still_go() -> None:
    lost = RiskContext(D("100"), D("95000"), D(200), D("-6000"))
    assert stopped_by(req("buy", 10), lost) == "daily_loss_limit"
    assert stopped_by(req("sell", 10), lost) is None  # reduces the position
    reason = refused(check(req("buy", 10), lost, LIMITS)).reason  # type: ignore[union-attr]
    assert "6,000.00 USD" in reason and "next session" in reason


def test_reducing_a_big_position_is_not_a_concentration_breach() -> None:
    big = RiskContext(D("100"), D("100000"), D(400), D(0))  # 40 % already
    assert stopped_by(req("sell", 100), big) is None
    assert stopped_by(req("buy", 1), big) == "max_position_pct"


def test_going_through_zero_opens_the_other_side() -> None:
    """Found: holding 200, `sell 400` (a reverse, or an over-sell) passed the daily loss limit
    and the concentration rule: it only 'reduced' the absolute position (200 → 200 short)."""
    lost = RiskContext(D("100"), D("95000"), D(200), D("-6000"))
    assert stopped_by(req("sell", 200), lost) is None  # flat: closing is allowed
    assert stopped_by(req("sell", 400), lost) == "daily_loss_limit"  # 200 short opened
    assert stopped_by(req("sell", 250), lost) == "daily_loss_limit"
    short = RiskContext(D("100"), D("100000"), D(-200), D(0))
    assert stopped_by(req("buy", 600), short) == "max_position_pct"  # 400 long: 40 % of equity
    assert stopped_by(req("buy", 400), short) is None  # 200 long: 20 %
    assert stopped_by(req("buy", 200), short) is None  # flat


def test_rules_can_be_switched_off() -> None:
    off = RiskLimits(None, None, None, None, None)
    assert check(req(qty=10**7), CTX, off) == []


def test_a_sale_beside_a_working_sale_of_the_whole_position_opens_a_short() -> None:
    """Found (shorting on): holding 100 with a sale of 100 working, a second sale of 100 was
    'reducing' and passed the daily loss limit — the two together open a short of 100."""
    lost = RiskContext(D("100"), D("95000"), D(100), D("-6000"), pending=D(-100))
    assert stopped_by(req("sell", 100), lost) == "daily_loss_limit"
    assert stopped_by(req("sell", 100), RiskContext(D("100"), D("95000"), D(100), D("-6000"))) is None
