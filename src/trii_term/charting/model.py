"""A chart's state: what it shows (spec), where it looks (view), its bars and study values, and
the forming bar kept current from the stream. No Textual here: the widget renders what this
holds, and commands change it.

Loading runs off the UI thread: `load_job()` returns a blocking function for a worker, and
`install()` takes its result if the chart still wants it. The chart keeps the stream's recent
trades in a ring from the moment it listens. A load first waits for the store writer to commit
what it was handed (so what the chart did not hear is in the store), then reads the newest tick,
how many ticks share its timestamp and the bars in one snapshot; `install()` folds in the ring's
trades after that tick and those at it beyond the stored ones. Every trade counts once.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from trii_term.charting.render import ZOOM_STEPS, ChartInput, View
from trii_term.charting.series import Bars, Bucketer, Loaded, load_bars
from trii_term.charting.spec import (
    INTERVALS,
    ChartSpec,
    Mode,
    SpecError,
    Study,
    make_study,
    parse_interval,
    parse_mode,
    parse_studies,
    studies_text,
)
from trii_term.domain import MarketBatch, SessionDay, Trade
from trii_term.store.sql import transaction

log = logging.getLogger(__name__)

# The last trades of every symbol, newest last: a chart that loads takes from here what the
# store had not written yet. One bounded ring (≈ 4 MB), not one per symbol: 50,000 trades
# cover seconds of writer lag even at 10,000 messages/s.
RECENT_TRADES = 50_000
KEY_STUDIES = "chart.studies."  # + symbol
KEY_INTERVAL = "chart.interval"
KEY_MODE = "chart.mode"
KEY_ADJUSTED = "chart.adjusted"
KEY_STEP = "chart.step"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LoadKey:
    symbol: str
    interval: str
    adjusted: bool
    generation: int


class ChartModel:
    def __init__(self, session) -> None:
        self.session = session
        self.spec = ChartSpec(symbol="")
        self.view = View()
        self.bars = Bars.empty()
        self.values: list[tuple[Study, list[np.ndarray]]] = []
        self.note = ""
        self.status = ""
        self.error = ""
        self._loaded: LoadKey | None = None
        self._generation = 0
        self._wanted: LoadKey | None = None
        self._bucketer: Bucketer | None = None
        self._last_tick_ns = 0
        self._recent: deque[Trade] = deque(maxlen=RECENT_TRADES)
        self._listeners: list[Callable[[str], None]] = []
        self.live_dirty = False  # the forming bar changed since the last paint
        self.live_new_bar = False  # ... and a bar was appended
        self._settings_loaded = False
        self._failed: set[str] = set()

    # -- listeners ------------------------------------------------------------------------------

    def on_change(self, fn: Callable[[str], None]) -> None:
        """fn(kind): "load" (bars must be (re)loaded), "data" (repaint all), "view" (repaint)."""
        self._listeners.append(fn)

    def off_change(self, fn: Callable[[str], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _emit(self, kind: str) -> None:
        for fn in list(self._listeners):
            fn(kind)

    # -- settings -----------------------------------------------------------------------------

    def _store(self):
        return self.session.store

    def _setting(self, key: str) -> str | None:
        store = self._store()
        if store is None:
            return None
        try:
            return store.setting(key)
        except Exception:
            log.exception("reading chart setting %s failed", key)
            return None

    def _save(self, key: str, value: str) -> None:
        store = self._store()
        if store is None:
            return
        try:
            store.set_setting(key, value)
        except Exception:
            log.exception("saving chart setting %s failed", key)

    def restore_settings(self) -> None:
        """Interval, mode, adjustment and zoom as the trader last left them."""
        if self._settings_loaded or self._store() is None:
            return
        self._settings_loaded = True
        try:
            if (iv := self._setting(KEY_INTERVAL)) and iv in INTERVALS:
                self.spec.interval = iv
            if mode := self._setting(KEY_MODE):
                self.spec.mode = parse_mode(mode)
            self.spec.adjusted = self._setting(KEY_ADJUSTED) == "1"
            if (step := self._setting(KEY_STEP)) and step.isdigit() and int(step) in ZOOM_STEPS:
                self.view.step = int(step)
        except SpecError:
            log.warning("ignoring a chart setting that no longer parses")

    def _studies_for(self, symbol: str) -> list[Study]:
        text = self._setting(KEY_STUDIES + symbol)
        if not text:
            return []
        try:
            return parse_studies(text.split())
        except SpecError as exc:
            log.warning("stored studies for %s do not parse (%s); starting without", symbol, exc)
            return []

    # -- what is shown --------------------------------------------------------------------------

    def show(
        self,
        symbol: str | None = None,
        interval: str | None = None,
        studies: list[Study] | None = None,
    ) -> None:
        self.restore_settings()
        reload = False
        if symbol and symbol != self.spec.symbol:
            self.spec.symbol = symbol
            self.spec.studies = self._studies_for(symbol)
            self.view.end = None
            self.view.cursor = None
            reload = True
        if interval and interval != self.spec.interval:
            self.spec.interval = parse_interval(interval)
            self._save(KEY_INTERVAL, self.spec.interval)
            self.view.end = None
            self.view.cursor = None
            reload = True
        if studies is not None:
            self.set_studies(studies, emit=False)
        if reload:
            self.request_load()
        elif studies is not None:
            self._emit("data")

    def set_mode(self, mode: Mode) -> None:
        self.spec.mode = mode
        self._save(KEY_MODE, mode.value)
        self._emit("data")

    def set_adjusted(self, adjusted: bool) -> None:
        self.spec.adjusted = adjusted
        self._save(KEY_ADJUSTED, "1" if adjusted else "0")
        if not self.spec.intraday:
            self.request_load()

    def set_studies(self, studies: list[Study], *, emit: bool = True) -> None:
        self.spec.studies = list(studies)
        if self.spec.symbol:
            self._save(KEY_STUDIES + self.spec.symbol, studies_text(self.spec.studies))
        self._compute()
        if emit:
            self._emit("data")

    def add_studies(self, text: list[str]) -> list[Study]:
        new = parse_studies(text)
        have = {s.text for s in self.spec.studies}
        added = []
        for s in new:
            if s.text not in have:
                have.add(s.text)
                added.append(s)
        self.set_studies([*self.spec.studies, *added])
        return added

    def remove_studies(self, tokens: list[str]) -> list[Study]:
        """`rsi` removes every RSI; `sma 50` only that one."""
        if not tokens:
            raise SpecError("name a study to remove, e.g. chart remove sma 50")
        from trii_term.charting.spec import study_kind

        kind = study_kind(tokens[0])
        numbers = tokens[1:]
        if numbers:
            try:
                given = [float(t) for t in numbers]
            except ValueError:
                raise SpecError(
                    f"{kind.name} parameters are numbers ({' '.join(numbers)!r} is not); "
                    f"e.g. chart remove {kind.usage}"
                ) from None
            target = make_study(kind, given).text
            gone = [s for s in self.spec.studies if s.text == target]
        else:
            gone = [s for s in self.spec.studies if s.kind is kind]
        if not gone:
            shown = studies_text(self.spec.studies) or "none"
            raise SpecError(f"{' '.join(tokens)} is not on this chart (studies: {shown})")
        self.set_studies([s for s in self.spec.studies if s not in gone])
        return gone

    # -- the view -------------------------------------------------------------------------------

    def zoom(self, delta: int) -> int:
        steps = list(ZOOM_STEPS)
        k = min(max(steps.index(self.view.step) + delta if self.view.step in steps else 1, 0), len(steps) - 1)
        self.view.step = steps[k]
        self._save(KEY_STEP, str(self.view.step))
        self._emit("view")
        return self.view.step

    def pan(self, bars: int, visible: int) -> None:
        """Move the view `bars` to the right (negative: back in time). With the crosshair on,
        the cursor moves instead and the view follows it."""
        n = len(self.bars)
        if n == 0:
            return
        if self.view.cursor is not None:
            self.view.cursor = min(max(self.view.cursor + bars, 0), n - 1)
            end = self.view.end if self.view.end is not None else n
            if self.view.cursor >= end:
                end = self.view.cursor + 1
            elif self.view.cursor < end - visible:
                end = self.view.cursor + visible
            self.view.end = None if end >= n else end
        else:
            end = (self.view.end if self.view.end is not None else n) + bars
            end = min(max(end, min(visible, n)), n)
            self.view.end = None if end >= n else end
        self._emit("view")

    def latest(self) -> None:
        self.view.end = None
        if self.view.cursor is not None and len(self.bars):
            self.view.cursor = len(self.bars) - 1
        self._emit("view")

    def oldest(self, visible: int) -> None:
        n = len(self.bars)
        self.view.end = min(n, max(1, visible)) if n else None
        if self.view.end is not None and self.view.end >= n:
            self.view.end = None
        if self.view.cursor is not None and n:
            self.view.cursor = 0
        self._emit("view")

    def crosshair(self, on: bool | None = None) -> bool:
        n = len(self.bars)
        on = (self.view.cursor is None) if on is None else on
        if on and n:
            end = self.view.end if self.view.end is not None else n
            self.view.cursor = end - 1
        else:
            self.view.cursor = None
        self._emit("view")
        return self.view.cursor is not None

    # -- loading --------------------------------------------------------------------------------

    def request_load(self) -> None:
        if not self.spec.symbol:
            return
        self._generation += 1
        self._wanted = LoadKey(self.spec.symbol, self.spec.interval, self.spec.adjusted, self._generation)
        self.status = "loading…"
        self._emit("load")

    def reload(self) -> None:
        """New data upstream (a replay day began): load again, keeping the view."""
        if self.spec.symbol:
            self.request_load()

    def load_job(self) -> tuple[LoadKey, Callable[[], Loaded]] | None:
        """The load the chart wants now, as a blocking call for a worker thread."""
        key = self._wanted
        store = self.session.store
        if key is None or store is None:
            return None
        session = self.session
        market = session.market_of(key.symbol)
        clock = session.clock
        until = until_day = None
        if clock.simulated:  # a replay shows nothing after its clock (to the microsecond)
            now = clock.now_ns()
            until = EPOCH + timedelta(microseconds=now // 1000)
            until_day = market.local(now).date()
        sources = [session.provider_name]
        writer = session.writer

        def job() -> Loaded:
            # Every trade this chart has not heard (published before it listened, or pushed out
            # of its ring) must be in the store before it is read; the rest are in the ring.
            if writer is not None and not writer.caught_up():
                log.warning("the store is behind; the chart of %s may miss recent trades", key.symbol)
            with store.reader() as con, transaction(con):  # one snapshot: the seam is exact
                return load_bars(
                    con,
                    key.symbol,
                    key.interval,
                    market,
                    adjusted=key.adjusted,
                    sources=sources,
                    until=until,
                    until_day=until_day,
                )

        return key, job

    def install(self, key: LoadKey, loaded: Loaded | None, error: str = "") -> bool:
        """Take a finished load if it is still the one wanted. Returns whether it was."""
        if key != self._wanted:
            return False
        self._wanted = None
        self.status = ""
        self.error = error
        if loaded is None:
            self.status = "load failed"
            self._emit("data")
            return True
        self._loaded = key
        self.bars = loaded.bars
        self.note = loaded.note
        self._last_tick_ns = loaded.last_tick_ns
        self._bucketer = Bucketer(self.session.market_of(key.symbol), key.interval)
        # The load holds every stored trade up to the seam, and `ties` of those at the seam
        # itself: the ring's trades after it, and those at it beyond the stored ones, are new.
        seam = self._last_tick_ns // 1000  # the store keeps microseconds
        stored_at_seam = loaded.ties
        for t in self._recent:
            if t.symbol != key.symbol or (at := t.ts // 1000) < seam:
                continue
            if at == seam and stored_at_seam > 0:
                stored_at_seam -= 1
                continue
            self._apply(t)
        if self.view.end is not None and self.view.end > len(self.bars):
            self.view.end = None
        if self.view.cursor is not None and self.view.cursor >= len(self.bars):
            self.view.cursor = len(self.bars) - 1 if len(self.bars) else None
        self._compute()
        self.live_dirty = self.live_new_bar = False
        self._emit("data")
        return True

    @property
    def loading(self) -> bool:
        return self._wanted is not None

    # -- the stream -----------------------------------------------------------------------------

    def on_batch(self, batch: MarketBatch) -> None:
        if batch.provider != self.session.provider_name:
            return
        symbol = self.spec.symbol
        live = self._loaded is not None and self._wanted is None and self._loaded.symbol == symbol
        trades = [ev for ev in batch.events if type(ev) is Trade]
        self._recent.extend(trades)
        if live:  # the load's snapshot was taken before these arrived: all of them are new
            for ev in trades:
                if ev.symbol == symbol:
                    self._apply(ev)

    def on_session_day(self, day: SessionDay) -> None:
        """A replay day began: its ticks replace the last day's; bars are loaded again."""
        self._recent.clear()
        self.reload()

    def _apply(self, t: Trade) -> None:
        if self._bucketer is None or not math.isfinite(t.price):
            return
        # (split-adjusted daily bars: the forming bar is after every known split, factor 1)
        what = self.bars.apply_trade(self._bucketer.label(t.ts, self.bars), t.price, t.size)
        self._last_tick_ns = max(self._last_tick_ns, t.ts)
        if what == "new":
            self.live_new_bar = True
            if (
                self.view.cursor is not None
                and self.view.end is None
                and self.view.cursor == len(self.bars) - 2
            ):
                self.view.cursor += 1
        if what != "old":
            self.live_dirty = True

    def take_live(self) -> str | None:
        """What the stream changed since the last call: "new" (a bar was added), "tail" (the
        forming bar changed) or None; study values are brought up to date."""
        if not self.live_dirty:
            return None
        kind = "new" if self.live_new_bar else "tail"
        self.live_dirty = self.live_new_bar = False
        self._compute()
        return kind

    # -- studies --------------------------------------------------------------------------------

    def _compute(self) -> None:
        out = []
        if len(self.bars):
            anchor = "day" if self.spec.intraday else "month" if self.spec.interval == "1D" else "year"
            frame = self.bars.frame(anchor)
            for st in self.spec.studies:
                try:
                    out.append((st, st.compute(frame)))
                except Exception:
                    if st.text not in self._failed:  # once, not on every tick
                        self._failed.add(st.text)
                        log.exception("computing %s failed", st.label)
                    nan = np.full(len(self.bars), np.nan)
                    out.append((st, [nan for _ in st.kind.outputs]))
        self.values = out

    def chart_input(self) -> ChartInput:
        inst = self.session.instruments.get(self.spec.symbol)
        decimals = inst.price_decimals if inst is not None else 2
        status = self.status or (f"error: {self.error}" if self.error else "")
        return ChartInput(
            self.spec,
            self.bars,
            self.values,
            decimals,
            self.note,
            inst.currency if inst is not None else "",
            status,
        )
