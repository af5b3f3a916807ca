"""The chart widget: paints a `charting.render.Frame` line by line (Textual's line API).

A full render happens when the data, the view or the size changes. A tick on the forming bar
repaints only the rows whose cells changed (`Frame.update_tail`), so history is not redrawn.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from trii_term.charting.model import ChartModel
from trii_term.charting.render import N_SERIES, Frame, S, render
from trii_term.commands import chart as chart_commands
from trii_term.widgets.bindings import command_bindings

_CLASS_OF = {s: "chart--" + s.name.lower().replace("_", "-") for s in S}
for _k in range(N_SERIES):
    _CLASS_OF[S.SERIES + _k] = f"chart--series-{_k}"  # type: ignore[index]


class ChartView(Widget, can_focus=True):
    """A chart of the model's symbol. Keys come from the `chart …` commands."""

    BINDINGS = command_bindings(chart_commands.VIEW_COMMANDS + chart_commands.CLOSE_COMMANDS)
    COMPONENT_CLASSES = set(_CLASS_OF.values())
    DEFAULT_CSS = """
    ChartView { height: 1fr; width: 1fr; }
    """

    def __init__(self, model: ChartModel, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self.frame: Frame | None = None
        self._strips: dict[int, Strip] = {}
        self._styles: list[Style] | None = None
        self.renders = 0  # full renders (tests and the benchmark read it)
        self.tail_updates = 0

    def on_mount(self) -> None:
        self.model.on_change(self._model_changed)
        self.watch(self.app, "theme", lambda _: self._restyle(), init=False)

    def on_unmount(self) -> None:
        self.model.off_change(self._model_changed)

    def _restyle(self) -> None:
        self._styles = None
        self._strips.clear()
        self.refresh()

    def _model_changed(self, kind: str) -> None:
        if kind in ("data", "view"):
            self.render_full()

    def on_resize(self) -> None:
        self.render_full()

    @property
    def visible_bars(self) -> int:
        if self.frame is None:
            return max(1, self.size.width // 2)
        lay = self.frame.layout
        return max(1, lay.plot_width // lay.step)

    def render_full(self) -> None:
        width, height = self.size
        if width <= 0 or height <= 0 or not self.is_mounted:
            return
        self.frame = render(self.model.chart_input(), self.model.view, width, height)
        self._strips.clear()
        self.renders += 1
        self.refresh()

    def live(self, kind: str | None) -> None:
        """The stream changed the bars (`ChartModel.take_live()`): repaint the least that
        shows it."""
        if kind is None or self.frame is None:
            return
        if kind == "new":
            self.render_full()
            return
        self.frame.data = self.model.chart_input()
        rows = self.frame.update_tail()
        if rows is None:
            self.render_full()
            return
        self.tail_updates += 1
        for r in rows:
            self._strips.pop(r, None)
            self.refresh_line(r)

    def refresh_line(self, y: int) -> None:
        self.refresh(Region(0, y, self.size.width, 1))

    def _style_table(self) -> list[Style]:
        if self._styles is None:
            top = max(int(s) for s in _CLASS_OF) + 1
            table = [Style()] * top
            for sid, cls in _CLASS_OF.items():
                table[sid] = self.get_component_rich_style(cls, partial=True)
            base = self.rich_style
            self._styles = [base + st for st in table]
        return self._styles

    def render_line(self, y: int) -> Strip:
        strip = self._strips.get(y)
        if strip is not None:
            return strip
        frame = self.frame
        if frame is None or y >= frame.height:
            return Strip.blank(self.size.width, self.rich_style)
        strip = frame_strip(frame, y, self._style_table(), self.size.width, self.rich_style)
        self._strips[y] = strip
        return strip


def frame_strip(frame: Frame, y: int, styles: list[Style], width: int, blank: Style) -> Strip:
    """Row `y` of a frame as a Strip, styled by the table (style id → Rich Style)."""
    segments = [Segment(text, styles[code]) for text, code in frame.row_runs(y)]
    return Strip(segments, frame.chars.shape[1]).adjust_cell_length(width, blank)
