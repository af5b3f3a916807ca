"""The intraday path built from a real daily bar: the OHLC envelope, volume, determinism."""

from __future__ import annotations

import itertools
import random
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trii_term.clock import TradingCalendar
from trii_term.domain import US, Quote, Trade
from trii_term.feeds.replay_path import CLOSE_TRADE_NS, DayPath, day_path
from trii_term.paths import shipped_data_dir
from trii_term.store.db import Store
from trii_term.store.history import DailyBar, daily_history, import_shipped_history

INDICES = {"SPX", "COMP"}
NYSE = TradingCalendar(US)  # the real calendar: early closes end the session at 13:00


def bounds(day: date) -> tuple[int, int]:
    b = NYSE.session_bounds(day)
    assert b is not None, f"{day}: the history has a day NYSE did not trade"
    return b


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[DailyBar]]:
    store = Store.open(Path(tmp_path_factory.mktemp("hist")) / "h.duckdb")
    import_shipped_history(store.con, shipped_data_dir())
    out = daily_history(store.con, ["AAPL", "MSFT", "IBM", "GOOG", "FB", "SPX", "COMP"])
    store.close()
    return out


def build(sym: str, bar: DailyBar, seed: int = 1) -> DayPath:
    o, c = bounds(bar.day)
    return day_path(sym, bar, o, c, seed, with_quotes=sym not in INDICES)


def full_day(path: DayPath) -> tuple[list[Trade], list[Quote]]:
    trades: list[Trade] = []
    quotes: list[Quote] = []
    for k in range(path.segments):
        t, q = path.segment(k)
        trades += t
        quotes += q
    return trades, quotes


def assert_envelope(sym: str, bar: DailyBar, trades: list[Trade]) -> None:
    prices = [t.price for t in trades]
    open_ns, close_ns = bounds(bar.day)
    assert trades[0].ts == open_ns and trades[0].price == bar.open, f"{sym} {bar.day}: open"
    assert trades[-1].ts == close_ns - CLOSE_TRADE_NS and trades[-1].price == bar.close, (
        f"{sym} {bar.day}: close"
    )
    assert max(prices) == bar.high, f"{sym} {bar.day}: high not touched"
    assert min(prices) == bar.low, f"{sym} {bar.day}: low not touched"
    assert all(bar.low <= p <= bar.high for p in prices)
    assert sum(t.size for t in trades) == bar.volume, f"{sym} {bar.day}: volume"
    ts = [t.ts for t in trades]
    assert all(a < b for a, b in itertools.pairwise(ts)), "times strictly increase"


# each shipped symbol's days and early closes (13:00) in its years: one test per symbol, so
# the ~22,000 days are shared out among the test workers
SHIPPED_DAYS = {
    "AAPL": (3270, 29),
    "MSFT": (3270, 29),
    "IBM": (3270, 29),
    "GOOG": (2148, 17),
    "FB": (196, 3),
    "SPX": (5031, 45),
    "COMP": (5031, 45),
}


@pytest.mark.parametrize("sym", list(SHIPPED_DAYS))
def test_every_shipped_day_opens_closes_and_touches_its_range(
    history: dict[str, list[DailyBar]], sym: str
) -> None:
    """Every day of every shipped symbol: the anchors (the prices the intraday path must pass
    through) open at the open, close at the close, touch the real high and low, stay inside, and
    the day's volume is allocated exactly."""
    assert set(history) == set(SHIPPED_DAYS)  # no shipped symbol goes unchecked
    checked = early = 0
    for bar in history[sym]:
        path = build(sym, bar)
        px = path.anchor_px
        assert px[0] == bar.open and px[-1] == bar.close, (sym, bar.day)
        assert max(px) == bar.high and min(px) == bar.low, (sym, bar.day)
        assert sum(path.segment_volume) == round(bar.volume), (sym, bar.day)
        open_ns, close_ns = bounds(bar.day)
        assert path.anchor_ns[0] == open_ns and path.anchor_ns[-1] == close_ns - CLOSE_TRADE_NS
        checked += 1
        early += close_ns - open_ns < 6 * 3600 * 10**9
    assert (checked, early) == SHIPPED_DAYS[sym]
    assert sum(days for days, _ in SHIPPED_DAYS.values()) == 3270 * 3 + 2148 + 196 + 5031 * 2
    assert sum(closes for _, closes in SHIPPED_DAYS.values()) == 3 * 29 + 17 + 3 + 2 * 45


