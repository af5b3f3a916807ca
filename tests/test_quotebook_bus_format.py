"""Quote book state, the bus, and number formatting."""

from __future__ import annotations

from datetime import date

from trii_term import format as fmt
from trii_term.bus import Bus, RateMeter
from trii_term.domain import DayStats, FeedState, FeedStatus, MarketBatch, Quote, Trade
from trii_term.quotebook import QuoteBook


def batch(*events) -> MarketBatch:  # type: ignore[no-untyped-def]
    return MarketBatch("test", list(events), 0)


def test_quote_book_tracks_last_day_and_ticks() -> None:
    now = [100.0]
    book = QuoteBook(monotonic=lambda: now[0])
    book.on_batch(batch(DayStats(1, "X", date(2013, 3, 1), 10.0, None, None, None, None, 0.0)))
    book.on_batch(batch(Trade(2, "X", 10.5, 100), Quote(3, "X", 10.4, 10.6, 5, 6)))
    st = book.get("X")
    assert st is not None
    assert (st.last, st.open, st.high, st.low, st.volume) == (10.5, 10.5, 10.5, 10.5, 100)
    assert (st.bid, st.ask, st.bid_size, st.ask_size) == (10.4, 10.6, 5, 6)
    assert st.change == 0.5 and st.change_pct == 5.0
    assert st.direction == 0 and st.flash == 0  # the first print has nothing to compare with
    book.on_batch(batch(Trade(4, "X", 10.2, 50)))
    assert st.direction == -1 and st.flash == -1 and st.flash_until == 100.0 + 0.6
    assert (st.low, st.volume, st.updated_ns) == (10.2, 150, 4)
    book.on_batch(batch(Trade(5, "X", 10.2, 1)))  # unchanged price keeps the last direction
    assert st.direction == -1
    assert book.drain_dirty() == {"X"} and book.drain_dirty() == set()
    # a new day resets the day's figures
    book.on_batch(batch(DayStats(9, "X", date(2013, 3, 4), 10.2, None, None, None, None, 0.0)))
    day = (st.open, st.high, st.low, st.volume, st.prev_close, st.last)
    assert day == (None, None, None, 0.0, 10.2, 10.2)
    assert st.change == 0.0
    # a day with no previous close (a first day, or a replay that looped back to one) does not
    # keep another day's: the change is unknown
    book.on_batch(batch(DayStats(10, "X", date(2004, 8, 19), None, None, None, None, None, 0.0)))
    assert st.prev_close is None and st.change is None and st.change_pct is None


def test_mid_session_snapshot_fills_the_day() -> None:
    book = QuoteBook()
    book.on_batch(batch(DayStats(7, "Y", date(2013, 3, 1), 20.0, 20.5, 21.0, 19.5, 20.8, 12345.0)))
    st = book.get("Y")
    assert st is not None and (st.open, st.high, st.low, st.last, st.volume) == (
        20.5,
        21.0,
        19.5,
        20.8,
        12345.0,
    )


def test_a_failing_listener_does_not_stop_the_others() -> None:
    bus = Bus()
    seen: list[object] = []

    def broken(msg: object) -> None:
        raise RuntimeError("boom")

    bus.subscribe(FeedStatus, broken)
    unsubscribe = bus.subscribe(FeedStatus, seen.append)
    status = FeedStatus("replay", FeedState.LIVE)
    bus.publish(status)
    assert seen == [status] and bus.listener_errors == 1
    unsubscribe()
    bus.publish(status)
    assert seen == [status]


def test_rate_meter_reports_the_last_whole_second() -> None:
    t = [10.0]
    meter = RateMeter(lambda: t[0])
    meter.add(5)
    meter.add(7)
    assert meter.rate() == 0  # the current second is not complete
    t[0] = 11.2
    assert meter.rate() == 12
    meter.add(3)
    assert meter.rate() == 12
    t[0] = 13.5  # a silent second in between
    assert meter.rate() == 0
    assert meter.total == 15


def test_formatting_carries_signs_and_arrows() -> None:
    assert fmt.price(1514.6789) == "1,514.68" and fmt.price(None) == "—"
    assert fmt.signed(3.456) == "+3.46" and fmt.signed(-2) == "-2.00" and fmt.signed(0.0) == "0.00"
    assert fmt.signed(-0.001) == "-0.00"  # a tiny fall is still a fall
    assert fmt.signed_pct(-2.5321) == "-2.53%" and fmt.signed_pct(0.0026) == "+0.00%"
    assert fmt.signed_pct(0.0) == "0.00%"
    assert fmt.volume(9_999) == "9,999" and fmt.volume(512_300) == "512.3K"
    assert fmt.volume(8_510_000) == "8.51M" and fmt.volume(3_200_000_000) == "3.20B"
    assert [fmt.age(s) for s in (0, 59.9, 60, 3599, 3600, 86400 * 3)] == [
        "0s",
        "59s",
        "1m",
        "59m",
        "1h",
        "3d",
    ]
    assert fmt.arrow(1) == "▲" and fmt.arrow(-1) == "▼" and fmt.arrow(0) == " "
