"""The command palette as a command line: every command listed, arguments typed in place.

`ctrl+p` lists every command. Typing `watch add TSLA` offers "run it" as the first hit (Enter
runs it); a command still missing arguments offers its usage; a known symbol typed alone offers
`watch add SYMBOL`. Keys whose command needs arguments open the palette with the command typed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

from rich.text import Text
from textual.command import CommandInput, CommandPalette, DiscoveryHit, Hit, Hits, Provider

from trii_term.commands import CommandError, MissingArguments
from trii_term.commands.registry import Command, CommandContext
from trii_term.widgets.bindings import key_display

if TYPE_CHECKING:
    from trii_term.app import TriiTermApp

MAX_COMPLETIONS = 8


class TriiPalette(CommandPalette):
    """A command palette that can open with text already typed."""

    def __init__(self, prefill: str = "", **kwargs: object) -> None:
        super().__init__(placeholder="Type a command, e.g. watch add AAPL  (Esc to close)", **kwargs)  # type: ignore[arg-type]
        self._prefill = prefill

    def on_mount(self) -> None:
        if self._prefill:
            box = self.query_one(CommandInput)
            box.value = self._prefill
            box.cursor_position = len(self._prefill)


class CommandProvider(Provider):
    @property
    def _app(self) -> TriiTermApp:
        return self.app  # type: ignore[return-value]

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
        else:
            # a symbol typed alone: offer to watch it
            sym = q.upper()
            if (
                len(tokens) == 1
                and sym not in app.session.instruments
                and f"NSE:{sym}" in app.session.instruments
            ):
                sym = f"NSE:{sym}"  # Kite: a bare INFY is NSE:INFY
            if len(tokens) == 1 and sym in app.session.instruments:
                line = f"watch add {sym}"
                inst = app.session.instruments[sym]
                yield Hit(
                    0.9,
                    Text(f"▶ {line}", style="bold"),
                    partial(app.execute, line),
                    text=line,
                    help=f"{inst.name} ({inst.exchange}, {inst.currency})",
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


def _completions(app: TriiTermApp, cmd: Command, raw: list[str]) -> Iterator[Hit]:
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


def _keys(cmd: Command, app: TriiTermApp) -> str:
    return key_display(app.keymap.get(cmd.id, cmd.key or ""))
