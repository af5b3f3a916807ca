"""No number is ever cut: the watchlist's columns give way before a price is truncated, text that
is cut ends with `…`, and nothing is drawn over a border — from 20 to 250 columns, at 40×12 and
60×20 (the plan as a property; the workstation through Pilot)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trii_term import format as fmt
from trii_term.domain import DayStats, MarketBatch, Quote, Trade
from trii_term.paths import Paths
from trii_term.widgets.keys_footer import KeysFooter
from trii_term.widgets.quote_columns import DROP_ORDER, EXTRAS, GUTTER, TEXT_COLUMNS, fit, plan

from .conftest import wait_until, wait_until_it_holds
from .test_app import make_app, priced, ready, rows, screen_text

PRICES = [0.05, 9.99, 27.77, 437.92, 1514.72, 2456.35, 19234.5, 123456.78, 9876543.21]
SYMBOLS = ["A", "IBM", "AAPL", "NSE:INFY", "NSE:BAJAJ-AUTO", "NSE:NIFTY 50"]


def row_texts(symbol: str, last: float, prev: float, bid: float, vol: float, age: str) -> dict[str, str]:
    """A row's cells as the watchlist formats them."""
    return {
        "symbol": symbol,
        "name": "International Business Machines",
        "last": f"{fmt.UP} {fmt.price(last)}",
        "change": fmt.signed(last - prev),
        "pct": fmt.signed_pct((last / prev - 1) * 100),
        "bid": fmt.price(bid),
        "ask": fmt.price(bid * 1.001),
        "high": fmt.price(last * 1.01),
        "low": fmt.price(last * 0.99),
        "volume": fmt.volume(vol),
        "age": age,
    }


