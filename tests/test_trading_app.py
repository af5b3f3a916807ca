"""Trading as a trader does it, at 80×24: ticket → confirm → fill → portfolio → cancel/replace."""

from __future__ import annotations

from decimal import Decimal as D

from trii_term.domain.orders import OrderStatus
from trii_term.paths import Paths
from trii_term.screens.portfolio import PortfolioScreen
from trii_term.screens.ticket import ConfirmScreen, TicketScreen

from .conftest import wait_until
from .test_app import asking, make_app, palette, ready, screen_text


async def test_ticket_confirm_fill_portfolio_cancel_replace(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("b")  # the buy ticket, on the highlighted symbol
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        ticket = app.screen
        assert ticket.draft.symbol == "AAPL"
        for ch in "10":
            await pilot.press(ch)
        await wait_until(lambda: "position AAPL 0 → 10" in screen_text(app))
        text = screen_text(app)
        assert "commission 1.00" in text and "buying power" in text and "max_order_notional" in text
        await pilot.press("enter")
        await wait_until(lambda: asking(app))
        assert app.session.broker.orders() == []  # nothing sent before the confirmation
        await pilot.press("y")
        await wait_until(lambda: not isinstance(app.screen, (ConfirmScreen, TicketScreen)))
        (order,) = app.session.broker.orders()
        assert order.status is OrderStatus.FILLED and order.filled_qty == 10

        # a resting limit order, typed in the palette
        await palette(pilot, "sell 5 AAPL lmt 500 gtc")
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        await wait_until(lambda: "✗ NO price_band_pct" in screen_text(app))  # 500 is far from the last
        await pilot.press("enter")  # refused by the rule: not sent, said why
        await wait_until(lambda: "Not sent: refused by risk rule price_band_pct" in screen_text(app))
        limit = app.screen.query_one("#t-limit")
        limit.value = "445"
        await wait_until(lambda: "✗ NO" not in screen_text(app))
        await pilot.press("enter")
        await wait_until(lambda: asking(app))
        await pilot.press("y")
        await wait_until(lambda: len(app.session.broker.orders(open_only=True)) == 1)
        working = app.session.broker.orders(open_only=True)[0]

        await pilot.press("o")
        await wait_until(lambda: isinstance(app.screen, PortfolioScreen))
        await wait_until(
            lambda: all(
                part in screen_text(app) for part in (working.id, "Unreal P&L", "Day P&L", "realized today")
            )
        )
        await pilot.press("down")  # the filled market order: its fills show
        await wait_until(lambda: f"{order.id} fills: 10 @ " in screen_text(app))
        await pilot.press("up")
        await pilot.press("r")  # replace: the palette opens with the order's id
        await palette(pilot, "lmt 446")
        # a replace is an order: the same confirm dialog, with the order before and after
        await wait_until(lambda: asking(app))
        assert f"REPLACE {working.id}" in screen_text(app) and "limit 446.00" in screen_text(app)
        assert app.session.broker.orders(open_only=True)[0].request.limit_price == D("445.00")
        await pilot.press("y")
        await wait_until(
            lambda: app.session.broker.orders(open_only=True)[0].request.limit_price == D("446.00")
        )
        await wait_until(lambda: isinstance(app.screen, PortfolioScreen))
        await pilot.press("c")  # cancel the highlighted (working) order
        await wait_until(lambda: app.session.broker.orders(open_only=True) == [])
        events = [(e.event, e.source) for e in app.session.broker.journal.entries(order_id=working.id)]
        assert ("replaced", "key") in events and events[-1] == ("canceled", "key")  # r and c are keys
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def test_the_portfolio_reads_cleanly(paths: Paths) -> None:
    """One space between words in the account line (a zero once brought a blank arrow: "today
    +0.00 (total  +0.00)"), the weight says it is a percentage, and the blotter's cursor row is
    the watchlist's neutral bar (the default one drew the finished orders' dim text light blue
    on blue)."""
    from textual.widgets import DataTable

    app = make_app(paths)
    app.theme = "textual-dark"  # full colour, where the default cursor was blue on blue
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        table = app.workstation.watchlist.table
        watchlist_cursor = table.get_component_styles("quote-table--cursor")
        await palette(pilot, "buy 5 AAPL")
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        await wait_until(lambda: app.screen.preview is not None and app.screen.preview.ok)
        await pilot.press("enter")
        await wait_until(lambda: asking(app))
        await pilot.press("y")
        await wait_until(lambda: [p.qty for p in app.session.broker.positions()] == [5])
        await pilot.press("o")
        await wait_until(lambda: isinstance(app.screen, PortfolioScreen))
        await wait_until(lambda: "realized today" in screen_text(app) and "Weight" in screen_text(app))
        text = screen_text(app)
        realized = text[text.index("realized today") :].split(")")[0]
        assert realized == "realized today +0.00 (total +0.00", realized
        assert "100.0%" in text
        orders = app.screen.query_one("#orders", DataTable)
        assert orders.has_focus
        cursor = orders.get_component_styles("datatable--cursor")
        assert cursor.background == watchlist_cursor.background
        assert "bold" in str(cursor.text_style)
        await pilot.press("escape")
        await pilot.press("ctrl+q")
