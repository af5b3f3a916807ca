"""`feed reconnect`: after a refusal (keys, token, plan) a live feed waits for the trader; this
asks it to connect again now (after `trii-term login …` in another shell, say)."""

from __future__ import annotations

from trii_term.commands.registry import Command, CommandError, Invocation, Result


def reconnect(inv: Invocation) -> Result:
    feed = inv.session.feed
    again = getattr(feed, "reconnect", None)
    if feed is None or again is None:
        raise CommandError(f"The {inv.session.provider_name} feed does not reconnect on request.")
    again()
    return Result(f"Connecting to {inv.session.provider_name} again…")


COMMANDS: tuple[Command, ...] = (
    Command(
        "feed.reconnect",
        ("feed", "reconnect"),
        "Connect the live feed again now (after trii-term login, for keys or a token it refused)",
        reconnect,
        group="Feed",
    ),
)
