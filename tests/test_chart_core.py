"""The chart without a screen: studies and intervals as typed, bars from the store (splits,
weeks, the forming bar), and the renderer's cells."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from trii_term.charting.render import ChartInput, View, nice_step, render
from trii_term.charting.series import Bars, Bucketer, find_splits, load_bars, split_adjust, weekly
from trii_term.charting.spec import ChartSpec, Mode, SpecError, parse_interval, parse_studies
from trii_term.domain import US, MarketBatch, Trade
from trii_term.paths import shipped_data_dir
from trii_term.store.bars import bars as store_bars
from trii_term.store.db import Store
from trii_term.store.history import import_shipped_history
from trii_term.store.writer import StoreWriter


@pytest.fixture(scope="module")
def history() -> Store:
    store = Store.open(None)
    import_shipped_history(store.con, shipped_data_dir())
    yield store
    store.close()


# -- what traders type ------------------------------------------------------------------------


def test_studies_parse_as_typed() -> None:
    typed = "sma 50 ema 20 rsi macd 5 35 5 bb 20 2.5 stoch vwap"
    got = parse_studies(typed.split(" "))
    assert [s.text for s in got] == [
        "sma 50",
        "ema 20",
        "rsi 14",
        "macd 5 35 5",
        "bb 20 2.5",
        "stoch 14 3 3",
        "vwap",
    ]
    assert [s.kind.overlay for s in got] == [True, True, False, False, True, False, True]
    assert parse_studies(["Bollinger"])[0].label == "BB 20 2"


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("smaa 20", "unknown study 'smaa'"),
        ("sma 20 30", "sma takes 1 parameter"),
        ("sma 2.5", "whole number"),
        ("rsi 0", "whole number from 1"),
        ("macd 26 12", "fast (26) must be shorter than slow (12)"),
        ("bb 20 0", "above 0"),
        ("rsi 1", "rsi: n must be >= 2"),  # the indicator's own limit, found when typed
        ("macd 1 5", "fast must be >= 2"),
    ],
)
def test_bad_studies_say_what_is_allowed(typed: str, says: str) -> None:
    with pytest.raises(SpecError, match=re.escape(says)):
        parse_studies(typed.split())


def test_intervals_accept_what_traders_type() -> None:
    assert [parse_interval(t) for t in ("1m", "5", "15min", "60m", "1h", "D", "1d", "daily", "1W", "w")] == [
        "1m",
        "5m",
        "15m",
        "1h",
        "1h",
        "1D",
        "1D",
        "1D",
        "1W",
        "1W",
    ]
    with pytest.raises(SpecError, match="use one of 1m, 5m, 15m, 1h, 1D, 1W"):
        parse_interval("2h")


# -- bars from the store -----------------------------------------------------------------------


def test_splits_are_found_and_dividends_are_not(history: Store) -> None:
    def splits(sym: str) -> list[str]:
        return [str(s) for s in find_splits(store_bars(history.con, sym, "1d"))]

    assert splits("AAPL") == ["2000-06-21 2:1", "2005-02-28 2:1"]
    # MSFT's $3 special dividend (2004-11-15) moves Adj Close by 11 %: not a split
    assert splits("MSFT") == ["2003-02-18 2:1"]
    assert splits("IBM") == [] and splits("SPX") == []


def test_split_adjusted_prices_close_the_gap(history: Store) -> None:
    raw = store_bars(history.con, "AAPL", "1d", start=date(2005, 2, 23), end=date(2005, 3, 2))
    adj = split_adjust(raw, find_splits(store_bars(history.con, "AAPL", "1d")))
    before, after = (
        raw.filter(pl.col("ts") < datetime(2005, 2, 28)),
        raw.filter(pl.col("ts") >= datetime(2005, 2, 28)),
    )
    a_before = adj.filter(pl.col("ts") < datetime(2005, 2, 28))
    assert a_before["close"].to_list() == pytest.approx([c / 2 for c in before["close"]])
    assert a_before["volume"].to_list() == pytest.approx([v * 2 for v in before["volume"]])
    assert adj.filter(pl.col("ts") >= datetime(2005, 2, 28))["close"].to_list() == after["close"].to_list()
    # the as-traded series halves overnight; the adjusted one moves like a normal day
    gap_raw = after["open"][0] / before["close"][-1] - 1
    gap_adj = after["open"][0] / a_before["close"][-1] - 1
    assert gap_raw < -0.45 and abs(gap_adj) < 0.05


def test_weekly_bars_from_daily(history: Store) -> None:
    daily = store_bars(history.con, "IBM", "1d", start=date(2012, 1, 1), end=date(2013, 1, 1))
    weeks = weekly(daily)
    d = daily.with_columns(pl.col("ts").dt.truncate("1w").alias("wk"))
    expect = d.group_by("wk", maintain_order=True).agg(
        pl.col("ts").first(),
        pl.col("open").first(),
        pl.col("high").max(),
        pl.col("low").min(),
        pl.col("close").last(),
        pl.col("volume").sum(),
    )
    assert weeks.height == expect.height == d["wk"].n_unique()
    for col in ("ts", "open", "high", "low", "close", "volume"):
        assert weeks[col].to_list() == expect[col].to_list()
    # labelled by the week's first trading day: after Presidents' Day that is a Tuesday
    assert date(2012, 2, 21) in [t.date() for t in weeks["ts"]]
    assert all(t.weekday() < 5 for t in weeks["ts"])


def _trades(day: date, n: int = 3000) -> list[Trade]:
    rng = np.random.default_rng(3)
    open_ns = US.at(day, US.open)
    span = (US.at(day, US.close) - open_ns) // n
    price = 100.0
    out = []
    for k in range(n):
        price = round(price + rng.normal(0, 0.05), 2)
        out.append(
            Trade(open_ns + k * span + int(rng.integers(0, span)), "IBM", price, float(rng.integers(1, 500)))
        )
    return out


@pytest.mark.parametrize("interval", ["1m", "5m", "15m", "1h"])
def test_live_bars_match_the_stores_sql(interval: str) -> None:
    """Folding the stream into bars (the chart's forming bar) gives exactly the bars the store
    computes from the same ticks: same starts, same OHLCV."""
    store = Store.open(None)
    trades = _trades(date(2013, 3, 4)) + _trades(date(2013, 3, 5))
    writer = StoreWriter(store)
    writer.start()
    writer.on_batch(MarketBatch("replay", trades, 0))
    writer.stop()
    sql = store_bars(store.con, "IBM", interval)
    live = Bars.empty()
    bucket = Bucketer(US, interval)
    for t in trades:
        live.apply_trade(bucket.label(t.ts, live), t.price, t.size)
    assert [np.datetime64(t, "us") for t in sql["ts"]] == list(live.ts)
    for col in ("open", "high", "low", "close", "volume"):
        assert sql[col].to_list() == pytest.approx(getattr(live, col).tolist())
    store.close()


def test_replay_charts_show_nothing_after_the_replay_clock(history: Store) -> None:
    """Replaying 2013-02-28, the daily chart must not show that day's final bar from history:
    its last bar is built from the day's ticks so far."""
    day = date(2013, 2, 28)
    store = Store.open(None)
    import_shipped_history(store.con, shipped_data_dir())
    morning = [t._replace(symbol="IBM") for t in _trades(day, 400)][:100]
    writer = StoreWriter(store)
    writer.start()
    writer.on_batch(MarketBatch("replay", morning, 0))
    writer.stop()
    until = datetime.fromtimestamp(morning[-1].ts / 1e9, UTC) + timedelta(seconds=1)
    got = load_bars(store.con, "IBM", "1D", US, sources=["replay"], until=until, until_day=day)
    last = len(got.bars) - 1
    assert got.bars.ts[last] == np.datetime64(day, "us")
    prices = [t.price for t in morning]
    assert (got.bars.open[last], got.bars.high[last], got.bars.low[last], got.bars.close[last]) == (
        prices[0],
        max(prices),
        min(prices),
        prices[-1],
    )
    assert got.bars.ts[last - 1] == np.datetime64(date(2013, 2, 27), "us")
    assert got.last_tick_ns == morning[-1].ts // 1000 * 1000  # the store keeps microseconds
    store.close()


# -- drawing ------------------------------------------------------------------------------------


def _bars(rows: list[tuple[str, float, float, float, float, float]]) -> Bars:
    frame = pl.DataFrame(
        rows, schema=["ts", "open", "high", "low", "close", "volume"], orient="row"
    ).with_columns(pl.col("ts").str.to_datetime())
    return Bars.from_frame(frame)


def _chart(
    bars: Bars, interval: str = "1D", mode: Mode = Mode.CANDLES, studies: str = "", **kw
) -> ChartInput:  # type: ignore[no-untyped-def]
    spec = ChartSpec("TEST", interval, mode, False, parse_studies(studies.split()) if studies else [])
    values = [(s, s.compute(bars.frame())) for s in spec.studies]
    return ChartInput(spec, bars, values, 2, **kw)


def _column(frame, x: int) -> str:  # type: ignore[no-untyped-def]
    lay = frame.layout
    return "".join(chr(c) for c in frame.chars[lay.price_top : lay.price_top + lay.price_rows, x])


def test_up_and_down_candles_differ_in_shape_not_only_colour() -> None:
    bars = _bars([("2013-03-04", 10, 14, 8, 13, 100), ("2013-03-05", 13, 14, 8, 9, 200)])
    frame = render(_chart(bars), View(step=2), 40, 20)
    up = _column(frame, int(frame.layout.x_of(0)))
    down = _column(frame, int(frame.layout.x_of(1)))
    assert set(up) & set("┃╻╹╽╿") and not set(up) & set("█▀▄")  # thin body
    assert set(down) & set("█▀▄") and not set(down) & set("┃╻╹")  # solid body
    for col in (up, down):  # wicks above and below the body
        body = [k for k, ch in enumerate(col) if ch in "┃█▀▄╻╹╽╿"]
        wick = [k for k, ch in enumerate(col) if ch in "│╵╷"]
        assert wick and min(wick) < min(body) and max(wick) > max(body)


def test_price_axis_has_round_ticks_and_the_last_price() -> None:
    rng = np.random.default_rng(1)
    closes = 100 + np.cumsum(rng.normal(0, 1, 120))
    rows = [
        (str(date(2012, 1, 2) + timedelta(days=k)), c - 0.3, c + 1.1, c - 1.2, c, 1000.0 + k)
        for k, c in enumerate(closes)
    ]
    frame = render(_chart(_bars(rows)), View(step=1), 100, 30)
    text = frame.text()
    ticks = [float(t.replace(",", "")) for t in re.findall(r"┤([\d,]+(?:\.\d+)?)\n", text + "\n")]
    ticks = [float(m.replace(",", "")) for m in re.findall(r"┤([\d,.]+)\s*$", text, re.M)]
    price_ticks = [t for t in ticks if t < 1000]
    assert len(price_ticks) >= 3
    step = nice_step(frame.layout.top - frame.layout.bottom, max(2, frame.layout.price_rows // 3))
    assert all(abs(t / step - round(t / step)) < 1e-9 for t in price_ticks)
    assert f"▸{closes[-1]:,.2f}" in text
    assert "┈" in text  # the last-price line


def test_time_axis_collapses_nights_and_marks_sessions() -> None:
    rows = []
    for day in ("2013-03-01", "2013-03-04"):  # a Friday, then Monday: the weekend takes no space
        t = datetime.fromisoformat(day + "T09:30")
        for k in range(78):
            rows.append((str(t + timedelta(minutes=5 * k)), 10, 11, 9, 10.5, 100))
    frame = render(_chart(_bars(rows), "5m"), View(step=2), 400, 20)
    axis = frame.row_text(frame.layout.time_row)
    assert "Mar 04" in axis
    x_monday = int(frame.layout.x_of(78))
    assert axis[x_monday:].startswith("Mar 04")
    assert frame.layout.x_of(78) - frame.layout.x_of(77) == 2  # no gap for the weekend
    assert chr(frame.chars[frame.layout.price_top, x_monday - 1]) == "┊"  # the session break
    assert re.search(r"\b1[0-5]:00\b", axis)


@pytest.mark.parametrize(
    ("mode", "glyphs"), [(Mode.OHLC, "├┤┼"), (Mode.LINE, "⠁⠂⠄⡀⠈⠐⠠⢀"), (Mode.AREA, "▁▂▃▄▅▆▇█")]
)
def test_modes_draw_their_own_marks(mode: Mode, glyphs: str) -> None:
    rng = np.random.default_rng(2)
    closes = 50 + np.cumsum(rng.normal(0, 1, 60))
    rows = [
        (str(date(2012, 1, 2) + timedelta(days=k)), c - 0.5, c + 1, c - 1, c, 1.0)
        for k, c in enumerate(closes)
    ]
    frame = render(_chart(_bars(rows), mode=mode), View(step=1), 80, 24)
    price = "".join(_column(frame, x) for x in range(frame.layout.plot_width))
    if mode is Mode.LINE:
        assert any(0x2800 < ord(ch) <= 0x28FF for ch in price)
    else:
        assert set(price) & set(glyphs)
    assert not set(price) & set("█▀▄┃") or mode is Mode.AREA


def test_crosshair_reads_out_the_bar_and_every_study() -> None:
    rng = np.random.default_rng(4)
    closes = 100 + np.cumsum(rng.normal(0, 1, 200))
    rows = [
        (str(date(2012, 1, 2) + timedelta(days=k)), c - 0.5, c + 1, c - 1, c, 1e6 + k)
        for k, c in enumerate(closes)
    ]
    bars = _bars(rows)
    data = _chart(bars, studies="sma 20 ema 10 rsi macd")
    cursor = 150
    frame = render(data, View(step=1, cursor=cursor), 120, 40)
    text = frame.text()
    day = (date(2012, 1, 2) + timedelta(days=cursor)).isoformat()
    assert day in frame.row_text(0) and f"C {closes[cursor]:,.2f}" in frame.row_text(0)
    values = {s.text: v for s, v in data.studies}
    assert f"SMA 20 {values['sma 20'][0][cursor]:,.2f}" in text
    assert f"EMA 10 {values['ema 10'][0][cursor]:,.2f}" in text
    assert f"RSI 14 {values['rsi 14'][0][cursor]:.2f}" in text
    assert f"macd {values['macd 12 26 9'][1][cursor]:,.2f}" in text
    assert day in frame.row_text(frame.layout.time_row)  # the date on the time axis too


def test_a_tick_repaints_only_what_changed_and_equals_a_full_render() -> None:
    rng = np.random.default_rng(5)
    closes = 100 + np.cumsum(rng.normal(0, 1, 300))
    rows = [
        (str(date(2012, 1, 2) + timedelta(days=k)), c - 0.5, c + 1, c - 1, c, 1e6 + 5e5 * (k % 7 == 0))
        for k, c in enumerate(closes)
    ]
    bars = _bars(rows)
    data = _chart(bars, studies="sma 20 ema 50 rsi")
    frame = render(data, View(step=1), 330, 50)
    last = float(bars.close[-1])
    bars.apply_trade(bars.ts[-1], last + 0.4, 500.0)  # inside the range: no rescale
    data.studies = [(s, s.compute(bars.frame())) for s, _ in data.studies]
    frame.data = data
    changed = frame.update_tail()
    assert changed is not None and 0 < len(changed) < 50 // 2
    fresh = render(data, View(step=1), 330, 50)
    assert np.array_equal(frame.chars, fresh.chars)
    assert np.array_equal(frame.styles, fresh.styles)
    # a tick far outside the scale needs a full render
    bars.apply_trade(bars.ts[-1], last * 3, 1.0)
    assert frame.update_tail() is None


def test_empty_and_tiny_charts_do_not_fail() -> None:
    empty = render(_chart(Bars.empty()), View(), 80, 20)
    assert "no bars stored" in empty.row_text(0)
    one = render(_chart(_bars([("2013-03-04", 10, 10, 10, 10, 0)])), View(), 20, 6)
    assert one.chars.shape == (6, 20)
    assert not math.isnan(one.layout.top)


def test_vwap_restarts_each_session_intraday_and_each_month_on_daily_bars() -> None:
    from trii_term.analytics.indicators import vwap

    rows = [
        (f"2013-03-0{d}T{h:02d}:{m:02d}", 10.0 + d, 11.0 + d, 9.0 + d, 10.5 + d, 100.0 * (h - 8))
        for d in (4, 5)
        for h in (10, 11, 12)
        for m in (0, 30)
    ]
    bars = _bars(rows)
    f = bars.frame("day")
    v = vwap(f.high, f.low, f.close, f.volume, f.day).to_list()
    first_of_day_2 = 6
    assert v[first_of_day_2] == pytest.approx((16.0 + 14.0 + 15.5) / 3)  # restarted at the open
    f = bars.frame("month")
    w = vwap(f.high, f.low, f.close, f.volume, f.day).to_list()
    assert w[first_of_day_2] != pytest.approx(v[first_of_day_2])  # same month: carried on

    daily = _bars(
        [
            ("2013-02-27", 10, 12, 8, 11, 100),
            ("2013-02-28", 20, 22, 18, 21, 100),
            ("2013-03-01", 30, 33, 27, 31, 50),
        ]
    )
    f = daily.frame("month")
    m = vwap(f.high, f.low, f.close, f.volume, f.day).to_list()
    assert m[1] == pytest.approx((31 / 3 * 100 + 61 / 3 * 100) / 200)
    assert m[2] == pytest.approx(91 / 3)  # a new month starts over


def test_studies_without_room_for_a_pane_still_read_out() -> None:
    rng = np.random.default_rng(6)
    closes = 100 + np.cumsum(rng.normal(0, 1, 100))
    rows = [
        (str(date(2012, 1, 2) + timedelta(days=k)), c - 0.5, c + 1, c - 1, c, 1e6)
        for k, c in enumerate(closes)
    ]
    data = _chart(_bars(rows), studies="rsi macd atr")
    small = render(data, View(step=1, cursor=80), 80, 14)
    assert len(small.layout.panes) < 3
    rsi = dict((s.text, v) for s, v in data.studies)["rsi 14"][0][80]
    assert f"RSI 14 {rsi:.2f}" in small.text()
    assert "ATR 14 " in small.text() and "MACD 12 26 9 " in small.text()


def test_replaying_a_split_day_adjusts_for_it(history: Store) -> None:
    """Replaying AAPL on 2005-02-28 (a 2:1 split at that open): the adjusted chart knows the
    split although the day's own history row is hidden from the chart."""
    got = load_bars(
        history.con, "AAPL", "1D", US, adjusted=True, sources=["replay"], until_day=date(2005, 2, 28)
    )
    assert "2005-02-28 2:1" in [str(s) for s in got.splits] and "2005-02-28 2:1" in got.note
    raw = load_bars(history.con, "AAPL", "1D", US, sources=["replay"], until_day=date(2005, 2, 28))
    assert got.bars.ts[-1] == np.datetime64(date(2005, 2, 25), "us")
    assert got.bars.close[-1] == pytest.approx(raw.bars.close[-1] / 2)


def test_intraday_charts_do_not_join_sessions_recorded_years_apart() -> None:
    store = Store.open(None)
    old = [t._replace(symbol="IBM") for t in _trades(date(2005, 2, 28), 200)]
    new = [t._replace(symbol="IBM") for t in _trades(date(2013, 3, 1), 200)]
    writer = StoreWriter(store)
    writer.start()
    writer.on_batch(MarketBatch("replay", old + new, 0))
    writer.stop()
    got = load_bars(store.con, "IBM", "5m", US)
    days = {str(d)[:10] for d in got.bars.ts}
    assert days == {"2013-03-01"}
    store.close()


def test_macd_zero_line_runs_through_the_histogram() -> None:
    rng = np.random.default_rng(8)
    closes = 100 + np.cumsum(rng.normal(0, 1, 150))
    rows = [
        (str(date(2012, 1, 2) + timedelta(days=k)), c - 0.5, c + 1, c - 1, c, 1e6)
        for k, c in enumerate(closes)
    ]
    frame = render(_chart(_bars(rows), studies="macd"), View(step=2), 140, 40)
    pane = frame.layout.panes[0]
    zero = pane.top + next(
        r for r in range(pane.rows) if "┈" in frame.row_text(pane.top + r)[: frame.layout.plot_width]
    )
    line = frame.row_text(zero)[: frame.layout.plot_width]
    assert " " not in line.strip()  # every column shows the zero line or a bar


def test_header_never_cuts_a_value_and_the_newest_month_is_labelled() -> None:
    rng = np.random.default_rng(9)
    closes = 400 + np.cumsum(rng.normal(0, 3, 90))
    start = date(2012, 12, 3)
    days = [start + timedelta(days=k) for k in range(200) if (start + timedelta(days=k)).weekday() < 5][:90]
    days[-1] = date(2013, 4, 1)  # the last bar opens a month
    rows = [(str(d), c - 0.5, c + 1, c - 1, c, 123456789.0) for d, c in zip(days, closes, strict=True)]
    frame = render(_chart(_bars(rows), mode=Mode.OHLC), View(step=2), 80, 20)
    head = frame.row_text(0).rstrip()
    assert re.search(r"V \d+\.\d\dM( …)?$", head) or " V " not in head  # (… : parts left out)
    assert "Apr" in frame.row_text(frame.layout.time_row)


def test_a_chart_loaded_mid_stream_has_no_hole_and_no_double_count(paths) -> None:  # type: ignore[no-untyped-def]
    """Trades stream while the chart loads: those the store had written come from the load, the
    rest from the stream, each exactly once."""
    from trii_term.charting.model import ChartModel
    from trii_term.config import parse_config
    from trii_term.session import Session

    session = Session(parse_config("", paths.config_file), paths)
    store = session.open_store()
    session.instruments = {}
    trades = _trades(date(2013, 3, 4), 600)
    written, in_flight, later = trades[:300], trades[300:450], trades[450:]
    writer = StoreWriter(store)
    writer.start()
    writer.on_batch(MarketBatch("replay", written, 0))
    writer.stop()  # committed: the load sees these
    model = ChartModel(session)
    model.on_batch(MarketBatch("replay", written[-50:] + in_flight, 0))  # streamed, not all written
    model.show(symbol="IBM", interval="1m")
    key, job = model.load_job()
    model.on_batch(MarketBatch("replay", later[:10], 0))  # while loading
    assert model.install(key, job())
    model.on_batch(MarketBatch("replay", later[10:], 0))  # after
    assert model.bars.volume.sum() == pytest.approx(sum(t.size for t in trades))
    assert model.bars.close[-1] == trades[-1].price
    store.close()


def _chart_on(paths, trades: list[Trade], *, stored: int, at_ns: int | None = None):  # type: ignore[no-untyped-def]
    """A chart of IBM on a fresh store: the first `stored` of `trades` committed, all of them
    streamed; its replay clock at `at_ns`."""
    from trii_term.charting.model import ChartModel
    from trii_term.config import parse_config
    from trii_term.session import Session

    session = Session(parse_config("", paths.config_file), paths)
    store = session.open_store()
    session.instruments = {}
    if at_ns is not None:
        session.clock.pause()
        session.clock.set_time(at_ns)
    writer = StoreWriter(store)
    writer.start()
    writer.on_batch(MarketBatch("replay", trades[:stored], 0))
    writer.stop()
    model = ChartModel(session)
    model.on_batch(MarketBatch("replay", trades, 0))
    model.show(symbol="IBM", interval="1m")
    return model, store


def test_the_opening_trade_at_the_replay_clock_is_on_the_chart(paths) -> None:  # type: ignore[no-untyped-def]
    """The replay clock stands at the open and the opening trade is stamped exactly then: the
    chart shows it (it once lost it on both sides of the seam: an open of 437.99, not 438.00)."""
    day = date(2013, 3, 1)
    open_ns = US.at(day, US.open)
    model, store = _chart_on(paths, [Trade(open_ns, "IBM", 438.00, 100.0)], stored=1, at_ns=open_ns)
    key, job = model.load_job()
    assert model.install(key, job())
    model.on_batch(MarketBatch("replay", [Trade(open_ns + 1000, "IBM", 437.99, 5.0)], 0))
    assert (model.bars.open[-1], model.bars.close[-1], model.bars.volume[-1]) == (438.00, 437.99, 105.0)
    store.close()


@pytest.mark.parametrize("stored", [0, 1, 2, 3])
def test_trades_at_the_same_instant_count_once_across_the_seam(paths, stored: int) -> None:  # type: ignore[no-untyped-def]
    """Trades stamped the same microsecond, some written when the chart loads and some not:
    every one is counted, none twice."""
    t0 = US.at(date(2013, 3, 4), US.open) + 60 * 10**9
    trades = [
        Trade(t0, "IBM", 100.0, 10.0),
        Trade(t0 + 5, "IBM", 100.5, 20.0),
        Trade(t0 + 900, "IBM", 99.5, 40.0),
    ]
    model, store = _chart_on(paths, trades, stored=stored)
    key, job = model.load_job()
    assert model.install(key, job())
    assert model.bars.volume.sum() == 70.0
    assert (model.bars.high[-1], model.bars.low[-1]) == (100.5, 99.5)
    store.close()


def test_trades_streamed_before_the_chart_listened_are_on_it(paths) -> None:  # type: ignore[no-untyped-def]
    """The chart starts after the first quotes: what streamed before it listened is still in
    the writer's queue when it loads. The load waits for the store to hold it."""
    from trii_term.charting.model import ChartModel
    from trii_term.config import parse_config
    from trii_term.session import Session

    session = Session(parse_config("", paths.config_file), paths)
    store = session.open_store()
    session.instruments = {}
    trades = _trades(date(2013, 3, 4), 300)
    session.writer = writer = StoreWriter(store, flush_interval=3600)  # writes when asked
    writer.start()
    writer.on_batch(MarketBatch("replay", trades[:200], 0))  # before the chart listens
    model = ChartModel(session)
    model.on_batch(MarketBatch("replay", trades[200:], 0))
    writer.on_batch(MarketBatch("replay", trades[200:], 0))
    model.show(symbol="IBM", interval="1m")
    key, job = model.load_job()
    assert model.install(key, job())
    writer.stop()
    assert model.bars.volume.sum() == pytest.approx(sum(t.size for t in trades))
    assert model.bars.open[0] == trades[0].price
    store.close()