SPECIAL_DAYS = [
    ("AAPL", date(2005, 2, 28)),  # the 2:1 split: a real gap in unadjusted prices
    ("FB", date(2012, 5, 18)),  # the IPO day: the first day of its history
    ("GOOG", date(2004, 8, 19)),  # its first day
    ("SPX", date(2008, 10, 10)),  # a wild range
    ("AAPL", date(2013, 3, 1)),  # the default replay day
    ("IBM", date(2012, 11, 23)),  # the day after Thanksgiving: NYSE closed at 13:00
    ("SPX", date(2013, 12, 24)),  # Christmas Eve: 13:00
]


@pytest.mark.parametrize(("sym", "day"), SPECIAL_DAYS)
def test_tick_level_envelope_on_special_days(history: dict[str, list[DailyBar]], sym: str, day: date) -> None:
    bar = next(b for b in history[sym] if b.day == day)
    trades, _ = full_day(build(sym, bar))
    assert_envelope(sym, bar, trades)


def test_zero_volume_days_still_replay(history: dict[str, list[DailyBar]]) -> None:
    bar = next(b for b in history["COMP"] if b.volume == 0)
    trades, _ = full_day(build("COMP", bar))
    assert_envelope("COMP", bar, trades)
    assert all(t.size == 0 for t in trades)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_tick_level_envelope_on_random_days(history: dict[str, list[DailyBar]], data: st.DataObject) -> None:
    sym = data.draw(st.sampled_from(sorted(history)))
    bar = data.draw(st.sampled_from(history[sym]))
    seed = data.draw(st.integers(0, 2**31))
    trades, _ = full_day(build(sym, bar, seed))
    assert_envelope(sym, bar, trades)
    # every print of at least one share when there is volume to share out
    if bar.volume >= len(trades):
        assert min(t.size for t in trades) >= 1


def test_same_seed_same_session_other_seed_other_session(history: dict[str, list[DailyBar]]) -> None:
    bar = history["MSFT"][-1]
    a = full_day(build("MSFT", bar, seed=1))
    b = full_day(build("MSFT", bar, seed=1))
    c = full_day(build("MSFT", bar, seed=2))
    assert a == b
    assert a != c
    assert_envelope("MSFT", bar, c[0])


def test_quotes_bracket_the_trade_before_them(history: dict[str, list[DailyBar]]) -> None:
    bar = history["IBM"][-1]
    trades, quotes = full_day(build("IBM", bar))
    assert len(quotes) > len(trades) * 0.9
    events = sorted([*trades, *quotes], key=lambda e: e.ts)
    last_trade = None
    for e in events:
        if isinstance(e, Trade):
            last_trade = e
        elif isinstance(e, Quote):
            assert e.bid < e.ask
            assert last_trade is not None and e.bid <= last_trade.price <= e.ask
            assert (e.ask - e.bid) / last_trade.price < 0.002  # a few basis points
            assert e.bid_size >= 100 and e.ask_size >= 100
    ts = [e.ts for e in events]
    assert len(set(ts)) == len(ts)


def test_indices_have_no_quotes(history: dict[str, list[DailyBar]]) -> None:
    trades, quotes = full_day(build("SPX", history["SPX"][-1]))
    assert quotes == [] and len(trades) > 1000


def test_volume_is_heavier_at_the_open_and_close(history: dict[str, list[DailyBar]]) -> None:
    bar = history["AAPL"][-1]
    path = build("AAPL", bar)
    vol = path.segment_volume[:-1]
    first_half_hour, last_half_hour = sum(vol[:30]), sum(vol[-30:])
    middle = sum(vol[150:240]) / 3  # 90 minutes -> per 30
    assert first_half_hour > middle and last_half_hour > middle


