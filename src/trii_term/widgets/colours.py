"""Colour that never misleads: 16-colour terminals and NO_COLOR.

On a terminal of 16 colours (`TERM=screen`, `xterm`, `linux`) Textual's default theme is
downgraded colour by colour to the nearest of the 16: its orange accent and its warning became
bright red, so the watchlist's cursor bar was red (red on red for a falling price), focused borders
and the SIM badge read as "down". There the workstation uses the terminal's own ANSI colours,
with green and red only for up and down (and errors), cyan for focus, yellow for warnings, and the
cursor bar in reverse video (app.tcss, `:ansi`).

NO_COLOR (no-color.org: set and not empty): no colour at all. Textual only turns colours grey
(and takes an empty NO_COLOR as set); here every colour is removed from what is drawn, and the
cursor, flashes and focus are shown by reverse video, bold and underline (app.tcss, `:nocolor`).
Meaning never rested on colour alone: ▲/▼, signs, `›`, `stale` carry it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from textual.app import App
from textual.color import Color
from textual.filter import LineFilter, Monochrome, NoColor
from textual.theme import Theme

ANSI_THEME = "trii-ansi"
SIXTEEN_COLOURS = ("standard", "windows")  # Rich's names for 16-colour terminals

TRII_ANSI = Theme(
    name=ANSI_THEME,
    ansi=True,
    primary="ansi_blue",
    secondary="ansi_cyan",
    accent="ansi_cyan",  # focus: never red or magenta, which would read as "down"
    warning="ansi_yellow",
    error="ansi_red",
    success="ansi_green",
    foreground="ansi_default",
    background="ansi_default",
    surface="ansi_default",
    panel="ansi_default",
    boost="ansi_default",
    dark=True,
    variables={
        "ansi-background": "ansi_black",
        "ansi-foreground": "ansi_white",
        "border": "ansi_cyan",
        "border-blurred": "ansi_bright_black",
        "block-cursor-foreground": "ansi_black",
        "block-cursor-background": "ansi_white",
        "block-cursor-text-style": "bold",
        "input-cursor-background": "ansi_white",
        "input-cursor-foreground": "ansi_black",
        "input-cursor-text-style": "none",
        "input-selection-background": "ansi_blue",
        "input-selection-foreground": "ansi_bright_white",
        "footer-key-foreground": "ansi_cyan",
        "scrollbar": "ansi_bright_black",
        "scrollbar-hover": "ansi_white",
        "scrollbar-active": "ansi_white",
        "scrollbar-background": "ansi_default",
        "scrollbar-corner-color": "ansi_default",
        "screen-selection-background": "ansi_blue",
        "screen-selection-foreground": "ansi_bright_white",
    },
)


def no_color_set(environ: Mapping[str, str] | None = None) -> bool:
    """no-color.org: NO_COLOR present and not an empty string, whatever its value."""
    return bool((os.environ if environ is None else environ).get("NO_COLOR"))


def set_up_colours(app: App[object]) -> None:
    """Call once from the app's __init__: the theme for the terminal's colours, and NO_COLOR."""
    app.register_theme(TRII_ANSI)
    # Textual reads NO_COLOR as set when it is empty too, and then only greys the colours
    app._filters = [f for f in app._filters if not isinstance(f, (Monochrome, NoColor))]
    app.no_color = no_color_set() or app.console.color_system is None
    if app.no_color:
        app._filters.append(NoColour())
    if app.no_color or app.console.color_system in SIXTEEN_COLOURS:
        app.theme = ANSI_THEME  # (NO_COLOR: ANSI defaults, so nothing is blended into a shade)


class NoColour(LineFilter):
    """Removes every colour from what is drawn; bold, dim, reverse and underline stay, and a
    cell filled with a colour of its own (a highlighted option, an input's cursor, a badge:
    Textual bakes `reverse` into such colours) is drawn in reverse video instead."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [
            Segment(text, None if style is None else _without_colour(style), control)
            for text, style, control in segments
        ]


@lru_cache(1024)
def _without_colour(style: Style) -> Style:
    plain = style.without_color
    filled = style.bgcolor is not None and not style.bgcolor.is_default
    return plain + REVERSE if filled and not style.reverse else plain


REVERSE = Style(reverse=True)
