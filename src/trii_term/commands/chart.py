"""`chart …`: open a chart and change what it shows (interval, mode, adjustment, studies) and
where it looks (zoom, pan, crosshair). Keys are bindings to these commands.

The chart commands act on the workstation's chart (the pane, or the full-screen chart), so
they need a screen: its `ChartPort` (commands/ports.py) gives the ChartModel, opens and closes
the full-screen chart and says how many bars it shows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from trii_term.commands.registry import Arg, Command, CommandError, Invocation, Result, resolve_symbol
from trii_term.domain import normalize_symbol

if TYPE_CHECKING:
    from trii_term.charting.model import ChartModel
    from trii_term.commands.ports import ChartPort

Outcome = Result | None


def _screen(inv: Invocation) -> ChartPort:
    return inv.ui


def _model(inv: Invocation) -> ChartModel:
    model = _screen(inv).chart
    if model is None:
        raise CommandError("The chart is still starting: try again in a moment.")
    return model


def _spec_errors(fn: Callable[[Invocation], Outcome]) -> Callable[[Invocation], Outcome]:
    """SpecError (a bad interval, study or parameter) becomes a trader message."""
    from trii_term.charting import SpecError

    @functools.wraps(fn)
    def wrapper(inv: Invocation) -> Outcome:
        try:
            return fn(inv)
        except SpecError as exc:
            raise CommandError(f"{exc}. Nothing was changed.") from None

    return wrapper


_SUBCOMMANDS = {  # words a mistyped sub-command leaves behind, and what was meant
    "zoom": "chart zoom in | chart zoom out",
    "page": "chart page left | chart page right",
    "interval": "chart interval 1m|5m|15m|1h|1D|1W",
    "left": "chart left [BARS], BARS a whole number above 0",
    "right": "chart right [BARS], BARS a whole number above 0",
}


@_spec_errors
def open_chart(inv: Invocation) -> Result:
    """chart [SYMBOL] [INTERVAL] [STUDY [PARAMS]…]: tokens are read by what they are."""
    from trii_term.charting.spec import is_interval, is_study, parse_interval, parse_studies

    model = _model(inv)
    tokens = (inv.args.get("args") or "").split()
    symbol = interval = None
    study_tokens: list[str] = []
    for k, tok in enumerate(tokens):
        if k == 0 and tok.lower() in _SUBCOMMANDS:
            raise CommandError(
                f"chart {tok.lower()} needs more: {_SUBCOMMANDS[tok.lower()]}. F1 lists the chart commands."
            )
        if study_tokens or is_study(tok):
            study_tokens.append(tok)
        elif interval is None and is_interval(tok):
            interval = parse_interval(tok)
        elif interval is not None and is_interval(tok):
            raise CommandError(f"chart: two intervals given ({interval} and {tok}); give one.")
        elif symbol is None:
            symbol = resolve_symbol(inv.ctx, tok)
        else:
            raise CommandError(
                f"chart: {tok!r} is not an interval or a study. Usage: chart [SYMBOL] [INTERVAL] "
                "[STUDY [PARAMS]…], e.g. chart MSFT 1D sma 50 rsi"
            )
    studies = parse_studies(study_tokens) if study_tokens else None
    symbol = symbol or model.spec.symbol or inv.ctx.focused_symbol
    if not symbol:
        raise CommandError("No symbol to chart: type one, e.g. chart AAPL 5m")
    model.show(symbol=normalize_symbol(symbol), interval=interval, studies=studies)
    _screen(inv).open_chart()
    return Result(f"Chart {model.spec.symbol} {model.spec.interval}. Esc closes, F1 lists the chart keys.")


@_spec_errors
def interval(inv: Invocation) -> Result:
    from trii_term.charting.spec import INTERVALS, parse_interval

    model = _model(inv)
    given = inv.args.get("interval")
    if given:
        new = parse_interval(given)
    else:
        k = INTERVALS.index(model.spec.interval) if model.spec.interval in INTERVALS else 0
        new = INTERVALS[(k + 1) % len(INTERVALS)]
    model.show(interval=new)
    return Result(f"Interval {new}.")


def interval_prev(inv: Invocation) -> Result:
    from trii_term.charting.spec import INTERVALS

    model = _model(inv)
    k = INTERVALS.index(model.spec.interval) if model.spec.interval in INTERVALS else 0
    new = INTERVALS[(k - 1) % len(INTERVALS)]
    model.show(interval=new)
    return Result(f"Interval {new}.")


@_spec_errors
def mode(inv: Invocation) -> Result:
    from trii_term.charting.spec import parse_mode

    model = _model(inv)
    given = inv.args.get("mode")
    new = parse_mode(given) if given else model.spec.mode.next()
    model.set_mode(new)
    hint = {
        "candles": "thin body ┃ = up, solid █ = down",
        "ohlc": "┤ open on the left, ├ close on the right",
    }.get(new.value, "")
    return Result(f"Mode {new.value}" + (f" ({hint})." if hint else "."))


def adjust(inv: Invocation) -> Result:
    model = _model(inv)
    given = inv.args.get("state")
    new = (not model.spec.adjusted) if given is None else given == "on"
    model.set_adjusted(new)
    what = "split-adjusted" if new else "unadjusted (as traded)"
    if model.spec.intraday:
        return Result(f"Daily and weekly charts will show {what} prices; intraday prices are as traded.")
    return Result(f"Showing {what} prices.")


@_spec_errors
def add(inv: Invocation) -> Result:
    model = _model(inv)
    added = model.add_studies(inv.args["study"].split())
    if not added:
        return Result("Already on the chart.", "warning")
    return Result(f"Added {', '.join(s.label for s in added)} to {model.spec.symbol} (remembered).")


@_spec_errors
def remove(inv: Invocation) -> Result:
    model = _model(inv)
    gone = model.remove_studies(inv.args["study"].split())
    return Result(f"Removed {', '.join(s.label for s in gone)} from {model.spec.symbol}.")


def clear(inv: Invocation) -> Result:
    model = _model(inv)
    model.set_studies([])
    return Result(f"No studies on {model.spec.symbol}.")


def _visible(inv: Invocation) -> int:
    return _screen(inv).chart_visible_bars()


def zoom_in(inv: Invocation) -> Result:
    step = _model(inv).zoom(+1)
    return Result(f"Zoom: {step} column(s) per bar.")


def zoom_out(inv: Invocation) -> Result:
    step = _model(inv).zoom(-1)
    return Result(f"Zoom: {step} column(s) per bar.")


def _move(inv: Invocation, sign: int, page: bool) -> None:
    model = _model(inv)
    visible = _visible(inv)
    n = inv.args.get("bars")
    if n is not None and n < 1:
        raise CommandError("BARS is how many bars to move: a whole number above 0.")
    if n is None:
        if model.view.cursor is not None:
            n = 10 if page else 1
        else:
            n = max(1, visible - 1) if page else max(1, visible // 8)
    model.pan(sign * int(n), visible)


def left(inv: Invocation) -> None:
    _move(inv, -1, False)


def right(inv: Invocation) -> None:
    _move(inv, +1, False)


def page_left(inv: Invocation) -> None:
    _move(inv, -1, True)


def page_right(inv: Invocation) -> None:
    _move(inv, +1, True)


def latest(inv: Invocation) -> None:
    _model(inv).latest()


def oldest(inv: Invocation) -> None:
    _model(inv).oldest(_visible(inv))


def crosshair(inv: Invocation) -> Result:
    on = _model(inv).crosshair()
    if on:
        return Result("Crosshair: ←/→ move one bar, shift+←/→ ten; x hides it.")
    return Result("Crosshair off.")


def close(inv: Invocation) -> None:
    _screen(inv).close_chart()


_STUDY_HELP = "sma|ema|wma N · bb N K · vwap · rsi N · macd FAST SLOW SIGNAL · stoch K SMOOTH D · atr N · obv"
STUDY = Arg("STUDY", "text", help=_STUDY_HELP)
BARS = Arg("BARS", "int", optional=True, help="how many bars")
G = "Chart"

OPEN_COMMANDS: tuple[Command, ...] = (
    Command(
        "chart.open",
        ("chart",),
        "Full-screen chart: chart [SYMBOL] [INTERVAL] [STUDY [PARAMS]…], e.g. chart MSFT 1D sma 50 rsi",
        open_chart,
        (Arg("ARGS", "text", optional=True, help="symbol, interval (1m 5m 15m 1h 1D 1W), studies"),),
        key="c",
        key_label="Chart",
        needs_ui=True,
        group=G,
    ),
)

VIEW_COMMANDS: tuple[Command, ...] = (
    Command(
        "chart.interval",
        ("chart", "interval"),
        "Chart interval 1m 5m 15m 1h 1D 1W (no argument: the next one)",
        interval,
        (Arg("INTERVAL", "word", optional=True),),
        key="i",
        key_label="Interval",
        needs_ui=True,
        group=G,
    ),
    Command(
        "chart.interval-prev",
        ("chart", "interval", "prev"),
        "The previous chart interval",
        interval_prev,
        key="I",
        needs_ui=True,
        group=G,
    ),
    Command(
        "chart.mode",
        ("chart", "mode"),
        "Chart mode candles, ohlc, line, area (no argument: the next one)",
        mode,
        (Arg("MODE", "word", optional=True),),
        key="m",
        key_label="Mode",
        needs_ui=True,
        group=G,
    ),
    Command(
        "chart.adjust",
        ("chart", "adjust"),
        "Daily/weekly prices split-adjusted (on) or as traded (off); no argument toggles",
        adjust,
        (Arg("STATE", "choice", optional=True, choices=("on", "off")),),
        key="u",
        key_label="Adjust",
        needs_ui=True,
        group=G,
    ),
    Command(
        "chart.add",
        ("chart", "add"),
        "Add studies to the chart (remembered for the symbol), e.g. chart add ema 20 macd",
        add,
        (STUDY,),
        key="a",
        key_label="Add study",
        needs_ui=True,
        group=G,
    ),
    Command(
        "chart.remove",
        ("chart", "remove"),
        "Remove a study (all of a kind without parameters), e.g. chart remove sma 50",
        remove,
        (STUDY,),
        aliases=(("chart", "rm"),),
        key="d",
        needs_ui=True,
        group=G,
    ),
    Command(
        "chart.clear", ("chart", "clear"), "Remove every study from the chart", clear, needs_ui=True, group=G
    ),
    Command(
        "chart.zoom-in",
        ("chart", "zoom", "in"),
        "Zoom in (wider bars, fewer of them)",
        zoom_in,
        key="plus,equals_sign",
        key_label="Zoom",
        needs_ui=True,
        group=G,
    ),
    Command(
        "chart.zoom-out",
        ("chart", "zoom", "out"),
        "Zoom out (more bars)",
        zoom_out,
        key="minus",
        needs_ui=True,
        group=G,
    ),
    Command(
        "chart.left",
        ("chart", "left"),
        "Pan back in time (with the crosshair: move it one bar)",
        left,
        (BARS,),
        key="left,h",
        needs_ui=True,
        group=G,
    ),
    Command(
        "chart.right",
        ("chart", "right"),
        "Pan forward in time (with the crosshair: move it one bar)",
        right,
        (BARS,),
        key="right,l",
        needs_ui=True,
        group=G,
    ),
    Command(
        "chart.page-left",
        ("chart", "page", "left"),
        "Pan back a screen (crosshair: ten bars)",
        page_left,
        key="shift+left,pageup,H",
        needs_ui=True,
        group=G,
    ),
    Command(
        "chart.page-right",
        ("chart", "page", "right"),
        "Pan forward a screen (crosshair: ten bars)",
        page_right,
        key="shift+right,pagedown,L",
        needs_ui=True,
        group=G,
    ),
    Command(
        "chart.latest",
        ("chart", "latest"),
        "Jump to the latest bar",
        latest,
        key="end,G",
        needs_ui=True,
        group=G,
    ),
    Command(
        "chart.oldest",
        ("chart", "oldest"),
        "Jump to the oldest bar",
        oldest,
        key="home,g",
        needs_ui=True,
        group=G,
    ),
    Command(
        "chart.crosshair",
        ("chart", "crosshair"),
        "Crosshair on/off: date, OHLCV and every study value at a bar",
        crosshair,
        key="x",
        key_label="Crosshair",
        needs_ui=True,
        group=G,
    ),
)

CLOSE_COMMANDS: tuple[Command, ...] = (
    Command(
        "chart.close",
        ("chart", "close"),
        "Close the full-screen chart (or hide its crosshair first)",
        close,
        key="escape,q",
        key_label="Close",
        needs_ui=True,
        group=G,
    ),
)

COMMANDS = OPEN_COMMANDS + VIEW_COMMANDS + CLOSE_COMMANDS
