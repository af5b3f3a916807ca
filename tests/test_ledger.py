"""The accounting, exact to the cent: hand cases, and properties over any sequence of fills."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trii_term.domain.ledger import FeeModel, Ledger
from trii_term.domain.orders import Fill, OrderError, Side

SYMBOLS = ("AAPL", "MSFT", "IBM")


def fill(side: str, qty: int, price: str, symbol: str = "AAPL", fee: str = "0") -> Fill:
    return Fill("o", symbol, Side(side), D(qty), D(price), 0, D(fee))


def test_average_cost_and_realized_by_hand() -> None:
    led = Ledger("USD", D("10000"))
    led.apply(fill("buy", 10, "100.00", fee="1.00"))
    led.apply(fill("buy", 30, "104.00", fee="1.00"))
    pos = led.positions["AAPL"]
    assert (pos.qty, pos.avg_cost) == (D(40), D("103"))  # (1000 + 3120) / 40
    assert led.apply(fill("sell", 15, "110.00", fee="1.00")) == D("105.00")  # (110 − 103) × 15
    assert led.cash == D("10000") - D("1000") - D("3120") + D("1650") - D("3.00")
    assert led.positions["AAPL"].qty == 25 and led.positions["AAPL"].avg_cost == D("103")
    marks = {"AAPL": D("101.00")}
    assert led.unrealized(marks) == D("-50.00")
    assert led.equity(marks) == led.cash + 25 * D("101.00")
    assert led.equity(marks) - D("10000") == led.realized + led.unrealized(marks) - led.fees


def test_a_cash_account_cannot_sell_what_it_does_not_hold() -> None:
    led = Ledger("USD", D("1000"))
    led.apply(fill("buy", 5, "10"))
    with pytest.raises(OrderError, match="holds 5 and short selling is off"):
        led.apply(fill("sell", 6, "10"))
    assert led.positions["AAPL"].qty == 5 and led.cash == D("950")  # nothing changed


def test_shorts_when_enabled_reverse_through_zero() -> None:
    led = Ledger("USD", D("1000"), allow_short=True)
    led.apply(fill("sell", 10, "50"))
    assert led.positions["AAPL"].qty == -10 and led.positions["AAPL"].avg_cost == D("50")
    assert led.apply(fill("buy", 15, "40")) == D("100")  # covered 10 at 40: +10 each
    assert led.positions["AAPL"].qty == 5 and led.positions["AAPL"].avg_cost == D("40")


def test_fees_per_share_percent_and_minimum() -> None:
    us = FeeModel(per_share=D("0.005"), minimum=D("1.00"))
    assert us(D(100), D("50")) == D("1.00")  # 0.50 → the minimum
    assert us(D(1000), D("50")) == D("5.00")
    india = FeeModel(pct=D("0.03"), minimum=D("0"))
    assert india(D(10), D("1500.50")) == D("4.50")  # 0.03 % of 15,005 = 4.5015
    assert FeeModel()(D(10), D("1")) == D(0)


trades = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 500),
        st.integers(100, 50_000),  # price in cents
        st.integers(0, 500),  # commission in cents
    ),
    max_size=60,
)
marks = st.fixed_dictionaries({s: st.integers(100, 50_000) for s in SYMBOLS})


@settings(max_examples=150, deadline=None)
@given(trades, marks, st.booleans())
def test_equity_is_cash_plus_positions_and_pnl_adds_up(seq, mark_cents, short) -> None:  # type: ignore[no-untyped-def]
    led = Ledger("USD", D("1000000"), allow_short=short)
    for symbol, side, qty, price, fee in seq:
        f = Fill("o", symbol, side, D(qty), D(price) / 100, 0, D(fee) / 100)
        try:
            led.apply(f)
        except OrderError:
            assert not short and side is Side.SELL  # only a cash account refuses, only a sale
            continue
        if not short:
            assert all(p.qty >= 0 for p in led.positions.values())
    m = {s: D(c) / 100 for s, c in mark_cents.items()}
    assert led.equity(m) == led.cash + sum((p.qty * m[s] for s, p in led.positions.items()), D(0))
    assert led.equity(m) - led.starting_cash == led.realized + led.unrealized(m) - led.fees
    assert led.realized == sum((p.realized for p in led.positions.values()), D(0))
