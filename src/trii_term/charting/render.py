"""Drawing a chart into a grid of character cells, with numpy.

The grid is two arrays, code points and style ids (H × W). Every layer is rasterised for all
visible bars at once:

- candles at half-cell vertical resolution with box-drawing halves (╷ ╵ ╻ ╹ ╽ ╿). Up candles
  have thin bodies (┃), down candles solid ones (█ ▀ ▄), so direction reads without colour;
- OHLC bars (┤ open on the left, ├ close on the right), a braille line of closes, or an area of eighth blocks;
- overlays and sub-pane lines in braille (2 × 4 dots per cell), histograms in half blocks;
- volume in eighth blocks under price; a right price axis with round-number ticks and the
  last price labelled and drawn across; a session-aware time axis (bars are placed by index,
  so nights, weekends and holidays take no space; intraday day changes are marked ┊);
- a crosshair (a bar picked by keys) shown in reverse video with its values in the header.

`Frame.update_tail()` repaints only the forming bar's columns when a tick arrives (unless the
tick moves the scale), and returns the rows that changed; `Frame.row_runs()` turns a row into
(text, style) runs for the widget.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum

import numpy as np

from trii_term.charting.series import Bars
from trii_term.charting.spec import INTRADAY, ChartSpec, Mode, Study


class S(IntEnum):
    """Style ids; the widget maps them to colours (and reverse/bold, which survive monochrome)."""

    BLANK = 0
    TEXT = 1
    MUTED = 2
    TITLE = 3
    UP = 4
    DOWN = 5
    VOL_UP = 6
    VOL_DOWN = 7
    AXIS = 8
    LAST_LINE = 9
    LAST_LABEL = 10
    GRID = 11
    CROSS = 12
    CROSS_LABEL = 13
    CURSOR = 14
    AREA = 15
    LINE = 16
    HIST_UP = 17
    HIST_DOWN = 18
    RULE = 19
    WARN = 20
    SERIES = 21  # SERIES + k: the k-th study line colour (6 of them)


N_SERIES = 6
BACKGROUND_STYLES = np.array([S.LAST_LABEL, S.CROSS_LABEL, S.CURSOR], dtype=np.uint8)
SPACE = 32

# Candle glyphs by (top half, bottom half) state: 0 none, 1 wick, 2 body → index top*3+bottom.
_WICKS = [" ", "╷", None, "╵", "│", None, None, None, None]
_UP = [" ", "╷", "╻", "╵", "│", "╽", "╹", "╿", "┃"]  # thin bodies: hollow-like
_DOWN = [" ", "╷", "▄", "╵", "│", "▄", "▀", "▀", "█"]  # solid bodies
CANDLE_GLYPHS = np.array([[ord(c) for c in _DOWN], [ord(c) for c in _UP]], dtype=np.uint32)
EIGHTHS = np.array([ord(c) for c in " ▁▂▃▄▅▆▇█"], dtype=np.uint32)
HALVES = np.array([ord(c) for c in " ▄▀█"], dtype=np.uint32)  # index top*2+bottom
BRAILLE_WEIGHTS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint16)
ZOOM_STEPS = (1, 2, 3, 4)  # columns per bar


@dataclass
class View:
    """What part of the series is on screen. `end` is the index after the right-most bar
    (None: follow the latest bar); `cursor` the crosshair's bar (None: no crosshair)."""

    step: int = 2
    end: int | None = None
    cursor: int | None = None


@dataclass
class ChartInput:
    spec: ChartSpec
    bars: Bars
    studies: list[tuple[Study, list[np.ndarray]]]
    decimals: int = 2
    note: str = ""  # e.g. "split-adjusted (2005-02-28 2:1)"
    currency: str = ""
    status: str = ""  # e.g. "loading…", shown in the header


@dataclass
class Pane:
    study: Study
    values: list[np.ndarray]
    label_row: int
    top: int
    rows: int
    lo: float = 0.0
    hi: float = 1.0


