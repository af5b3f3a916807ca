"""Pictures of every screen, so that a change to one shows in review (pytest-textual-snapshot).

The workstation, the full chart, the order ticket, the confirm dialog, the portfolio/blotter, the
journal, help and the chat, each at 80×24 and 120×40, reached by keys as a trader would. Every run
draws the same pixels: the replay plays a fixed day with its clock paused, stepped once to noon in
New York (the same quotes, chart, clock and "NYSE OPEN" every time); the store, config and keyring
are a temporary folder the screens never name; the colours do not depend on the runner's terminal.

Regenerate after a deliberate change to a screen, then look at the SVGs before committing them:

    python -m pytest tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime
from datetime import time as dtime

import pytest
import textual.constants
import time_machine
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from trii_term.app import TriiTermApp
from trii_term.config import parse_config
from trii_term.domain import US
from trii_term.domain.orders import OrderStatus
from trii_term.paths import Paths
from trii_term.screens.chart import ChartScreen
from trii_term.screens.confirm import ConfirmScreen
from trii_term.screens.help import HelpScreen
from trii_term.screens.journal import JournalScreen
from trii_term.screens.portfolio import PortfolioScreen
from trii_term.screens.ticket import TicketScreen
from trii_term.session import Session
from trii_term.widgets.chat import ChatView

from .conftest import wait_until
from .fakes.anthropic_api import AnthropicFake, text_reply
from .test_app import asking, screen_text

DAY = date(2013, 3, 1)  # the replay's day: a Friday, NYSE open
NOON = US.at(DAY, dtime(12, 0))  # where the replay clock stands in every picture
WALL = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # the machine's clock (the journal's own time)
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
QUIET = 2.0  # s: msg/s and the store's lag count the last whole second / two seconds

Snap = Callable[..., bool]
Drive = Callable[[Pilot[int]], Awaitable[None]]


@pytest.fixture(autouse=True)
def _same_colours_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's terminal must not change the picture: a truecolor terminal, colour on, the
    default theme and no filters, whatever TERM, NO_COLOR or TEXTUAL_* the shell has."""
    for var in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLORTERM", "truecolor")
    # Textual reads TEXTUAL_COLOR_SYSTEM and TEXTUAL_FILTERS as it is imported; the app reads them
    # (and TERM, COLORTERM, NO_COLOR) when it is made (TEXTUAL_THEME: see make_app)
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "auto")
    monkeypatch.setattr(textual.constants, "FILTERS", "")


@pytest.fixture(autouse=True)
def _same_clock_everywhere() -> Iterator[None]:
    """The journal shows when each entry was written, by the machine's clock in its time zone:
    that clock stands still at WALL, in UTC. (Only the wall clock: the replay and Textual run on
    the monotonic clock, which goes on.)"""
    zone = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        with time_machine.travel(WALL, tick=False):
            yield
    finally:
        if zone is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = zone
        time.tzset()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[AnthropicFake]:
    """The Messages API on loopback, with the real SDK as its client (only the chat uses it)."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-key-0001")
    fake = AnthropicFake().start()
    try:
        yield fake
    finally:
        fake.stop()


def make_app(paths: Paths, extra: str = "") -> TriiTermApp:
    """The offline workstation (replay feed, paper broker) on a fresh data dir, its replay
    clock paused before the first step so nothing moves until the picture is set up."""
    text = f"[providers.replay]\ndate = {DAY.isoformat()}\n{extra}"
    app = TriiTermApp(Session(parse_config(text, paths.config_file), paths, memory_fallback=True))
    app.session.clock.pause()
    # Textual's default theme comes from TEXTUAL_THEME as Textual was imported, before any fixture
    # ran: the one a truecolor terminal gets without it (16 colours or NO_COLOR would change it)
    app.theme = "textual-dark"
    return app


def close(app: TriiTermApp) -> None:
    """The picture's event loop is gone: write what is queued and close the store."""
    session = app.session
    if session.writer is not None:
        session.writer.stop()
    if session.store is not None:
        session.store.close()


async def at_noon(pilot: Pilot[int]) -> None:
    """Started with the replay clock moved from the open to noon before its first step, and
    everything that step caused on screen: quotes painted, flashes over, the store caught up, the
    chart loaded and the status bar reading 0 msg/s and no lag."""
    app: TriiTermApp = pilot.app  # type: ignore[assignment]
    session = app.session
    await wait_until(lambda: session.feed is not None)  # prepared: the clock stands at the open
    session.clock.set_time(NOON)  # the feed streams the morning as one step (now, or at its next)
    book = session.quotes
    open_ns = US.at(DAY, US.open)

    def morning_streamed() -> bool:  # (all of it: one step publishes everything up to noon at once)
        return any((st := book.get(s)) is not None and (st.updated_ns or 0) > open_ns for s in book.symbols())

    await wait_until(lambda: app.ready and morning_streamed())
    await settled(app)


async def settled(app: TriiTermApp) -> None:
    """Nothing left to move on screen: no market data for a whole second (the status bar's
    msg/s reads 0), all of it written and the store's lag window empty (its lag reads 0ms),
    tick flashes over, the chart drawn from its data and the status bar saying what it would
    say now."""
    session = app.session
    writer = session.writer
    assert writer is not None

    def quiet() -> bool:
        book = session.quotes
        now = time.monotonic()
        return (
            session.bus.market_rate.rate() == 0
            and writer.lag_seconds() == 0
            and all((st := book.get(s)) is None or st.flash_until <= now for s in book.symbols())
        )

    await wait_until(lambda: session.bus.market_rate.rate() == 0, timeout=QUIET + 10)
    # everything received is committed, then that batch's lag has aged out
    assert await asyncio.to_thread(writer.flush)

    def chart_drawn() -> bool:
        chart = app.chart
        return chart is not None and not chart.loading and not chart.live_dirty

    def status_current() -> bool:
        bar = app.workstation.status_bar
        return bar.build(bar.size.width or 80).plain == bar.render().plain

    await wait_until(quiet, timeout=QUIET + 10)
    await wait_until(chart_drawn)
    await wait_until(status_current)


