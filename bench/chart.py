"""Chart rendering: a full frame, and a live tick on the forming bar.

A full frame is what a new symbol, interval, zoom or pan costs: rasterise every layer of the
chart with numpy (`charting.render.render`) and turn every row into a Textual Strip (what
`ChartView.render_line` hands to the compositor). A tick is what a trade on the forming bar
costs: fold it into the bar, recompute the studies, repaint the bar's columns
(`Frame.update_tail`) and rebuild the strips of the rows that changed.

Chart: AAPL daily (the shipped history, 3,270 bars loaded), 300 candles visible, SMA 20 and
EMA 50 on price, RSI 14 below, volume, in a 310×50 terminal.

Targets: a full frame ≤ 16 ms; a tick a fraction of a full frame.

    python bench/chart.py [--runs 200] [--width 310] [--height 50]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from rich.style import Style

from trii_term.charting.render import N_SERIES, ChartInput, S, View, render
from trii_term.charting.series import load_bars
from trii_term.charting.spec import ChartSpec, Mode, parse_studies
from trii_term.domain import US
from trii_term.paths import shipped_data_dir
from trii_term.store.db import Store
from trii_term.store.history import import_shipped_history
from trii_term.widgets.chart import frame_strip

STYLES = [Style(color=f"color({16 + k * 7 % 216})") for k in range(int(S.SERIES) + N_SERIES)]
BLANK = Style()


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e3:7.3f} ms [{min(samples) * 1e3:.3f}–{max(samples) * 1e3:.3f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--width", type=int, default=310)
    ap.add_argument("--height", type=int, default=50)
    args = ap.parse_args()

    store = Store.open(None)
    import_shipped_history(store.con, shipped_data_dir())
    loaded = load_bars(store.con, "AAPL", "1D", US)
    store.close()
    bars = loaded.bars
    spec = ChartSpec(
        "AAPL", "1D", Mode.CANDLES, False, parse_studies(["sma", "20", "ema", "50", "rsi", "14"])
    )

    def compute() -> list:
        frame = bars.frame()
        return [(s, s.compute(frame)) for s in spec.studies]

    data = ChartInput(spec, bars, compute(), 2, loaded.note)
    view = View(step=1)
    w, h = args.width, args.height

    frame = render(data, view, w, h)
    visible = frame.layout.end - frame.layout.first
    shown = ", ".join(s.label for s in spec.studies)
    print(f"chart: {len(bars):,} bars loaded, {visible} visible, {w}×{h}, studies: {shown}")

    raster, full = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        frame = render(data, view, w, h)
        t1 = time.perf_counter()
        for y in range(h):
            frame_strip(frame, y, STYLES, w, BLANK)
        t2 = time.perf_counter()
        raster.append(t1 - t0)
        full.append(t2 - t0)

    rng = np.random.default_rng(9)
    frame = render(data, view, w, h)
    base = float(bars.close[-1])
    lo, hi = float(bars.low[-1]), float(bars.high[-1])
    ticks, rows_changed, fulls_needed = [], [], 0
    for _ in range(args.runs):
        price = round(float(np.clip(base + rng.normal(0, 0.3), lo, hi)), 2)
        t0 = time.perf_counter()
        bars.apply_trade(bars.ts[-1], price, 100.0)
        data.studies = compute()
        frame.data = data
        changed = frame.update_tail()
        if changed is None:
            fulls_needed += 1
            frame = render(data, view, w, h)
            changed = list(range(h))
        for y in changed:
            frame_strip(frame, y, STYLES, w, BLANK)
        ticks.append(time.perf_counter() - t0)
        rows_changed.append(len(changed))

    studies_only = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        compute()
        studies_only.append(time.perf_counter() - t0)

    f, t = statistics.median(full), statistics.median(ticks)
    print(f"full frame (raster only)      {median_ms(raster)}")
    verdict = "PASS" if f <= 0.016 else "FAIL"
    print(f"full frame (raster + strips)  {median_ms(full)}   target ≤ 16 ms: {verdict}")
    print(f"live tick (fold + studies + tail + strips) {median_ms(ticks)}")
    print(f"   of which the 3 studies over {len(bars):,} bars: {median_ms(studies_only)}")
    print(
        f"   rows repainted per tick: median {statistics.median(rows_changed):.0f} of {h}; "
        f"full renders needed: {fulls_needed}"
    )
    print(f"tick / full frame: {t / f:.2f}  ({f / t:.1f}× cheaper)")


if __name__ == "__main__":
    main()
