"""The journal in the workstation: newest first, with times and their zone, sources, brokers and
a readable line; filtered with `/` (or `journal WORDS`), an entry whole on Enter, new entries as
they happen (Textual Pilot at 80×24 and 160×50)."""

from __future__ import annotations

import contextlib
import re
from datetime import datetime
from decimal import Decimal as D

import pytest
from textual.widgets import DataTable

from trii_term.domain.orders import OrderRequest, OrderType, Side
from trii_term.paths import Paths
from trii_term.screens.journal import JournalEntryScreen, JournalScreen, clip, describe, order_text
from trii_term.store.journal import Entry
from trii_term.trading.desk import RiskRefused

from .conftest import wait_until, wait_until_it_holds
from .test_app import make_app, palette, ready, screen_text

SIZES = [(80, 24), (160, 50)]


def place(app, qty: str, symbol: str, *, limit: str | None = None, source: str = "palette") -> None:  # type: ignore[no-untyped-def]
    """Through the order desk, as every order goes (the ticket's own tests cover the ticket)."""
    request = OrderRequest(
        symbol,
        Side.BUY,
        D(qty),
        OrderType.LIMIT if limit else OrderType.MARKET,
        limit_price=D(limit) if limit else None,
    )
    with contextlib.suppress(RiskRefused):  # (journalled as rejected, with the rule)
        app.session.desk.submit(request, source=source, confirmed=True)


def table(app) -> DataTable:  # type: ignore[no-untyped-def,type-arg]
    return app.screen.query_one("#journal-entries", DataTable)


@pytest.mark.parametrize("size", SIZES)
async def test_the_journal_lists_entries_newest_first_with_time_zone_source_and_detail(
    paths: Paths, size: tuple[int, int]
) -> None:
    app = make_app(paths)
    async with app.run_test(size=size) as pilot:
        await ready(app)
        await wait_until(lambda: app.session.desk is not None)
        place(app, "10", "AAPL")
        place(app, "100", "MSFT", limit="1")  # far from the last: refused by the price band
        await pilot.press("e")
        await wait_until(lambda: isinstance(app.screen, JournalScreen))
        screen = app.screen
        await wait_until(lambda: any("refused by price_band_pct" in r.detail for r in screen.shown))
        await wait_until(lambda: "refused" in screen_text(app) and "price_band_pct" in screen_text(app))

        def listed() -> None:
            text = screen_text(app)
            assert re.search(r"\d\d:\d\d:\d\d [A-Z]{2,5}", text), text  # a time, with its zone
            assert "palette" in text and "paper" in text and "buy 10 AAPL market day" in text
            events = [r.entry.event for r in screen.shown]
            assert events[:2] == ["rejected", "intent"] and events[-1] == "intent"  # newest first
            assert "filled" in events
            fill = next(r for r in screen.shown if r.entry.event == "filled")
            assert "buy 10 AAPL market day — 10 @ " in fill.detail and "commission 1.00" in fill.detail
            assert fill.entry.order_id is not None and fill.entry.order_id in text
            if size[0] >= 120:
                assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z]{2,5}", text)
                assert "Broker" in text and "Order" in text
            else:
                assert re.search(r"^ \d{4}-\d\d-\d\d\s*$", text, re.M)  # the day, above its entries
            # nothing drawn past the screen's edge, the detail cut between words with `…`
            assert all(len(line) <= size[0] for line in text.splitlines())

        await wait_until_it_holds(listed)  # once the fill is in and drawn

        # live: an order placed now shows without a key
        before = len(screen.rows)
        place(app, "5", "IBM")
        await wait_until(
            lambda: (
                len(screen.rows) > before
                and "buy 5 IBM" in screen_text(app)
                and screen.shown[0].entry.event == "filled"
            )
        )
        assert screen.shown[0].entry.event == "filled" and "IBM" in screen.shown[0].detail

        # Enter: the whole entry
        table(app).focus()
        table(app).move_cursor(row=table(app).get_row_index(str(screen.shown[0].entry.seq)))
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, JournalEntryScreen) and '"fill"' in screen_text(app))
        entry_text = screen_text(app)
        assert '"fill"' in entry_text and "source       palette" in entry_text
        await pilot.press("escape")
        await wait_until(lambda: app.screen is screen)

        # `/` filters as the blotter does
        await pilot.press("slash")
        for ch in "rejected":
            await pilot.press(ch)
        await wait_until(lambda: [r.entry.event for r in screen.shown] == ["rejected"])
        await wait_until(lambda: "1 match 'rejected'" in screen_text(app))  # and drawn
        await pilot.press("escape")  # clears the filter
        await wait_until(lambda: len(screen.shown) == len(screen.rows))
        await pilot.press("escape")  # closes
        await wait_until(lambda: not isinstance(app.screen, JournalScreen))
        await pilot.press("ctrl+q")


