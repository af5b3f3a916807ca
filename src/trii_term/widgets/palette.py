"""The command palette as a command line: every command listed, arguments typed in place.

`ctrl+p` lists every command. Typing `watch add TSLA` offers "run it" as the first hit; a command
still missing arguments offers its usage; a known symbol typed alone offers `watch add SYMBOL`.
Keys whose command needs arguments open the palette with the command typed.

Enter runs the line as typed, never a hit the trader did not pick: Textual's palette runs the
highlighted hit, highlights the first one, and hits arrive from the providers while the trader
types, so Enter on `pasue` ran whatever fuzzy hit came first. Here nothing is highlighted until
the trader moves onto a hit (arrows, mouse); until then Enter parses the line itself, and a line
that is no command says so, with what it may have meant, and runs nothing.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.command import CommandInput, CommandList, CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.widgets import Input, Static
from textual.widgets.input import Selection
from textual.widgets.option_list import OptionDoesNotExist

from trii_term.commands import CommandError, MissingArguments
from trii_term.commands.ports import Workstation, workstation
from trii_term.commands.registry import Command, CommandContext, CommandRegistry
from trii_term.widgets.bindings import key_display

if TYPE_CHECKING:
    from textual.command import Command as ListedHit

MAX_COMPLETIONS = 8


class TriiPalette(CommandPalette):
    """A command palette that can open with text already typed, and whose Enter runs only the
    line typed or a hit the trader picked."""

    def __init__(
        self, prefill: str = "", *, problem: str = "", source: str = "palette", **kwargs: object
    ) -> None:
        super().__init__(placeholder="Type a command, e.g. watch add AAPL  (Esc to close)", **kwargs)  # type: ignore[arg-type]
        self._prefill = prefill
        self._first_problem = problem  # why the line it opens with did not run, shown at once
        self._problem_line: str | None = None  # the line the problem shown is about
        self.source = source  # who the line runs as: the palette, or a key that opened it (r)
        self._picked = False  # the trader moved onto a hit: Enter runs that hit
        self.problem = Static("", id="palette-problem")

    def on_mount(self) -> None:
        self.problem.display = False
        try:
            self.query_one("#--container").mount(self.problem, after=self.query_one("#--input"))
        except NoMatches:  # closed again before it was mounted
            return
        if self._first_problem:
            self.show_problem(self._first_problem, about=self._prefill)
        if self._prefill:
            box = self.query_one(CommandInput)
            box.value = self._prefill
            start = self._offered_default()
            if start is None:
                box.cursor_position = len(self._prefill)
            else:  # typing replaces the value offered; → or End keeps it to edit
                box.selection = Selection(start, len(self._prefill))

    def _offered_default(self) -> int | None:
        """Where the value starts when the palette opens with a command's own default argument
        (`R`: `watch rename Banks`, with Banks the name shown), else None."""
        app = self._app
        registry = app.session.commands
        try:
            found = registry.match(registry.split(self._prefill))
        except CommandError:
            return None
        if found is None:
            return None
        cmd = found[0]
        head = cmd.name + " "
        if cmd.prefill is None or not self._prefill.startswith(head) or len(self._prefill) == len(head):
            return None
        if self._prefill != cmd.prompt_text(app.command_context("palette")):
            return None
        return len(head)

    @property
    def _app(self) -> Workstation:
        return workstation(self.app)

    # -- what the trader picked ------------------------------------------------------------

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        """A new line: nothing is picked, and the last problem no longer applies once the
        trader has changed the line it was about (the line typed in for the trader when the
        palette opens changes the input too: its problem stays). Textual's own handler then
        searches again."""
        self._picked = False
        if event.value != self._problem_line:
            self.show_problem("")

    def _action_cursor_down(self) -> None:
        listing = self.query_one(CommandList)
        self._picked = True
        if self._list_visible and listing.highlighted is None and listing.option_count:
            listing.action_first()  # the first ↓ picks the first hit, not the second
        else:
            super()._action_cursor_down()

    def _action_command_list(self, action: str) -> None:
        if action != "select":
            self._picked = True
        super()._action_command_list(action)

    def _refresh_command_list(
        self, command_list: CommandList, commands: list[ListedHit], clear_current: bool
    ) -> None:
        """Hits arrive in batches: keep the trader's pick on its hit, and highlight nothing
        the trader did not pick (Textual highlights the first hit of every batch)."""
        picked = command_list.highlighted_option if self._picked else None
        super()._refresh_command_list(command_list, commands, clear_current)
        command_list.highlighted = None
        if picked is not None and picked.id is not None:
            try:
                command_list.highlighted = command_list.get_option_index(picked.id)
            except OptionDoesNotExist:
                self._picked = False

    # -- Enter -----------------------------------------------------------------------------

    @on(Input.Submitted)
    def _enter(self, event: Input.Submitted) -> None:
        """Run the line as typed; Textual's handler runs a hit only when the trader picked one."""
        listing = self.query_one(CommandList)
        if self._picked and self._list_visible and listing.highlighted is not None:
            return  # (Textual's handler, next, runs the picked hit)
        event.prevent_default()
        event.stop()
        app = self._app
        line = event.value.strip()
        if not line:
            self.show_problem("Type a command (F1 lists them all), or pick one with ↓ and Enter.")
            return
        registry = app.session.commands
        try:
            tokens = registry.split(line)
        except CommandError as exc:
            self.show_problem(str(exc))
            return
        if registry.match(tokens) is None:
            shorthand = watch_line(app, tokens)
            if shorthand is None:
                problem = unknown_command(registry, tokens)
                self.show_problem(problem)
                app.message(problem, "error")
                app.bell()
                return
            line = shorthand
        self.close_and_run(partial(app.execute, line, self.source, typed=True))

    def close_and_run(self, run: Callable[[], Awaitable[object]]) -> None:
        """As Textual's palette closes on a pick: the command runs once the palette is gone."""
        self._cancel_gather_commands()
        self.app.post_message(CommandPalette.Closed(option_selected=True))
        self.dismiss()
        self.app.call_later(run)

    def show_problem(self, text: str, *, about: str | None = None) -> None:
        """Say why the line `about` (the line in the input now, if not given) does not run;
        it stays until the trader edits that line."""
        if text and about is None:
            about = self.query_one(CommandInput).value
        self._problem_line = about if text else None
        self.problem.update(Text(f"✖ {text}") if text else "")
        self.problem.display = bool(text)


