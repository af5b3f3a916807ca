"""The paper matching engine, case by case: every order type and time in force, gaps through
stops, trailing stops, brackets, partial fills, replace, cancel and the day's end."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trii_term.brokers.matching import Matcher
from trii_term.domain.orders import (
    TIF,
    Bracket,
    Order,
    OrderError,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    to_lot,
    to_tick,
)

T0 = 1_362_148_200_000_000_000


def order(m: Matcher, side: str, qty: int, type_: str = "market", tif: str = "day", **kw) -> Order:  # type: ignore[no-untyped-def]
    req = OrderRequest("AAPL", Side(side), D(qty), OrderType(type_), TIF(tif), **kw)
    return Order(m.new_id(), req, T0)


def fills(events) -> list[tuple[str, D, D]]:  # type: ignore[no-untyped-def]
    return [(e.order.id, e.fill.qty, e.fill.price) for e in events if e.fill is not None]


def kinds(events) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.kind for e in events]


def quoted(partial: bool = False, bid: float = 99.98, ask: float = 100.02, size: float = 500) -> Matcher:
    m = Matcher(partial_fills=partial)
    m.on_quote("AAPL", bid, ask, size, size, T0)
    m.on_trade("AAPL", 100.00, T0)
    return m


def test_market_orders_take_the_quote() -> None:
    m = quoted()
    buy, sell = order(m, "buy", 100), order(m, "sell", 40)
    assert fills(m.submit(buy, T0)) == [(buy.id, D(100), D("100.02"))]
    assert fills(m.submit(sell, T0)) == [(sell.id, D(40), D("99.98"))]
    assert buy.status is OrderStatus.FILLED and buy.avg_fill_price == D("100.02")


def test_a_market_order_before_any_quote_waits_unless_ioc() -> None:
    m = Matcher()
    day = order(m, "buy", 10)
    assert kinds(m.submit(day, T0)) == ["accepted"] and day.status is OrderStatus.NEW
    ioc = order(m, "buy", 10, tif="ioc")
    assert kinds(m.submit(ioc, T0))[-1] == "canceled" and "no quote" in ioc.reason
    assert fills(m.on_quote("AAPL", 50.0, 50.05, 100, 100, T0 + 1)) == [(day.id, D(10), D("50.05"))]


def test_limits_fill_when_crossed_at_the_better_price() -> None:
    m = quoted()
    bid = order(m, "buy", 100, "limit", limit_price=D("99.50"))
    assert fills(m.submit(bid, T0)) == [] and bid.id in m.orders
    assert fills(m.on_quote("AAPL", 99.40, 99.55, 500, 500, T0 + 1)) == []  # 99.55 > 99.50
    assert fills(m.on_quote("AAPL", 99.30, 99.45, 500, 500, T0 + 2)) == [(bid.id, D(100), D("99.45"))]
    marketable = order(m, "sell", 10, "limit", limit_price=D("99.00"))
    assert fills(m.submit(marketable, T0 + 3)) == [(marketable.id, D(10), D("99.30"))]  # at the bid


def test_stops_trigger_on_trades_and_gaps_fill_at_the_quote() -> None:
    m = quoted()
    stop_buy = order(m, "buy", 10, "stop", stop_price=D("101.00"))
    stop_sell = order(m, "sell", 10, "stop", stop_price=D("99.00"))
    m.submit(stop_buy, T0)
    m.submit(stop_sell, T0)
    assert fills(m.on_quote("AAPL", 100.9, 101.1, 500, 500, T0 + 1)) == []  # quotes do not trigger
    assert fills(m.on_trade("AAPL", 100.99, T0 + 2)) == []
    ev = m.on_trade("AAPL", 101.00, T0 + 3)
    assert kinds(ev) == ["triggered", "filled"] and fills(ev) == [(stop_buy.id, D(10), D("101.10"))]
    # overnight gap down through the sell stop: filled at the bid, below the stop
    m.on_quote("AAPL", 95.00, 95.10, 500, 500, T0 + 4)
    assert fills(m.on_trade("AAPL", 95.05, T0 + 5)) == [(stop_sell.id, D(10), D("95.00"))]


def test_a_stop_limit_rests_as_a_limit_once_triggered() -> None:
    m = quoted()
    o = order(m, "sell", 10, "stop_limit", stop_price=D("99.50"), limit_price=D("99.40"))
    m.submit(o, T0)
    m.on_quote("AAPL", 99.20, 99.30, 500, 500, T0 + 1)
    ev = m.on_trade("AAPL", 99.25, T0 + 2)
    assert kinds(ev) == ["triggered"] and o.triggered and o.id in m.orders  # bid 99.20 < limit
    assert fills(m.on_quote("AAPL", 99.45, 99.55, 500, 500, T0 + 3)) == [(o.id, D(10), D("99.45"))]


@pytest.mark.parametrize(
    ("trail", "stops"),
    [
        ({"trail_amount": D("1.00")}, ["99.00", "101.00", "101.00"]),
        ({"trail_pct": D("2")}, ["98.00", "99.96", "99.96"]),
    ],
)
def test_trailing_stops_follow_the_best_price_and_never_back(trail, stops) -> None:  # type: ignore[no-untyped-def]
    m = quoted()
    o = order(m, "sell", 10, "trailing_stop", **trail)
    m.submit(o, T0)
    seen = [str(o.trail_stop)]
    m.on_trade("AAPL", 102.00, T0 + 1)
    seen.append(str(o.trail_stop))
    m.on_trade("AAPL", 101.50, T0 + 2)
    seen.append(str(o.trail_stop))
    assert seen == stops
    m.on_quote("AAPL", 99.00, 99.05, 500, 500, T0 + 3)
    ev = m.on_trade("AAPL", 99.02, T0 + 4)
    assert fills(ev) == [(o.id, D(10), D("99.00"))]


def test_ioc_and_fok_with_partial_fills_by_size() -> None:
    m = quoted(partial=True, size=50)
    ioc = order(m, "buy", 100, tif="ioc")
    ev = m.submit(ioc, T0)
    assert fills(ev) == [(ioc.id, D(50), D("100.02"))] and kinds(ev)[-1] == "canceled"
    assert ioc.status is OrderStatus.CANCELED and ioc.filled_qty == 50
    fok = order(m, "buy", 100, tif="fok")
    assert fills(m.submit(fok, T0)) == [] and fok.status is OrderStatus.CANCELED
    fok_ok = order(m, "buy", 50, "limit", tif="fok", limit_price=D("100.05"))
    assert fills(m.submit(fok_ok, T0)) == [(fok_ok.id, D(50), D("100.02"))]


def test_partial_fills_keep_a_limit_working_until_done() -> None:
    m = quoted(partial=True, size=30)
    o = order(m, "buy", 100, "limit", tif="gtc", limit_price=D("100.10"))
    assert fills(m.submit(o, T0)) == [(o.id, D(30), D("100.02"))]
    assert o.status is OrderStatus.PARTIALLY_FILLED and o.remaining == 70
    m.on_quote("AAPL", 99.99, 100.03, 500, 500, T0 + 1)
    assert o.status is OrderStatus.FILLED
    assert o.avg_fill_price == (D("100.02") * 30 + D("100.03") * 70) / 100


def test_a_bracket_places_its_exits_and_one_cancels_the_other() -> None:
    m = quoted()
    entry = order(m, "buy", 100, "limit", limit_price=D("100.05"), bracket=Bracket(D("102.00"), D("98.00")))
    ev = m.submit(entry, T0)
    assert entry.status is OrderStatus.FILLED
    exits = [e.order for e in ev if e.kind == "accepted" and e.order.parent_id == entry.id]
    tp, sl = sorted(exits, key=lambda o: o.request.type)
    assert (tp.request.type, tp.request.limit_price, sl.request.type, sl.request.stop_price) == (
        OrderType.LIMIT,
        D("102.00"),
        OrderType.STOP,
        D("98.00"),
    )
    assert tp.side is sl.side is Side.SELL and tp.request.qty == sl.request.qty == 100
    ev = m.on_quote("AAPL", 102.01, 102.05, 500, 500, T0 + 1)
    assert fills(ev) == [(tp.id, D(100), D("102.01"))]
    assert sl.status is OrderStatus.CANCELED and "one-cancels-other" in sl.reason
    assert m.orders == {}


@pytest.mark.parametrize("end", ["cancel", "expire"])
def test_a_bracket_entry_ended_after_a_partial_fill_protects_what_filled(end: str) -> None:
    """Found: a bracket entry that filled 200 of 500 and was then canceled (or expired at the
    close) left the 200 bought with no take-profit and no stop-loss."""
    m = quoted(partial=True, size=200)
    entry = order(m, "buy", 500, "limit", limit_price=D("100.05"), bracket=Bracket(D("102.00"), D("98.00")))
    ev = m.submit(entry, T0)
    assert fills(ev) == [(entry.id, D(200), D("100.02"))]
    ev = m.cancel(entry.id, T0 + 1) if end == "cancel" else m.expire_day(T0 + 1)
    assert entry.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED) and entry.filled_qty == 200
    exits = sorted((e.order for e in ev if e.kind == "accepted"), key=lambda o: o.request.type)
    assert [(o.parent_id, o.side, o.request.type, o.request.qty) for o in exits] == [
        (entry.id, Side.SELL, OrderType.LIMIT, D(200)),
        (entry.id, Side.SELL, OrderType.STOP, D(200)),
    ]
    assert sorted(m.orders) == sorted(o.id for o in exits)
    # without a fill there is nothing to protect; and a reset (protect=False) places none
    bare = order(m, "buy", 5, "limit", tif="gtc", limit_price=D("90"), bracket=Bracket(D("95"), D("85")))
    m.submit(bare, T0)
    assert kinds(m.cancel(bare.id, T0 + 2)) == ["canceled"]


def test_day_orders_expire_at_the_close_gtc_stays() -> None:
    m = quoted()
    day = order(m, "buy", 10, "limit", limit_price=D("90"))
    gtc = order(m, "buy", 10, "limit", tif="gtc", limit_price=D("90"))
    m.submit(day, T0)
    m.submit(gtc, T0)
    ev = m.expire_day(T0 + 10)
    assert [e.order.id for e in ev] == [day.id] and day.status is OrderStatus.EXPIRED
    assert list(m.orders) == [gtc.id]


def test_replace_and_cancel() -> None:
    m = quoted()
    o = order(m, "buy", 10, "limit", tif="gtc", limit_price=D("95"))
    m.submit(o, T0)
    ev = m.replace(o.id, T0 + 1, qty=D(20), limit_price=D("100.05"))  # now marketable
    assert kinds(ev)[0] == "replaced" and fills(ev) == [(o.id, D(20), D("100.02"))]
    with pytest.raises(OrderError, match="not working"):
        m.cancel(o.id, T0 + 2)
    p = order(m, "sell", 5, "limit", tif="gtc", limit_price=D("200"))
    m.submit(p, T0)
    assert kinds(m.cancel(p.id, T0 + 3)) == ["canceled"] and p.status is OrderStatus.CANCELED
    assert fills(m.on_quote("AAPL", 250.0, 250.1, 500, 500, T0 + 4)) == []  # a canceled order never fills


@pytest.mark.parametrize(
    ("kw", "says"),
    [
        ({"type": OrderType.LIMIT}, "needs limit price"),
        ({"type": OrderType.MARKET, "limit_price": D("1")}, "takes no limit price"),
        ({"type": OrderType.STOP, "stop_price": D("1"), "tif": TIF.IOC}, "ioc applies to market and limit"),
        ({"type": OrderType.TRAILING_STOP}, "needs a trail"),
        ({"qty": D(0)}, "quantity must be above 0"),
        (
            {"type": OrderType.LIMIT, "limit_price": D("100"), "bracket": Bracket(D("99"), None)},
            "take-profit 99",
        ),
    ],
)
def test_malformed_orders_are_rejected_with_the_reason(kw, says) -> None:  # type: ignore[no-untyped-def]
    m = quoted()
    fields = {"symbol": "AAPL", "side": Side.BUY, "qty": D(10), **kw}
    o = Order(m.new_id(), OrderRequest(**fields), T0)
    ev = m.submit(o, T0)
    assert kinds(ev) == ["rejected"] and says in o.reason and fills(ev) == []


def test_prices_round_to_the_tick_in_the_safe_direction_and_quantities_to_lots() -> None:
    tick = D("0.05")
    assert to_tick(D("100.07"), tick, Side.BUY) == D("100.05")  # never pay more than asked
    assert to_tick(D("100.07"), tick, Side.SELL) == D("100.10")  # never sell for less
    assert to_tick(D("100.07"), tick) == D("100.05")
    assert to_tick(D("100.08"), tick) == D("100.10")
    assert to_lot(D(130), 50) == D(100) and to_lot(D(7), 1) == D(7)


def test_in_replay_market_data_older_than_an_order_never_fills_it() -> None:
    """A restart (or a second process) replays the day from its open again: an order placed at
    10:00 must not fill against the 09:31 quotes that come round again."""
    minute = 60_000_000_000
    placed = T0 + 30 * minute
    m = Matcher(strict_time=True)
    limit = Order(
        "P000007", OrderRequest("AAPL", Side.BUY, D(10), OrderType.LIMIT, limit_price=D(101)), placed
    )
    stop = Order("P000008", OrderRequest("AAPL", Side.SELL, D(5), OrderType.STOP, stop_price=D(99)), placed)
    m.restore(limit)
    m.restore(stop)
    assert m.on_quote("AAPL", 100.0, 100.5, 500, 500, T0 + minute) == []  # 09:31: crosses, too early
    assert m.on_trade("AAPL", 98.0, T0 + minute) == []  # the stop is not triggered by the past
    assert limit.status is OrderStatus.NEW and not stop.triggered
    events = m.on_quote("AAPL", 100.0, 100.5, 500, 500, placed + minute)
    assert fills(events) == [("P000007", D(10), D("100.50"))]
    assert kinds(m.on_trade("AAPL", 98.0, placed + minute))[0] == "triggered"
    # live (not strict), the same quotes fill at once
    live = Matcher()
    live.restore(
        Order("P1", OrderRequest("AAPL", Side.BUY, D(10), OrderType.LIMIT, limit_price=D(101)), placed)
    )
    assert fills(live.on_quote("AAPL", 100.0, 100.5, 500, 500, T0 + minute))


def test_a_market_order_partly_filled_by_size_fills_the_rest_on_later_quotes() -> None:
    m = quoted(partial=True, size=30)
    buy = order(m, "buy", 100)
    assert fills(m.submit(buy, T0)) == [(buy.id, D(30), D("100.02"))]
    m.on_quote("AAPL", 99.98, 100.03, 30, 30, T0 + 1)
    m.on_quote("AAPL", 99.98, 100.04, 100, 100, T0 + 2)
    assert buy.status is OrderStatus.FILLED and buy.filled_qty == 100


def test_nothing_fills_while_the_market_is_closed() -> None:
    """Found: after the close a market buy filled at once against the last quote of the day
    (stale, and after hours no broker fills it); a limit filled on an after-hours quote."""
    CLOSE = T0 + 390 * 60 * 10**9  # 16:00 New York
    OPEN = CLOSE + (24 * 60 - 390) * 60 * 10**9  # the next 09:30
    m = Matcher(opened_at=lambda _symbol, ts: T0 if ts < CLOSE else (OPEN if ts >= OPEN else None))
    m.on_quote("AAPL", 99.98, 100.02, 500, 500, T0)
    m.on_trade("AAPL", 100.00, T0)
    late = CLOSE + 60 * 10**9
    mkt = order(m, "buy", 10)
    lmt = order(m, "buy", 10, "limit", tif="gtc", limit_price=D("99.00"))
    stop = order(m, "sell", 10, "stop", tif="gtc", stop_price=D("99.50"))
    ioc = order(m, "buy", 10, "limit", tif="ioc", limit_price=D("100.05"))
    assert kinds(m.submit(mkt, late)) == ["accepted"] and mkt.status is OrderStatus.NEW
    m.submit(lmt, late)
    m.submit(stop, late)
    assert kinds(m.submit(ioc, late)) == ["accepted", "canceled"] and "market is closed" in ioc.reason
    # after hours: a quote through the limit and a trade through the stop do nothing
    assert m.on_quote("AAPL", 98.50, 98.90, 500, 500, late + 1) == []
    assert m.on_trade("AAPL", 98.70, late + 2) == []
    assert not stop.triggered and m.orders.keys() == {mkt.id, lmt.id, stop.id}
    # the open: the market order fills at the first quote, the limit at it too
    ev = m.on_quote("AAPL", 98.60, 98.95, 500, 500, OPEN)
    assert fills(ev) == [(mkt.id, D(10), D("98.95")), (lmt.id, D(10), D("98.95"))]
    assert kinds(m.on_trade("AAPL", 98.70, OPEN + 1))[0] == "triggered"


def test_a_quote_from_an_earlier_session_never_fills() -> None:
    """Found: with the replay ended on a Friday and the clock running on into Tuesday's
    session, `buy 1 AAPL` filled at Friday's last ask. A quote from before this session opened
    is no price to fill at: the order waits for a fresh one."""
    tuesday = T0 + 4 * 86_400 * 10**9  # the next session's 09:30 (New York)
    m = Matcher(opened_at=lambda _symbol, ts: T0 if ts < T0 + 86_400 * 10**9 else tuesday)
    m.on_quote("AAPL", 99.98, 100.02, 500, 500, T0 + 60 * 10**9)
    m.on_trade("AAPL", 100.00, T0 + 60 * 10**9)
    late = tuesday + 3600 * 10**9
    mkt = order(m, "buy", 1)
    stop = order(m, "buy", 1, "stop", tif="gtc", stop_price=D("99.00"))  # hit by the old trade
    assert kinds(m.submit(mkt, late)) == ["accepted"] and mkt.status is OrderStatus.NEW
    assert fills(m.submit(stop, late)) == []
    ev = m.on_quote("AAPL", 101.00, 101.04, 500, 500, late + 1)
    assert fills(ev)[0] == (mkt.id, D(1), D("101.04"))


def test_an_exit_is_never_larger_than_what_is_still_held() -> None:
    """Found: a bracket entry that filled 40 and was canceled after the 40 were sold placed
    exits for 40: the take-profit then sold 40 more, opening a short."""
    held = {"AAPL": D(0)}
    m = Matcher(partial_fills=True, held=lambda s: held[s])
    m.on_quote("AAPL", 99.98, 100.02, 40, 40, T0)
    entry = order(m, "buy", 100, "limit", limit_price=D("100.05"), bracket=Bracket(D("102"), D("98")))
    assert fills(m.submit(entry, T0)) == [(entry.id, D(40), D("100.02"))]
    held["AAPL"] = D(0)  # the 40 were sold meanwhile
    assert kinds(m.cancel(entry.id, T0 + 1)) == ["canceled"] and m.orders == {}
    again = order(m, "buy", 100, "limit", limit_price=D("100.05"), bracket=Bracket(D("102"), D("98")))
    m.submit(again, T0 + 2)
    held["AAPL"] = D(25)  # 15 of its 40 sold: exits for the 25 left
    exits = [e.order for e in m.cancel(again.id, T0 + 3) if e.kind == "accepted"]
    assert [o.request.qty for o in exits] == [D(25), D(25)]


def _trail_from(side: Side, price: float, amount: D | None, pct: D | None) -> D:
    """The rule, written plainly: the stop `amount` (or `pct` %) from the price, to the cent."""
    base = D(repr(price))
    gap = amount if amount is not None else base * pct / 100  # type: ignore[operator]
    return (base + gap if side is Side.BUY else base - gap).quantize(D("0.01"))


@settings(max_examples=150, deadline=None)
@given(
    trails=st.lists(
        st.tuples(
            st.sampled_from([Side.SELL, Side.BUY]),
            st.one_of(
                st.decimals(D("0.01"), D("3.00"), places=2).map(lambda d: (d, None)),
                st.decimals(D("0.1"), D("5"), places=1).map(lambda d: (None, d)),
            ),
        ),
        min_size=1,
        max_size=25,
    ),
    steps=st.lists(st.integers(-40, 40), min_size=1, max_size=120),
)
def test_indexed_trailing_stops_move_and_trigger_as_the_plain_rule(trails, steps) -> None:  # type: ignore[no-untyped-def]
    """Every trailing stop, after every trade, stands where the plain rule puts it (the best
    price's stop, never back), and triggers on the very trade the rule says: though a trade
    now visits only the stops it may move."""
    m = quoted(size=1_000_000)
    model: dict[str, tuple[Side, D | None, D | None, D]] = {}
    for side, (amount, pct) in trails:
        kw = {"trail_amount": amount} if amount is not None else {"trail_pct": pct}
        o = order(m, side.value, 1, "trailing_stop", "gtc", **kw)
        assert kinds(m.submit(o, T0)) == ["accepted"]
        model[o.id] = (side, amount, pct, _trail_from(side, 100.00, amount, pct))
        assert o.trail_stop == model[o.id][3]
    price = 100.00
    for n, step in enumerate(steps, 1):
        price = round(max(1.00, price + step / 100), 2)
        m.on_quote("AAPL", price - 0.01, price + 0.01, 1_000_000, 1_000_000, T0 + n)
        events = m.on_trade("AAPL", price, T0 + n)
        triggered = {e.order.id for e in events if e.kind == "triggered"}
        expected = set()
        for oid, (side, amount, pct, stop) in list(model.items()):
            new = _trail_from(side, price, amount, pct)
            stop = max(stop, new) if side is Side.SELL else min(stop, new)
            model[oid] = (side, amount, pct, stop)
            if (price <= float(stop)) if side is Side.SELL else (price >= float(stop)):
                expected.add(oid)
                del model[oid]
            else:
                assert m.orders[oid].trail_stop == stop, (oid, price)
        assert triggered == expected, (n, price)
