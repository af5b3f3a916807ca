"""Every user action is a command: one registry, one grammar, one way to run it.

A key press, a palette line, a CLI call (and later a macro line or an AI tool) all become
`registry.run(text_or_id, ctx)`. A command has words (`watch add`), typed arguments
(`SYMBOL…`), an id (`watch.add`) that key bindings refer to, and a handler.
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import re
import shlex
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from trii_term.domain import normalize_symbol

if TYPE_CHECKING:
    from trii_term.commands.ports import Screens
    from trii_term.session import Session

Level = Literal["info", "warning", "error"]


class CommandError(Exception):
    """The command cannot run as typed; the message tells the trader why and what to do.
    Nothing has changed when this is raised. `exit_code` is what the shell gets (2: invalid
    input)."""

    exit_code = 2
    preview: Any = None  # an order action refused: the desk's Preview of what it would have done


class Unavailable(CommandError):
    """The command is fine but cannot run now (no broker, no quote, the store is busy)."""

    exit_code = 1


class Refused(CommandError):
    """An order action refused by a risk rule or by the broker (journalled as rejected)."""

    exit_code = 4


class NeedsConfirmation(CommandError):
    """An order action that is valid and passes every rule, waiting for the trader's yes.

    A screen shows `title` and `lines` with the account (`where`) and runs the same line again
    with `confirmed=True` on y; on n, `decline()` journals that it was not sent. Headless, this
    is exit 3: nothing was sent (confirm with --yes)."""

    exit_code = 3

    def __init__(
        self,
        title: str,
        lines: list[str],
        *,
        where: str,
        decline: Callable[[], None],
        data: Any = None,
        shown: Any = None,
        verb: str = "send",
    ) -> None:
        super().__init__(f"{title}: not sent — it needs confirming (y in the workstation, --yes on the CLI)")
        self.title = title
        self.lines = lines
        self.where = where
        self.decline = decline
        self.data = data
        self.shown = shown  # what the trader is shown: the yes holds for exactly this
        self.verb = verb  # what y does, in the dialog's words


class MissingArguments(CommandError):
    """Required arguments are missing; a UI may prompt for them."""

    def __init__(self, command: Command, given: str) -> None:
        super().__init__(f"usage: {command.usage}")
        self.command = command
        self.given = given


@dataclass(frozen=True)
class Result:
    message: str = ""
    level: Level = "info"
    data: Any = None  # what the command made (orders…), for the CLI's JSON and for scripts


@dataclass
class CommandContext:
    session: Session
    source: str = "palette"  # ticket, palette, key, cli, macro, ai
    ui: Screens | None = None  # the workstation's screens (commands/ports.py), when there are some
    focused_symbol: str | None = None
    confirmed: bool = False  # the trader said yes (y in a dialog, --yes, an armed macro)
    can_ask: bool = False  # a headless caller that can ask the trader (a terminal)
    shown: Any = None  # with `confirmed` from a dialog: what was shown (a yes holds for that only)
    opened_by: str = ""  # the ticket: what opened it (key, palette, ai)

    @property
    def interactive(self) -> bool:
        """Can an unconfirmed order be put to the trader (a dialog, a terminal prompt)?"""
        return self.ui is not None or self.can_ask


ArgKind = Literal["symbol", "symbols", "word", "text", "number", "int", "date", "choice"]


@dataclass(frozen=True)
class Arg:
    name: str
    kind: ArgKind = "word"
    optional: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""

    @property
    def usage(self) -> str:
        label = self.name + ("…" if self.kind in ("symbols", "text") else "")
        if self.choices:
            label = "|".join(self.choices)
        return f"[{label}]" if self.optional else label


Handler = Callable[["Invocation"], "Result | str | Awaitable[Result | str | None] | None"]


@dataclass(frozen=True)
class Command:
    id: str
    words: tuple[str, ...]
    summary: str
    handler: Handler
    args: tuple[Arg, ...] = ()
    aliases: tuple[tuple[str, ...], ...] = ()
    key: str | None = None  # default key(s), comma separated; remappable by id in [keys]
    key_label: str | None = None  # short label for the footer
    needs_ui: bool = False
    group: str = ""
    prefill: Callable[[CommandContext], str] | None = None  # what a prompt starts with

    def prompt_text(self, ctx: CommandContext) -> str:
        return self.prefill(ctx) if self.prefill else self.name + " "

    @property
    def name(self) -> str:
        return " ".join(self.words)

    @property
    def usage(self) -> str:
        return " ".join([self.name, *(a.usage for a in self.args)])

    @property
    def takes_input(self) -> bool:
        return any(not a.optional for a in self.args)


@dataclass
class Invocation:
    command: Command
    args: dict[str, Any]
    ctx: CommandContext
    text: str = ""

    @property
    def session(self) -> Session:
        return self.ctx.session

    @property
    def ui(self) -> Screens:
        """The screen a command that `needs_ui` acts on (the registry runs those only with one)."""
        if self.ctx.ui is None:
            raise _no_screen(self.command, self.ctx)
        return self.ctx.ui


@dataclass
class CommandRegistry:
    _commands: dict[str, Command] = field(default_factory=dict)
    _by_words: dict[tuple[str, ...], Command] = field(default_factory=dict)

    def register(self, command: Command) -> Command:
        if command.id in self._commands:
            raise ValueError(f"command id {command.id!r} registered twice")
        for words in (command.words, *command.aliases):
            key = tuple(w.lower() for w in words)
            if key in self._by_words:
                raise ValueError(f"command words {' '.join(words)!r} registered twice")
            self._by_words[key] = command
        self._commands[command.id] = command
        return command

    def extend(self, commands: Iterable[Command]) -> None:
        for c in commands:
            self.register(c)

    def get(self, command_id: str) -> Command:
        try:
            return self._commands[command_id]
        except KeyError:
            raise CommandError(f"there is no command with id {command_id!r}") from None

    def __iter__(self) -> Iterator[Command]:
        return iter(self._commands.values())

    def __len__(self) -> int:
        return len(self._commands)

    # -- parsing ------------------------------------------------------------------------------

    @staticmethod
    def split(text: str) -> list[str]:
        try:
            return shlex.split(text)
        except ValueError as exc:
            raise CommandError(f"cannot read that command: {exc} (check the quotes)") from None

    def match(self, tokens: Sequence[str]) -> tuple[Command, list[str]] | None:
        """The command whose words are the longest prefix of `tokens`, and the rest."""
        lowered = [t.lower() for t in tokens]
        for n in range(min(len(lowered), 4), 0, -1):
            cmd = self._by_words.get(tuple(lowered[:n]))
            if cmd is not None:
                return cmd, list(tokens[n:])
        return None

    def parse(self, text: str) -> tuple[Command, list[str]]:
        tokens = self.split(text)
        if not tokens:
            raise CommandError("type a command, for example: watch add AAPL")
        found = self.match(tokens)
        if found is None:
            raise CommandError(self._unknown(tokens))
        return found

    def _unknown(self, tokens: Sequence[str]) -> str:
        close = self.suggestions(tokens)
        hint = f" Did you mean: {', '.join(close)}?" if close else " Press ctrl+p to see every command."
        return f"Unknown command {' '.join(tokens)!r}.{hint} Nothing was run."

    def suggestions(self, tokens: Sequence[str]) -> list[str]:
        """The commands a mistyped line may have meant: its first words against each command's
        name (`wach add` → `watch add`), or its first word against any one word of a name
        (`pasue` → `replay pause`); shorter names first when equally close."""
        typed = [t.lower() for t in tokens]
        if not typed:
            return []
        scored: dict[str, float] = {}
        for cmd in self:
            for words in (cmd.words, *cmd.aliases):
                name = " ".join(words)
                whole = _ratio(" ".join(typed[: len(words)]), name)
                one_word = max(_ratio(typed[0], w) for w in words) - 0.01 * (len(words) - 1)
                score = max(whole, one_word)
                if score >= CLOSE_ENOUGH and score > scored.get(cmd.name, 0.0):
                    scored[cmd.name] = score
        ranked = sorted(scored, key=lambda n: (-scored[n], len(n), n))
        return ranked[:MAX_SUGGESTIONS]

    def bind(self, command: Command, raw: list[str], ctx: CommandContext, text: str = "") -> dict[str, Any]:
        """Turn raw argument strings into typed values, checking each."""
        values: dict[str, Any] = {}
        rest = list(raw)
        for arg in command.args:
            if arg.kind in ("symbols", "text"):
                taken, rest = rest, []
            else:
                taken, rest = rest[:1], rest[1:]
            if not taken:
                if arg.optional:
                    values[arg.name.lower()] = [] if arg.kind == "symbols" else None
                    continue
                raise MissingArguments(command, text or command.name)
            values[arg.name.lower()] = _convert(arg, taken, ctx)
        if rest:
            raise CommandError(f"{command.name} does not take {' '.join(rest)!r}. Usage: {command.usage}")
        return values

    # -- running ------------------------------------------------------------------------------

    async def run(self, text: str, ctx: CommandContext) -> Result:
        """Parse and run a command line. Raises CommandError with a trader-facing message."""
        command, raw = self.parse(text)
        return await self.invoke(command, raw, ctx, text=text)

    async def run_id(self, command_id: str, ctx: CommandContext, raw: list[str] | None = None) -> Result:
        return await self.invoke(self.get(command_id), raw or [], ctx)

    async def invoke(self, command: Command, raw: list[str], ctx: CommandContext, text: str = "") -> Result:
        if command.needs_ui and ctx.ui is None:
            raise _no_screen(command, ctx)
        args = self.bind(command, raw, ctx, text)
        outcome = command.handler(Invocation(command, args, ctx, text))
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome is None:
            return Result()
        if isinstance(outcome, str):
            return Result(outcome)
        return outcome


def _no_screen(command: Command, ctx: CommandContext) -> CommandError:
    return CommandError(f"'{command.name}' works only in the workstation, not from {ctx.source}.")


MAX_SUGGESTIONS = 3
CLOSE_ENOUGH = 0.75  # difflib ratio: `pasue`/`pause` 0.8, `hlep`/`help` 0.75, `foo`/`oldest` 0.22


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _convert(arg: Arg, taken: list[str], ctx: CommandContext) -> Any:
    kind = arg.kind
    if kind == "symbols":
        return [resolve_symbol(ctx, t) for t in _split_symbols(taken)]
    if kind == "symbol":
        return resolve_symbol(ctx, taken[0])
    if kind == "text":
        return " ".join(taken)
    value = taken[0]
    if kind == "word":
        return value
    if kind == "choice":
        low = value.lower()
        if low not in arg.choices:
            raise CommandError(f"{arg.name} must be one of {', '.join(arg.choices)} (got {value!r}).")
        return low
    if kind in ("number", "int"):
        # ASCII digits only, bounded: int('١٠') and float('1e400') would both "work"
        pattern = r"-?[0-9]{1,15}" if kind == "int" else r"-?(?:[0-9]{1,15}(?:\.[0-9]{0,10})?|\.[0-9]{1,10})"
        if not re.fullmatch(pattern, value):
            raise CommandError(
                f"{arg.name} must be a {'whole ' if kind == 'int' else ''}number like "
                f"{'5' if kind == 'int' else '2.5'} (got {value!r})."
            )
        return int(value) if kind == "int" else float(value)
    if kind == "date":
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise CommandError(f"{arg.name} must be a date like 2013-03-01 (got {value!r}).") from None
    raise CommandError(f"unsupported argument kind {kind}")


def _split_symbols(tokens: list[str]) -> list[str]:
    out: list[str] = []
    for t in tokens:
        out.extend(p for p in t.replace(",", " ").split() if p)
    return out


def resolve_symbol(ctx: CommandContext, text: str) -> str:
    """A symbol the trader typed, checked against the instruments the feed knows."""
    from trii_term.feeds import instruments_problem

    sym = normalize_symbol(text)
    known = ctx.session.instruments
    if sym in known:
        return sym
    if ":" not in sym and f"NSE:{sym}" in known:  # Kite: a bare INFY means NSE:INFY
        return f"NSE:{sym}"
    problem = instruments_problem(known)
    if problem:  # the feed has no instruments at all (a refused token…): say that, not "unknown"
        raise Unavailable(f"{sym}: {problem}. Nothing was changed.")
    # (a live instrument master holds tens of thousands: compare against a bounded sample)
    sample = list(itertools.islice(known, 20_000))
    close = difflib.get_close_matches(sym, sample, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    provider = ctx.session.provider_name
    listing = ", ".join(sorted(sample)[:12]) + ("…" if len(sample) > 12 else "")
    raise CommandError(
        f"Unknown symbol {sym}: the {provider} feed has no such instrument.{hint} "
        f"Known: {listing}. Nothing was changed."
    )