# -- how a trader gets to each screen -----------------------------------------------------------


async def workstation(pilot: Pilot[int]) -> None:
    await at_noon(pilot)


async def full_chart(pilot: Pilot[int]) -> None:
    await at_noon(pilot)
    await pilot.press("c")
    app = pilot.app
    await wait_until(lambda: isinstance(app.screen, ChartScreen) and app.screen.chart.frame is not None)


async def ticket(pilot: Pilot[int]) -> None:
    await at_noon(pilot)
    app = pilot.app
    await pilot.press("b")  # buy the highlighted symbol (AAPL)
    await wait_until(lambda: isinstance(app.screen, TicketScreen))
    await pilot.press("5")
    await wait_until(lambda: "position AAPL 0 → 5" in screen_text(app))


async def confirm(pilot: Pilot[int]) -> None:
    await ticket(pilot)
    await pilot.press("enter")  # the ticket's send asks first
    await wait_until(lambda: asking(pilot.app))


async def _bought(pilot: Pilot[int]) -> None:
    """Five AAPL bought through the ticket and filled, so the account and journal show a trade."""
    await confirm(pilot)
    app: TriiTermApp = pilot.app  # type: ignore[assignment]
    await pilot.press("y")
    await wait_until(lambda: not isinstance(app.screen, (ConfirmScreen, TicketScreen)))
    broker = app.session.broker
    assert broker is not None
    await wait_until(lambda: [o.status for o in broker.orders()] == [OrderStatus.FILLED])
    await settled(app)


async def portfolio(pilot: Pilot[int]) -> None:
    await _bought(pilot)
    await pilot.press("o")
    app = pilot.app
    await wait_until(lambda: isinstance(app.screen, PortfolioScreen) and "P000001" in screen_text(app))


async def journal(pilot: Pilot[int]) -> None:
    await _bought(pilot)
    await pilot.press("e")
    app = pilot.app
    await wait_until(lambda: isinstance(app.screen, JournalScreen) and "5 entries" in screen_text(app))


async def help_screen(pilot: Pilot[int]) -> None:
    await at_noon(pilot)
    await pilot.press("f1")
    await wait_until(lambda: isinstance(pilot.app.screen, HelpScreen))


async def chat(pilot: Pilot[int]) -> None:
    await at_noon(pilot)
    app: TriiTermApp = pilot.app  # type: ignore[assignment]
    await pilot.press("t")
    await wait_until(lambda: app.workstation.chat_visible and bool(app.screen.query(ChatView)))
    for ch in "how is aapl":
        await pilot.press(ch if ch != " " else "space")
    await pilot.press("enter")
    await wait_until(lambda: "tokens: 900 in · 12 out" in screen_text(app))
    await settled(app)


# -- the pictures -------------------------------------------------------------------------------


def steady_cursors(app: TriiTermApp) -> None:
    """A text cursor blinks on the real clock: show it steady, as the frame a reviewer expects."""
    for screen in app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False
        for area in screen.query(TextArea):
            area.cursor_blink = False


def _picture(snap_compare: Snap, paths: Paths, size: tuple[int, int], drive: Drive, extra: str = "") -> None:
    app = make_app(paths, extra)

    async def run_before(pilot: Pilot[int]) -> None:
        await drive(pilot)
        steady_cursors(app)
        await pilot.pause()

    try:
        assert snap_compare(app, terminal_size=size, run_before=run_before)
    finally:
        close(app)


@pytest.mark.parametrize("size", SIZES)
def test_workstation(snap_compare: Snap, paths: Paths, size: tuple[int, int]) -> None:
    _picture(snap_compare, paths, size, workstation)


@pytest.mark.parametrize("size", SIZES)
def test_full_chart(snap_compare: Snap, paths: Paths, size: tuple[int, int]) -> None:
    _picture(snap_compare, paths, size, full_chart)


@pytest.mark.parametrize("size", SIZES)
def test_order_ticket(snap_compare: Snap, paths: Paths, size: tuple[int, int]) -> None:
    _picture(snap_compare, paths, size, ticket)


@pytest.mark.parametrize("size", SIZES)
def test_confirm_dialog(snap_compare: Snap, paths: Paths, size: tuple[int, int]) -> None:
    _picture(snap_compare, paths, size, confirm)


@pytest.mark.parametrize("size", SIZES)
def test_portfolio_and_blotter(snap_compare: Snap, paths: Paths, size: tuple[int, int]) -> None:
    _picture(snap_compare, paths, size, portfolio)


@pytest.mark.parametrize("size", SIZES)
def test_journal(snap_compare: Snap, paths: Paths, size: tuple[int, int]) -> None:
    _picture(snap_compare, paths, size, journal)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Snap, paths: Paths, size: tuple[int, int]) -> None:
    _picture(snap_compare, paths, size, help_screen)


@pytest.mark.parametrize("size", SIZES)
def test_chat(snap_compare: Snap, paths: Paths, api: AnthropicFake, size: tuple[int, int]) -> None:
    api.push(text_reply("**AAPL** is ", "up on the day", input_tokens=900, output_tokens=12))
    extra = f'[ai]\nbase_url = "{api.url}"\nmodel = "claude-sonnet-4-6"\n'
    _picture(snap_compare, paths, size, chat, extra)
