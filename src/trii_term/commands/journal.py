"""`journal [FILTER…]`: the audit journal in the workstation — every order intent, submission,
fill, cancel, rejection and AI tool call, newest first, with its time, source and broker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trii_term.commands.registry import Arg, Command, CommandError, Invocation

if TYPE_CHECKING:
    from trii_term.commands.ports import TradePort


def journal(inv: Invocation) -> None:
    if inv.ctx.ui is None:
        raise CommandError("The journal is shown in the workstation; from a shell: trii-term journal")
    screen: TradePort = inv.ui
    screen.open_journal(inv.args["filter"] or "")


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
