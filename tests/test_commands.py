"""Commands on a real session: the grammar, the watchlist commands, and what persists."""

from __future__ import annotations

import pytest

from trii_term.commands import CommandContext, CommandError, MissingArguments
from trii_term.config import parse_config
from trii_term.paths import Paths
from trii_term.session import Session

FAST = "[providers.replay]\nspeed = 600\n"


async def started(paths: Paths, text: str = FAST) -> tuple[Session, CommandContext]:
    s = Session(parse_config(text), paths)
    await s.start()
    return s, CommandContext(s, source="test")


def order(s: Session) -> list[str]:
    assert s.watchlists is not None
    return list(s.watchlists.active.symbols)


async def test_add_remove_and_unknown_symbols(paths: Paths) -> None:
    s, ctx = await started(paths)
    try:
        assert order(s) == ["AAPL", "MSFT", "IBM", "GOOG"]
        r = await s.commands.run("watch add spx fb", ctx)
        assert r.message == "Added SPX, FB to Default."
        assert order(s)[-2:] == ["SPX", "FB"]
        assert {"SPX", "FB"} <= set(s.subscribed())
        with pytest.raises(CommandError) as info:
            await s.commands.run("watch add TSLA", ctx)
        msg = str(info.value)
        assert "Unknown symbol TSLA" in msg and "Nothing was changed" in msg and "AAPL" in msg
        assert order(s) == ["AAPL", "MSFT", "IBM", "GOOG", "SPX", "FB"]
        with pytest.raises(CommandError, match="Did you mean SPX"):
            await s.commands.run("watch add SPY", ctx)
        # one bad symbol among good ones changes nothing
        with pytest.raises(CommandError):
            await s.commands.run("watch add COMP, NOPE", ctx)
        assert "COMP" not in order(s)
        await s.commands.run("wa COMP", ctx)  # the short alias
        assert order(s)[-1] == "COMP"
        r = await s.commands.run("watch add AAPL", ctx)
        assert r.level == "warning" and "already" in r.message
        await s.commands.run("watch remove FB", ctx)
        assert "FB" not in order(s) and "FB" not in s.subscribed()
        ctx.focused_symbol = "SPX"
        await s.commands.run("watch remove", ctx)  # the highlighted row
        assert "SPX" not in order(s)
        with pytest.raises(CommandError, match="not in watchlist"):
            await s.commands.run("watch remove FB", ctx)
    finally:
        await s.stop()


async def test_grammar_errors_speak_plainly(paths: Paths) -> None:
    s, ctx = await started(paths)
    try:
        with pytest.raises(CommandError, match="Did you mean: watch add"):
            await s.commands.run("wach add AAPL", ctx)
        # the CLI and macros get the palette's suggestions too, and nothing runs
        with pytest.raises(CommandError, match=r"Did you mean: replay pause\? Nothing was run"):
            await s.commands.run("pasue", ctx)
        with pytest.raises(MissingArguments) as missing:
            await s.commands.run("watch add", ctx)
        assert missing.value.command.id == "watch.add"
        with pytest.raises(CommandError, match="does not take"):
            await s.commands.run("watch lists extra", ctx)
        with pytest.raises(CommandError, match="SPEED must be a number"):
            await s.commands.run("replay speed fast", ctx)
        with pytest.raises(CommandError, match="DATE must be a date"):
            await s.commands.run("replay goto tomorrow", ctx)
        with pytest.raises(CommandError, match="check the quotes"):
            await s.commands.run('watch new "Unclosed', ctx)
        with pytest.raises(CommandError, match="works only in the workstation"):
            from trii_term.app import UI_COMMANDS

            s.commands.extend(UI_COMMANDS)
            await s.commands.run("quit", ctx)
    finally:
        await s.stop()


