"""`journal [FILTER…]`: the audit journal in the workstation — every order intent, submission,
fill, cancel, rejection and AI tool call, newest first, with its time, source and broker."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from trii_term.commands.registry import Arg, Command, CommandError, Invocation


@runtime_checkable
class JournalScreens(Protocol):
    """What the journal command asks of the screen."""

    def open_journal(self, words: str) -> None:
        """Show the journal, filtered by these words (all must match an entry)."""


def journal(inv: Invocation) -> None:
    ui = inv.ctx.ui
    if not isinstance(ui, JournalScreens):
        raise CommandError("The journal is shown in the workstation; from a shell: trii-term journal")
    ui.open_journal(inv.args["filter"] or "")


COMMANDS: tuple[Command, ...] = (
    Command(
        "trade.journal",
        ("journal",),
        "The audit journal: every order intent, send, fill, cancel and rejection, newest first; "
        "FILTER words narrow it (e.g. journal rejected AAPL)",
        journal,
        (Arg("FILTER", "text", optional=True),),
        key="e,f5",
        key_label="Journal",
        needs_ui=True,
        group="Trading",
    ),
)