def unknown_command(registry: CommandRegistry, tokens: Sequence[str]) -> str:
    typed = " ".join(tokens)
    close = suggestions(registry, tokens)
    if close:
        return f"Unknown command {typed!r}. Did you mean: {', '.join(close)}? Nothing was run."
    return f"Unknown command {typed!r}. Nothing was run: F1 lists every command."


def suggestions(registry: CommandRegistry, tokens: Sequence[str]) -> list[str]:
    """The commands a mistyped line may have meant (the registry says, for the CLI too)."""
    return registry.suggestions(tokens)


def watch_line(app: Workstation, tokens: Sequence[str]) -> str | None:
    """A known symbol typed alone means `watch add SYMBOL` (Kite: a bare INFY is NSE:INFY)."""
    if len(tokens) != 1:
        return None
    instruments = app.session.instruments
    sym = tokens[0].upper()
    if sym not in instruments and f"NSE:{sym}" in instruments:
        sym = f"NSE:{sym}"
    return f"watch add {sym}" if sym in instruments else None


class CommandProvider(Provider):
    @property
    def _app(self) -> Workstation:
        return workstation(self.app)

    def _ctx(self) -> CommandContext:
        return self._app.command_context("palette")

    def _display(self, cmd: Command) -> Text:
        text = Text(cmd.usage, style="bold")
        if cmd.key:
            text.append(f"  [{_keys(cmd, self._app)}]", style="dim")
        return text

    async def discover(self) -> Hits:
        for cmd in self._app.session.commands:
            yield DiscoveryHit(
                self._display(cmd),
                partial(self._app.choose_command, cmd),
                text=cmd.usage,
                help=escape(cmd.summary),
            )

    async def search(self, query: str) -> Hits:
        app = self._app
        registry = app.session.commands
        q = query.strip()
        if not q:
            return
        try:
            tokens = registry.split(q)
        except CommandError:
            tokens = q.split()
        found = registry.match(tokens) if tokens else None

        if found is not None:
            cmd, raw = found
            ctx = self._ctx()
            try:
                registry.bind(cmd, raw, ctx, q)
            except MissingArguments:
                yield Hit(
                    0.95,
                    Text(cmd.usage, style="bold"),
                    partial(app.prompt, cmd.prompt_text(ctx)),
                    text=cmd.prompt_text(ctx),
                    help=escape(f"{cmd.summary} — type the {_missing(cmd, raw)}"),
                )
            except CommandError as exc:
                yield Hit(
                    0.95, Text(f"✖ {q}", style="bold"), partial(app.execute, q), text=q, help=escape(str(exc))
                )
            else:
                yield Hit(
                    1.0,
                    Text(f"▶ {q}", style="bold"),
                    partial(app.execute, q),
                    text=q,
                    help=escape(cmd.summary),
                )
            for completion in _completions(app, cmd, raw):
                yield completion
        elif (line := watch_line(app, tokens)) is not None:
            inst = app.session.instruments[line.split()[-1]]
            yield Hit(
                0.9,
                Text(f"▶ {line}", style="bold"),
                partial(app.execute, line),
                text=line,
                help=f"{inst.name} ({inst.exchange}, {inst.currency})",
            )
        elif tokens:
            # what a mistyped line may have meant, above the fuzzy hits (↓ Enter picks it)
            for name in suggestions(registry, tokens):
                meant = registry.match(name.split())
                if meant is not None:
                    yield Hit(
                        0.85,
                        Text(meant[0].usage, style="bold"),
                        partial(app.choose_command, meant[0]),
                        text=meant[0].usage,
                        help=escape(f"did you mean {name}? {meant[0].summary}"),
                    )

        matcher = self.matcher(q)
        for cmd in registry:
            # (a fuzzy match may score above 1: keep it below the line typed, which runs as is)
            score = min(1.0, max(matcher.match(cmd.usage), matcher.match(cmd.summary) * 0.6))
            if score > 0:
                yield Hit(
                    score * 0.8,
                    matcher.highlight(cmd.usage),
                    partial(app.choose_command, cmd),
                    text=cmd.usage,
                    help=escape(cmd.summary),
                )