async def test_reorder_and_sort(paths: Paths) -> None:
    s, ctx = await started(paths)
    try:
        await s.commands.run("watch down AAPL", ctx)
        assert order(s) == ["MSFT", "AAPL", "IBM", "GOOG"]
        await s.commands.run("watch up GOOG", ctx)
        assert order(s) == ["MSFT", "AAPL", "GOOG", "IBM"]
        await s.commands.run("watch move IBM top", ctx)
        assert order(s) == ["IBM", "MSFT", "AAPL", "GOOG"]
        await s.commands.run("watch move IBM 3", ctx)
        assert order(s) == ["MSFT", "AAPL", "IBM", "GOOG"]
        with pytest.raises(CommandError, match="Row 9 does not exist"):
            await s.commands.run("watch move IBM 9", ctx)

        from trii_term.watchlists import ordered_symbols

        assert s.watchlists is not None
        r = await s.commands.run("watch sort symbol", ctx)
        assert "ascending" in r.message
        assert ordered_symbols(s.watchlists.active, s.quotes) == ["AAPL", "GOOG", "IBM", "MSFT"]
        await s.commands.run("watch reverse", ctx)
        assert ordered_symbols(s.watchlists.active, s.quotes) == ["MSFT", "IBM", "GOOG", "AAPL"]
        # sorting by a live column uses the quote book; missing values last
        from .conftest import wait_until

        await wait_until(lambda: all(s.quotes.get(x) and s.quotes.get(x).last for x in order(s)))  # type: ignore[union-attr]
        await s.commands.run("watch sort last desc", ctx)
        shown = ordered_symbols(s.watchlists.active, s.quotes)
        lasts = [s.quotes.get(x).last for x in shown]  # type: ignore[union-attr]
        assert lasts == sorted(lasts, reverse=True)
        await s.commands.run("watch sort %chg asc", ctx)
        assert s.watchlists.active.sort_column == "pct" and not s.watchlists.active.sort_desc
        with pytest.raises(CommandError, match="Cannot sort by 'colour'"):
            await s.commands.run("watch sort colour", ctx)
        # moving a row by hand while sorted adopts the order on screen, then moves
        shown = ordered_symbols(s.watchlists.active, s.quotes)
        r = await s.commands.run(f"watch down {shown[0]}", ctx)
        assert "Sorting is off" in r.message and s.watchlists.active.sort_column is None
        assert order(s) == [shown[1], shown[0], *shown[2:]]
        # `watch sort` alone cycles through the columns and back to your order
        seen = []
        for _ in range(9):
            await s.commands.run("watch sort", ctx)
            seen.append(s.watchlists.active.sort_column)
        assert seen == ["symbol", "last", "change", "pct", "bid", "ask", "volume", "age", None]
    finally:
        await s.stop()


async def test_lists_new_rename_switch_delete_and_they_persist(paths: Paths) -> None:
    s, ctx = await started(paths)
    try:
        await s.commands.run("watch new Big Tech", ctx)
        assert s.watchlists is not None and s.watchlists.active.name == "Big Tech"
        await s.commands.run("watch add AAPL GOOG", ctx)
        with pytest.raises(CommandError, match="already a watchlist named 'Big Tech'"):
            await s.commands.run("watch new big tech", ctx)
        await s.commands.run("watch rename Mega caps", ctx)
        await s.commands.run("watch new Indices", ctx)
        await s.commands.run("watch add SPX COMP", ctx)
        await s.commands.run("watch sort pct desc", ctx)
        r = await s.commands.run("watch lists", ctx)
        assert r.message == "Watchlists:  Default (4)   Mega caps (2)  ▸Indices (2)"
        await s.commands.run("watch next", ctx)
        assert s.watchlists.active.name == "Default"
        await s.commands.run("watch prev", ctx)
        assert s.watchlists.active.name == "Indices"
        await s.commands.run("watch switch mega CAPS", ctx)
        assert s.watchlists.active.name == "Mega caps"
        with pytest.raises(CommandError, match="no watchlist named 'Nope'"):
            await s.commands.run("watch switch Nope", ctx)
        await s.commands.run("watch delete Default", ctx)
        assert s.watchlists.names() == ["Mega caps", "Indices"]
        assert "MSFT" not in s.subscribed()  # no list has it any more
    finally:
        await s.stop()

    # a restart finds everything as it was left
    s2, ctx2 = await started(paths)
    try:
        lists = s2.watchlists
        assert lists is not None
        assert lists.names() == ["Mega caps", "Indices"]
        assert lists.active.name == "Mega caps" and lists.active.symbols == ["AAPL", "GOOG"]
        indices = lists.find("Indices")
        assert indices.symbols == ["SPX", "COMP"] and indices.sort_column == "pct" and indices.sort_desc
        await s2.commands.run("watch delete Indices", ctx2)
        with pytest.raises(CommandError, match="only watchlist"):
            await s2.commands.run("watch delete Mega caps", ctx2)
    finally:
        await s2.stop()


async def test_unknown_feed_symbols_are_left_out_with_a_notice(paths: Paths) -> None:
    s, _ = await started(paths, '[feed]\nsymbols = ["AAPL", "TSLA"]\n' + FAST)
    try:
        assert order(s) == ["AAPL"]
        assert any("TSLA" in n and "left out" in n for n in s.notices)
    finally:
        await s.stop()
