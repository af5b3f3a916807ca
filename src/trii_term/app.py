"""The Textual workstation. It reads snapshots of the core and sends it commands; it holds no
trading or market logic of its own."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar

from textual import events
from textual.app import App
from textual.binding import BindingType
from textual.timer import Timer

from trii_term import runtime
from trii_term.commands import CommandContext, CommandError, MissingArguments, replay
from trii_term.commands import ai as ai_commands
from trii_term.commands import chart as chart_commands
from trii_term.commands import journal as journal_commands
from trii_term.commands import trade as trade_commands
from trii_term.commands.registry import Command, Invocation, NeedsConfirmation, Result
from trii_term.config import ConfigError
from trii_term.domain import FeedState, FeedStatus, MarketBatch, SessionDay
from trii_term.screens.help import HelpScreen
from trii_term.screens.workstation import WorkstationScreen
from trii_term.session import Session
from trii_term.store.db import StoreError
from trii_term.widgets.bindings import command_bindings
from trii_term.widgets.colours import set_up_colours
from trii_term.widgets.palette import CommandProvider, TriiPalette

if TYPE_CHECKING:
    from trii_term.ai.chat_session import ChatDisplay, ChatSession
    from trii_term.ai.engine import Focus
    from trii_term.brokers.base import BrokerStatus
    from trii_term.charting.model import ChartModel
    from trii_term.commands.ports import Screens, Workstation
    from trii_term.domain.orders import Event
    from trii_term.screens.chart import ChartScreen
    from trii_term.screens.chat import ChatScreen
    from trii_term.trading.order_line import Draft
    from trii_term.widgets.chart import ChartView

log = logging.getLogger(__name__)
ResultHandler = Callable[[Result], None]
Call = Callable[[CommandContext], Awaitable[Result]]  # a command run in a context

CHART_START_LATEST = 1.0  # seconds after start-up, if no quote has arrived to trigger it
CHART_LOAD_DELAY = 0.06  # a cursor running down the watchlist loads only where it stops
PUMP_SECONDS = 0.1  # changed quotes reach the screen at most this often (10 Hz)
FLASH_CHECK_SECONDS = 0.2  # how often ended tick flashes are repainted


def _quit(inv: Invocation) -> None:
    inv.ui.quit()


def _help(inv: Invocation) -> None:
    inv.ui.show_help()


UI_COMMANDS: tuple[Command, ...] = (
    Command(
        "ui.quit",
        ("quit",),
        "Quit (everything recorded is saved first)",
        _quit,
        aliases=(("exit",),),
        key="ctrl+q",
        key_label="Quit",
        needs_ui=True,
        group="Workstation",
    ),
    Command(
        "ui.help",
        ("help",),
        "Show every command and its keys",
        _help,
        aliases=(("keys",),),
        key="f1,question_mark",
        key_label="Help",
        needs_ui=True,
        group="Workstation",
    ),
)


class TriiTermApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "trii-term"
    COMMANDS: ClassVar = {CommandProvider}
    COMMAND_PALETTE_BINDING = "ctrl+p"
    BINDINGS: ClassVar[list[BindingType]] = [
        *command_bindings(UI_COMMANDS, priority=True),
        *command_bindings(replay.COMMANDS),
        *command_bindings(chart_commands.OPEN_COMMANDS),
        *command_bindings(trade_commands.COMMANDS),
        *command_bindings(ai_commands.COMMANDS),
        *command_bindings(journal_commands.COMMANDS),
    ]

    def __init__(self, session: Session, *, keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        set_up_colours(self)  # 16 colours: the terminal's own; NO_COLOR: none at all
        self.session = session
        self.keymap: dict[str, str] = dict(keymap or session.config.keys)
        self.chart: ChartModel | None = None  # started once the first quotes are on screen
        self.workstation = WorkstationScreen(session)
        self._chart_load_timer: Timer | None = None
        self._chart_starting = False
        self._quitting = False
        self._chat: ChatSession | None = None  # made when the chat is first opened
        self._watched_broker: object = None
        self._pump_pending = False
        self._last_pump = 0.0
        self._disk_full_said = False
        self.ready = False
        session.commands.extend(UI_COMMANDS)
        session.commands.extend(chart_commands.COMMANDS)
        session.commands.extend(ai_commands.COMMANDS)
        session.commands.extend(journal_commands.COMMANDS)

    # -- start-up ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        if self.keymap:
            unknown = sorted(set(self.keymap) - self._binding_ids())
            self.set_keymap(self.keymap)
            if unknown:
                self.message(f"[keys] has unknown ids {', '.join(unknown)}; F1 shows the ids.", "warning")
        self.push_screen(self.workstation)
        self.run_worker(self._start_session(), name="session-start", group="session", exit_on_error=False)

    def _binding_ids(self) -> set[str]:
        """Every binding id a [keys] entry may name."""
        from textual.binding import Binding

        from trii_term.screens.confirm import ConfirmScreen
        from trii_term.screens.workstation import WatchlistKeys
        from trii_term.widgets.quote_table import QuoteTable

        owners = (type(self), WatchlistKeys, QuoteTable, HelpScreen, ConfirmScreen)
        ids = {b.id for owner in owners for b in owner.BINDINGS if isinstance(b, Binding) and b.id}
        commands = (
            *chart_commands.COMMANDS,
            *trade_commands.COMMANDS,
            *ai_commands.COMMANDS,
            *journal_commands.COMMANDS,
        )
        return ids | {c.id for c in commands if c.key}

    async def _start_session(self) -> None:
        try:
            await self.session.start()
        except ConfigError as exc:
            self.exit(2, return_code=2, message=f"trii-term: config error: {exc}")
            return
        except StoreError as exc:
            self.exit(1, return_code=1, message=f"trii-term: {exc}")
            return
        except Exception as exc:
            log.exception("start-up failed")
            import duckdb

            if isinstance(exc, duckdb.Error):  # a bad block met while starting: the store's fault
                from trii_term.store.db import store_error

                self.exit(1, return_code=1, message=f"trii-term: {store_error(self.session.store_path, exc)}")
                return
            self.exit(
                1,
                return_code=1,
                message=f"trii-term could not start: {exc}. Details: {self.session.paths.log_file}",
            )
            return
        lists = self.session.watchlists
        assert lists is not None
        lists.on_change(self._watchlists_changed)
        self.workstation.watchlist.reload()
        self.session.bus.subscribe(MarketBatch, self._on_market)
        self.session.bus.subscribe(FeedStatus, self._on_feed_status)
        from trii_term.brokers.base import BrokerStatus

        self.session.bus.subscribe(BrokerStatus, self._on_broker_status)
        self._watch_orders()
        self.set_interval(FLASH_CHECK_SECONDS, self._end_flashes)
        self.set_interval(1.0, self._every_second)
        self.message(self._welcome())
        self.workstation.status_bar.update_status()
        self.refresh_bindings()  # the footer now knows which feed runs
        for notice in self.session.notices:
            log.warning(notice)
            self.message(notice, "warning")
            self.notify(notice, severity="warning", timeout=12)
        self.ready = True
        self.set_timer(CHART_START_LATEST, self._start_chart)  # (sooner, after the first quotes)

    def _welcome(self) -> str:
        feed = self.session.feed
        start_day = getattr(feed, "start_day", None)
        if feed is not None and feed.simulated and start_day:
            what = f"Replaying {start_day} at {self.session.clock.speed:g}× (SIM)."
        else:
            what = f"Streaming from {self.session.provider_name}."
        return f"{what} ctrl+p commands · F1 help"

    # -- the flow of quotes to the screen ----------------------------------------------------

    def _on_market(self, batch: MarketBatch) -> None:
        """Coalesce: however many batches arrive, the screen is updated at most every
        PUMP_SECONDS, and at once after a quiet spell (so the first tick paints immediately)."""
        if self._pump_pending:
            return
        self._pump_pending = True
        delay = self._last_pump + PUMP_SECONDS - time.monotonic()
        if delay > 0.001:
            self.set_timer(delay, self._pump)
        else:  # (Textual's set_timer cannot take 0)
            self.call_later(self._pump)

    def _on_feed_status(self, status: FeedStatus) -> None:
        """The status bar may have to shorten a reason; the message line says it whole."""
        if status.state is FeedState.ERROR:
            self.message(
                f"{status.provider} feed error: {status.reason}. Quotes shown are the last "
                f"received; details in {self.session.paths.log_file}",
                "error",
            )
        elif status.state in (FeedState.STALE, FeedState.ENDED) and status.reason:
            self.message(f"{status.provider} feed {status.state.value}: {status.reason}", "warning")
        elif status.state is FeedState.LIVE and status.reason:
            self.message(f"{status.provider}: {status.reason}")

    def _watch_orders(self) -> None:
        """Say what happens to orders after they are sent: a limit order filling later, a live
        broker's fill arriving on its stream, a rejection or expiry the trader did not ask for."""
        broker = self.session.broker
        if broker is not None and broker is not self._watched_broker:
            broker.on_update(self._on_order_event)
            self._watched_broker = broker

    def _on_order_event(self, event: Event) -> None:
        if event.kind not in ("filled", "partially_filled", "rejected", "expired") or self._quitting:
            return
        o = event.order
        r = o.request
        if event.kind in ("filled", "partially_filled"):
            fill = event.fill
            price = f" at {fill.price}" if fill is not None else ""
            qty = fill.qty if fill is not None else o.filled_qty
            what = "Filled" if event.kind == "filled" else "Partly filled"
            self.message(f"{what}: {r.side.value} {qty} {r.symbol}{price} ({o.filled_qty}/{r.qty}, {o.id})")
        else:
            why = f": {o.reason}" if o.reason else ""
            self.message(f"{o.id} {event.kind}: {r.side.value} {r.qty} {r.symbol}{why}", "warning")

    def _on_broker_status(self, status: BrokerStatus) -> None:
        """A live broker connected, could not start, or has something to say (reconciliation)."""
        if status.ready:
            self._watch_orders()
        self.message(status.message, status.level)
        if status.level != "info":
            self.notify(status.message, severity=status.level, timeout=12)
        self.workstation.status_bar.update_status()

    def _pump(self) -> None:
        self._pump_pending = False
        self._last_pump = time.monotonic()
        dirty = self.session.quotes.drain_dirty()
        self.workstation.watchlist.table.update_quotes(dirty)
        if self.chart is None:
            if not self._chart_starting:
                self.call_after_refresh(self._start_chart)  # once these quotes are painted
            return
        kind = self.chart.take_live()
        if kind is not None:
            for view in self._chart_views():
                view.live(kind)

    def _end_flashes(self) -> None:
        self.workstation.watchlist.table.update_quotes(set())

    def _every_second(self) -> None:
        pane = self.workstation.watchlist
        if pane.sorted_live:
            pane.reload()
        pane.table.refresh_rows()
        self._say_disk_full()

    def _say_disk_full(self) -> None:
        """The store writer stopped on a full disk: say so once, whole (the status bar has room
        for "store ERROR" only), and what to do."""
        writer = self.session.writer
        full = writer.stats.full if writer is not None else None
        if writer is None or full is None or self._disk_full_said:
            return
        self._disk_full_said = True
        stats = writer.stats
        if not stats.full_why:
            text = f"Recording stopped: {full.rstrip('.')}. Quotes keep streaming; nothing more is recorded."
            self.message(text, "error")
            self.notify(text, severity="error", timeout=8)
            self.bell()
            return
        # why and what to do first: a long store path must not push them off an 80-column line
        what_to_do = "Free some disk space, then start trii-term again; everything written before is kept."
        self.message(
            f"Recording stopped: {stats.full_why}. {what_to_do} Quotes keep streaming. "
            f"The store: {stats.full_store}",
            "error",
        )
        # the toast is narrow: what to do starts a line of its own, so it reads whole
        self.notify(f"Recording stopped: {stats.full_why}.\n{what_to_do}", severity="error", timeout=8)
        self.bell()

    def _watchlists_changed(self) -> None:
        self.workstation.watchlist.reload()

    # -- the chart ---------------------------------------------------------------------------

    def _start_chart(self) -> None:
        """Create the chart (it imports numpy and polars) and attach it to the pane."""
        if self._chart_starting or self._quitting:
            return
        self._chart_starting = True
        from trii_term.charting.model import ChartModel

        chart = ChartModel(self.session)
        chart.on_change(self._chart_changed)
        self.session.bus.subscribe(MarketBatch, chart.on_batch)
        self.session.bus.subscribe(SessionDay, chart.on_session_day)
        self.chart = chart
        self.workstation.chart_pane.attach(chart)
        self.set_timer(runtime.FREEZE_HEAP_AFTER, runtime.freeze_heap)  # once the first frames are out
        chart.restore_settings()
        if symbol := self.focused_symbol:
            self.follow_symbol(symbol)

    def _chart_screen(self) -> ChartScreen | None:
        """The full-screen chart, if it is on top. There is none before the chart has started,
        and its class is imported only then (it would pull numpy and polars into start-up)."""
        if self.chart is None:
            return None
        from trii_term.screens.chart import ChartScreen

        top = self.screen_stack[-1] if self.screen_stack else None
        return top if isinstance(top, ChartScreen) else None

    def _chart_views(self) -> list[ChartView]:
        views = [v for v in (self.workstation.chart_pane.chart,) if v is not None]
        if (screen := self._chart_screen()) is not None:
            views.append(screen.chart)
        return views

    def follow_symbol(self, symbol: str) -> None:
        """The pane follows the watchlist cursor (not while the full-screen chart is open)."""
        if self.ready and self.chart is not None and self._chart_screen() is None:
            self.chart.show(symbol=symbol)

    def _chart_changed(self, kind: str) -> None:
        if kind == "load":
            if self._chart_load_timer is not None:
                self._chart_load_timer.stop()
            self._chart_load_timer = self.set_timer(CHART_LOAD_DELAY, self._load_chart)

    def _load_chart(self) -> None:
        self._chart_load_timer = None
        if self.chart is None:
            return
        job = self.chart.load_job()
        if job is None:
            return
        key, load = job
        model = self.chart

        def work() -> None:
            try:
                loaded, error = load(), ""
            except Exception as exc:
                log.exception("loading the chart of %s %s failed", key.symbol, key.interval)
                loaded, error = None, f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(RuntimeError):  # the app closed while this was loading
                self.call_from_thread(model.install, key, loaded, error)

        self.run_worker(work, thread=True, group="chart-load", exit_on_error=False)

    def open_chart(self) -> None:
        from trii_term.screens.chart import ChartScreen

        if self.chart is not None and self._chart_screen() is None:
            self.push_screen(ChartScreen(self.session, self.chart))

    def close_chart(self) -> None:
        if self.chart is None:
            return
        if self.chart.view.cursor is not None:
            self.chart.crosshair(False)
        elif self._chart_screen() is not None:
            self.pop_screen()
            self.select_symbol(self.chart.spec.symbol)
            focused = self.focused_symbol
            if focused and focused != self.chart.spec.symbol:  # charted a symbol not in the list
                self.follow_symbol(focused)

    def open_ticket(self, draft: Draft, *, opened_by: str = "key") -> None:
        from trii_term.screens.ticket import TicketScreen

        if self.session.desk is None:
            note = self.session.broker_note or "the broker is starting"
            self.bell()
            self.message(f"Trading unavailable: {note}", "error")
            return
        if isinstance(self.screen, TicketScreen):  # one ticket at a time: the new one replaces it
            self.pop_screen()
        self.push_screen(TicketScreen(self.session, draft, opened_by=opened_by))

    # -- the AI desk (the chat pane and the full-screen chat) --------------------------------

    @property
    def chat(self) -> ChatSession:
        """The chat session (the conversation, its engine, the reply in flight)."""
        if self._chat is None:
            from trii_term.ai.chat_session import ChatSession

            self._chat = ChatSession(self.session, self)
        return self._chat

    def _chat_screen(self) -> ChatScreen | None:
        """The full-screen chat, if it is open (none before the chat session exists)."""
        if self._chat is None:
            return None
        from trii_term.screens.chat import ChatScreen

        return next((s for s in self.screen_stack if isinstance(s, ChatScreen)), None)

    def open_chat(self, question: str | None = None, *, full: bool = False) -> None:
        from trii_term.screens.chat import ChatScreen

        if self.session.store is None:
            self.message("The store is still opening: try again in a moment.", "warning")
            return
        if full and self._chat_screen() is None:
            self.push_screen(ChatScreen(self.session, self.chat, self.focused_symbol))
        elif not full:
            self.workstation.show_chat(self.chat)
        if question:
            self.call_after_refresh(self.chat.send, question)

    def toggle_chat(self) -> None:
        if self._chat_screen() is not None:
            self.pop_screen()
        elif self.workstation.chat_visible:
            self.workstation.hide_chat()
        else:
            self.open_chat()

    def chat_leave(self, view: ChatDisplay) -> None:
        """Esc with no reply in flight: close the full-screen chat, or leave the pane."""
        screen = self._chat_screen()
        if screen is not None and view is screen.chat:
            self.pop_screen()
        else:
            self.workstation.watchlist.table.focus()

    async def chat_new(self, persona: str | None) -> None:
        await self.chat.new(persona)

    async def chat_resume(self, cid: str) -> None:
        if not self.chat.views:
            self.open_chat()
        await self.chat.resume(cid)

    def chat_current(self) -> str | None:
        return self._chat.cid if self._chat is not None else None

    async def chat_refresh(self) -> None:
        await self.chat.refresh_views()

    async def chat_persona(self, name: str) -> str:
        await self.chat.new(name)
        return self.chat.persona_intro()

    def chat_focus(self) -> Focus:
        """What Claude is told the trader is looking at."""
        from trii_term.ai.engine import Focus

        spec = self.chart.spec if self.chart is not None else None
        symbol = self.focused_symbol
        if self._chart_screen() is not None and spec is not None:
            symbol = spec.symbol
        interval = spec.interval if spec is not None and spec.symbol == symbol else "1D"
        studies = tuple(str(s) for s in spec.studies) if spec is not None and spec.symbol == symbol else ()
        return Focus(symbol, interval, studies)

    def chat_drafted(self, draft: Draft) -> None:
        """Claude drafted an order: it goes into the ticket, focused; the trader sends (or not)."""
        self.open_ticket(draft, opened_by="ai")
        self.message("Claude drafted this order into the ticket: review it; Enter sends, Esc discards.")

    def chat_cost_changed(self) -> None:
        self.workstation.status_bar.update_status()

    def open_portfolio(self) -> None:
        from trii_term.screens.portfolio import PortfolioScreen

        top = self.screen_stack[-1] if self.screen_stack else None
        if not isinstance(top, PortfolioScreen):
            self.push_screen(PortfolioScreen(self.session))

    def open_journal(self, words: str) -> None:
        from trii_term.screens.journal import JournalScreen

        top = self.screen_stack[-1] if self.screen_stack else None
        if isinstance(top, JournalScreen):
            self.pop_screen()
        self.push_screen(JournalScreen(self.session, words))

    def chart_visible_bars(self) -> int:
        views = self._chart_views()
        return views[-1].visible_bars if views else 1

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Replay keys exist only while the replay feed runs (the footer hides them otherwise)."""
        if action == "command" and parameters and str(parameters[0]).startswith("replay."):
            feed = self.session.feed
            return feed is None or feed.name == "replay"
        return True

    # -- commands ---------------------------------------------------------------------------

    @property
    def focused_symbol(self) -> str | None:
        return self.workstation.watchlist.table.cursor_symbol

    def command_context(
        self, source: str, *, confirmed: bool = False, shown: object = None, opened_by: str = ""
    ) -> CommandContext:
        return CommandContext(
            self.session,
            source=source,
            ui=self,
            focused_symbol=self.focused_symbol,
            confirmed=confirmed,
            shown=shown,
            opened_by=opened_by,
        )

    async def action_command(self, command_id: str) -> None:
        """What every key binding runs."""
        try:
            cmd = self.session.commands.get(command_id)
        except CommandError as exc:
            self.message(str(exc), "error")
            return
        await self._run(lambda ctx: self.session.commands.invoke(cmd, [], ctx), "key", cmd.name)

    async def execute(
        self,
        text: str,
        source: str = "palette",
        *,
        on_result: ResultHandler | None = None,
        opened_by: str = "",
        typed: bool | None = None,
    ) -> Result | None:
        """Run a command line. `on_result` hears how it ended, also when that is only known
        after a confirm dialog (then this returns None). A line the trader `typed` (the palette's)
        comes back in the palette to be corrected when it cannot run, with the reason."""
        registry = self.session.commands
        return await self._run(
            lambda ctx: registry.run(text, ctx),
            source,
            text,
            on_result=on_result,
            opened_by=opened_by,
            typed=source == "palette" if typed is None else typed,
        )

    async def choose_command(self, cmd: Command) -> None:
        """A command picked from the palette list: prompt for its arguments, or run it."""
        if cmd.takes_input:
            self.prompt(cmd.prompt_text(self.command_context("palette")))
        else:
            await self._run(lambda ctx: self.session.commands.invoke(cmd, [], ctx), "palette", cmd.name)

    async def _run(
        self,
        call: Call,
        source: str,
        label: str,
        *,
        confirmed: bool = False,
        shown: object = None,
        on_result: ResultHandler | None = None,
        opened_by: str = "",
        typed: bool = False,
    ) -> Result | None:
        """Run a command and say how it went. An order action waiting for the trader's yes
        (NeedsConfirmation) opens the confirm dialog; y runs the same line again, confirmed for
        what the dialog showed (if that changed meanwhile, the dialog comes back)."""
        ctx = self.command_context(source, confirmed=confirmed, shown=shown, opened_by=opened_by)
        result = await self._run_once(call, ctx, label if typed else "", on_result, label)
        if on_result is not None and result is not None:
            on_result(result)
        return result

    async def _run_once(
        self, call: Call, ctx: CommandContext, typed_line: str, on_result: ResultHandler | None, label: str
    ) -> Result | None:
        source = ctx.source
        if self._quitting:
            return None
        if not self.ready and not label.startswith(("quit", "exit", "help")):
            self.message("Still starting: the store is opening. Try again in a moment.", "warning")
            return Result("Still starting: the store is opening. Try again in a moment.", "warning")
        try:
            result: Result = await call(ctx)
        except MissingArguments as exc:
            self.prompt(exc.command.prompt_text(ctx))
            return None
        except NeedsConfirmation as exc:
            self._confirm(exc, call, ctx, label, on_result)
            return None
        except CommandError as exc:
            self.bell()
            self.message(str(exc), "error")
            if typed_line and not isinstance(self.screen, TriiPalette):  # keep it, to correct it
                self.prompt(typed_line, problem=str(exc), source=source)
            return Result(str(exc), "error")
        except Exception as exc:
            log.exception("command %r failed", label)
            text = f"{label} failed: {type(exc).__name__}: {exc}. Details in {self.session.paths.log_file}"
            self.message(text, "error")
            return Result(text, "error")
        if result.message:
            self.message(result.message, result.level)
        return result

    def _confirm(
        self,
        ask: NeedsConfirmation,
        call: Call,
        ctx: CommandContext,
        label: str,
        on_result: ResultHandler | None,
    ) -> None:
        """The confirm dialog; only y sends (the line runs again, confirmed for what was shown,
        on a worker)."""
        from trii_term.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(
                    self._run(
                        call,
                        ctx.source,
                        label,
                        confirmed=True,
                        shown=ask.shown,
                        on_result=on_result,
                        opened_by=ctx.opened_by,
                    ),
                    group="order-send",
                    exit_on_error=False,
                )
                return
            try:
                ask.decline()  # journalled: tried, not sent
            except Exception:
                log.exception("journalling a declined order failed")
            result = Result("Not sent (not confirmed).", "warning")
            self.message(result.message, result.level)
            if on_result is not None:
                on_result(result)

        self.push_screen(ConfirmScreen(ask.title, ask.lines, ask.where, verb=ask.verb), answered)

    # -- what commands may ask of the screen (UiPort) ---------------------------------------

    def prompt(self, text: str, *, problem: str = "", source: str = "palette") -> None:
        """The palette with `text` typed (and why it did not run, if it did not)."""
        self.push_screen(TriiPalette(prefill=text, problem=problem, source=source))

    def action_command_palette(self) -> None:
        """ctrl+p opens our palette (Textual's own runs the first fuzzy hit on Enter) — not over
        a confirm dialog: it is answered first (y or n), never left behind a palette."""
        from trii_term.screens.confirm import ConfirmScreen

        if isinstance(self.screen, ConfirmScreen):
            self.bell()
            return
        if self.use_command_palette and not TriiPalette.is_open(self):
            self.push_screen(TriiPalette(id="--command-palette"))

    def on_key(self, event: events.Key) -> None:
        """A key bubbles here before the screen's bindings run, on the screen on top *now*: an
        answer typed before a confirm dialog was drawn (the second `y` of `yy`, which the dialog
        before it did not take) answers nothing."""
        from trii_term.screens.confirm import ConfirmScreen

        screen = self.screen
        if isinstance(screen, ConfirmScreen) and not screen.takes(event):
            event.stop()
            event.prevent_default()

    def select_symbol(self, symbol: str) -> None:
        self.workstation.watchlist.table.select_symbol(symbol)

    def quit(self) -> None:
        self.call_later(self.action_quit)

    def message(self, text: str, level: str = "info") -> None:
        self.workstation.message_line.show(text, level)
        top = self.screen_stack[-1] if self.screen_stack else None
        line = getattr(top, "message_line", None) if top is not self.workstation else None
        if line is not None:
            line.show(text, level)

    def show_help(self) -> None:
        self.push_screen(HelpScreen(self.session.commands, self.keymap))

    # -- the unexpected ----------------------------------------------------------------------

    def _handle_exception(self, error: Exception) -> None:
        """An error nothing else caught: the traceback goes to the log file, the trader gets one
        sentence (Textual would print the traceback, with locals, on the terminal)."""
        log.error("the workstation stopped on an unexpected error", exc_info=error)
        self._crash_message = (
            f"trii-term stopped on an unexpected error: {type(error).__name__}: {error}\n"
            f"What was recorded is saved. Details: {self.session.paths.log_file}"
        )
        super()._handle_exception(error)

    def _fatal_error(self) -> None:
        from rich.text import Text

        self.bell()
        self._exit_renderables.append(Text(getattr(self, "_crash_message", "trii-term stopped.")))
        self._close_messages_no_wait()

    async def action_quit(self) -> None:
        """Quit cleanly: stop the feed, write everything queued, close the store."""
        if self._quitting:
            return
        self._quitting = True  # no more commands: the store is about to close
        self.message("Saving and closing…")
        try:
            if self._chat is not None:
                await self._chat.aclose()
            if self.session.started:
                await self.session.stop()
        except Exception:
            log.exception("stopping the session failed")
        writer = self.session.writer
        full = writer.stats.full if writer is not None else None
        if full is not None:  # a full disk stopped recording: the shell is told, exit 1
            self.exit(1, return_code=1, message=f"trii-term: {full}")
            return
        self.exit(0)


if TYPE_CHECKING:

    def _implements_the_ports(app: TriiTermApp) -> tuple[Screens, Workstation]:
        """mypy proves here, structurally, that the app is every port it is handed over as."""
        return app, app
