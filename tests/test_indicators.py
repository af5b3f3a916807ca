"""trii_term.analytics.indicators: hand-computed values, edge cases, and TA-Lib value for value.

The TA-Lib comparisons (real daily prices of five stocks, a long random walk, random series) are
skipped, with the reason shown, where TA-Lib is not installed; everything else runs anyway.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trii_term.analytics import indicators as ind

DATA = Path(__file__).parents[1] / "data" / "us_stocks_daily.csv.gz"
SYMBOLS = ("AAPL", "MSFT", "IBM", "GOOG", "FB")
TOL = 1e-9
NULL = None


@pytest.fixture(scope="module")
def talib():  # type: ignore[no-untyped-def]
    return pytest.importorskip("talib", reason="TA-Lib (the reference) is not installed: pip install ta-lib")


@cache
def stocks() -> dict[str, pl.DataFrame]:
    frame = pl.read_csv(DATA, try_parse_dates=True).sort("Ticker", "Date")
    return {t: frame.filter(pl.col("Ticker") == t) for t in SYMBOLS}


def walk(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    return {
        "high": close * (1.0 + np.abs(rng.normal(0.0, 0.002, n))),
        "low": close * (1.0 - np.abs(rng.normal(0.0, 0.002, n))),
        "close": close,
        "volume": rng.integers(0, 50_000, n).astype(np.float64),
    }


def values(s: pl.Series) -> list[float | None]:
    return s.to_list()


def assert_close(got: list[float | None], want: list[float | None], tol: float = 1e-12) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if w is None:
            assert g is None, f"index {i}: expected null, got {g}"
        else:
            assert g is not None and abs(g - w) <= tol, f"index {i}: expected {w}, got {g}"


def assert_matches(ours: pl.Series, ref: np.ndarray, relative: bool = False, what: str = "") -> None:
    """Same length, null exactly where TA-Lib has NaN, no NaN of our own, values within 1e-9."""
    assert ours.dtype == pl.Float64 and ours.len() == ref.size, what
    assert not ours.is_nan().any(), f"{what}: NaN in the output (undefined must be null)"
    got = ours.to_numpy()  # nulls → NaN
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"{what}: null positions differ")
    if np.isnan(ref).all():
        return
    diff = np.abs(got - ref)
    if relative:
        diff = diff / np.maximum(np.abs(ref), 1.0)
    worst = float(np.nanmax(diff))
    assert worst <= TOL, f"{what}: max {'relative ' if relative else ''}difference {worst:.3g} > {TOL:g}"


# ---------------------------------------------------------------- hand-computed values


def test_sma_ema_wma_of_one_to_ten_by_hand() -> None:
    x = pl.Series("c", [float(i) for i in range(1, 11)])
    assert_close(values(ind.sma(x, 3)), [NULL, NULL, 2, 3, 4, 5, 6, 7, 8, 9])
    # k = 2/(3+1) = 1/2, seeded at index 2 with (1+2+3)/3 = 2; a ramp then lags by (1−k)/k = 1 bar.
    assert_close(values(ind.ema(x, 3)), [NULL, NULL, 2, 3, 4, 5, 6, 7, 8, 9])
    # Weights 1, 2, 3: (1·1 + 2·2 + 3·3)/6 = 14/6 at index 2, then +1 each bar.
    assert_close(
        values(ind.wma(x, 3)), [NULL, NULL, 14 / 6, 20 / 6, 26 / 6, 32 / 6, 38 / 6, 44 / 6, 50 / 6, 56 / 6]
    )
    assert_close(values(ind.sma(x, 1)), [float(i) for i in range(1, 11)])


def test_rsi_of_a_short_series_by_hand() -> None:
    # Changes +1, +1, −1, +2. At bar 2: gain (1+1)/2 = 1, loss 0 → 100. Bar 3: gain (1·1 + 0)/2 = 0.5,
    # loss (0·1 + 1)/2 = 0.5 → 50. Bar 4: gain (0.5 + 2)/2 = 1.25, loss (0.5 + 0)/2 = 0.25 → 83.33.
    x = pl.Series([1.0, 2.0, 3.0, 2.0, 4.0])
    assert_close(values(ind.rsi(x, 2)), [NULL, NULL, 100.0, 50.0, 100 * 1.25 / 1.5])


def test_macd_of_a_ramp_by_hand() -> None:
    # slow 3: seed mean(1,2,3) = 2 at index 2; fast 2: seed mean(2,3) = 2.5 there. On a ramp each EMA
    # lags by (1−k)/k: 1 bar (k = 1/2) and 1/2 bar (k = 2/3), so the line is 0.5 and so is its signal.
    x = pl.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    line, signal, hist = ind.macd(x, 2, 3, 2)
    assert_close(values(line), [NULL, NULL, NULL, 0.5, 0.5, 0.5])
    assert_close(values(signal), [NULL, NULL, NULL, 0.5, 0.5, 0.5])
    assert_close(values(hist), [NULL, NULL, NULL, 0.0, 0.0, 0.0])
    assert (line.name, signal.name, hist.name) == ("macd_2_3_2", "macd_signal_2_3_2", "macd_hist_2_3_2")


def test_atr_by_hand() -> None:
    # TR1 = max(11, 9.5) − min(10, 9.5) = 1.5; TR2 = 12 − 10 = 2; TR3 = 11 − 9 = 2.
    # ATR(2): (1.5 + 2)/2 = 1.75 at index 2, then (1.75·1 + 2)/2 = 1.875.
    h, lo, c = pl.Series([10.0, 11, 12, 11]), pl.Series([9.0, 10, 10, 9]), pl.Series([9.5, 10.5, 11, 10])
    assert_close(values(ind.atr(h, lo, c, 2)), [NULL, NULL, 1.75, 1.875])
    assert_close(values(ind.atr(h, lo, c, 1)), [NULL, 1.5, 2.0, 2.0])  # ATR(1) is the true range


def test_bollinger_by_hand() -> None:
    upper, middle, lower = ind.bollinger(pl.Series([1.0, 2.0, 3.0, 5.0]), 3, 1.5)
    sd1, sd2 = math.sqrt(2 / 3), math.sqrt(((2 - 10 / 3) ** 2 + (3 - 10 / 3) ** 2 + (5 - 10 / 3) ** 2) / 3)
    assert_close(values(middle), [NULL, NULL, 2.0, 10 / 3])
    assert_close(values(upper), [NULL, NULL, 2 + 1.5 * sd1, 10 / 3 + 1.5 * sd2])
    assert_close(values(lower), [NULL, NULL, 2 - 1.5 * sd1, 10 / 3 - 1.5 * sd2])
    assert (upper.name, middle.name, lower.name) == ("bb_upper_3_1.5", "bb_middle_3_1.5", "bb_lower_3_1.5")


def test_stoch_by_hand() -> None:
    h = pl.Series([10.0, 12, 11, 13, 12])
    lo = pl.Series([8.0, 9, 9, 10, 11])
    c = pl.Series([9.0, 11, 10, 12, 11])
    # fast %K over 2 bars: i1 (11−8)/(12−8) = 75, i2 (10−9)/(12−9) = 33.3, i3 (12−9)/(13−9) = 75,
    # i4 (11−10)/(13−10) = 33.3; slow %K = SMA2: i2 54.17, i3 54.17, i4 54.17; %D = SMA2 from i3.
    slow_k, slow_d = ind.stoch(h, lo, c, 2, 2, 2)
    k2, k3, k4 = (75 + 100 / 3) / 2, (100 / 3 + 75) / 2, (75 + 100 / 3) / 2
    assert_close(values(slow_k), [NULL, NULL, NULL, k3, k4])  # TA-Lib: both start at k+k_smooth+d−3 = 3
    assert_close(values(slow_d), [NULL, NULL, NULL, (k2 + k3) / 2, (k3 + k4) / 2])
    assert (slow_k.name, slow_d.name) == ("stoch_k_2_2_2", "stoch_d_2_2_2")


def test_obv_by_hand() -> None:
    c = pl.Series([10.0, 11, 11, 9, 12])
    v = pl.Series([100, 200, 300, 400, 500])  # integers are fine
    assert_close(values(ind.obv(c, v)), [100.0, 300.0, 300.0, -100.0, 400.0])


def test_vwap_within_days_and_over_all_by_hand() -> None:
    h = pl.Series([11.0, 13, 21, 22])
    lo = pl.Series([9.0, 11, 19, 20])
    c = pl.Series([10.0, 12, 20, 21])  # typical prices 10, 12, 20, 21
    v = pl.Series([100.0, 300, 0, 200])
    day = pl.Series(["2024-01-02", "2024-01-02", "2024-01-03", "2024-01-03"])
    # Day 1: 10, then (10·100 + 12·300)/400 = 11.5. Day 2: no volume yet → null, then 21.
    assert_close(values(ind.vwap(h, lo, c, v, day)), [10.0, 11.5, NULL, 21.0])
    # Over everything: 10, 11.5, 11.5 (zero volume adds nothing), (4600 + 21·200)/600.
    assert_close(values(ind.vwap(h, lo, c, v)), [10.0, 11.5, 11.5, 8800 / 600])
    assert ind.vwap(h, lo, c, v).name == "vwap"


# ---------------------------------------------------------------- edge cases


def test_shorter_than_the_lookback_and_empty_give_nulls_of_the_same_length() -> None:
    short = pl.Series([1.0, 2.0, 3.0])
    for out in (ind.sma(short, 5), ind.ema(short, 5), ind.wma(short, 5), ind.rsi(short, 3), *ind.macd(short)):
        assert out.len() == 3 and out.null_count() == 3 and out.dtype == pl.Float64
    assert ind.atr(short, short, short, 3).null_count() == 3
    assert all(s.null_count() == 3 for s in ind.stoch(short, short, short))
    empty = pl.Series("c", [], dtype=pl.Float64)
    outs = [ind.sma(empty, 3), ind.ema(empty, 3), ind.wma(empty, 3), ind.rsi(empty), ind.obv(empty, empty)]
    outs += [*ind.macd(empty), *ind.bollinger(empty), *ind.stoch(empty, empty, empty)]
    outs += [ind.atr(empty, empty, empty), ind.vwap(empty, empty, empty, empty)]
    assert all(s.len() == 0 and s.dtype == pl.Float64 for s in outs)


def test_constant_prices() -> None:
    x = pl.Series([5.0] * 30)
    assert set(ind.rsi(x, 14).drop_nulls().to_list()) == {0.0}  # TA-Lib: 0 when nothing ever moved
    slow_k, slow_d = ind.stoch(x, x, x)
    assert set(slow_k.drop_nulls().to_list()) == {0.0} and set(slow_d.drop_nulls().to_list()) == {0.0}
    upper, middle, lower = ind.bollinger(x, 20, 2.0)
    assert set(upper.drop_nulls()) == set(middle.drop_nulls()) == set(lower.drop_nulls()) == {5.0}
    assert set(ind.atr(x, x, x, 5).drop_nulls().to_list()) == {0.0}


def test_stoch_reads_zero_on_a_range_within_talibs_scaled_epsilon() -> None:
    # TA-Lib treats HH − LL as zero when |HH − LL| ≤ 1e-14·(|HH| + |LL|): rounding residue, not a range.
    flat = pl.Series([0.3, 0.1 + 0.2] * 6)  # 0.1 + 0.2 is 0.30000000000000004
    assert set(ind.stoch(flat, flat, flat, 3, 1, 1)[0].drop_nulls().to_list()) == {0.0}
    tiny = pl.Series([1e-9, 1e-9 * (1 + 1e-12)] * 6)  # a real range at a small price level is kept
    assert set(ind.stoch(tiny, tiny, tiny, 3, 1, 1)[0].drop_nulls().round(6).to_list()) == {0.0, 100.0}


def test_integer_input_equals_float_input() -> None:
    ints = pl.Series([3, 5, 4, 8, 9, 7, 6, 10, 12, 11, 13, 15], dtype=pl.Int32)
    floats = ints.cast(pl.Float64)
    for f in (ind.sma, ind.ema, ind.wma, ind.rsi):
        assert f(ints, 3).to_list() == f(floats, 3).to_list()
    assert ind.macd(ints, 2, 4, 2)[0].to_list() == ind.macd(floats, 2, 4, 2)[0].to_list()


def test_bad_arguments_raise() -> None:
    x = pl.Series([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"sma: n must be >= 1"):
        ind.sma(x, 0)
    with pytest.raises(ValueError, match=r"rsi: n must be >= 2"):
        ind.rsi(x, 1)
    with pytest.raises(ValueError, match=r"bollinger: n must be >= 2"):
        ind.bollinger(x, 1)
    with pytest.raises(ValueError, match=r"macd: fast must be >= 2"):
        ind.macd(x, 1, 26, 9)
    with pytest.raises(ValueError, match=r"macd: signal must be >= 1"):
        ind.macd(x, 12, 26, 0)
    with pytest.raises(ValueError, match=r"macd: fast must be <= slow"):
        ind.macd(x, 26, 12, 9)
    with pytest.raises(ValueError, match=r"stoch: d must be >= 1"):
        ind.stoch(x, x, x, 14, 3, 0)
    with pytest.raises(ValueError, match=r"atr: n must be >= 1"):
        ind.atr(x, x, x, 0)
    with pytest.raises(ValueError, match=r"bollinger: k must be a finite number"):
        ind.bollinger(x, 2, float("nan"))
    with pytest.raises(TypeError, match=r"ema: n must be an int"):
        ind.ema(x, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"same length"):
        ind.atr(x, x, pl.Series([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"same length"):
        ind.obv(x, pl.Series([1.0]))
    with pytest.raises(ValueError, match=r"day must have the input length"):
        ind.vwap(x, x, x, x, pl.Series([1, 2]))
    with pytest.raises(TypeError, match=r"numeric"):
        ind.sma(pl.Series(["a", "b"]), 1)
    with pytest.raises(TypeError, match=r"polars Series"):
        ind.sma([1.0, 2.0], 1)  # type: ignore[arg-type]


def test_vwap_skips_a_missing_bar() -> None:
    h, lo, c = pl.Series([11.0, 13, 15, 17]), pl.Series([9.0, 11, 13, 15]), pl.Series([10.0, 12, 14, 16])
    v = pl.Series([100.0, None, 100, 200])
    # The bar without volume is null and adds nothing: (10·100 + 14·100)/200, then + 16·200.
    assert_close(values(ind.vwap(h, lo, c, v)), [10.0, NULL, 12.0, (2400 + 3200) / 400])
    c_nan = pl.Series([10.0, 12, float("nan"), 16])
    assert_close(
        values(ind.vwap(h, lo, c_nan, pl.Series([100.0, 100, 100, 100]))), [10.0, 11.0, NULL, 38 / 3]
    )


def test_zero_volume() -> None:
    h, lo, c = pl.Series([2.0, 3, 4]), pl.Series([1.0, 2, 3]), pl.Series([1.5, 2.5, 3.5])
    assert ind.vwap(h, lo, c, pl.Series([0.0, 0, 0])).null_count() == 3
    assert ind.vwap(h, lo, c, pl.Series([0.0, 10, 0])).to_list() == [None, 2.5, 2.5]
    assert ind.obv(c, pl.Series([0.0, 0, 0])).to_list() == [0.0, 0.0, 0.0]


# ---------------------------------------------------------------- missing values


def test_leading_nulls_and_nans_are_skipped_like_talib_skips_leading_nan() -> None:
    base = [10.0, 11, 12, 11, 13, 14, 13, 15, 16, 15]
    for lead in (None, float("nan")):
        x = pl.Series([lead, lead, *base], dtype=pl.Float64)
        for f in (ind.sma, ind.ema, ind.rsi, ind.wma):  # the first value comes `lookback` bars later
            got, want = values(f(x, 3)), values(f(pl.Series(base), 3))
            assert got[:2] == [None, None]
            assert_close(got[2:], want)


def test_interior_missing_values_recursive_skip_the_bar() -> None:
    # EMA, RSI, MACD, ATR, OBV: null at the bar, and the bar is dropped: the result equals the
    # indicator of the series without it, put back in place. NaN, inf and null all count as missing.
    base = [10.0, 11, 12, 11, 13, 14, 13, 15, 16, 15, 17, 18, 17, 19, 20, 18, 21, 22]
    clean = pl.Series(base)
    for bad in (None, float("nan"), float("inf")):
        x = pl.Series([*base[:8], bad, *base[8:]], dtype=pl.Float64)
        for f in (lambda s: ind.ema(s, 3), lambda s: ind.rsi(s, 3), lambda s: ind.macd(s, 2, 4, 2)[2]):
            got, want = values(f(x)), values(f(clean))
            assert got[8] is None
            assert_close(got[:8] + got[9:], want)
        v = pl.Series([100.0] * len(base))
        got = values(ind.obv(x, pl.Series([100.0] * (len(base) + 1))))
        assert got[8] is None
        assert_close(got[:8] + got[9:], values(ind.obv(clean, v)))
        h = pl.Series([b + 1 for b in base[:8]] + [bad] + [b + 1 for b in base[8:]], dtype=pl.Float64)
        lo = pl.Series([b - 1 for b in base[:8]] + [9.0] + [b - 1 for b in base[8:]])
        c = pl.Series([*base[:8], 10.0, *base[8:]])
        got = values(ind.atr(h, lo, c, 3))  # missing high: the whole bar goes
        assert got[8] is None
        want = values(ind.atr(pl.Series([b + 1 for b in base]), pl.Series([b - 1 for b in base]), clean, 3))
        assert_close(got[:8] + got[9:], want)


def test_interior_missing_values_windowed_blank_their_windows() -> None:
    # SMA, WMA, Bollinger, Stoch: null while the window (Stoch: its whole span) holds the bad bar.
    base = [10.0, 11, 12, 11, 13, 14, 13, 15, 16, 15, 17, 18, 17, 19, 20, 18, 21, 22]
    x = pl.Series([*base[:8], None, *base[9:]], dtype=pl.Float64)
    filled = pl.Series([*base[:8], 0.0, *base[9:]])
    for f, span in (
        (lambda s: ind.sma(s, 4), 3),
        (lambda s: ind.wma(s, 4), 3),
        (lambda s: ind.bollinger(s, 4)[0], 3),
    ):
        got, ref = values(f(x)), values(f(filled))
        assert got[8 : 8 + span + 1] == [None] * (span + 1)
        assert_close(got[:8] + got[8 + span + 1 :], ref[:8] + ref[8 + span + 1 :])
    h = pl.Series([b + 1 for b in base])
    lo = pl.Series([b - 1 for b in base[:8]] + [float("nan")] + [b - 1 for b in base[9:]])
    slow_k, slow_d = ind.stoch(h, lo, pl.Series(base), 3, 2, 2)  # span 3+2+2−3 = 4
    ref_k, _ = ind.stoch(h, pl.Series([b - 1 for b in base]), pl.Series(base), 3, 2, 2)
    assert values(slow_k)[8:13] == [None] * 5 and values(slow_d)[8:13] == [None] * 5
    assert_close(values(slow_k)[13:], values(ref_k)[13:])


def test_all_missing_gives_all_null() -> None:
    x = pl.Series([None] * 40, dtype=pl.Float64)
    assert ind.ema(x, 5).null_count() == 40 and ind.sma(x, 5).null_count() == 40
    assert all(s.null_count() == 40 for s in ind.macd(x))


# ---------------------------------------------------------------- against TA-Lib


def _cases(talib, h: pl.Series, lo: pl.Series, c: pl.Series, v: pl.Series):  # type: ignore[no-untyped-def]
    hn, ln, cn, vn = (s.cast(pl.Float64).to_numpy() for s in (h, lo, c, v))
    for n in (2, 5, 14, 20, 50, 200):
        yield f"sma {n}", ind.sma(c, n), talib.SMA(cn, n), False
        yield f"ema {n}", ind.ema(c, n), talib.EMA(cn, n), False
        yield f"wma {n}", ind.wma(c, n), talib.WMA(cn, n), False
        yield f"rsi {n}", ind.rsi(c, n), talib.RSI(cn, n), False
        yield f"atr {n}", ind.atr(h, lo, c, n), talib.ATR(hn, ln, cn, n), False
    for k in (1.5, 2.0, 2.5):
        for n in (5, 20):
            for s, r, band in zip(ind.bollinger(c, n, k), talib.BBANDS(cn, n, k, k, 0), "uml", strict=True):
                yield f"bollinger {n} {k} {band}", s, r, False
    for fast, slow, sig in ((12, 26, 9), (5, 35, 5), (3, 10, 16)):
        for s, r, part in zip(
            ind.macd(c, fast, slow, sig), talib.MACD(cn, fast, slow, sig), "msh", strict=True
        ):
            yield f"macd {fast},{slow},{sig} {part}", s, r, False
    for k, ks, d in ((14, 3, 3), (5, 3, 3), (21, 5, 4)):
        for s, r, part in zip(
            ind.stoch(h, lo, c, k, ks, d), talib.STOCH(hn, ln, cn, k, ks, 0, d, 0), "kd", strict=True
        ):
            yield f"stoch {k},{ks},{d} {part}", s, r, False
    yield "obv", ind.obv(c, v), talib.OBV(cn, vn), True


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_real_prices_match_talib(talib, symbol: str) -> None:  # type: ignore[no-untyped-def]
    df = stocks()[symbol]
    h, lo, c, v = df["High"], df["Low"], df["Close"], df["Volume"]
    for what, ours, ref, relative in _cases(talib, h, lo, c, v):
        assert_matches(ours, ref, relative, f"{symbol} {what}")


def test_long_random_walk_matches_talib_across_chunks(talib) -> None:  # type: ignore[no-untyped-def]
    bars = walk(100_003)  # several 32k chunks and a ragged end
    h, lo, c, v = (pl.Series(bars[k]) for k in ("high", "low", "close", "volume"))
    for what, ours, ref, relative in _cases(talib, h, lo, c, v):
        assert_matches(ours, ref, relative, f"walk {what}")
    cn = bars["close"]
    for n in (1000, 40_000):  # windows longer than a chunk, and blocks of blocks for the WMA
        assert_matches(ind.wma(c, n), talib.WMA(cn, n), what=f"wma {n}")
        assert_matches(ind.sma(c, n), talib.SMA(cn, n), what=f"sma {n}")
        assert_matches(ind.ema(c, n), talib.EMA(cn, n), what=f"ema {n}")


@pytest.mark.parametrize("position", [0, 1, 25, 32_767, 32_768, 70_001, 99_999])
def test_a_bad_value_anywhere_in_a_long_series_is_caught(talib, position: int) -> None:  # type: ignore[no-untyped-def]
    # The fast path checks for NaN/inf per chunk, or through the recursions' final states.
    bars = walk(100_000, seed=11)
    c = bars["close"].copy()
    c[position] = np.nan
    keep = np.flatnonzero(np.isfinite(c))
    series = pl.Series(c)
    for ours, ref in (
        (ind.ema(series, 20), talib.EMA(c[keep], 20)),
        (ind.rsi(series, 14), talib.RSI(c[keep], 14)),
        (ind.macd(series)[1], talib.MACD(c[keep])[1]),
        (
            ind.atr(pl.Series(bars["high"]), pl.Series(bars["low"]), series, 14),
            talib.ATR(bars["high"][keep], bars["low"][keep], c[keep], 14),
        ),
    ):
        expected = np.full(c.size, np.nan)
        expected[keep] = ref
        assert_matches(ours, expected, what=f"NaN at {position}")
    filled = np.where(np.isfinite(c), c, 0.0)
    expected = talib.SMA(filled, 20)
    expected[position : position + 20] = np.nan
    assert_matches(ind.sma(series, 20), expected, what=f"sma, NaN at {position}")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    size=st.integers(0, 2000),
    n=st.integers(2, 60),
    seed=st.integers(0, 2**32 - 1),
    nulls=st.lists(st.integers(0, 1999), max_size=3),
)
def test_random_walks_match_talib(talib, size: int, n: int, seed: int, nulls: list[int]) -> None:  # type: ignore[no-untyped-def]
    bars = walk(size, seed)
    h, lo, c = (bars[k] for k in ("high", "low", "close"))
    hs, ls, cs = pl.Series(h), pl.Series(lo), pl.Series(c)
    assert_matches(ind.sma(cs, n), talib.SMA(c, n), what="sma")
    assert_matches(ind.ema(cs, n), talib.EMA(c, n), what="ema")
    assert_matches(ind.wma(cs, n), talib.WMA(c, n), what="wma")
    assert_matches(ind.rsi(cs, n), talib.RSI(c, n), what="rsi")
    assert_matches(ind.atr(hs, ls, cs, n), talib.ATR(h, lo, c, n), what="atr")
    for s, r in zip(ind.bollinger(cs, n, 2.0), talib.BBANDS(c, n, 2.0, 2.0, 0), strict=True):
        assert_matches(s, r, what="bollinger")
    fast = max(2, n // 3)
    for s, r in zip(ind.macd(cs, fast, n, 4), talib.MACD(c, fast, n, 4), strict=True):
        assert_matches(s, r, what="macd")
    for s, r in zip(ind.stoch(hs, ls, cs, n, 3, 2), talib.STOCH(h, lo, c, n, 3, 0, 2, 0), strict=True):
        assert_matches(s, r, what="stoch")
    # With nulls: recursive indicators equal TA-Lib on the remaining bars, put back in place.
    holes = sorted({i for i in nulls if i < size})
    if holes:
        cn = c.copy()
        cn[holes] = np.nan
        keep = np.flatnonzero(np.isfinite(cn))
        expected = np.full(size, np.nan)
        expected[keep] = talib.EMA(c[keep], n)
        assert_matches(ind.ema(pl.Series(cn, nan_to_null=True), n), expected, what="ema with nulls")
        expected[keep] = talib.RSI(c[keep], n)
        assert_matches(ind.rsi(pl.Series(cn), n), expected, what="rsi with NaN")