def escape(text: str) -> str:
    """Help text is Textual markup: keep `[SYMBOL]` and the like as typed (Textual's own escape
    leaves upper-case tags alone)."""
    return text.replace("[", "\\[")


def _completions(app: Workstation, cmd: Command, raw: list[str]) -> Iterator[Hit]:
    """Symbols for SYMBOL arguments, watchlist names for NAME ones."""
    if not cmd.args:
        return
    head = " ".join(cmd.words)
    first = cmd.args[0]
    if first.kind in ("symbol", "symbols"):
        typed = raw[-1].upper() if raw else ""
        done = [t.upper() for t in raw[:-1]]
        instruments = app.session.instruments
        # one pass, keeping the first few in order (a live master holds tens of thousands: no
        # full sort per keystroke); NSE:INFY matches "INF" as well as "NSE:INF"
        found = heapq.nsmallest(
            MAX_COMPLETIONS,
            (
                sym
                for sym in instruments
                if (sym.startswith(typed) or sym.partition(":")[2].startswith(typed))
                and sym != typed
                and sym not in done
            ),
        )
        for sym in found:
            line = " ".join([head, *done, sym])
            yield Hit(
                0.7, Text(f"▶ {line}"), partial(app.execute, line), text=line, help=instruments[sym].name
            )
    elif cmd.id in ("watch.switch", "watch.delete"):
        typed = " ".join(raw).casefold()
        for name in app.session.watchlists.names():
            if name.casefold().startswith(typed) and name.casefold() != typed:
                line = f"{head} {name}"
                yield Hit(
                    0.7, Text(f"▶ {line}"), partial(app.execute, line), text=line, help=f"watchlist {name}"
                )


def _missing(cmd: Command, raw: list[str]) -> str:
    need = [a for a in cmd.args if not a.optional][len(raw) :]
    return " ".join(a.usage for a in need) or "arguments"


def _keys(cmd: Command, app: Workstation) -> str:
    return key_display(app.keymap.get(cmd.id, cmd.key or ""))
