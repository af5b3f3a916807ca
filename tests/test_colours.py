"""Colour never misleads: on 16 colours (TERM=xterm, screen, linux) no red on red, and red and
green only where a price falls or rises; with NO_COLOR no colour at all (no-color.org). What the
terminal is sent is read back from the app's own output (its compositor, rendered by its console
for the terminal's colours)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from textual.command import CommandList

from trii_term.paths import Paths
from trii_term.widgets.colours import no_color_set

from .conftest import wait_until, wait_until_it_holds
from .test_app import make_app, ready, screen_text
from .test_palette import hits, type_line

SGR = re.compile(r"\x1b\[([0-9;:]*)m")
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RED, GREEN, MAGENTA = {31, 91, 41, 101}, {32, 92, 42, 102}, {35, 95, 45, 105}


@dataclass(frozen=True)
class Cell:
    char: str
    fg: object  # an SGR colour: 30-37/90-97, "5:n", "2:r,g,b"; None for the default
    bg: object
    attrs: frozenset[int]


def _parse(text: str) -> list[Cell]:
    cells: list[Cell] = []
    fg = bg = None
    attrs: set[int] = set()
    pos = 0
    for m in re.finditer(r"\x1b\[[0-9;:?]*[A-Za-z]", text):
        cells += [Cell(ch, fg, bg, frozenset(attrs)) for ch in text[pos : m.start()]]
        pos = m.end()
        if not m.group().endswith("m"):
            continue
        codes = [int(c) for c in re.split("[;:]", m.group()[2:-1]) if c] or [0]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                fg = bg = None
                attrs = set()
            elif c in (1, 2, 3, 4, 7, 9):
                attrs.add(c)
            elif c in (22, 23, 24, 27, 29):
                attrs -= {22: {1, 2}, 23: {3}, 24: {4}, 27: {7}, 29: {9}}[c]
            elif 30 <= c <= 37 or 90 <= c <= 97:
                fg = c
            elif 40 <= c <= 47 or 100 <= c <= 107:
                bg = c
            elif c == 39:
                fg = None
            elif c == 49:
                bg = None
            elif c in (38, 48):
                value = (
                    f"5:{codes[i + 2]}"
                    if codes[i + 1] == 5
                    else "2:" + ",".join(map(str, codes[i + 2 : i + 5]))
                )
                i += 2 if codes[i + 1] == 5 else 4
                fg, bg = (value, bg) if c == 38 else (fg, value)
            i += 1
    cells += [Cell(ch, fg, bg, frozenset(attrs)) for ch in text[pos:]]
    return cells


def sent(app) -> tuple[str, list[list[Cell]]]:  # type: ignore[no-untyped-def]
    """What the terminal is sent for the whole screen, and it read back cell by cell."""
    update = app.screen._compositor.render_full_update()
    raw_lines = ["".join(strip.render(app.console) for strip in line) for line in update.strips]
    return "\n".join(raw_lines), [_parse(line) for line in raw_lines]


def colour_codes(raw: str) -> list[str]:
    """Every SGR parameter that sets a colour (39/49, back to the terminal's default, are not)."""
    found = []
    for m in SGR.finditer(raw):
        codes = [c for c in re.split("[;:]", m.group(1)) if c]
        for c in codes:
            n = int(c)
            if 30 <= n <= 38 or 40 <= n <= 48 or 90 <= n <= 97 or 100 <= n <= 107:
                found.append(m.group())
    return found


def line_with(lines: list[list[Cell]], text: str) -> list[Cell]:
    for cells in lines:
        if text in "".join(c.char for c in cells):
            return cells
    raise AssertionError(f"{text!r} is not on screen")


def test_no_color_means_set_and_not_empty() -> None:
    assert no_color_set({"NO_COLOR": "1"}) and no_color_set({"NO_COLOR": "0"})
    assert not no_color_set({"NO_COLOR": ""}) and not no_color_set({})


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
async def test_no_color_sends_no_colour_at_all(
    paths: Paths, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLORTERM", "truecolor")
    app = make_app(paths)
    async with app.run_test(size=size) as pilot:
        await ready(app)
        await wait_until(lambda: app.chart is not None and "UNADJ" in screen_text(app))
        raw, lines = sent(app)
        assert colour_codes(raw) == [], set(colour_codes(raw))
        cursor = line_with(lines, "›AAPL")
        assert all(7 in c.attrs for c in cursor if c.char in "›AAPL")  # the cursor: reverse video
        sim = line_with(lines, " SIM ")
        assert any(7 in c.attrs for c in sim)  # the SIM badge, reversed

        await type_line(pilot, "watch a")  # a highlighted option shows without colour
        await wait_until(lambda: len(hits(app)) > 1)
        await pilot.press("down")
        await wait_until(lambda: app.screen.query_one(CommandList).highlighted is not None)
        await pilot.pause()
        raw, lines = sent(app)
        assert colour_codes(raw) == []
        picked = str(app.screen.query_one(CommandList).highlighted_option.prompt).splitlines()[0].strip()
        assert any(7 in c.attrs for c in line_with(lines, picked) if c.char.strip())
        await pilot.press("escape")
        for key, shown in (("f1", "keys and commands"), ("e", "Journal ·"), ("c", "UNADJ")):
            await wait_until(lambda: type(app.screen).__name__ == "WorkstationScreen")
            await pilot.press(key)  # help, the journal, the full-screen chart: no colour either
            await wait_until(lambda shown=shown: shown in screen_text(app))  # type: ignore[misc]
            await pilot.pause()
            raw, _lines = sent(app)
            assert colour_codes(raw) == [], (key, set(colour_codes(raw)))
            await pilot.press("escape")
        await pilot.press("ctrl+q")


async def test_an_empty_no_color_leaves_colour_on(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "")
    monkeypatch.setenv("COLORTERM", "truecolor")
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        assert not app.no_color  # (Textual took an empty NO_COLOR as set, and drew in greys)
        raw, _lines = sent(app)
        assert colour_codes(raw)
        await pilot.press("ctrl+q")


@pytest.mark.parametrize("term", ["xterm", "screen", "linux"])
async def test_sixteen_colours_never_read_as_down_where_nothing_fell(
    paths: Paths, monkeypatch: pytest.MonkeyPatch, term: str
) -> None:
    monkeypatch.setenv("TERM", term)
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.console.color_system == "standard"
        await ready(app)
        await wait_until(lambda: "▼" in screen_text(app) and "-" in screen_text(app))
        for _ in range(3):  # a few frames, flashes included
            await pilot.pause()
            _raw, lines = sent(app)
            table = app.workstation.watchlist.table
            top = table.region.y
            for y in range(top, top + 1 + len(table.rows)):
                cells = lines[y]
                # no red on red (nor any colour on itself) anywhere on a row, the cursor's included
                assert not any(c.fg is not None and _family(c.fg) == _family(c.bg) for c in cells), y
                # red only on what fell, green only on what rose: ▼ or a minus / ▲ or a plus
                for run in _runs(cells):
                    text = "".join(c.char for c in run).strip()
                    colours = {_family(run[0].fg), _family(run[0].bg)}
                    if text and "red" in colours:
                        assert "▼" in text or text.startswith("-"), (y, text)
                    if text and "green" in colours:
                        assert "▲" in text or text.startswith("+"), (y, text)
            # borders (the focused one too) are never red or magenta
            for cells in lines:
                for c in cells:
                    if c.char in "╭╮╰╯│─┃━":
                        assert {_family(c.fg), _family(c.bg)}.isdisjoint({"red", "magenta"})
            badge = [c for c in line_with(lines, " SIM ") if c.bg is not None]
            assert badge and all(_family(c.bg) not in ("red", "magenta") for c in badge)
        await pilot.press("ctrl+q")


def _family(colour: object) -> str | None:
    if not isinstance(colour, int):
        return None
    base = colour % 10 if colour < 90 else (colour - 60) % 10
    return {0: "black", 1: "red", 2: "green", 3: "yellow", 4: "blue", 5: "magenta", 6: "cyan", 7: "white"}[
        base
    ]


def _runs(cells: list[Cell]) -> list[list[Cell]]:
    """Cells drawn in the same colours, side by side (a cell's text and its padding)."""
    out: list[list[Cell]] = []
    for c in cells:
        if c.char in "│┃":
            out.append([])
        elif out and out[-1] and (out[-1][0].fg, out[-1][0].bg) == (c.fg, c.bg):
            out[-1].append(c)
        else:
            out.append([c])
    return [r for r in out if r]


@pytest.mark.parametrize("term", ["xterm-256color", "truecolor"])
async def test_the_cursor_bar_keeps_falling_prices_legible_in_many_colours(
    paths: Paths, monkeypatch: pytest.MonkeyPatch, term: str
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    if term == "truecolor":
        monkeypatch.setenv("COLORTERM", "truecolor")
    else:
        monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.console.color_system == ("truecolor" if term == "truecolor" else "256")
        await ready(app)
        await wait_until(lambda: "-" in screen_text(app).splitlines()[2])  # AAPL is down on the day

        def legible() -> None:
            _raw, lines = sent(app)
            cursor = [c for c in line_with(lines, "›AAPL") if c.char.strip() and c.char not in "│┃"]
            bar = {c.bg for c in cursor}
            assert len(bar) == 1 and None not in bar  # one bar, behind the whole row
            (bg,) = bar
            downs = [c.fg for c in cursor if c.char == "-"]
            assert downs, "AAPL is not down under the cursor"
            r, g, b = _rgb(bg)
            assert r <= max(g, b), bg  # a neutral (blue) bar, not orange or red behind red prices
            assert _contrast(_rgb(downs[0]), (r, g, b)) >= 2.0, (downs[0], bg)

        await wait_until_it_holds(legible)  # once the cursor's row is drawn
        await pilot.press("ctrl+q")


async def test_a_stale_quote_under_the_cursor_stays_legible(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found (a loaded machine, the replay lagging): the cursor row of a stale quote was dimmed
    too, and its falling change read at 1.8:1 on the bar. The AGE column says "stale"; the
    cursor bar keeps full colour."""
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLORTERM", "truecolor")
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = make_app(paths, "[providers.replay]\nspeed = 600\n[ui]\nstale_after = 0.1\n")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        # at 600× a quote is 0.1 market seconds old within a fraction of a millisecond
        await wait_until(lambda: "stale" in (row := screen_text(app).splitlines()[2]) and "-" in row)

        def legible() -> None:  # read from one frame sent; the quote may move on between two
            _raw, lines = sent(app)
            cursor = [c for c in line_with(lines, "›AAPL") if c.char.strip() and c.char not in "│┃"]
            assert "stale" in "".join(c.char for c in cursor) and any(c.char == "-" for c in cursor)
            (bg,) = {c.bg for c in cursor}
            down = next(c.fg for c in cursor if c.char == "-")
            assert _contrast(_rgb(down), _rgb(bg)) >= 2.0, (down, bg)

        await wait_until_it_holds(legible)
        await pilot.press("ctrl+q")


def _rgb(colour: object) -> tuple[int, int, int]:
    from rich.color import Color as RichColor

    kind, _, value = str(colour).partition(":")
    if kind == "2":
        r, g, b = (int(v) for v in value.split(","))
        return r, g, b
    triplet = RichColor.from_ansi(int(value)).get_truecolor()
    return triplet.red, triplet.green, triplet.blue


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    def lum(rgb: tuple[int, int, int]) -> float:
        c = [v / 255 for v in rgb]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
