"""What commands may ask of a screen, and what a screen may ask of the workstation: typed ports.

A command that needs a screen (`needs_ui`) gets one as `inv.ui`, typed `Screens`: the ports
below, each the few things one desk asks for. The workstation (`app.py`) implements them all
(mypy checks it where the app hands itself over as `CommandContext.ui`), and its screens and
widgets reach the app through `Workstation` instead of importing `app.py`. Only core types
cross a port, never Textual's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from trii_term.charting.model import ChartModel
    from trii_term.commands.registry import Command, CommandContext, Level, Result
    from trii_term.session import Session
    from trii_term.trading.order_line import Draft


class UiPort(Protocol):
    """The workstation as a whole: its command line, its help, quitting."""

    def prompt(self, text: str) -> None:
        """Open the command line with `text` typed, for the trader to complete."""

    def quit(self) -> None:
        """Quit as ctrl+q does (everything recorded is saved first)."""

    def show_help(self) -> None:
        """Show every command and its keys."""


class WatchlistPort(Protocol):
    """The watchlist on screen."""

    def select_symbol(self, symbol: str) -> None:
        """Put the cursor on a symbol of the watchlist shown."""


class TradePort(Protocol):
    """The trading screens: the ticket, the portfolio and blotter, the journal."""

    def open_ticket(self, draft: Draft, *, opened_by: str = "key") -> None:
        """Show the order ticket with `draft` filled in, for the trader to review and send."""

    def open_portfolio(self) -> None:
        """Show positions, the account and the order blotter."""

    def open_journal(self, words: str) -> None:
        """Show the journal, filtered by these words (all must match an entry)."""


class ChartPort(Protocol):
    """The workstation's chart (the pane, or the full-screen chart on top)."""

    @property
    def chart(self) -> ChartModel | None:
        """The chart model, once the chart has started (None before)."""

    def open_chart(self) -> None:
        """Show the chart full screen."""

    def close_chart(self) -> None:
        """Hide the crosshair if it is shown, else close the full-screen chart."""

    def chart_visible_bars(self) -> int:
        """How many bars the chart on top has room for."""


class ChatPort(Protocol):
    """The chat with Claude (the pane, or the full-screen chat)."""

    def open_chat(self, question: str | None = None, *, full: bool = False) -> None:
        """Show the chat (full screen if `full`), and ask `question` if given."""

    def toggle_chat(self) -> None:
        """Show the chat pane, or hide the chat shown."""

    async def chat_new(self, persona: str | None) -> None:
        """Start a new conversation (with this persona, if given)."""

    async def chat_resume(self, cid: str) -> None:
        """Open the saved conversation `cid`."""

    def chat_current(self) -> str | None:
        """The id of the conversation open, if any."""

    async def chat_refresh(self) -> None:
        """Show the open conversation's title and cost again (after a rename)."""

    async def chat_persona(self, name: str) -> str:
        """Start a new conversation with the persona `name`; its one-line introduction (what it
        will and will not do)."""


class Screens(UiPort, WatchlistPort, TradePort, ChartPort, ChatPort, Protocol):
    """Everything a command may ask of the screen: `CommandContext.ui`."""


@runtime_checkable
class Workstation(Screens, Protocol):
    """What the workstation's screens and widgets ask of it: the session, running a command line
    as a source (a key, the mouse, the ticket), the palette, the message line."""

    @property
    def session(self) -> Session:
        """The session the workstation shows."""

    @property
    def keymap(self) -> dict[str, str]:
        """[keys]: command and binding ids mapped to the keys the trader chose."""

    def command_context(
        self, source: str, *, confirmed: bool = False, shown: object = None, opened_by: str = ""
    ) -> CommandContext:
        """The context a command run from this screen gets."""

    async def execute(
        self,
        text: str,
        source: str = "palette",
        *,
        on_result: Callable[[Result], None] | None = None,
        opened_by: str = "",
        typed: bool | None = None,
    ) -> Result | None:
        """Run a command line and say how it went (None: it waits on a confirm dialog, and
        `on_result` hears the end)."""

    async def choose_command(self, cmd: Command) -> None:
        """A command picked from the palette list: prompt for its arguments, or run it."""

    def prompt(self, text: str, *, problem: str = "", source: str = "palette") -> None:
        """The palette with `text` typed (and why it did not run, if it did not)."""

    def message(self, text: str, level: Level = "info") -> None:
        """Say something on the message line."""

    def bell(self) -> None:
        """Ring the terminal's bell (a key that did nothing, a line that cannot run)."""

    def follow_symbol(self, symbol: str) -> None:
        """The watchlist cursor moved to `symbol`: the chart pane follows it."""


def workstation(app: object) -> Workstation:
    """The app a screen or widget runs in, typed as the port it implements."""
    if not isinstance(app, Workstation):
        raise TypeError(f"{type(app).__qualname__} is not the trii-term workstation")
    return app
