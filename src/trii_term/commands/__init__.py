"""Commands: the one way every action is taken (keys, palette, CLI, later macros and AI)."""

from __future__ import annotations

from trii_term.commands.registry import (
    Arg,
    Command,
    CommandContext,
    CommandError,
    CommandRegistry,
    Invocation,
    MissingArguments,
    Result,
)


def core_registry() -> CommandRegistry:
    """A registry with every command of the core (no screen needed)."""
    from trii_term.commands import feed, replay, trade, watch

    registry = CommandRegistry()
    registry.extend(watch.COMMANDS)
    registry.extend(feed.COMMANDS)
    registry.extend(replay.COMMANDS)
    registry.extend(trade.COMMANDS)
    return registry


__all__ = [
    "Arg",
    "Command",
    "CommandContext",
    "CommandError",
    "CommandRegistry",
    "Invocation",
    "MissingArguments",
    "Result",
    "core_registry",
]
