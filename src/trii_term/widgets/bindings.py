"""Key bindings made from commands: a key is only a way to run a command, by its id."""

from __future__ import annotations

from collections.abc import Iterable

from textual.binding import Binding

from trii_term.commands.registry import Command


def command_bindings(commands: Iterable[Command], *, priority: bool = False) -> list[Binding]:
    """One Binding per command that has default keys. The binding id is the command id, so
    `[keys]` in the config (App.set_keymap) remaps it."""
    return [
        Binding(
            c.key,
            f"app.command('{c.id}')",
            c.key_label or c.summary,
            show=c.key_label is not None,
            id=c.id,
            priority=priority,
            tooltip=c.usage,
        )
        for c in commands
        if c.key
    ]


_KEY_NAMES = {
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "question_mark": "?",
    "delete": "del",
    "insert": "ins",
    "pageup": "pgup",
    "pagedown": "pgdn",
}


def key_display(keys: str) -> str:
    """'shift+up,K' -> 'shift+up/K'; Textual key names shown as the characters they are."""
    return "/".join(_KEY_NAMES.get(k, k) for k in keys.split(",") if k)
