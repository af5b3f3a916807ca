"""The palette runs only what the trader typed, or a hit the trader picked: an unknown line says so
with "did you mean" and runs nothing, however the fuzzy hits arrived (Textual Pilot)."""

from __future__ import annotations

import pytest
from textual.command import CommandInput, CommandList, CommandPalette

from trii_term.paths import Paths
from trii_term.widgets.palette import TriiPalette

from .conftest import wait_until
from .test_app import make_app, ready, rows, screen_text

SIZES = [(80, 24), (160, 50)]


async def type_line(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    if not CommandPalette.is_open(app):
        await pilot.press("ctrl+p")
        await wait_until(lambda: CommandPalette.is_open(app))
    typed = app.screen.query_one(CommandInput).value + text
    for ch in text:
        await pilot.press(ch if ch != " " else "space")
    await wait_until(lambda: app.screen.query_one(CommandInput).value == typed)  # all of it typed in


def hits(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(o.prompt) for o in app.screen.query_one(CommandList)._options]


def state(app) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    """What a wrongly run command would change: rows, sort, list, replay clock, screens."""
    w = app.session.watchlists.active
    return (rows(app), w.sort_column, w.sort_desc, w.name, app.session.clock.paused, len(app.screen_stack))


@pytest.mark.parametrize("size", SIZES)
async def test_a_misspelt_command_runs_nothing_and_says_did_you_mean(
    paths: Paths, size: tuple[int, int]
) -> None:
    app = make_app(paths)
    async with app.run_test(size=size) as pilot:
        await ready(app)
        before = state(app)
        await type_line(pilot, "pasue")
        # the fuzzy hits are listed (the bug ran the first of them: `watch sort`)
        await wait_until(lambda: any("replay pause" in h for h in hits(app)))
        await pilot.press("enter")
        await wait_until(lambda: "Unknown command 'pasue'" in screen_text(app))
        text = screen_text(app)
        assert "Did you mean: replay pause?" in text
        assert "Nothing was run" in text
        assert isinstance(app.screen, TriiPalette)  # still open, the line kept to correct
        assert app.screen.query_one(CommandInput).value == "pasue"
        await pilot.press("escape")
        await wait_until(lambda: not CommandPalette.is_open(app))
        assert state(app) == before
        assert "Unknown command 'pasue'" in app.workstation.message_line.message
        await pilot.press("ctrl+q")


async def test_a_line_of_no_command_runs_nothing(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await wait_until(lambda: app.chart is not None and app.chart.view is not None)
        before = state(app)
        view_before = (app.chart.view.end, app.chart.view.cursor)  # type: ignore[union-attr]
        await type_line(pilot, "foo bar")
        await wait_until(lambda: len(hits(app)) > 0)  # whatever fuzzy hits there are (`chart right`)
        await pilot.press("enter")
        await wait_until(lambda: "Unknown command 'foo bar'" in screen_text(app))
        assert "Nothing was run" in screen_text(app)
        await pilot.press("escape")
        assert state(app) == before
        assert (app.chart.view.end, app.chart.view.cursor) == view_before  # type: ignore[union-attr]
        await pilot.press("ctrl+q")


async def test_enter_before_the_hits_arrive_runs_the_line_typed(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("ctrl+p")
        await wait_until(lambda: CommandPalette.is_open(app))
        app.screen.query_one(CommandInput).value = "pasue"  # pasted: Enter comes at once
        await pilot.press("enter")
        await wait_until(lambda: "Unknown command 'pasue'" in screen_text(app))
        assert not app.session.clock.paused and app.session.watchlists.active.sort_column is None  # type: ignore[union-attr]
        app.screen.query_one(CommandInput).value = "watch sort last desc"
        await pilot.press("enter")
        await wait_until(lambda: app.session.watchlists.active.sort_column == "last")  # type: ignore[union-attr]
        assert not CommandPalette.is_open(app)
        await pilot.press("ctrl+q")


async def test_a_valid_line_runs_and_a_hit_picked_with_the_arrows_runs(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await type_line(pilot, "watch sort symbol")
        await pilot.press("enter")
        await wait_until(lambda: rows(app) == ["AAPL", "GOOG", "IBM", "MSFT"])
        assert not CommandPalette.is_open(app)

        # a fuzzy hit is run only once the trader has moved onto it
        await type_line(pilot, "pasue")
        await wait_until(lambda: any("replay pause" in h for h in hits(app)))
        listing = app.screen.query_one(CommandList)
        assert listing.highlighted is None  # nothing is picked for the trader
        for _ in range(listing.option_count):
            await pilot.press("down")
            option = listing.highlighted_option
            if option is not None and "replay pause" in str(option.prompt):
                break
        await pilot.press("enter")
        await wait_until(lambda: app.session.clock.paused)
        assert rows(app) == ["AAPL", "GOOG", "IBM", "MSFT"]
        await pilot.press("ctrl+q")


async def test_enter_on_an_empty_line_runs_nothing(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        before = state(app)
        await pilot.press("ctrl+p")
        await wait_until(lambda: CommandPalette.is_open(app))
        await wait_until(lambda: len(hits(app)) >= len(app.session.commands))
        await pilot.press("enter")
        await wait_until(lambda: "Type a command" in screen_text(app))
        assert CommandPalette.is_open(app)
        await pilot.press("escape")
        assert state(app) == before
        await pilot.press("ctrl+q")


async def test_a_symbol_typed_alone_adds_it(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await type_line(pilot, "spx")
        await pilot.press("enter")
        await wait_until(lambda: rows(app)[-1] == "SPX")
        await pilot.press("ctrl+q")


def test_suggestions_name_the_command_meant(paths: Paths) -> None:
    from trii_term.commands import core_registry
    from trii_term.widgets.palette import suggestions

    registry = core_registry()
    assert suggestions(registry, ["pasue"]) == ["replay pause"]
    assert suggestions(registry, ["wach", "add", "AAPL"])[0] == "watch add"
    assert suggestions(registry, ["foo", "bar"]) == []
    assert len(suggestions(registry, ["watch"])) <= 3


async def test_rename_replaces_the_name_as_you_type_or_edits_it(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        lists = app.session.watchlists
        assert lists is not None and lists.active.name == "Default"
        await pilot.press("R")
        await wait_until(lambda: isinstance(app.screen, TriiPalette))
        box = app.screen.query_one(CommandInput)
        await wait_until(lambda: box.value == "watch rename Default")
        assert box.selected_text == "Default"  # shown, selected: what is typed replaces it
        for ch in "Tech":
            await pilot.press(ch)
        assert box.value == "watch rename Tech"
        await pilot.press("enter")
        await wait_until(lambda: lists.active.name == "Tech")

        await pilot.press("R")  # → keeps the name, to edit it
        await wait_until(lambda: isinstance(app.screen, TriiPalette))
        box = app.screen.query_one(CommandInput)
        await wait_until(lambda: box.value == "watch rename Tech")
        await pilot.press("end", "space", "2")
        assert box.value == "watch rename Tech 2"
        await pilot.press("enter")
        await wait_until(lambda: lists.active.name == "Tech 2")

        await pilot.press("R")  # Enter at once: the name stays, and it says so
        await wait_until(lambda: isinstance(app.screen, TriiPalette))
        await pilot.press("enter")
        await wait_until(lambda: "'Tech 2' keeps its name." in app.workstation.message_line.message)
        assert lists.active.name == "Tech 2"
        await pilot.press("ctrl+q")


async def test_a_line_that_fails_comes_back_with_why_until_the_trader_edits_it(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await type_line(pilot, "watch add ZZZZ")
        await pilot.press("enter")  # a command it is, but it cannot run: back in the palette
        await wait_until(
            lambda: (
                isinstance(app.screen, TriiPalette)
                and app.screen.query_one(CommandInput).value == "watch add ZZZZ"
                and "Unknown symbol ZZZZ" in app.workstation.message_line.message
            )
        )
        reopened = app.screen
        assert isinstance(reopened, TriiPalette)
        await pilot.pause()  # the value typed in for the trader has been seen (Input.Changed)
        await pilot.pause()
        # the reason stays in the palette (the bug: the prefill's own change cleared it at once)
        assert reopened.problem.display
        said = "✖ Unknown symbol ZZZZ"
        await wait_until(lambda: screen_text(app).count(said) == 2)  # the palette's, the message line's
        await pilot.press("backspace")  # the trader edits the line: the reason no longer applies
        await wait_until(lambda: not reopened.problem.display)
        await wait_until(lambda: screen_text(app).count(said) == 1)  # the message line keeps it
        assert reopened.query_one(CommandInput).value == "watch add ZZZ"
        await pilot.press("ctrl+q")
