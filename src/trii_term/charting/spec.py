"""What a chart shows: interval, mode, price adjustment and its studies (indicators).

Studies are typed the way traders say them — `sma 50 ema 20 rsi macd 12 26 9 bb 20 2` — and
are stored per symbol as that same text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import polars as pl

from trii_term.charting import SpecError

# -- intervals -------------------------------------------------------------------------------

INTERVALS: tuple[str, ...] = ("1m", "5m", "15m", "1h", "1D", "1W")
INTRADAY = frozenset({"1m", "5m", "15m", "1h"})
_INTERVAL_ALIASES = {
    "1": "1m",
    "1min": "1m",
    "5": "5m",
    "5min": "5m",
    "15": "15m",
    "15min": "15m",
    "60": "1h",
    "60m": "1h",
    "1h": "1h",
    "h": "1h",
    "d": "1D",
    "1d": "1D",
    "day": "1D",
    "daily": "1D",
    "w": "1W",
    "1w": "1W",
    "week": "1W",
    "weekly": "1W",
}


def parse_interval(text: str) -> str:
    low = text.strip().lower()
    if low in _INTERVAL_ALIASES:
        return _INTERVAL_ALIASES[low]
    for iv in INTERVALS:
        if low == iv.lower():
            return iv
    raise SpecError(f"unknown interval {text!r}; use one of {', '.join(INTERVALS)}")


def is_interval(text: str) -> bool:
    try:
        parse_interval(text)
    except SpecError:
        return False
    return True


class Mode(Enum):
    CANDLES = "candles"
    OHLC = "ohlc"
    LINE = "line"
    AREA = "area"

    def next(self) -> Mode:
        members = list(Mode)
        return members[(members.index(self) + 1) % len(members)]


def parse_mode(text: str) -> Mode:
    low = text.strip().lower()
    aliases = {"candle": "candles", "bars": "ohlc", "bar": "ohlc", "mountain": "area"}
    try:
        return Mode(aliases.get(low, low))
    except ValueError:
        raise SpecError(
            f"unknown chart mode {text!r}; use one of {', '.join(m.value for m in Mode)}"
        ) from None


# -- studies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """One drawn series of a study: a line, or a histogram around zero."""

    name: str
    kind: str = "line"  # line | hist


@dataclass(frozen=True)
class StudyKind:
    name: str
    title: str
    overlay: bool  # drawn on price, or in its own pane below
    params: tuple[tuple[str, float], ...]  # (name, default)
    outputs: tuple[Output, ...]
    compute: Callable[..., tuple[pl.Series, ...]]
    integer: tuple[bool, ...] = ()  # per param: whole numbers only
    bounds: tuple[float, float] | None = None  # fixed pane range (RSI 0..100)
    guides: tuple[float, ...] = ()  # horizontal guide lines in the pane
    zero_line: bool = False
    decimals: int | None = None  # fixed decimals for values (None: the price's)

    @property
    def usage(self) -> str:
        return " ".join([self.name, *(f"[{p}={d:g}]" for p, d in self.params)])


@dataclass(frozen=True)
class Study:
    kind: StudyKind
    params: tuple[float, ...]

    @property
    def text(self) -> str:
        return " ".join([self.kind.name, *(f"{p:g}" for p in self.params)])

    @property
    def label(self) -> str:
        return " ".join([self.kind.title, *(f"{p:g}" for p in self.params)])

    def compute(self, frame: BarFrame) -> list[np.ndarray]:
        """The study's outputs over `frame`, as float arrays with NaN where undefined."""
        series = self.kind.compute(frame, *self.params)
        return [_as_array(s) for s in series]


@dataclass
class BarFrame:
    """Columns a study may read, as polars Series (shared, not copied)."""

    open: pl.Series
    high: pl.Series
    low: pl.Series
    close: pl.Series
    volume: pl.Series
    day: pl.Series | None  # the bar's session date (intraday VWAP resets on it)


_probe = pl.Series([10.0, 11.0, 10.5, 12.0])
_PROBE = BarFrame(_probe, _probe + 1, _probe - 1, _probe, _probe * 100, None)


def _as_array(s: pl.Series) -> np.ndarray:
    """Float64 values with NaN for null (polars' to_numpy does that for floats)."""
    if s.dtype != pl.Float64:
        s = s.cast(pl.Float64)
    return s.to_numpy()


