"""The order path in the workstation, at 80×24, as a trader drives it: only y sends, a double Enter
never does, a replace is confirmed like an order (and refused by the rules like one), flatten asks
first, odd numbers in the palette say so, and the journal records the true source."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from textual import events

from trii_term.domain.orders import OrderStatus
from trii_term.paths import Paths
from trii_term.screens.confirm import ConfirmScreen
from trii_term.screens.ticket import TicketScreen

from .conftest import wait_until
from .test_app import asking, make_app, palette, ready, screen_text


async def test_enter_never_sends_only_y_does(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("b")
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        await pilot.press("5")
        await wait_until(lambda: "position AAPL 0 → 5" in screen_text(app))
        await pilot.press("enter", "enter", "enter")  # a double (triple) Enter
        await wait_until(lambda: asking(app))
        await pilot.press("enter")  # an Enter at the dialog says which key sends
        await wait_until(lambda: "Enter does not" in screen_text(app))
        assert app.session.broker.orders() == []
        assert len([s for s in app.screen_stack if isinstance(s, ConfirmScreen)]) == 1  # one dialog
        await pilot.press("n")
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        await wait_until(lambda: "Not sent (not confirmed)" in screen_text(app))
        assert app.session.broker.orders() == []
        journal = app.session.broker.journal.entries()
        assert [(e.event, e.source) for e in journal][-1] == ("rejected", "ticket")
        assert journal[-1].detail["error"] == "not confirmed"
        await pilot.press("enter")
        await wait_until(lambda: asking(app))
        await pilot.press("y")
        await wait_until(lambda: not isinstance(app.screen, (ConfirmScreen, TicketScreen)))
        (order,) = app.session.broker.orders()
        assert order.status is OrderStatus.FILLED and order.request.qty == 5
        sources = {e.source for e in app.session.broker.journal.entries(order_id=order.id)}
        assert sources == {"ticket"}
        intent = [e for e in app.session.broker.journal.entries() if e.event == "intent"][-1]
        assert intent.source == "ticket" and intent.detail["opened_by"] == "key"  # b opened it
        await pilot.press("ctrl+q")


async def test_a_replace_is_confirmed_and_refused_like_an_order(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await palette(pilot, "sell 10 MSFT lmt 100 gtc")  # no MSFT held: the ticket says why
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        await wait_until(lambda: "cannot sell 10 MSFT" in screen_text(app).replace("\n", " "))
        await pilot.press("escape")
        last = app.session.reference_price("MSFT")
        price = (last * D("0.93")).quantize(D("0.01"))  # rests: within the band, below the market
        await palette(pilot, f"buy 100 MSFT lmt {price} gtc")
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        await pilot.press("enter")
        await wait_until(lambda: asking(app))
        await pilot.press("y")
        await wait_until(lambda: len(app.session.broker.orders(open_only=True)) == 1)
        (working,) = app.session.broker.orders(open_only=True)
        cash = app.session.broker.account().cash

        # the found case: 100 → 50,000 through replace — refused, said why, nothing changed
        await palette(pilot, f"order replace {working.id} qty 50000")
        await wait_until(lambda: "Not sent: refused by risk rule" in screen_text(app))
        assert not isinstance(app.screen, ConfirmScreen)
        assert app.session.broker.orders(open_only=True)[0].request.qty == 100
        assert app.session.broker.account().cash == cash
        await pilot.press("escape")  # the palette kept the line to correct

        # a reasonable change: confirmed like an order, then done
        await palette(pilot, f"order replace {working.id} qty 120")
        await wait_until(lambda: asking(app))
        assert f"REPLACE {working.id}" in screen_text(app) and "buy 120 MSFT" in screen_text(app)
        await pilot.press("y")
        await wait_until(lambda: app.session.broker.orders(open_only=True)[0].request.qty == 120)
        events = [(e.event, e.source) for e in app.session.broker.journal.entries(order_id=working.id)]
        assert events[-3:] == [("intent", "palette"), ("checked", "palette"), ("replaced", "palette")]
        await pilot.press("ctrl+q")


async def test_flatten_asks_first_then_cancels_and_closes(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await app.execute("buy 20 AAPL", source="palette")  # the ticket…
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        await pilot.press("enter")
        await wait_until(lambda: asking(app))
        await pilot.press("y")
        await wait_until(lambda: [p.qty for p in app.session.broker.positions()] == [20])
        await palette(pilot, "flatten AAPL")
        await wait_until(lambda: asking(app))
        assert "FLATTEN SELL 20 AAPL market" in screen_text(app)
        assert [p.qty for p in app.session.broker.positions()] == [20]  # nothing before y
        await pilot.press("y")
        await wait_until(lambda: app.session.broker.positions() == [])
        await pilot.press("ctrl+q")


async def test_odd_numbers_in_the_palette_are_refused_and_the_workstation_stays(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        for line, says in (
            ("buy 1 AAPL lmt 1e400", "limit '1e400': no exponents"),
            ("sell ١٠ AAPL", "quantity '١٠': use the digits 0-9"),
            ("buy 1_0 AAPL", "quantity '1_0': no underscores"),
            ("replay speed 1e400", "SPEED must be a number"),
        ):
            await palette(pilot, line)
            await wait_until(lambda says=says: says in app.workstation.message_line.message)
            assert app.is_running and not isinstance(app.screen, TicketScreen)
            await pilot.press("escape")  # the palette kept the line to correct
        assert app.session.broker.journal.entries() == []
        await pilot.press("ctrl+q")


@pytest.mark.parametrize("size", [(60, 20), (40, 12), (200, 50)])
async def test_the_ticket_and_the_blotter_never_cut_a_number_or_a_border(
    paths: Paths, size: tuple[int, int]
) -> None:
    from textual.widgets import DataTable

    from trii_term.screens.portfolio import PortfolioScreen

    from .test_layout import boxes

    app = make_app(paths)
    async with app.run_test(size=size) as pilot:
        await ready(app)
        await app.execute("buy 50 AAPL", source="palette")
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        await wait_until(lambda: app.screen.preview is not None and app.screen.preview.ok)
        await pilot.pause()
        await wait_until(lambda: "Enter review" in screen_text(app))  # the key line always shows
        boxes(screen_text(app))  # the ticket's box is whole: no field drawn over its border
        for fid in ("qty", "symbol", "limit", "stop", "stop_loss"):  # every field is on screen
            field = app.screen.query_one(f"#t-{fid}")
            assert field.region.right <= size[0] - 1 and field.region.width >= 4, fid
        await pilot.press("enter")
        await wait_until(lambda: asking(app))
        await pilot.press("y")
        await wait_until(lambda: [p.qty for p in app.session.broker.positions()] == [50])
        await pilot.press("o")
        await wait_until(lambda: isinstance(app.screen, PortfolioScreen))
        await wait_until(lambda: app.screen.query_one("#positions", DataTable).row_count == 1)
        await pilot.pause()
        table = app.screen.query_one("#positions", DataTable)
        shown = [str(c.label) for c in table.columns.values()]
        assert shown[:2] == ["Symbol", "Qty"] and "Unreal P&L" in shown  # what matters stays
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= table.size.width
        with app.batch_update():  # the row and the screen at one moment
            cells = [c.plain.strip() for c in table.get_row_at(0)]
            text = screen_text(app)
        if size[1] >= 20:  # (at 40×12 the table has no room for a row: it scrolls)
            for cell in cells:  # every number whole on screen
                assert cell in text, (cell, text)
        orders = app.screen.query_one("#orders", DataTable)
        assert sum(c.get_render_width(orders) for c in orders.columns.values()) <= orders.size.width
        assert "Status" in [str(c.label) for c in orders.columns.values()]
        if size[0] >= 200:
            assert len(shown) == 10  # wide: every column
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def test_the_rules_bounds_read_whole_with_thousands_separators(paths: Paths) -> None:
    """At 80×24 the max_position_pct line wraps: its bound stays in one piece (it once left "%)"
    alone on a line), and a quantity limit has its separators like every other number."""
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await app.execute("buy 5 AAPL", source="palette")
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        await wait_until(lambda: "max_position_pct" in screen_text(app))
        text = screen_text(app)
        assert "quantity 5 ≤ 100,000" in text
        assert "(≤25%)" in text
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def test_a_long_preview_scrolls_and_the_tickets_keys_stay_on_screen(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await app.execute("buy 10 AAPL lmt 430 tp 450 sl 420 gtc", source="palette")
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        await wait_until(lambda: "take-profit: sell 10 limit 450.00" in screen_text(app))
        text = screen_text(app)
        assert "Enter review & send" in text and "Take-profit 450" in text  # fields and keys whole
        boxes_ok = text.count("╭") == text.count("╰") == 1
        assert boxes_ok, text
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def test_y_sends_only_what_the_dialog_showed(paths: Paths) -> None:
    """Found: with `reverse AAPL` showing SELL 10, a fill while the dialog was open made y send
    SELL 90; `flatten all` also sold a position that appeared after the dialog opened."""
    from trii_term.domain.orders import OrderRequest, Side

    app = make_app(paths, "[providers.replay]\nspeed = 600\n[brokers.paper]\nallow_short = true\n")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        desk = app.session.desk
        desk.submit(OrderRequest("AAPL", Side.BUY, D(5)), source="cli", confirmed=True)
        await app.execute("reverse AAPL", source="palette")
        await wait_until(lambda: asking(app))
        await wait_until(lambda: "REVERSE SELL 10 AAPL" in screen_text(app))
        desk.submit(OrderRequest("AAPL", Side.BUY, D(40)), source="cli", confirmed=True)  # meanwhile
        await pilot.press("y")
        await wait_until(lambda: "It changed since you looked" in screen_text(app))
        assert "REVERSE SELL 90 AAPL" in screen_text(app)  # shown again, not sent
        assert [p.qty for p in app.session.broker.positions()] == [45]
        await wait_until(lambda: asking(app))
        await pilot.press("n")
        await wait_until(lambda: not isinstance(app.screen, ConfirmScreen))

        await app.execute("flatten all", source="palette")
        await wait_until(lambda: asking(app))
        desk.submit(OrderRequest("IBM", Side.BUY, D(7)), source="cli", confirmed=True)
        await pilot.press("y")
        await wait_until(lambda: "It changed since you looked" in screen_text(app))
        assert {p.symbol for p in app.session.broker.positions()} == {"AAPL", "IBM"}  # nothing sold
        await wait_until(lambda: asking(app))
        await pilot.press("y")  # this time what is shown is what is sent
        await wait_until(lambda: app.session.broker.positions() == [])
        await pilot.press("ctrl+q")


async def test_at_40x12_the_confirm_dialog_still_says_which_key_sends(paths: Paths) -> None:
    app = make_app(paths)
    async with app.run_test(size=(40, 12)) as pilot:
        await ready(app)
        await app.execute("buy 10 AAPL lmt 430 tp 450 sl 420", source="palette")
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        await wait_until(lambda: app.screen.preview is not None and app.screen.preview.ok)
        await pilot.press("enter")
        await wait_until(lambda: asking(app))
        await wait_until(lambda: "y: send" in screen_text(app) and "To the paper" in screen_text(app))
        await pilot.press("n")
        await pilot.press("escape")
        await pilot.press("ctrl+q")


def _typed(app, key: str, char: str, at: float | None = None) -> None:  # type: ignore[no-untyped-def]
    """A key as the terminal sends it, without waiting for the app (typed ahead); `at`: when
    it was pressed (the app's clock)."""
    event = events.Key(key, char)
    event.set_sender(app)
    if at is not None:
        event.time = at
    app._driver.send_message(event)


async def _reverse_while_the_position_grows(app, shown: str) -> None:  # type: ignore[no-untyped-def]
    """Long 20, `reverse AAPL` asks (its dialog showing `shown`), then 5 more are bought: the
    dialog's yes no longer holds for what it shows."""
    from trii_term.domain.orders import OrderRequest, Side

    desk = app.session.desk
    desk.submit(OrderRequest("AAPL", Side.BUY, D(20)), source="cli", confirmed=True)
    await wait_until(lambda: [p.qty for p in app.session.broker.positions()] == [20])
    await app.execute("reverse AAPL", source="palette")
    await wait_until(lambda: asking(app) and shown in screen_text(app))
    desk.submit(OrderRequest("AAPL", Side.BUY, D(5)), source="cli", confirmed=True)
    await wait_until(lambda: [p.qty for p in app.session.broker.positions()] == [25])


async def test_a_y_typed_ahead_never_answers_the_dialog_that_comes_back(paths: Paths) -> None:
    """Found: `yy` on a reverse whose position changed sent SELL 210 (200 was shown), then the
    workstation stopped on NoMatches: the second y answered the re-shown dialog unseen."""
    app = make_app(paths, "[providers.replay]\nspeed = 600\n[brokers.paper]\nallow_short = true\n")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await _reverse_while_the_position_grows(app, "REVERSE SELL 40 AAPL")
        for _ in range(2):  # `yy` typed fast: both keys arrive before the app draws again
            _typed(app, "y", "y")
        await wait_until(lambda: "It changed since you looked" in screen_text(app))
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and app.is_running
        assert [p.qty for p in app.session.broker.positions()] == [25]  # nothing was sent
        # a y as soon as the dialog is drawn (a fast machine re-shows it within a double tap)
        # is too soon to have been read: it answers nothing and says so
        await wait_until(lambda: app.screen._armed_at is not None)  # type: ignore[attr-defined]
        _typed(app, "y", "y", at=app.screen._armed_at + 0.15)  # type: ignore[attr-defined]  # 150 ms after it drew
        await wait_until(lambda: "Too soon to be read: press y again to send" in screen_text(app))
        assert isinstance(app.screen, ConfirmScreen)
        assert [p.qty for p in app.session.broker.positions()] == [25]
        await wait_until(lambda: asking(app))
        await pilot.press("ctrl+p")  # found: the palette opened over the dialog, hiding it
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await wait_until(lambda: not isinstance(app.screen, ConfirmScreen))
        assert [p.qty for p in app.session.broker.positions()] == [25]
        await pilot.press("ctrl+q")


async def test_answers_moved_by_keys_are_shown_and_guarded_alike(paths: Paths) -> None:
    """Found: with `confirm.yes` moved to space, two spaces typed ahead answered the dialog
    that came back, and the dialog still said `y: send`."""
    config = "[providers.replay]\nspeed = 600\n[brokers.paper]\nallow_short = true\n"
    config += '[keys]\n"confirm.yes" = "space"\n'
    app = make_app(paths, config)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        assert "unknown ids" not in screen_text(app)
        await _reverse_while_the_position_grows(app, "space: send")
        for _ in range(2):
            _typed(app, "space", " ")
        await wait_until(lambda: "It changed since you looked" in screen_text(app))
        await pilot.pause()
        assert [p.qty for p in app.session.broker.positions()] == [25]
        await wait_until(lambda: asking(app))
        await pilot.press("space")
        await wait_until(lambda: [p.qty for p in app.session.broker.positions()] == [-25])
        await pilot.press("ctrl+q")