rows_strategy = st.lists(
    st.builds(
        row_texts,
        st.sampled_from(SYMBOLS),
        st.sampled_from(PRICES),
        st.sampled_from(PRICES),
        st.sampled_from(PRICES),
        st.sampled_from([0, 950, 1_234_567, 98_765_432_100]),
        st.sampled_from(["0s", "59s", "stale 59m", "—"]),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(width=st.integers(20, 250), table=rows_strategy)
def test_the_plan_never_cuts_a_number(width: int, table: list[dict[str, str]]) -> None:
    needs = {key: max(len(r[key]) for r in table) for key in table[0] if key != "name"}
    layout = plan(width, needs)
    keys = layout.keys()
    assert keys[:1] == ["symbol"] and "last" in keys  # the symbol and the last price always stay
    gap = " " * layout.gap
    for r in table:
        line = " " * GUTTER + gap.join(fit(r[c.key], c.width, c.align) for c in layout.columns)
        assert len(line) <= width, (width, line)
        for c in layout.columns:
            shown = fit(r[c.key], c.width, c.align).strip()
            if c.key in TEXT_COLUMNS:
                assert shown == r[c.key].strip() or shown.endswith("…"), (c.key, shown)
            else:
                assert shown == r[c.key], (c.key, shown, r[c.key], width)
    # columns give way least important first; the extras only when every base column is shown
    dropped = [group for group in DROP_ORDER if not set(group) <= set(keys)]
    assert dropped == list(DROP_ORDER[: len(dropped)])
    if any(k in keys for k in EXTRAS):
        assert not dropped


def test_a_tiny_width_cuts_the_symbol_before_the_price() -> None:
    needs = {"symbol": 14, "last": len("▲ 123,456.78")}
    layout = plan(20, needs)
    assert layout.keys() == ["symbol", "last"]
    symbol, last = layout.columns
    assert last.width >= needs["last"]
    assert fit("NSE:BAJAJ-AUTO", symbol.width, "<").endswith("…")


def test_fit_marks_what_it_cuts() -> None:
    assert fit("International Business Machines", 10, "<") == "Internati…"
    assert fit("437.92", 5, ">") == "437.…"  # (a plan never asks this of a number)
    assert fit("437.92", 8, ">") == "  437.92"


# -- on screen ----------------------------------------------------------------------------------


def boxes(text: str) -> list[tuple[int, int, int, int]]:
    """Every rounded box drawn (top row, left col, bottom row, right col); a box whose bottom
    is not drawn, or whose sides are drawn over, fails."""
    lines = text.splitlines()
    found = []
    for y, line in enumerate(lines):
        for m in re.finditer("╭", line):
            left = m.start()
            right = line.find("╮", left)
            assert right > left, f"a box at row {y} has no top-right corner:\n{text}"
            bottom = next((b for b in range(y + 1, len(lines)) if lines[b][left : left + 1] == "╰"), None)
            assert bottom is not None, f"the box at row {y} has no bottom border:\n{text}"
            assert lines[bottom][right : right + 1] == "╯", f"box at row {y}: bottom-right corner:\n{text}"
            for b in range(y + 1, bottom):
                row = lines[b]
                assert row[left] == "│" and row[right] == "│", f"row {b} is drawn over a border:\n{text}"
            found.append((y, left, bottom, right))
    return found


def shown_cells(app) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    """The watchlist's rows as drawn now, cut into the columns the table laid out."""
    table = app.workstation.watchlist.table
    layout = table.layout
    out = []
    for y in range(1, 1 + min(len(rows(app)), table.size.height - 1)):
        line = table.render_line(y).text
        cells, x = {}, GUTTER
        for col in layout.columns:
            cells[col.key] = line[x : x + col.width].strip()
            x += col.width + layout.gap
        out.append(cells)
    return out


def expected(app, symbol: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    q = app.session.quotes.get(symbol)
    dec = app.session.instruments[symbol].price_decimals
    return {
        "last": f"{fmt.arrow(q.direction)} {fmt.price(q.last, dec)}".strip(),
        "change": fmt.signed(q.change, dec),
        "pct": fmt.signed_pct(q.change_pct),
        "bid": fmt.price(q.bid, dec),
        "ask": fmt.price(q.ask, dec),
        "high": fmt.price(q.high, dec),
        "low": fmt.price(q.low, dec),
        "volume": fmt.volume(q.volume),
    }


# FB did not trade before its IPO on 2012-05-18: the replay of 2012-05-17 never prints it, so the
# six-figure prices this test prints for it (on the bus, as a feed would) stay
NO_FB_YET = '[feed]\nsymbols = ["IBM", "FB", "MSFT"]\n[providers.replay]\ndate = "2012-05-17"\nspeed = 600\n'


async def huge_prices(app) -> None:  # type: ignore[no-untyped-def]
    """A six-figure FB: every number as wide as it gets (change +123,455.28, +8230.35%)."""
    ts = app.session.clock.now_ns()
    day = app.session.market_of("FB").local(ts).date()
    events = [
        DayStats(ts, "FB", day, 1.5, 1.5, 1.5, 1.5, None, 0.0),
        Trade(ts, "FB", 123_456.78, 98_765_432_100),
        Quote(ts, "FB", 123_456.77, 123_456.79, 100, 100),
    ]
    app.session.bus.publish(MarketBatch("replay", events, 0))
    await wait_until(lambda: "123,456.78" in screen_text(app))


@pytest.mark.parametrize("size", [(40, 12), (60, 20), (80, 24), (120, 40)])
async def test_every_number_on_screen_is_whole_and_nothing_crosses_a_border(
    paths: Paths, size: tuple[int, int]
) -> None:
    app = make_app(paths, NO_FB_YET)
    async with app.run_test(size=size) as pilot:
        await wait_until(lambda: app.ready)
        await wait_until(lambda: priced(app, "IBM"))
        await huge_prices(app)

        def whole() -> None:
            text = screen_text(app)
            assert boxes(text), text  # the watchlist's box at least, closed
            for symbol, cells in zip(rows(app), shown_cells(app), strict=False):
                want = expected(app, symbol)
                assert cells["symbol"] == symbol
                for key, shown in cells.items():
                    if key in want:
                        assert shown == want[key], (size, symbol, key, shown, want[key], text)
            assert "FB" in text and "123,456.78" in text

        for _ in range(3):  # and as the replay moves on: each frame once it is laid out
            await wait_until_it_holds(whole)
            moved = app.session.clock.now_ns()
            await wait_until(lambda: app.session.clock.now_ns() > moved)  # noqa: B023
        await pilot.press("ctrl+q")


async def test_the_status_bar_drops_whole_parts_before_a_number(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        bar = app.workstation.status_bar
        for width in range(20, 121):
            shown = bar.build(width).plain
            assert len(shown) <= width
            assert not re.search(r"\d…", shown), (width, shown)  # the bug: `│ 4…` for 412 msg/s
            if width >= 40:
                assert re.search(r"NYSE OPEN \d\d:\d\d:\d\d", shown), (width, shown)
        await pilot.press("ctrl+q")


async def test_the_store_lag_is_never_a_bare_number(paths: Paths) -> None:
    """However narrow, the store's lag keeps its label or gives way whole (at 80×24 with the
    chat's AI cost it once read a bare "0ms")."""
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        app.session.ai_cost_usd = 0.0029
        bar = app.workstation.status_bar
        for width in range(20, 121):
            parts = [p.strip() for p in bar.build(width).plain.split("│")]
            assert not [p for p in parts if re.fullmatch(r"[\d.]+m?s", p)], (width, parts)
            assert any(p.startswith(("store lag ", "lag ")) for p in parts) or width < 80, (width, parts)
        await pilot.press("ctrl+q")


async def test_a_long_message_is_marked_when_it_does_not_fit(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(40, 12)) as pilot:
        await ready(app)
        app.message("word " * 60 + "THE-END", "warning")

        def marked() -> None:
            text = screen_text(app)
            assert "word word" in text, text  # (the message is drawn)
            assert "THE-END" not in text and "…" in text
            assert boxes(text)

        await wait_until_it_holds(marked)
        await pilot.press("ctrl+q")


def test_the_chart_readout_keeps_the_close_and_marks_what_it_leaves_out() -> None:
    from trii_term.charting.render import readout_fitting, whole_words

    parts = ["2013-03-01", "O 438.10", "H 438.15", "L 437.50", "C 437.36", "▼-0.92%", "V 1.69M"]
    assert readout_fitting(parts, 200) == parts
    assert readout_fitting(parts, len(" ".join(parts))) == parts  # exactly the room: all of it
    for room in range(0, 80):
        shown = readout_fitting(parts, room)
        assert len(" ".join(shown)) <= max(room, 1)
        assert all(p in parts for p in shown if p != "…")  # whole parts only
        if shown != parts:
            assert shown[-1:] == ["…"] or shown == []
        if room >= 20:
            assert "C 437.36" in shown and "▼-0.92%" in shown
    assert whole_words("MACD 12 26 9 MACD 1.23 SIGNAL 0.98", 14) == "MACD 12 26 9 …"


@pytest.mark.parametrize("width", [24, 32, 36, 60, 68, 80, 116])
def test_help_shows_every_command_whole_at_any_width(width: int) -> None:
    from rich.console import Console

    from trii_term.app import UI_COMMANDS
    from trii_term.commands import chart as chart_commands
    from trii_term.commands import core_registry
    from trii_term.screens.help import KeysTable, help_rows

    registry = core_registry()  # (the order commands are core commands)
    registry.extend((*UI_COMMANDS, *chart_commands.COMMANDS))
    console = Console(width=width, record=True, color_system=None)
    console.print(KeysTable(help_rows(registry, {})))
    drawn = console.export_text()
    assert max(len(line) for line in drawn.splitlines()) <= width
    flat = " ".join(drawn.split())
    for cmd in registry:
        assert " ".join(cmd.summary.split()) in flat, (width, cmd.summary)
        assert " ".join(cmd.usage.split()) in flat, (width, cmd.usage)
    for cmd in registry:  # (usages have `SYMBOL…` and the like; nothing else is cut)
        flat = flat.replace(" ".join(cmd.summary.split()), "").replace(" ".join(cmd.usage.split()), "")
    assert "…" not in flat


async def test_help_fits_40x12(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(40, 12)) as pilot:
        await ready(app)
        await pilot.press("f1")
        await wait_until(lambda: "keys and commands" in screen_text(app))

        def fits() -> None:
            text = screen_text(app)
            assert boxes(text) and "Add symbols to the" in text, text

        await wait_until_it_holds(fits)
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def test_a_narrow_watchlist_title_always_names_the_list_shown(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(40, 12)) as pilot:
        await ready(app)
        for name in ("Banks", "Energy", "Tech giants"):
            await app.execute(f"watch new {name}")
        await wait_until(lambda: "▸Tech giants · 4 lists" in screen_text(app))
        await app.execute("watch switch Banks")
        await wait_until(lambda: "▸Banks · 4 lists" in screen_text(app))
        await pilot.resize_terminal(120, 30)
        await wait_until(lambda: "Watchlist Default  ▸Banks  Energy  Tech giants" in screen_text(app))
        await pilot.press("ctrl+q")


async def test_a_number_that_widens_between_measures_is_drawn_whole_at_once(paths: Paths) -> None:
    app = make_app(paths, NO_FB_YET)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: app.ready)
        await wait_until(lambda: priced(app, "IBM"))
        table = app.workstation.watchlist.table
        ts = app.session.clock.now_ns()
        app.session.bus.publish(MarketBatch("replay", [Trade(ts, "FB", 123_456.78, 10)], 0))
        line = table.render_line(1 + rows(app).index("FB")).text  # the very next frame
        assert "123,456.78" in line and "…" not in line, line
        await pilot.press("ctrl+q")


@pytest.mark.parametrize("size", [(40, 12), (80, 24), (200, 50)])
async def test_key_hints_are_whole_or_left_out_with_a_mark(paths: Paths, size: tuple[int, int]) -> None:
    app = make_app(paths)
    async with app.run_test(size=size) as pilot:
        await ready(app)

        def whole_or_marked() -> None:
            footer = screen_text(app).splitlines()[-1]
            keys = app.screen.query_one(KeysFooter)
            assert keys.hints
            drawn = "".join(f" {h.key_display} {h.description} " for h in keys.hints[: keys.shown])
            assert footer.startswith(drawn), (drawn, footer)  # each shown hint whole, in order
            hidden = len(keys.hints) - keys.shown
            assert ("…" in footer) == (hidden > 0), footer
            if size[0] <= 80:
                assert hidden  # (80 columns do not hold them all)

        await wait_until_it_holds(whole_or_marked)
        await pilot.press("ctrl+q")


def test_columns_that_fit_leave_out_whole_columns_in_the_order_given() -> None:
    from trii_term.widgets.quote_columns import columns_that_fit

    needs = [("Symbol", 6), ("Qty", 3), ("Last", 8), ("Unreal P&L", 10), ("Weight", 6), ("Realized", 8)]
    give_way = ("Weight", "Realized", "Last")
    assert columns_that_fit(200, needs, give_way) == [k for k, _ in needs]
    assert columns_that_fit(50, needs, give_way) == ["Symbol", "Qty", "Last", "Unreal P&L", "Realized"]
    assert columns_that_fit(40, needs, give_way) == ["Symbol", "Qty", "Last", "Unreal P&L"]
    assert columns_that_fit(30, needs, give_way) == ["Symbol", "Qty", "Unreal P&L"]
    assert columns_that_fit(5, needs, give_way) == ["Symbol", "Qty", "Unreal P&L"]  # the rest stay


def test_hints_are_kept_from_the_left_while_they_end_inside_the_room() -> None:
    from trii_term.widgets.keys_footer import fit, plan

    assert fit([5, 8, 7], 20) == 3  # 20 columns hold all three (the last ends at 20)
    assert fit([5, 8, 7], 19) == 2
    assert fit([5, 8, 7], 4) == 0
    assert fit([], 10) == 0
    # (hints shown, `…` shown, the palette's key shown) with a 12-column palette key
    assert plan([5, 8, 7], 12, 32) == (3, False, True)  # all fit exactly: no room kept for `…`
    assert plan([5, 8, 7], 12, 31) == (2, True, True)  # `… ` takes its two columns from the hints
    assert plan([5, 8, 7], 12, 14) == (0, True, True)  # `… ` and the key, whole
    assert plan([5, 8, 7], 12, 13) == (0, True, True)  # `…` alone and the key
    assert plan([5, 8, 7], 12, 12) == (1, True, False)  # no room for both: the key gives way whole
    assert plan([5, 8, 7], 12, 8) == (1, True, False)
    assert plan([], 12, 12) == (0, False, True)
    assert plan([], 12, 11) == (0, False, False)


@pytest.mark.parametrize("width", [12, 13, 14, 20, 30])
async def test_a_narrow_footer_keeps_every_key_it_shows_whole(paths: Paths, width: int) -> None:
    app = make_app(paths)
    async with app.run_test(size=(width, 24)) as pilot:
        await wait_until(lambda: app.ready)
        footer = app.screen.query_one(KeysFooter)
        await wait_until(lambda: bool(footer.hints))
        line = screen_text(app).splitlines()[-1]
        assert len(line) == width and "…" in line
        assert ("▏^p palette " in line) == (width >= 13), line  # whole, or not at all
        if width >= 13:
            assert line.endswith("▏^p palette "), line
        await pilot.press("ctrl+q")


async def test_a_click_on_a_hint_presses_its_key_and_the_mouse_over_it_says_what_it_does(
    paths: Paths,
) -> None:
    from trii_term.screens.help import HelpScreen

    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        footer = app.screen.query_one(KeysFooter)
        await wait_until(lambda: any(h.label == "f1 Help" for h in footer.hints[: footer.shown]))
        line = screen_text(app).splitlines()[-1]
        x = line.index(" f1 Help") + 2
        hint = footer.hint_at(x)
        assert hint is not None and hint.label == "f1 Help"
        plain = footer.render_line(0)

        await pilot.hover(KeysFooter, offset=(x, 0))
        await wait_until(lambda: footer.tooltip is not None)
        assert "help" in str(footer.tooltip)
        lit = footer.render_line(0)
        assert lit.text == plain.text and lit != plain  # the same words, the hint lit
        await pilot.hover(KeysFooter, offset=(line.index("…"), 0))  # off every hint
        await wait_until(lambda: footer.tooltip is None)

        await pilot.click(KeysFooter, offset=(x, 0))
        await wait_until(lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await wait_until(lambda: not isinstance(app.screen, HelpScreen))

        # the keys change under a mouse that stays: the lit hint is the one under it now
        footer = app.screen.query_one(KeysFooter)
        await pilot.hover(KeysFooter, offset=(x, 0))
        await wait_until(lambda: footer._hover is not None and footer._hover.label == "f1 Help")
        await pilot.press("t")  # the chat: other keys, other places
        await wait_until(lambda: footer.hints[0].label == "esc Leave chat")
        under = footer.hint_at(x)
        await wait_until(lambda: footer._hover == under)
        assert under is not None and under.label != "f1 Help"
        assert footer.tooltip == (under.tooltip or None)
        await pilot.press("ctrl+q")


async def test_the_footer_takes_a_new_theme_at_once(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        app.theme = "textual-dark"
        footer = app.screen.query_one(KeysFooter)
        await pilot.pause()
        dark = footer.render_line(0)
        app.theme = "textual-light"
        await wait_until(lambda: footer.render_line(0) != dark)
        assert footer.render_line(0).text == dark.text
        await pilot.press("ctrl+q")


async def test_a_disabled_key_is_dim_and_a_click_on_it_rings_the_bell() -> None:
    from textual.app import App, ComposeResult
    from textual.binding import Binding

    class Desk(App[None]):
        BINDINGS = [Binding("x", "send", "Send"), Binding("y", "other", "Other")]
        sent: list[str] = []
        bells = 0

        def compose(self) -> ComposeResult:
            yield KeysFooter()

        def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
            return None if action == "send" else True  # None: shown, but disabled

        def action_send(self) -> None:
            self.sent.append("send")

        def action_other(self) -> None:
            self.sent.append("other")

        def bell(self) -> None:
            self.bells += 1

    app = Desk()
    async with app.run_test(size=(60, 5)) as pilot:
        footer = app.query_one(KeysFooter)
        await wait_until(lambda: [h.label for h in footer.hints] == ["x Send", "y Other"])
        assert not footer.hints[0].enabled and footer.hints[1].enabled
        line = footer.render_line(0)
        assert all(
            seg.style is not None and seg.style.dim for seg in line if seg.text.strip() in ("x", "Send")
        )
        await pilot.click(KeysFooter, offset=(2, 0))  # x Send
        await wait_until(lambda: app.bells == 1)
        await pilot.click(KeysFooter, offset=(10, 0))  # y Other
        await wait_until(lambda: app.sent == ["other"])
        assert app.bells == 1
