"""The workstation driven through keys, as a trader uses it (Textual Pilot), at 80×24 and 160×50."""

from __future__ import annotations

import re

import pytest

from trii_term.app import TriiTermApp
from trii_term.config import parse_config
from trii_term.paths import Paths
from trii_term.session import Session
from trii_term.store.db import Store

from .conftest import keys_wait_on_the_app, store_held_by_another_process, wait_until

FAST = "[providers.replay]\nspeed = 600\n"
SIZES = [(80, 24), (160, 50)]


_APPS: list[TriiTermApp] = []


def make_app(paths: Paths, text: str = FAST) -> TriiTermApp:
    config = parse_config(text, paths.config_file)
    app = TriiTermApp(Session(config, paths, memory_fallback=True))
    _APPS.append(app)
    return app


@pytest.fixture(autouse=True)
async def _stop_sessions_left_running():  # type: ignore[no-untyped-def]
    """A failing test may end before ctrl+q: stop its session so no writer thread is left."""
    yield
    while _APPS:
        app = _APPS.pop()
        if app.session.started:
            await app.session.stop()


def screen_text(app: TriiTermApp) -> str:
    """What the terminal shows now, as plain text (top screen, with what shows through)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def row_of(app: TriiTermApp, symbol: str) -> str:
    for line in screen_text(app).splitlines():
        if re.search(rf"[│┃][› ]{re.escape(symbol)}\s", line):  # (┃: focused, NO_COLOR)
            return line
    raise AssertionError(f"{symbol} is not on screen:\n{screen_text(app)}")


def priced(app: TriiTermApp, symbol: str) -> bool:
    try:
        return re.search(r"[▲▼ ] [\d,]+\.\d\d", row_of(app, symbol)) is not None
    except AssertionError:
        return False


def rows(app: TriiTermApp) -> list[str]:
    return list(app.workstation.watchlist.table.rows)


async def ready(app: TriiTermApp) -> None:
    """Started, and the first rows on screen priced (a short screen shows fewer than four)."""
    await wait_until(lambda: app.ready)
    shown = lambda: max(1, min(4, app.workstation.watchlist.table.size.height - 1))  # noqa: E731
    await wait_until(lambda: all(priced(app, s) for s in rows(app)[: shown()]))


def asking(app: TriiTermApp) -> bool:
    """The confirm dialog is on screen and takes answers (a key typed before it had been on
    screen a moment does not)."""
    from textual._time import get_time

    from trii_term.screens.confirm import SETTLE, ConfirmScreen

    screen = app.screen
    armed = screen._armed_at if isinstance(screen, ConfirmScreen) else None
    return armed is not None and get_time() >= armed + SETTLE


async def palette(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    """Open the palette, type a command line, wait for its hits, press Enter."""
    from textual.command import CommandList, CommandPalette

    app = pilot.app
    if not CommandPalette.is_open(app):
        await pilot.press("ctrl+p")
        await wait_until(lambda: CommandPalette.is_open(app))
    with keys_wait_on_the_app():  # the hits below are what the typing is waited on for
        for ch in text:
            await pilot.press(ch if ch != " " else "space")
    await wait_until(
        lambda: (
            app.screen.query_one(CommandList).option_count > 0
            and any(text.strip() in str(o.prompt) for o in app.screen.query_one(CommandList)._options)
        )
    )
    typed_in = app.screen
    await pilot.press("enter")
    await wait_until(lambda: app.screen is not typed_in)  # closed (or reopened after an error)
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
async def test_opens_streaming_with_a_status_bar(paths: Paths, size: tuple[int, int]) -> None:
    app = make_app(paths)
    async with app.run_test(size=size) as pilot:
        await ready(app)
        await wait_until(lambda: "LIVE" in screen_text(app).splitlines()[-2])
        text = screen_text(app)
        assert "Watchlist ▸Default" in text
        for head in ("SYMBOL", "LAST", "CHG", "%CHG", "BID", "ASK", "VOLUME", "AGE"):
            assert head in text
        assert rows(app) == ["AAPL", "MSFT", "IBM", "GOOG"]
        status = text.splitlines()[-2]
        assert "LIVE" in status and "SIM" in status and "NYSE OPEN" in status
        assert re.search(r"\d{2}:\d{2}:\d{2}", status) and "2013-03-01" in status
        assert "/s" in status and "lag" in status
        await wait_until(lambda: "▲" in screen_text(app) or "▼" in screen_text(app))
        if size[0] >= 160:
            assert "Apple Inc." in text and "HIGH" in text  # wide: more columns
            assert "×600" in status and "EST" in status
        assert "Replaying 2013-03-01" in text
        await pilot.press("ctrl+q")
    assert not app.session.started  # quit stopped the feed and flushed the store


@pytest.mark.parametrize("size", SIZES)
async def test_palette_adds_a_symbol_and_refuses_an_unknown_one(paths: Paths, size: tuple[int, int]) -> None:
    app = make_app(paths)
    async with app.run_test(size=size) as pilot:
        await ready(app)
        await palette(pilot, "watch add SPX")
        assert rows(app)[-1] == "SPX"
        await wait_until(lambda: priced(app, "SPX"))
        assert "Added SPX to Default." in screen_text(app)
        assert row_of(app, "SPX").count("—") >= 2  # an index has no bid/ask

        before = rows(app)
        await palette(pilot, "watch add TSLA")
        assert rows(app) == before
        text = screen_text(app)
        assert "✖ Unknown symbol TSLA" in text and "Nothing was" in text
        await pilot.press("ctrl+q")


async def test_palette_lists_every_command(paths: Paths) -> None:
    from textual.command import CommandList, CommandPalette

    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("ctrl+p")
        await wait_until(lambda: CommandPalette.is_open(app))
        listing = app.screen.query_one(CommandList)
        await wait_until(lambda: listing.option_count >= len(app.session.commands))
        shown = " ".join(str(o.prompt) for o in listing._options)
        for cmd in app.session.commands:
            assert cmd.usage in shown, cmd.usage
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def test_keys_add_remove_reorder_and_sort(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        table = app.workstation.watchlist.table
        # `a` opens the palette with the command typed: the trader types the symbol
        await pilot.press("a")
        from textual.command import CommandInput, CommandPalette

        await wait_until(  # open, and the command typed in for the trader
            lambda: CommandPalette.is_open(app) and app.screen.query_one(CommandInput).value == "watch add "
        )
        assert app.screen.query_one(CommandInput).value == "watch add "
        await palette(pilot, "COMP")
        assert rows(app) == ["AAPL", "MSFT", "IBM", "GOOG", "COMP"]

        await pilot.press("down", "down")
        assert table.cursor_symbol == "IBM"
        await pilot.press("shift+up")
        assert rows(app) == ["AAPL", "IBM", "MSFT", "GOOG", "COMP"] and table.cursor_symbol == "IBM"
        await pilot.press("J")
        assert rows(app) == ["AAPL", "MSFT", "IBM", "GOOG", "COMP"]
        assert "›IBM" in screen_text(app)

        await pilot.press("x")  # remove the highlighted row
        assert rows(app) == ["AAPL", "MSFT", "GOOG", "COMP"]
        assert "Removed IBM from Default." in screen_text(app)

        await pilot.press("s")  # sort: symbol ascending
        assert rows(app) == ["AAPL", "COMP", "GOOG", "MSFT"]
        assert "SYMBOL▲" in screen_text(app)
        await pilot.press("S")
        assert rows(app) == ["MSFT", "GOOG", "COMP", "AAPL"]
        await pilot.press("s")  # next column: last price, high to low
        await wait_until(lambda: rows(app) == ["COMP", "GOOG", "AAPL", "MSFT"])
        assert "LAST▼" in screen_text(app) and "by last ▼ desc" in screen_text(app)
        await pilot.press("ctrl+q")


async def test_header_click_sorts(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        table = app.workstation.watchlist.table
        await pilot.click(table, offset=(2, 0))  # the SYMBOL header
        assert rows(app) == ["AAPL", "GOOG", "IBM", "MSFT"]
        await pilot.click(table, offset=(2, 0))  # again: reverse
        assert rows(app) == ["MSFT", "IBM", "GOOG", "AAPL"]
        await pilot.press("ctrl+q")


@pytest.mark.parametrize("size", SIZES)
async def test_lists_new_rename_switch_delete_persist(paths: Paths, size: tuple[int, int]) -> None:
    app = make_app(paths)
    async with app.run_test(size=size) as pilot:
        await ready(app)
        await pilot.press("n")
        await palette(pilot, "Banks")
        assert app.session.watchlists.active.name == "Banks"  # type: ignore[union-attr]
        assert "Empty watchlist" in screen_text(app)
        await palette(pilot, "watch add IBM MSFT")
        await pilot.press("R")  # rename: the palette opens with the name shown, selected
        from textual.command import CommandInput

        await wait_until(
            lambda: (
                app.screen.query("CommandInput")
                and app.screen.query_one(CommandInput).value == "watch rename Banks"
            )
        )
        await palette(pilot, "Old tech")  # typing replaces the name
        assert "▸Old tech" in screen_text(app)
        await pilot.press("right_square_bracket")
        assert app.session.watchlists.active.name == "Default"  # type: ignore[union-attr]
        await pilot.press("right_square_bracket")
        assert rows(app) == ["IBM", "MSFT"]
        await palette(pilot, "watch new Scratch")
        await palette(pilot, "watch delete Scratch")
        assert app.session.watchlists.names() == ["Default", "Old tech"]  # type: ignore[union-attr]
        await pilot.press("ctrl+q")

    again = make_app(paths)
    async with again.run_test(size=size) as pilot:
        await wait_until(lambda: again.ready)
        assert again.session.watchlists.names() == ["Default", "Old tech"]  # type: ignore[union-attr]
        assert again.session.watchlists.active.name == "Old tech"  # type: ignore[union-attr]
        assert rows(again) == ["IBM", "MSFT"]
        await pilot.press("ctrl+q")


async def test_quit_flushes_the_store(paths: Paths) -> None:
    from trii_term.domain import MarketBatch, Trade

    app = make_app(paths)
    published: list[Trade] = []
    app.session.bus.subscribe(
        MarketBatch, lambda b: published.extend(e for e in b.events if type(e) is Trade)
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await wait_until(lambda: len(published) > 500)
        await pilot.press("ctrl+q")  # at once: rows are still queued in the writer
    store = Store.open(paths.default_store, read_only=True)  # closed cleanly: it opens again
    try:
        n = store.con.execute("SELECT count(*) FROM ticks").fetchall()[0][0]
        assert n == len(published) > 500  # every trade the feed published, none lost
    finally:
        store.close()


async def test_ticks_flash_on_screen(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        table = app.workstation.watchlist.table
        flash = {table._style("flash-up"), table._style("flash-down")}

        def flashing() -> bool:
            for y in range(1, 1 + len(rows(app))):
                if any(
                    seg.style in flash or (seg.style and seg.style.bgcolor in {f.bgcolor for f in flash})
                    for seg in table.render_line(y)
                    if "▲" in seg.text or "▼" in seg.text
                ):
                    return True
            return False

        await wait_until(flashing)
        await pilot.press("ctrl+q")


async def test_stale_quotes_are_dimmed_and_marked(paths: Paths) -> None:
    # FB did not trade before its IPO on 2012-05-18: its quote never updates while NYSE is open
    app = make_app(
        paths,
        '[feed]\nsymbols = ["IBM", "FB"]\n[providers.replay]\ndate = "2012-05-17"\n'
        "speed = 600\n[ui]\nstale_after = 120\n",
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: app.ready)
        # one frame, together: at 600x two market minutes are 0.2 s, and a loaded machine can
        # stall the loop that long, so a single look at IBM alone could catch such a frame
        await wait_until(
            lambda: "stale" in row_of(app, "FB") and "stale" not in row_of(app, "IBM"), timeout=15
        )
        table = app.workstation.watchlist.table
        line = table.render_line(1 + rows(app).index("FB"))
        assert any(seg.style is not None and seg.style.dim for seg in line if seg.text.strip())
        await pilot.press("ctrl+q")


async def test_help_lists_keys_and_closes(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("f1")
        await wait_until(lambda: "keys and commands" in screen_text(app))
        text = screen_text(app)
        assert "watch add SYMBOL…" in text and "a/ins" in text
        await pilot.press("escape")
        await wait_until(lambda: "keys and commands" not in screen_text(app))
        await pilot.press("ctrl+q")


async def test_keys_can_be_remapped_in_the_config(paths: Paths) -> None:
    app = make_app(paths, FAST + '[keys]\n"watch.remove" = "ctrl+x"\n')
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("x")  # no longer bound
        assert rows(app) == ["AAPL", "MSFT", "IBM", "GOOG"]
        await pilot.press("ctrl+x")
        assert rows(app) == ["MSFT", "IBM", "GOOG"]
        await pilot.press("ctrl+q")


async def test_a_second_workstation_runs_on_memory_when_the_store_is_in_use(paths: Paths) -> None:
    Store.open(paths.default_store).close()
    with store_held_by_another_process(paths.default_store) as holder:
        app = make_app(paths)
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(app)
            text = screen_text(app)
            assert "MEMORY ONLY" in text.splitlines()[-2]
            assert f"PID {holder.pid}" in text and "nothing it records or changes is saved" in text
            await pilot.press("ctrl+q")


async def test_replay_pause_key(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("p")
        assert app.session.clock.paused
        await wait_until(lambda: "PAUSED" in screen_text(app).splitlines()[-2])
        await pilot.press("p")
        assert not app.session.clock.paused
        await pilot.press("ctrl+q")


async def test_watch_select_moves_the_cursor_from_the_palette(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await palette(pilot, "watch select GOOG")
        assert app.workstation.watchlist.table.cursor_symbol == "GOOG"
        assert "›GOOG" in screen_text(app)
        await palette(pilot, "go MSFT")
        assert app.workstation.watchlist.table.cursor_symbol == "MSFT"
        await palette(pilot, "watch select SPX")
        assert "SPX is not in watchlist 'Default'" in screen_text(app)
        await pilot.press("ctrl+q")


async def test_an_unexpected_error_goes_to_the_log_not_the_screen(
    paths: Paths, capfd: pytest.CaptureFixture[str]
) -> None:
    from trii_term.logs import setup_logging

    setup_logging(paths)
    app = make_app(paths)

    def boom() -> None:
        raise ZeroDivisionError("division by zero in a callback")

    with pytest.raises(ZeroDivisionError):  # the test harness re-raises what stopped the app
        async with app.run_test(size=(80, 24)):
            await ready(app)
            app.call_later(boom)
            await wait_until(lambda: app._exception is not None)  # it stops; run_test re-raises
    shown = " ".join(capfd.readouterr().err.split())  # what the terminal shows after the app
    assert "unexpected error: ZeroDivisionError" in shown and "Details:" in shown
    assert "Traceback" not in shown and "locals" not in shown
    assert app.return_code == 1
    logged = paths.log_file.read_text()
    assert "Traceback (most recent call last)" in logged and "division by zero in a callback" in logged
    await app.session.stop()