def _registry() -> dict[str, StudyKind]:
    from trii_term.analytics import indicators as ta

    def n(x: float) -> int:
        return int(x)

    kinds = [
        StudyKind("sma", "SMA", True, (("n", 20),), (Output("sma"),), lambda f, p: (ta.sma(f.close, n(p)),)),
        StudyKind("ema", "EMA", True, (("n", 20),), (Output("ema"),), lambda f, p: (ta.ema(f.close, n(p)),)),
        StudyKind("wma", "WMA", True, (("n", 20),), (Output("wma"),), lambda f, p: (ta.wma(f.close, n(p)),)),
        StudyKind(
            "bb",
            "BB",
            True,
            (("n", 20), ("k", 2.0)),
            (Output("upper"), Output("middle"), Output("lower")),
            lambda f, p, k: ta.bollinger(f.close, n(p), float(k)),
            integer=(True, False),
        ),
        StudyKind(
            "vwap",
            "VWAP",
            True,
            (),
            (Output("vwap"),),
            lambda f: (ta.vwap(f.high, f.low, f.close, f.volume, f.day),),
        ),
        StudyKind(
            "rsi",
            "RSI",
            False,
            (("n", 14),),
            (Output("rsi"),),
            lambda f, p: (ta.rsi(f.close, n(p)),),
            bounds=(0.0, 100.0),
            guides=(30.0, 70.0),
            decimals=2,
        ),
        StudyKind(
            "macd",
            "MACD",
            False,
            (("fast", 12), ("slow", 26), ("signal", 9)),
            (Output("hist", "hist"), Output("macd"), Output("signal")),
            lambda f, a, b, c: _macd_hist_first(ta.macd(f.close, n(a), n(b), n(c))),
            zero_line=True,
        ),
        StudyKind(
            "stoch",
            "STOCH",
            False,
            (("k", 14), ("smooth", 3), ("d", 3)),
            (Output("%K"), Output("%D")),
            lambda f, a, b, c: ta.stoch(f.high, f.low, f.close, n(a), n(b), n(c)),
            bounds=(0.0, 100.0),
            guides=(20.0, 80.0),
            decimals=2,
        ),
        StudyKind(
            "atr",
            "ATR",
            False,
            (("n", 14),),
            (Output("atr"),),
            lambda f, p: (ta.atr(f.high, f.low, f.close, n(p)),),
        ),
        StudyKind(
            "obv", "OBV", False, (), (Output("obv"),), lambda f: (ta.obv(f.close, f.volume),), decimals=0
        ),
    ]
    out: dict[str, StudyKind] = {}
    for k in kinds:
        if not k.integer:
            object.__setattr__(k, "integer", tuple(True for _ in k.params))
        out[k.name] = k
    return out


def _macd_hist_first(parts: tuple[pl.Series, pl.Series, pl.Series]) -> tuple[pl.Series, ...]:
    line, signal, hist = parts
    return hist, line, signal


STUDY_ALIASES = {"bollinger": "bb", "bbands": "bb", "boll": "bb", "stochastic": "stoch", "sto": "stoch"}
_STUDIES: dict[str, StudyKind] | None = None


def studies() -> dict[str, StudyKind]:
    global _STUDIES
    if _STUDIES is None:
        _STUDIES = _registry()
    return _STUDIES


def study_kind(name: str) -> StudyKind:
    low = name.strip().lower()
    kind = studies().get(STUDY_ALIASES.get(low, low))
    if kind is None:
        raise SpecError(f"unknown study {name!r}; use one of {', '.join(studies())}")
    return kind


def is_study(name: str) -> bool:
    low = name.strip().lower()
    return STUDY_ALIASES.get(low, low) in studies()


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_studies(tokens: Sequence[str]) -> list[Study]:
    """`sma 50 ema 20 rsi macd 12 26 9` → studies; numbers after a name are its parameters, in
    order (missing ones take the defaults). Errors say which token and what is allowed."""
    out: list[Study] = []
    i = 0
    tokens = [t for tok in tokens for t in tok.replace(",", " ").split()]
    while i < len(tokens):
        kind = study_kind(tokens[i])
        i += 1
        given: list[float] = []
        while i < len(tokens) and _number(tokens[i]) is not None:
            given.append(_number(tokens[i]))  # type: ignore[arg-type]
            i += 1
        out.append(make_study(kind, given))
    return out


def make_study(kind: StudyKind, given: Sequence[float]) -> Study:
    if len(given) > len(kind.params):
        names = " ".join(p for p, _ in kind.params) or "no parameters"
        raise SpecError(f"{kind.name} takes {len(kind.params)} parameter(s) ({names}); got {len(given)}")
    params = [*given, *(d for _, d in kind.params[len(given) :])]
    for (pname, _), whole, value in zip(kind.params, kind.integer, params, strict=True):
        if whole and (value != int(value) or not 1 <= value <= 1000):
            raise SpecError(f"{kind.name} {pname} must be a whole number from 1 to 1000 (got {value:g})")
        if not whole and not 0 < value <= 10:
            raise SpecError(f"{kind.name} {pname} must be above 0 and at most 10 (got {value:g})")
    if kind.name == "macd" and params[0] >= params[1]:
        raise SpecError(f"macd fast ({params[0]:g}) must be shorter than slow ({params[1]:g})")
    study = Study(kind, tuple(float(p) for p in params))
    try:  # the indicator's own limits (RSI and Bollinger need n ≥ 2, …), checked on a tiny series
        study.compute(_PROBE)
    except ValueError as exc:
        raise SpecError(str(exc).rstrip(".")) from None
    return study


def studies_text(items: Sequence[Study]) -> str:
    return " ".join(s.text for s in items)


@dataclass
class ChartSpec:
    """What one chart shows. Studies are per symbol (remembered); the rest follows the trader."""

    symbol: str
    interval: str = "1D"
    mode: Mode = Mode.CANDLES
    adjusted: bool = False  # daily/weekly only: split-adjusted prices
    studies: list[Study] = field(default_factory=list)

    @property
    def intraday(self) -> bool:
        return self.interval in INTRADAY

    @property
    def overlays(self) -> list[Study]:
        return [s for s in self.studies if s.kind.overlay]

    @property
    def panes(self) -> list[Study]:
        return [s for s in self.studies if not s.kind.overlay]