async def test_journal_words_from_the_palette_open_it_filtered(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await wait_until(lambda: app.session.desk is not None)
        place(app, "10", "AAPL")
        place(app, "3", "IBM")
        await palette(pilot, "journal ibm filled")
        await wait_until(lambda: isinstance(app.screen, JournalScreen))
        screen = app.screen
        await wait_until(lambda: len(screen.rows) >= 8)
        assert [r.entry.event for r in screen.shown] == ["filled"]
        assert "IBM" in screen.shown[0].detail
        await pilot.press("ctrl+q")


@pytest.mark.parametrize("size", SIZES)
async def test_the_market_time_is_shown_when_the_journal_records_it(
    paths: Paths, size: tuple[int, int]
) -> None:
    app = make_app(paths)
    async with app.run_test(size=size) as pilot:
        await ready(app)
        await wait_until(lambda: app.session.desk is not None)
        journal = app.session.broker.journal
        journal.record(
            "drafted",
            broker="paper",
            source="ai",
            ts_ns=1_362_148_502_000_000_000,  # the market's time: 2013-03-01 14:35:02 UTC
            detail={
                "symbol": "MSFT",
                "side": "sell",
                "qty": "7",
                "type": "limit",
                "tif": "gtc",
                "limit_price": "28.10",
            },
        )
        await pilot.press("f5")
        await wait_until(lambda: isinstance(app.screen, JournalScreen) and app.screen.rows)
        text = screen_text(app)
        assert "sell 7 MSFT lmt 28.10 gtc" in text and "ai" in text
        assert "09:35:02 EST" in text  # the market's time, in the market's zone
        if size[0] >= 120:
            assert "Market time" in text and "2013-03-01 09:35:02 EST" in text
        await pilot.press("ctrl+q")


def _entry(event: str, detail: dict, order_id: str | None = None) -> Entry:  # type: ignore[type-arg]
    return Entry(1, datetime(2013, 3, 1, 14, 35), event, "paper", "ticket", order_id, None, detail)


def test_an_entry_reads_in_the_traders_words() -> None:
    request = {
        "symbol": "AAPL",
        "side": "buy",
        "qty": "100",
        "type": "limit",
        "tif": "gtc",
        "limit_price": "430.00",
        "take_profit": "450",
        "stop_loss": "420",
    }
    assert order_text(request) == "buy 100 AAPL lmt 430.00 tp 450 sl 420 gtc"
    refused = _entry("rejected", {"request": request, "rule": "max_position_pct", "reason": "above 25 %"})
    assert describe(refused, order_text(request)).endswith("— refused by max_position_pct: above 25 %")
    tool = _entry("ai_tool", {"tool": "get_quote", "input": {"symbol": "MSFT"}, "is_error": False})
    assert describe(tool, "") == "get_quote(symbol=MSFT) ✓"
    odd = _entry("reconciled", {"position": "AAPL", "ours": "10", "broker": "12"})
    assert describe(odd, "") == "position AAPL; ours 10; broker 12"


def test_clip_cuts_between_words_and_says_so() -> None:
    text = "buy 100000 MSFT lmt 1.00 day — insufficient buying power: 100,000.00 USD needed"
    assert clip(text, 200) == [text]
    (line,) = clip(text, 40)
    assert line.endswith("…") and len(line) <= 40 and "100,000.0" not in line.replace("100,000.00", "")
    two = clip(text, 30, 2)
    assert len(two) == 2 and two[-1].endswith("…") and all(len(x) <= 30 for x in two)