def test_session_runs_in_exchange_time(history: dict[str, list[DailyBar]]) -> None:
    bar = history["AAPL"][-1]
    trades, _ = full_day(build("AAPL", bar))
    first, last = US.local(trades[0].ts), US.local(trades[-1].ts)
    assert (first.hour, first.minute, first.second) == (9, 30, 0)
    assert last.replace(tzinfo=None) == datetime(2013, 3, 1, 15, 59, 59, 999999)


def test_an_early_close_session_ends_inside_its_last_minute(history: dict[str, list[DailyBar]]) -> None:
    bar = next(b for b in history["SPX"] if b.day == date(2013, 11, 29))
    path = build("SPX", bar)
    assert path.minutes == 210  # 09:30 to 13:00
    trades, _ = full_day(path)
    assert_envelope("SPX", bar, trades)
    last = US.local(trades[-1].ts)
    assert last.replace(tzinfo=None) == datetime(2013, 11, 29, 12, 59, 59, 999999)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), counts=st.lists(st.integers(0, 9), min_size=1, max_size=6))
def test_batched_gaussians_are_the_generators_own(seed: int, counts: list[int]) -> None:
    """`_gaussians` gives exactly what as many `rng.gauss` calls give, and leaves the generator
    where they leave it (its spare value too), with other draws between the batches."""
    from trii_term.feeds.replay_path import _gaussians

    mine, theirs = random.Random(seed), random.Random(seed)
    for n in counts:
        sigma = 0.1 + n
        assert _gaussians(mine, n, sigma) == [theirs.gauss(0.0, sigma) for _ in range(n)]
        assert mine.random() == theirs.random()


def test_rounding_to_a_decimal_tick_is_the_decimal_rounding() -> None:
    """The fast rounding (one division) for ticks of 10**-d gives the float `round(…, d)` does."""
    rng = random.Random(3)
    for tick, decimals in ((0.01, 2), (0.1, 1), (1.0, 0), (0.0001, 4)):
        bar = DailyBar(date(2013, 3, 1), 10.0, 12.0, 9.0, 11.0, 1000.0)
        path = day_path("X", bar, 0, 390 * 60 * 10**9, 1, tick=tick)
        assert path._scale == 10**decimals
        for _ in range(20_000):
            x = rng.uniform(-1e6, 1e6) if rng.random() < 0.5 else rng.uniform(0, 50)
            assert path._round(x) == round(round(x / tick) * tick, decimals), (tick, x)
    assert day_path("X", bar, 0, 390 * 60 * 10**9, 1, tick=0.05)._scale == 0  # the slow way


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(1, 10**10),
    weights=st.lists(st.floats(0.001, 50.0), min_size=1, max_size=400),
    ties=st.booleans(),
)
def test_the_numpy_allocation_is_the_list_allocation(total: int, weights: list[float], ties: bool) -> None:
    """A day's minutes are allocated in numpy, a minute's trades in Python: the same integers."""
    from trii_term.feeds.replay_path import _allocate_array, _allocate_list

    if ties:  # equal remainders: the order among them must be the same
        weights = [weights[0]] * len(weights)
    s = sum(weights)
    parts = _allocate_list(total, weights, s)
    assert _allocate_array(total, weights, s) == parts
    assert sum(parts) == total


def test_numpy_paths_are_the_python_paths_on_a_shipped_day(history: dict[str, list[DailyBar]]) -> None:
    """The anchors built with numpy (a decimal tick) are what the per-point loop gives (used for
    other ticks), on a day with a wide range."""
    bar = next(b for b in history["SPX"] if b.day == date(2008, 10, 10))
    o, c = bounds(bar.day)
    fast = day_path("SPX", bar, o, c, 1, with_quotes=False)
    assert fast._scale == 100
    slow = day_path("SPX", bar, o, c, 1, with_quotes=False)
    slow._scale = 0  # the loop, rounding with round(…, 2)
    for seed in range(20):  # the same generator state into each
        assert fast._coarse_path(random.Random(seed), fast.minutes) == slow._coarse_path(
            random.Random(seed), slow.minutes
        )