@dataclass
class Layout:
    width: int
    height: int
    plot_width: int
    axis_width: int
    header_rows: int
    price_top: int
    price_rows: int
    volume_top: int
    volume_rows: int
    panes: list[Pane]
    time_row: int
    first: int
    end: int
    step: int
    hidden_panes: int = 0
    top: float = 1.0  # price scale: value at the top edge of the price area
    bottom: float = 0.0
    vmax: float = 1.0

    def x_of(self, index: np.ndarray | int) -> np.ndarray | int:
        """The cell column of bar `index` (bars are right-aligned, one slot of `step` each)."""
        return (self.plot_width // self.step - (self.end - index)) * self.step

    def visible(self, i: int) -> bool:
        return self.first <= i < self.end


# -- numbers -------------------------------------------------------------------------------


def nice_step(span: float, count: int) -> float:
    """A round tick step (1, 2, 2.5, 5 × 10^k) giving about `count` ticks over `span`."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def step_decimals(step: float) -> int:
    for d in range(0, 8):
        if abs(step * 10**d - round(step * 10**d)) < 1e-9:
            return d
    return 8


def fmt_price(value: float, decimals: int) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{value:,.{decimals}f}"


def fmt_volume(value: float) -> str:
    if not math.isfinite(value):
        return "—"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= div:
            return f"{value / div:.2f}{suffix}"
    return f"{value:.0f}"


def fmt_value(value: float, decimals: int | None, price_decimals: int) -> str:
    if not math.isfinite(value):
        return "—"
    if decimals == 0:
        return fmt_volume(value)
    return f"{value:,.{price_decimals if decimals is None else decimals}f}"


# -- the frame ------------------------------------------------------------------------------


@dataclass
class Frame:
    chars: np.ndarray  # (H, W) uint32 code points
    styles: np.ndarray  # (H, W) uint8 style ids
    layout: Layout
    data: ChartInput
    view: View
    cursor: int | None = None
    _row_cache: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    _effective: np.ndarray | None = None

    def _effective_styles(self) -> np.ndarray:
        """Styles with each plain blank taking the style of the cell before it."""
        blank = (self.chars == SPACE) & ~np.isin(self.styles, BACKGROUND_STYLES)
        idx = np.where(blank, 0, np.arange(self.chars.shape[1])[None, :])
        np.maximum.accumulate(idx, axis=1, out=idx)
        return np.take_along_axis(self.styles, idx, axis=1)

    @property
    def height(self) -> int:
        return self.chars.shape[0]

    def row_text(self, r: int) -> str:
        return self.chars[r].astype("<u4").tobytes().decode("utf-32-le")

    def text(self) -> str:
        return "\n".join(self.row_text(r) for r in range(self.height))

    def row_runs(self, r: int) -> list[tuple[str, int]]:
        """Row `r` as (text, style id) runs; a blank takes the style of the cell before it
        (unless it has a background), so gaps between candles do not split runs."""
        cached = self._row_cache.get(r)
        if cached is not None:
            return cached
        if self._effective is None:
            self._effective = self._effective_styles()
        eff = self._effective[r]
        cuts = np.flatnonzero(eff[1:] != eff[:-1]) + 1
        text = self.row_text(r)
        bounds = [0, *cuts.tolist(), len(text)]
        codes = eff[bounds[:-1]].tolist()
        runs = [(text[a:b], codes[k]) for k, (a, b) in enumerate(itertools.pairwise(bounds))]
        self._row_cache[r] = runs
        return runs

    def update_tail(self) -> list[int] | None:
        """Repaint after the forming bar changed (same bar count). Returns the rows that
        changed, or None when the scale moved and a full render is needed."""
        lay, data = self.layout, self.data
        n = len(data.bars)
        if n == 0 or lay.end != n or self.view.end is not None:
            return None if self.view.end is None else []
        values = {id(st): v for st, v in data.studies}
        for pane in lay.panes:
            pane.values = values.get(id(pane.study), pane.values)
        top, bottom, vmax, ranges = _scale_of(lay, data)
        if (top, bottom, vmax) != (lay.top, lay.bottom, lay.vmax) or ranges != [
            (p.lo, p.hi) for p in lay.panes
        ]:
            return None  # the scale moved: everything is redrawn
        i = n - 1
        old_chars = self.chars.copy()
        old_styles = self.styles.copy()
        i0 = max(lay.first, i - 1)
        _paint_columns(self, i0, n)
        _paint_last_price(self)
        _paint_header(self)
        changed = np.flatnonzero(
            np.any(old_chars != self.chars, axis=1) | np.any(old_styles != self.styles, axis=1)
        ).tolist()
        self._effective = None
        for r in changed:
            self._row_cache.pop(r, None)
        return changed


# -- layout ---------------------------------------------------------------------------------


def _finite_range(*arrays: np.ndarray) -> tuple[float, float]:
    lo, hi = math.inf, -math.inf
    for a in arrays:
        if a.size:
            with np.errstate(all="ignore"):
                mn, mx = (
                    np.nanmin(a) if np.any(np.isfinite(a)) else math.inf,
                    np.nanmax(a) if np.any(np.isfinite(a)) else -math.inf,
                )
            lo, hi = min(lo, mn), max(hi, mx)
    return lo, hi


def layout(data: ChartInput, view: View, width: int, height: int) -> Layout:
    spec, bars = data.spec, data.bars
    n = len(bars)
    step = view.step if view.step in ZOOM_STEPS else 2
    # axis wide enough for the largest price (or study value) it may print
    lo_all, hi_all = _finite_range(bars.low, bars.high)
    widest = max(
        (len(fmt_price(v, data.decimals)) for v in (lo_all, hi_all) if math.isfinite(v)),
        default=6,
    )
    axis_width = min(max(widest + 2, 8), max(8, width // 4))
    plot_width = max(1, width - axis_width)
    count = max(1, plot_width // step)
    end = n if view.end is None else max(min(view.end, n), min(count, n))
    first = max(0, end - count)

    time_row = height - 1
    values = dict((id(s), v) for s, v in data.studies)
    cursor = view.cursor if view.cursor is not None and first <= view.cursor < end else n - 1
    panes_wanted = spec.panes
    max_legend = 0 if height < 10 else 1 if height < 12 else 2 if height < 16 else 3
    legend_rows = min(1, max_legend)
    for _ in range(3):  # the legend's rows depend on which panes fit, and those on the legend
        header_rows = 1 + legend_rows
        avail = max(0, time_row - header_rows)
        pane_h = max(4, avail // 5)
        fit = 0
        for k in range(len(panes_wanted), -1, -1):
            if avail - k * pane_h >= 6 or k == 0:
                fit = k
                break
        shown = {id(st) for st in panes_wanted[:fit]}
        entries = _legend(data, shown, cursor)
        need = min(max(1, len(_flow(entries, width))), max_legend) if max_legend else 0
        if need == legend_rows:
            break
        legend_rows = need
    volume_rows = 0
    rest = avail - fit * pane_h
    if rest >= 8:
        volume_rows = max(1, min(6, rest // 6))
    price_rows = max(1, rest - volume_rows)
    price_top = header_rows
    volume_top = price_top + price_rows
    panes: list[Pane] = []
    top = volume_top + volume_rows
    for st in panes_wanted[:fit]:
        panes.append(Pane(st, values.get(id(st), []), top, top + 1, pane_h - 1))
        top += pane_h
    return Layout(
        width,
        height,
        plot_width,
        axis_width,
        header_rows,
        price_top,
        price_rows,
        volume_top,
        volume_rows,
        panes,
        time_row,
        first,
        end,
        step,
        hidden_panes=len(panes_wanted) - fit,
    )


def _snap(lo: float, hi: float) -> tuple[float, float]:
    """Widen [lo, hi] outwards to multiples of a round unit (an eighth of a tick step), so a
    tick that stays inside the range leaves the scale exactly as it was."""
    unit = nice_step(hi - lo, 8) / 8
    return math.floor(lo / unit) * unit, math.ceil(hi / unit) * unit


def _scale_of(lay: Layout, data: ChartInput) -> tuple[float, float, float, list[tuple[float, float]]]:
    """(top, bottom, volume max, [(lo, hi) per pane]) for the visible bars and studies."""
    sl = slice(lay.first, lay.end)
    b = data.bars
    arrays = [b.low[sl], b.high[sl]]
    if data.spec.mode in (Mode.LINE, Mode.AREA):
        arrays = [b.close[sl]]
    for st, values in data.studies:
        if st.kind.overlay:
            arrays.extend(v[sl] for v in values)
    lo, hi = _finite_range(*arrays)
    if not math.isfinite(lo):
        lo, hi = 0.0, 1.0
    if hi - lo < 1e-9 * max(1.0, abs(hi)):
        pad = max(abs(hi) * 0.01, 10.0**-data.decimals)
        lo, hi = lo - pad, hi + pad
    pad = (hi - lo) * 0.04
    if data.spec.mode is Mode.AREA:
        bottom, top = _snap(lo - (hi - lo) * 0.25, hi + pad)  # an area needs a floor
    else:
        bottom, top = _snap(lo - pad, hi + pad)
    with np.errstate(all="ignore"):
        vm = np.nanmax(b.volume[sl]) if lay.end > lay.first else 0.0
    vmax = _snap(0.0, float(vm) * 1.05)[1] if vm and math.isfinite(vm) and vm > 0 else 1.0
    panes = []
    for pane in lay.panes:
        kind = pane.study.kind
        if kind.bounds:
            panes.append(kind.bounds)
            continue
        plo, phi = _finite_range(*(v[sl] for v in pane.values))
        if kind.zero_line:
            plo, phi = min(plo, 0.0), max(phi, 0.0)
        if not math.isfinite(plo):
            plo, phi = 0.0, 1.0
        if phi - plo < 1e-12:
            phi, plo = phi + 1.0, plo - 1.0
        pad = (phi - plo) * 0.08
        panes.append(_snap(plo - pad, phi + pad))
    return top, bottom, vmax, panes


def _scale(frame: Frame) -> None:
    lay = frame.layout
    lay.top, lay.bottom, lay.vmax, ranges = _scale_of(lay, frame.data)
    for pane, (lo, hi) in zip(lay.panes, ranges, strict=True):
        pane.lo, pane.hi = lo, hi


# -- rasterisers ----------------------------------------------------------------------------


def _sub_rows(values: np.ndarray, top: float, bottom: float, rows: int, per_cell: int) -> np.ndarray:
    """Continuous row coordinate (in 1/per_cell cells) of each value, 0 at the top edge."""
    with np.errstate(all="ignore"):
        return (top - values) / (top - bottom) * (rows * per_cell)


def _clip_floor(u: np.ndarray, limit: int) -> np.ndarray:
    f = np.floor(u)
    f[np.isnan(f)] = -1.0
    np.clip(f, 0, limit - 1, out=f)
    return f.astype(np.int32)


def _row(value: float, top: float, bottom: float, rows: int) -> int:
    """The cell row (0 at the top) of one value: the scalar form of _sub_rows + _clip_floor."""
    u = (top - value) / (top - bottom) * rows if top != bottom else 0.0
    return min(max(math.floor(u), 0), rows - 1) if math.isfinite(u) else 0


def _candles(frame: Frame, idx: np.ndarray, xs: np.ndarray, ohlc: bool) -> None:
    lay, b = frame.layout, frame.data.bars
    r = lay.price_rows
    o, h, low, c = b.open[idx], b.high[idx], b.low[idx], b.close[idx]
    ok = np.isfinite(h) & np.isfinite(low) & np.isfinite(o) & np.isfinite(c)
    u = lambda v: _clip_floor(_sub_rows(v, lay.top, lay.bottom, r, 2), 2 * r)  # noqa: E731
    hi_s, lo_s = u(h), u(low)
    sub = np.arange(2 * r, dtype=np.int32)[:, None]
    wick = (sub >= hi_s) & (sub <= lo_s) & ok
    up = c >= o
    if ohlc:
        state = wick.astype(np.int8)
        code = state[0::2] * 3 + state[1::2]
        glyphs = CANDLE_GLYPHS[1][code]
        rows_o = u(o) // 2
        rows_c = u(c) // 2
        cells = np.arange(r, dtype=np.int32)[:, None]
        at_o = (cells == rows_o) & ok
        at_c = (cells == rows_c) & ok
        glyphs = np.where(at_o & at_c, ord("┼"), np.where(at_o, ord("┤"), np.where(at_c, ord("├"), glyphs)))
    else:
        bt, bb = u(np.maximum(o, c)), u(np.minimum(o, c))
        body = (sub >= bt) & (sub <= bb) & ok
        state = np.where(body, 2, wick.astype(np.int8)).astype(np.int8)
        code = state[0::2] * 3 + state[1::2]
        glyphs = CANDLE_GLYPHS[up.astype(np.int8)[None, :], code]
    styles = np.where(glyphs != SPACE, np.where(up, S.UP, S.DOWN)[None, :], S.BLANK).astype(np.uint8)
    top = lay.price_top
    _blit(frame, top, r, xs, glyphs, styles)


def _blit(frame: Frame, top: int, rows: int, xs: np.ndarray, glyphs: np.ndarray, styles: np.ndarray) -> None:
    """Drawn cells into columns `xs` from row `top`; blank cells leave what is under them
    (guides, the zero line, session breaks)."""
    region_c = frame.chars[top : top + rows, xs]
    region_s = frame.styles[top : top + rows, xs]
    drawn = glyphs != SPACE
    frame.chars[top : top + rows, xs] = np.where(drawn, glyphs, region_c)
    frame.styles[top : top + rows, xs] = np.where(drawn, styles, region_s)


def _eighth_bars(
    frame: Frame, top: int, rows: int, xs: np.ndarray, level: np.ndarray, styles: np.ndarray
) -> None:
    """Bars rising from the bottom of an area, in eighths of a cell (volume, area mode)."""
    cells = np.arange(rows - 1, -1, -1, dtype=np.float64)[:, None]  # cells counted from the bottom
    with np.errstate(all="ignore"):
        fill = np.clip(np.nan_to_num(level, nan=0.0)[None, :] - cells * 8, 0, 8).astype(np.int32)
    glyphs = EIGHTHS[fill]
    _blit(frame, top, rows, xs, glyphs, np.broadcast_to(styles[None, :], glyphs.shape))


def _braille(
    values: np.ndarray,
    xs: np.ndarray,
    x_lo: int,
    x_hi: int,
    top: float,
    bottom: float,
    rows: int,
) -> np.ndarray:
    """A line through (xs, values) as braille codes (rows × (x_hi - x_lo)); 0 where empty."""
    ncols = x_hi - x_lo
    dots_w = ncols * 2
    out = np.zeros((rows, ncols), dtype=np.uint16)
    y = _sub_rows(values, top, bottom, rows, 4)
    ok = np.isfinite(y)
    if not ok.any() or ncols <= 0:
        return out
    px = (xs[ok] - x_lo) * 2.0
    py = y[ok]
    d = np.arange(dots_w, dtype=np.float64)
    yd = np.interp(d, px, py)
    live = (d >= px[0]) & (d <= px[-1])
    nxt = np.append(yd[1:], yd[-1])
    nxt = np.where(np.append(live[1:], False), nxt, yd)
    lo = np.floor(np.minimum(yd, nxt))
    hi = np.floor(np.maximum(yd, nxt) - 1e-9)
    hi = np.maximum(hi, lo)
    sub = np.arange(rows * 4, dtype=np.float64)[:, None]
    mask = (sub >= lo) & (sub <= hi) & live
    mask = mask.reshape(rows, 4, ncols, 2)
    return np.einsum("rick,ik->rc", mask.astype(np.uint16), BRAILLE_WEIGHTS, dtype=np.uint16)


def _stamp_braille(frame: Frame, top: int, codes: np.ndarray, x_lo: int, style: int) -> None:
    """Braille dots into cells that hold no candle/bar (those win); dots already there merge."""
    rows, ncols = codes.shape
    region_c = frame.chars[top : top + rows, x_lo : x_lo + ncols]
    region_s = frame.styles[top : top + rows, x_lo : x_lo + ncols]
    has = codes > 0
    is_braille = (region_c >= 0x2800) & (region_c <= 0x28FF)
    free = (region_c == SPACE) | is_braille | (region_s == S.GRID) | (region_s == S.LAST_LINE)
    put = has & free
    base = np.where(is_braille, region_c - 0x2800, 0).astype(np.uint32)
    region_c[put] = (0x2800 + (base | codes.astype(np.uint32)))[put]
    region_s[put] = style


def _halves(frame: Frame, pane: Pane, xs: np.ndarray, values: np.ndarray) -> None:
    """A histogram around zero at half-cell resolution (MACD's)."""
    r = pane.rows
    u0 = _sub_rows(np.array([0.0]), pane.hi, pane.lo, r, 2)[0]
    uv = _sub_rows(values, pane.hi, pane.lo, r, 2)
    ok = np.isfinite(uv)
    a = np.where(ok, np.minimum(uv, u0), 0)
    b = np.where(ok, np.maximum(uv, u0), 0)
    sub = np.arange(2 * r, dtype=np.float64)[:, None] + 0.5
    filled = (sub >= np.floor(a)) & (sub <= np.ceil(b)) & ok & (np.abs(b - a) >= 0.25)
    code = filled[0::2].astype(np.int8) * 2 + filled[1::2]
    glyphs = HALVES[code]
    style = np.where(values >= 0, S.HIST_UP, S.HIST_DOWN)
    _blit(frame, pane.top, r, xs, glyphs, np.broadcast_to(style[None, :], glyphs.shape))


def _paint_columns(frame: Frame, i0: int, i1: int) -> None:
    """Everything drawn per bar, for bars [i0, i1): cleared and repainted in their columns."""
    lay, data = frame.layout, frame.data
    if i1 <= i0:
        return
    idx = np.arange(i0, i1)
    xs = np.asarray(lay.x_of(idx))
    x_lo = 0 if i0 == lay.first else int(xs[0])
    x_hi = lay.plot_width if i1 == lay.end else int(lay.x_of(i1))
    body_top, body_bottom = lay.price_top, lay.time_row
    frame.chars[body_top:body_bottom, x_lo:x_hi] = SPACE
    frame.styles[body_top:body_bottom, x_lo:x_hi] = S.BLANK
    b = data.bars
    mode = data.spec.mode

    # grid first (it only shows where nothing else is drawn)
    _paint_grid(frame, i0, i1, x_lo, x_hi)

    # price
    if mode is Mode.CANDLES:
        _candles(frame, idx, xs, ohlc=False)
    elif mode is Mode.OHLC:
        _candles(frame, idx, xs, ohlc=True)
    elif mode is Mode.AREA:
        level = _sub_rows(b.close[idx], lay.top, lay.bottom, lay.price_rows, 8)
        level = lay.price_rows * 8 - level
        _eighth_bars(frame, lay.price_top, lay.price_rows, xs, level, np.full(len(idx), S.AREA, np.uint8))
        if lay.step > 1:  # fill the gaps too: an area is continuous
            for k in range(1, lay.step):
                cols = xs + k
                keep = cols < lay.plot_width
                _eighth_bars(
                    frame,
                    lay.price_top,
                    lay.price_rows,
                    cols[keep],
                    level[keep],
                    np.full(int(keep.sum()), S.AREA, np.uint8),
                )
    # lines need the bar before the range to join the first segment
    j0 = max(lay.first, i0 - 1)
    jdx = np.arange(j0, i1)
    jxs = np.asarray(lay.x_of(jdx))
    if mode is Mode.LINE:
        codes = _braille(b.close[jdx], jxs, x_lo, x_hi, lay.top, lay.bottom, lay.price_rows)
        _stamp_braille(frame, lay.price_top, codes, x_lo, S.LINE)
    colour = 0
    for st, values in data.studies:
        if not st.kind.overlay:
            continue
        for k, v in enumerate(values):
            codes = _braille(v[jdx], jxs, x_lo, x_hi, lay.top, lay.bottom, lay.price_rows)
            style = S.SERIES + colour % N_SERIES if not (st.kind.name == "bb" and k == 1) else S.MUTED
            _stamp_braille(frame, lay.price_top, codes, x_lo, style)
        colour += 1

    # volume
    if lay.volume_rows:
        level = b.volume[idx] / lay.vmax * lay.volume_rows * 8
        level = np.where((b.volume[idx] > 0) & (level < 1), 1, level)  # any volume shows
        styles = np.where(b.close[idx] >= b.open[idx], S.VOL_UP, S.VOL_DOWN).astype(np.uint8)
        _eighth_bars(frame, lay.volume_top, lay.volume_rows, xs, level, styles)

    # sub-panes
    for pane in lay.panes:
        colour = 0
        for out, v in zip(pane.study.kind.outputs, pane.values, strict=False):
            if out.kind == "hist":
                _halves(frame, pane, xs, v[idx])
                continue
            codes = _braille(v[jdx], jxs, x_lo, x_hi, pane.hi, pane.lo, pane.rows)
            _stamp_braille(frame, pane.top, codes, x_lo, S.SERIES + colour % N_SERIES)
            colour += 1

    # the crosshair: the bar in reverse video, a line through the empty cells
    c = frame.cursor
    if c is not None and i0 <= c < i1:
        x = int(lay.x_of(c))
        col_c = frame.chars[body_top:body_bottom, x]
        col_s = frame.styles[body_top:body_bottom, x]
        empty = (col_c == SPACE) | (col_s == S.GRID)
        col_s[~empty] = S.CURSOR
        col_c[empty] = ord("│")
        col_s[empty] = S.CROSS
        for pane in lay.panes:  # keep the pane titles readable
            frame.chars[pane.label_row, x] = ord("┼")
            frame.styles[pane.label_row, x] = S.RULE


def _paint_grid(frame: Frame, i0: int, i1: int, x_lo: int, x_hi: int) -> None:
    lay, data = frame.layout, frame.data
    # pane title rows and guides
    for pane in lay.panes:
        frame.chars[pane.label_row, x_lo:x_hi] = ord("─")
        frame.styles[pane.label_row, x_lo:x_hi] = S.RULE
        guides = list(pane.study.kind.guides)
        if pane.study.kind.zero_line:
            guides.append(0.0)
        for g in guides:
            row = pane.top + _row(g, pane.hi, pane.lo, pane.rows)
            frame.chars[row, x_lo:x_hi] = ord("┈")
            frame.styles[row, x_lo:x_hi] = S.GRID
    # session breaks in intraday charts: nights and weekends take no space, so mark them
    if data.spec.intraday and i1 - i0 > 0:
        j0 = max(i0, lay.first + 1)
        if j0 < i1:
            days = data.bars.ts[j0 - 1 : i1].astype("datetime64[D]")
            new_day = np.flatnonzero(days[1:] != days[:-1]) + j0
            xs = np.asarray(lay.x_of(new_day)) - 1
            xs = xs[(xs >= x_lo) & (xs < x_hi)]
            if xs.size:
                frame.chars[lay.price_top : lay.time_row, xs] = ord("┊")
                frame.styles[lay.price_top : lay.time_row, xs] = S.GRID


def _paint_last_price(frame: Frame) -> None:
    """The last price across the price area (where nothing else is drawn) and on the axis."""
    lay, data = frame.layout, frame.data
    top, r, w = lay.price_top, lay.price_rows, lay.plot_width
    region_c = frame.chars[top : top + r, :w]
    region_s = frame.styles[top : top + r, :w]
    old = region_s == S.LAST_LINE
    region_c[old] = SPACE
    region_s[old] = S.BLANK
    _paint_price_axis(frame)
    n = len(data.bars)
    if n == 0:
        return
    last = float(data.bars.close[-1])
    if not math.isfinite(last) or not (lay.bottom <= last <= lay.top):
        return
    row = _row(last, lay.top, lay.bottom, r)
    line_c = region_c[row]
    line_s = region_s[row]
    empty = line_c == SPACE
    line_c[empty] = ord("┈")
    line_s[empty] = S.LAST_LINE
    label = "▸" + fmt_price(last, data.decimals)
    _put(frame, top + row, w, label[: lay.axis_width].ljust(lay.axis_width), S.LAST_LABEL)


def _paint_price_axis(frame: Frame) -> None:
    lay, data = frame.layout, frame.data
    w, aw = lay.plot_width, lay.axis_width
    frame.chars[lay.header_rows : lay.time_row, w:] = SPACE
    frame.styles[lay.header_rows : lay.time_row, w:] = S.AXIS
    frame.chars[lay.header_rows : lay.time_row, w] = ord("│")
    r = lay.price_rows
    if len(data.bars) == 0:
        return  # no scale to show
    step = nice_step(lay.top - lay.bottom, max(2, r // 3 if r >= 12 else r // 2))
    dec = min(max(step_decimals(step), data.decimals), data.decimals + 2)
    v = math.ceil(lay.bottom / step) * step
    while v <= lay.top:
        row = math.floor((lay.top - v) / (lay.top - lay.bottom) * r)
        if 0 <= row < r:
            _put(frame, lay.price_top + row, w, "┤" + fmt_price(v, dec), S.AXIS)
        v += step
    if lay.volume_rows:
        _put(frame, lay.volume_top, w, "┤" + fmt_volume(lay.vmax), S.MUTED)
    for pane in lay.panes:
        kind = pane.study.kind
        frame.chars[pane.label_row, w:] = ord("─")
        frame.styles[pane.label_row, w:] = S.RULE
        frame.chars[pane.label_row, w] = ord("┼")
        marks = list(kind.guides) or []
        if kind.zero_line:
            marks.append(0.0)
        if not marks:
            marks = [pane.hi - (pane.hi - pane.lo) * 0.08, pane.lo + (pane.hi - pane.lo) * 0.08]
        for m in marks:
            row = _row(m, pane.hi, pane.lo, pane.rows)
            text = f"{m:g}" if kind.bounds else fmt_value(m, kind.decimals, data.decimals)
            _put(frame, pane.top + row, w, "┤" + text, S.MUTED)
    c = frame.cursor
    if c is not None and lay.first <= c < lay.end:
        price = float(data.bars.close[c])
        if math.isfinite(price) and lay.bottom <= price <= lay.top:
            row = _row(price, lay.top, lay.bottom, r)
            _put(
                frame,
                lay.price_top + row,
                w,
                ("▹" + fmt_price(price, data.decimals)).ljust(aw),
                S.CROSS_LABEL,
            )


def _put(frame: Frame, row: int, col: int, text: str, style: int) -> None:
    if not 0 <= row < frame.chars.shape[0]:
        return
    width = frame.chars.shape[1]
    text = text[: max(0, width - col)]
    if not text or col < 0:
        return
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    frame.chars[row, col : col + len(codes)] = codes
    frame.styles[row, col : col + len(codes)] = style


# -- time axis ------------------------------------------------------------------------------


def _time_labels(frame: Frame) -> None:
    lay, data = frame.layout, frame.data
    row = lay.time_row
    frame.chars[row] = SPACE
    frame.styles[row] = S.MUTED
    if lay.end <= lay.first:
        return
    ts = data.bars.ts[lay.first : lay.end]
    interval = data.spec.interval
    prev = data.bars.ts[lay.first - 1 : lay.first] if lay.first > 0 else ts[:0]
    full = np.concatenate([prev, ts])
    offset = len(prev)
    days = full.astype("datetime64[D]")
    months = full.astype("datetime64[M]")
    years = full.astype("datetime64[Y]")
    rank = np.zeros(len(full), dtype=np.int8)
    first_is_new = offset == 0
    if interval in INTRADAY:
        minutes = ((full - days).astype("timedelta64[m]").astype(np.int64)) % (24 * 60)
        rank[(minutes % 30) == 0] = 1
        rank[(minutes % 60) == 0] = 2
        if interval == "1h":
            rank[:] = 1
        new_day = np.concatenate([[first_is_new], days[1:] != days[:-1]])
        rank[new_day] = 3
    elif interval == "1D":
        weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        new_week = np.concatenate(
            [[first_is_new], (weekday[1:] < weekday[:-1]) | ((days[1:] - days[:-1]).astype(int) >= 7)]
        )
        rank[new_week] = 1
        rank[np.concatenate([[first_is_new], months[1:] != months[:-1]])] = 2
        rank[np.concatenate([[first_is_new], years[1:] != years[:-1]])] = 3
    else:
        quarter = months.astype(np.int64) // 3
        rank[np.concatenate([[first_is_new], months[1:] != months[:-1]])] = 1
        rank[np.concatenate([[first_is_new], quarter[1:] != quarter[:-1]])] = 2
        rank[np.concatenate([[first_is_new], years[1:] != years[:-1]])] = 3
    rank = rank[offset:]
    width = lay.plot_width
    taken = np.zeros(width + 1, dtype=bool)
    candidates = np.flatnonzero(rank > 0)
    order = candidates[np.lexsort((candidates, -rank[candidates]))]
    placed = 0
    years = len(np.unique(years[offset:])) > 1
    for k in order.tolist():
        i = lay.first + k
        x = int(lay.x_of(i))
        label = _label(data.bars.ts[i], int(rank[k]), interval, years=years)
        if x + len(label) > width:
            if rank[k] < 2 or x >= width:
                continue
            x = width - len(label)  # the newest month or session still gets its label
        a, z = max(0, x - 1), min(width, x + len(label) + 1)
        if taken[a:z].any():
            continue
        taken[a:z] = True
        _put(frame, row, x, label, S.TEXT if rank[k] == 3 else S.MUTED)
        placed += 1
        if placed > width // 4:
            break
    c = frame.cursor
    if c is not None and lay.first <= c < lay.end:
        text = " " + _cursor_label(data.bars.ts[c], interval) + " "
        x = min(max(0, int(lay.x_of(c)) - len(text) // 2), max(0, width - len(text)))
        _put(frame, row, x, text, S.CROSS_LABEL)


def _label(ts: np.datetime64, rank: int, interval: str, *, years: bool = False) -> str:
    when = ts.astype("datetime64[us]").astype(datetime)
    if interval in INTRADAY:
        if rank == 3:
            return when.strftime("%b %d '%y" if years else "%b %d")  # sessions years apart
        return when.strftime("%H:%M")
    if rank == 3:
        return when.strftime("%Y")
    if interval == "1D" and rank == 1:
        return when.strftime("%d")
    return when.strftime("%b")


def _cursor_label(ts: np.datetime64, interval: str) -> str:
    when = ts.astype("datetime64[us]").astype(datetime)
    if interval in INTRADAY:
        return when.strftime("%a %Y-%m-%d %H:%M")
    if interval == "1W":
        return when.strftime("week of %Y-%m-%d")
    return when.strftime("%a %Y-%m-%d")


# -- header ---------------------------------------------------------------------------------


def readout(data: ChartInput, i: int, *, short: bool = False) -> str:
    """Date and OHLCV of bar `i`, with its change from the bar before."""
    return " ".join(readout_parts(data, i, short=short))


def readout_parts(data: ChartInput, i: int, *, short: bool = False) -> list[str]:
    b = data.bars
    dec = data.decimals
    when = _cursor_label(b.ts[i], data.spec.interval)
    if short and data.spec.interval != "1W":
        when = when[4:]  # without the weekday
    parts = [
        when,
        f"O {fmt_price(b.open[i], dec)}",
        f"H {fmt_price(b.high[i], dec)}",
        f"L {fmt_price(b.low[i], dec)}",
        f"C {fmt_price(b.close[i], dec)}",
    ]
    gap = data.spec.intraday and i > 0 and (b.ts[i] - b.ts[i - 1]) > np.timedelta64(5, "D")
    if i > 0 and not gap and math.isfinite(b.close[i - 1]) and b.close[i - 1]:
        ch = b.close[i] / b.close[i - 1] - 1
        arrow = "▲" if ch > 0 else "▼" if ch < 0 else "="
        parts.append(f"{arrow}{ch * 100:+.2f}%")
    parts.append(f"V {fmt_volume(b.volume[i])}")
    return parts


# the readout's parts that give way when the header is narrow, least needed first (by prefix;
# the date is the first part): the close and the change stay
_READOUT_GIVES_WAY = (("O ",), ("V ",), ("H ", "L "), ("date",), ("▲", "▼", "="))


def readout_fitting(parts: list[str], room: int) -> list[str]:
    """Whole parts only, a value cut short would read as another number: when they do not all
    fit, the least needed give way (open, volume, high and low, the date) and `…` says so."""

    def length(items: list[str]) -> int:  # one space between parts
        return sum(len(p) for p in items) + max(0, len(items) - 1)

    if length(parts) <= room:
        return list(parts)
    shown = list(parts)
    for group in _READOUT_GIVES_WAY:
        shown = [p for p in shown if not (p.startswith(group) or (group == ("date",) and p is parts[0]))]
        if length(shown) + 2 <= room:
            return [*shown, "…"]
    return ["…"] if room >= 2 else []


def whole_words(text: str, room: int) -> str:
    """`text` in `room` cells, cut only between words and then ending with `…` (a value cut
    short would read as another number)."""
    if len(text) <= room:
        return text
    words = text.split(" ")
    while words and len(" ".join(words)) + 2 > room:
        words.pop()
    return " ".join([*words, "…"]) if words else ("…" if room >= 1 else "")


def study_values_text(data: ChartInput, st: Study, values: list[np.ndarray], i: int) -> str:
    shown = []
    for out, v in zip(st.kind.outputs, values, strict=False):
        x = float(v[i]) if 0 <= i < len(v) else math.nan
        text = fmt_value(x, st.kind.decimals, data.decimals)
        shown.append(text if len(values) == 1 else f"{out.name} {text}")
    return f"{st.label} " + " ".join(shown)


def _legend(data: ChartInput, shown: set[int], i: int) -> list[tuple[str, int]]:
    """The header's second part: every overlay's values at bar `i`, the values of studies whose
    pane has no room (▾), and the note (adjustment and splits) — each a whole entry."""
    entries: list[tuple[str, int]] = []
    colour = 0
    for st, values in data.studies:
        if st.kind.overlay:
            entries.append((study_values_text(data, st, values, i), int(S.SERIES) + colour % N_SERIES))
            colour += 1
    for st, values in data.studies:
        if not st.kind.overlay and id(st) not in shown:
            entries.append(("▾" + study_values_text(data, st, values, i), int(S.MUTED)))
    if data.note:
        entries.append((data.note, int(S.MUTED)))
    return entries


def _flow(entries: list[tuple[str, int]], width: int) -> list[list[tuple[str, int]]]:
    """Entries into lines of `width`, two spaces apart, never splitting one (a value cut in
    half would read as another number)."""
    lines: list[list[tuple[str, int]]] = []
    x = width + 1
    for text, style in entries:
        text = text if len(text) <= width else text[: width - 1] + "…"
        if x + len(text) > width:
            lines.append([])
            x = 0
        lines[-1].append((text, style))
        x += len(text) + 2
    return lines


def _paint_header(frame: Frame) -> None:
    lay, data = frame.layout, frame.data
    w = lay.width
    for r in range(lay.header_rows):
        frame.chars[r] = SPACE
        frame.styles[r] = S.TEXT
    spec = data.spec
    n = len(data.bars)
    i = frame.cursor if frame.cursor is not None else n - 1
    mode = "" if spec.mode is Mode.CANDLES else f" {spec.mode.value}"
    adj = ""
    if not spec.intraday:
        adj = " ADJ" if spec.adjusted else " UNADJ"
    title = f"{spec.symbol} {spec.interval}{adj}{mode}"
    _put(frame, 0, 0, title, S.TITLE)
    x = len(title) + 1
    if data.status:
        _put(frame, 0, x, data.status, S.WARN)
        x += len(data.status) + 1
    if n:
        parts = readout_parts(data, i, short=w < 100)
        if frame.cursor is not None:
            parts[0] = "◆ " + parts[0]
        for part in readout_fitting(parts, w - x):
            _put(frame, 0, x, part, S.TEXT)
            x += len(part) + 1
    elif not data.status:
        _put(frame, 0, x, "no bars stored for this interval yet", S.WARN)
    if lay.header_rows > 1:
        shown = {id(p.study) for p in lay.panes}
        entries = _legend(data, shown, i)
        lines = _flow(entries, w)
        legend_rows = lay.header_rows - 1
        if len(lines) > legend_rows:  # no room for all: say how many are not shown
            lines = lines[:legend_rows]
            last = lines[-1]
            while True:
                dropped = len(entries) - sum(len(line) for line in lines)
                marker = f"+{dropped} more"
                used = sum(len(t) + 2 for t, _ in last)
                if used + len(marker) <= w or len(last) <= 1:
                    break
                last.pop()
            last.append((marker, int(S.WARN)))
        for r, line in enumerate(lines, start=1):
            x = 0
            for k, (text, style) in enumerate(line):
                if k == len(line) - 1 and text == data.note and r == len(lines):
                    x = max(x, w - len(text))  # the note sits at the right
                _put(frame, r, x, text, style)
                x += len(text) + 2
    for pane in lay.panes:
        text = whole_words(study_values_text(data, pane.study, pane.values, i), lay.plot_width - 4)
        _put(frame, pane.label_row, 1, f" {text} ", S.TITLE)


# -- the whole chart ------------------------------------------------------------------------


def render(data: ChartInput, view: View, width: int, height: int) -> Frame:
    width, height = max(20, width), max(6, height)
    lay = layout(data, view, width, height)
    frame = Frame(
        np.full((height, width), SPACE, dtype=np.uint32),
        np.zeros((height, width), dtype=np.uint8),
        lay,
        data,
        view,
    )
    cursor = view.cursor
    if cursor is not None and not (lay.first <= cursor < lay.end):
        cursor = None
    frame.cursor = cursor
    _scale(frame)
    _paint_columns(frame, lay.first, lay.end)
    _paint_last_price(frame)
    _time_labels(frame)
    _paint_header(frame)
    return frame
