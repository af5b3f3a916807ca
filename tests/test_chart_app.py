"""The chart as a trader uses it: the pane following the watchlist, the full-screen chart by key
and by command, studies, zoom, pan, the crosshair and the forming bar (Textual Pilot)."""

from __future__ import annotations

import pytest

from trii_term.paths import Paths
from trii_term.screens.chart import ChartScreen

from .conftest import wait_until, wait_until_it_holds
from .test_app import make_app, palette, ready, screen_text


def chart_text(app) -> str:  # type: ignore[no-untyped-def]
    screen = app.screen
    view = screen.chart if isinstance(screen, ChartScreen) else app.workstation.chart_pane.chart
    return view.frame.text() if view is not None and view.frame is not None else ""


async def chart_ready(app) -> None:  # type: ignore[no-untyped-def]
    """Quotes on screen, then the chart (it starts once the first quotes are painted)."""
    await ready(app)
    await wait_until(lambda: app.chart is not None)


def header(app) -> str:  # type: ignore[no-untyped-def]
    return chart_text(app).splitlines()[0] if chart_text(app) else ""


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
async def test_the_pane_follows_the_watchlist_cursor(paths: Paths, size: tuple[int, int]) -> None:
    app = make_app(paths)
    async with app.run_test(size=size) as pilot:
        await chart_ready(app)
        await wait_until(lambda: header(app).startswith("AAPL 1D UNADJ"))
        assert "AAPL 1D UNADJ" in screen_text(app)  # which prices it shows, on screen
        await pilot.press("down")
        await wait_until(lambda: header(app).startswith("MSFT 1D"))
        assert " C " in header(app) and " V " in header(app)
        await pilot.press("ctrl+q")


async def test_chart_command_opens_full_screen_with_studies_and_remembers_them(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await chart_ready(app)
        await palette(pilot, "chart MSFT 1D sma 50 ema 20 rsi macd")
        await wait_until(lambda: isinstance(app.screen, ChartScreen))

        def drawn_with_studies() -> None:  # (once loaded: while loading, the header says so)
            text = chart_text(app)
            assert header(app).startswith("MSFT 1D") and "loading" not in header(app), header(app)
            for label in ("SMA 50 ", "EMA 20 ", "RSI 14 ", "MACD 12 26 9 "):
                assert label in text
            assert "unadjusted · splits 2003-02-18 2:1" in text

        await wait_until_it_holds(drawn_with_studies)
        await pilot.press("a")  # add a study: the palette opens with `chart add ` typed
        await palette(pilot, "bb 20 2.5")
        await wait_until(lambda: "BB 20 2.5 " in chart_text(app))
        await pilot.press("d")
        await palette(pilot, "rsi")
        await wait_until(lambda: "RSI 14 " not in chart_text(app))
        await pilot.press("escape")
        await wait_until(lambda: not isinstance(app.screen, ChartScreen))
        await pilot.press("ctrl+q")

    # after a restart the symbol's studies come back
    app = make_app(paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await chart_ready(app)
        await palette(pilot, "chart MSFT")
        await wait_until(
            lambda: "BB 20 2.5 " in chart_text(app) and "MACD 12 26 9 " in chart_text(app), timeout=5
        )
        assert "RSI 14 " not in chart_text(app)
        await pilot.press("ctrl+q")


async def test_bad_chart_input_is_explained_and_changes_nothing(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(100, 30)) as pilot:
        await chart_ready(app)
        result = await app.execute("chart AAPL 1D macd 26 12")
        assert result is not None and result.level == "error"
        assert "fast (26) must be shorter than slow (12)" in result.message
        result = await app.execute("chart AAPL 3h")
        assert result is not None and "not an interval or a study" in result.message
        result = await app.execute("chart ZZZZ")
        assert result is not None and "Unknown symbol ZZZZ" in result.message
        result = await app.execute("chart zoom sideways")
        assert result is not None and "chart zoom in | chart zoom out" in result.message
        result = await app.execute("chart remove sma abc")
        assert result is not None and result.level == "error" and "parameters are numbers" in result.message
        result = await app.execute("chart add rsi 1")
        assert result is not None and "rsi: n must be >= 2" in result.message
        assert app.chart is not None and not app.chart.spec.studies
        assert not isinstance(app.screen, ChartScreen)
        await pilot.press("ctrl+q")


async def test_keys_zoom_pan_crosshair_mode_interval_adjust(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(100, 30)) as pilot:
        await chart_ready(app)
        await pilot.press("c")
        await wait_until(lambda: isinstance(app.screen, ChartScreen))
        await wait_until(lambda: header(app).startswith("AAPL 1D"))
        model = app.chart
        await wait_until(lambda: not model.loading)  # the history is in: there is room to pan
        view = app.screen.chart
        step = model.view.step
        await pilot.press("plus")
        assert model.view.step == step + 1
        await pilot.press("minus", "minus")
        assert model.view.step == step - 1
        n = len(model.bars)
        await pilot.press("left")
        assert model.view.end is not None and model.view.end < n  # panned back in time
        await pilot.press("end")
        assert model.view.end is None
        await pilot.press("x")  # crosshair on the latest bar
        await wait_until(lambda: "◆" in header(app))
        assert model.view.cursor == n - 1
        await pilot.press("left", "left")
        assert model.view.cursor == n - 3
        cursor_day = str(model.bars.ts[n - 3])[:10]
        await wait_until(lambda: cursor_day in header(app))
        await pilot.press("escape")  # first Esc hides the crosshair, the second closes
        assert model.view.cursor is None and isinstance(app.screen, ChartScreen)
        await pilot.press("m")
        await wait_until(lambda: "AAPL 1D UNADJ ohlc" in header(app))
        await pilot.press("u")
        await wait_until(lambda: header(app).startswith("AAPL 1D ADJ") and not model.loading)
        await wait_until(lambda: "split-adjusted (2000-06-21 2:1, 2005-02-28 2:1)" in chart_text(app))
        await pilot.press("i")  # next interval: weekly
        await wait_until(lambda: header(app).startswith("AAPL 1W") and "week of" in header(app))
        assert view.renders > 3
        await pilot.press("escape")
        await wait_until(lambda: not isinstance(app.screen, ChartScreen))
        await pilot.press("ctrl+q")


async def test_the_forming_bar_updates_from_the_stream(paths: Paths) -> None:
    """On a 1-minute chart the last bar follows the replay's trades, repainting a few rows.
    At 60x a minute is a second: a bar forms over several paints (at 600x most paints find a new
    bar already, which is drawn whole)."""
    app = make_app(paths, "[providers.replay]\nspeed = 60\n")
    async with app.run_test(size=(120, 40)) as pilot:
        await chart_ready(app)
        await app.execute("chart AAPL 1m")
        view = app.screen.chart
        await wait_until(lambda: header(app).startswith("AAPL 1m") and len(app.chart.bars) > 0, timeout=20)
        await wait_until(lambda: view.tail_updates > 3, timeout=20)
        quote = app.session.quotes.get("AAPL")
        await wait_until(lambda: abs(app.chart.bars.close[-1] - app.session.quotes.get("AAPL").last) < 1e-9)
        assert quote is not None
        bars = app.chart.bars
        assert (bars.low[-1] <= bars.close[-1] <= bars.high[-1]) and bars.volume[-1] > 0
        await pilot.press("ctrl+q")


@pytest.mark.parametrize("size", [(60, 20), (40, 12)])
async def test_a_narrow_chart_header_keeps_the_close_and_marks_what_it_leaves_out(
    paths: Paths, size: tuple[int, int]
) -> None:
    app = make_app(paths)
    async with app.run_test(size=size) as pilot:
        await chart_ready(app)
        await pilot.press("c")  # (at 40×12 the chart is full screen only)
        await wait_until(  # loaded: "AAPL 1D UNADJ loading…" until the bars are in
            lambda: (
                isinstance(app.screen, ChartScreen)
                and header(app).startswith("AAPL 1D")
                and " C " in header(app)
            )
        )
        head = header(app).rstrip()
        assert " C " in head and ("▲" in head or "▼" in head or "=" in head), head
        assert head.endswith("…"), head  # open, high, low or volume left out, and it says so
        await pilot.press("ctrl+q")
