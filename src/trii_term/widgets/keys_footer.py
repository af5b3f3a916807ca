"""The key hints at the bottom: one line drawn by one widget.

It looks as Textual's footer does (the same theme variables), with two differences:
- a hint that does not fit is left out whole and `…` says there are more (F1 lists every key);
  Textual's footer cut the last one mid-word (`c Ch`);
- it is one widget, not a widget per key. Textual's footer mounts and styles a widget for every
  hint on each change of bindings (every focus change, every screen): a tenth of the
  workstation's drawing time went there. Here a change of bindings rebuilds a short list and
  repaints one line.

A click on a hint presses its key, as on Textual's footer; the mouse over a hint shows it in
reverse (seen in every colour mode and with NO_COLOR) and says what the command does. On a line
too narrow for them all, hints are left out whole and `…` says so; on one too narrow even for
the palette's key beside the mark, the key gives way whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget

MORE = "…"  # more keys than fit: F1 lists them all
RULE = "▏"  # before the palette's key, at the right


@dataclass(frozen=True, slots=True)
class KeyHint:
    key: str  # the key as Textual names it (what a click presses)
    key_display: str  # as shown: `^q`, `f1`, `del`
    description: str
    enabled: bool
    tooltip: str

    @property
    def label(self) -> str:
        """The hint as it reads on screen: `^q Quit`."""
        return f"{self.key_display} {self.description}".strip()


def hint_text(hint: KeyHint) -> tuple[str, str]:
    """(key part, description part) as drawn: ` ^q ` and `Quit `."""
    if not hint.description:
        return hint.key_display, ""
    return f" {hint.key_display} ", f"{hint.description} "


def palette_text(hint: KeyHint) -> tuple[str, str]:
    """The palette's key, at the right after the rule: `^p` and ` palette ` (its last space is
    the padding)."""
    return hint.key_display, f" {hint.description} " if hint.description else " "


def fit(widths: list[int], room: int) -> int:
    """How many hints, taken from the left, end at or before column `room`."""
    x = 0
    for n, w in enumerate(widths):
        x += w
        if x > room:
            return n
    return len(widths)


def plan(widths: list[int], palette: int, width: int) -> tuple[int, bool, bool]:
    """(hints shown, the `…` mark shown, the palette's key shown) on a line `width` wide.

    Every hint that fits goes in whole, from the left, with the palette's key (`palette`
    columns) at the right. When some do not fit, `… ` (two columns) says so and takes its room
    from the hints. On a line too narrow for the palette's key and the mark, the key gives way
    whole (the mark, and F1, still say there is more)."""
    if palette > width:
        palette = 0
    room = width - palette
    if sum(widths) <= room:
        return len(widths), False, palette > 0
    if room < len(MORE) and palette:  # no room for the mark beside the palette's key
        palette, room = 0, width
    return fit(widths, room - len(MORE) - 1), True, palette > 0


class KeysFooter(Widget, can_focus=False):
    ALLOW_SELECT = False
    COMPONENT_CLASSES = {
        "keys-footer--item",
        "keys-footer--key",
        "keys-footer--description",
        "keys-footer--hover",
        "keys-footer--more",
        "keys-footer--rule",
    }
    DEFAULT_CSS = """
    KeysFooter {
        dock: bottom;
        height: 1;
        width: 1fr;
        color: $footer-foreground;
        background: $footer-background;
        .keys-footer--item { background: $footer-item-background; }
        .keys-footer--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .keys-footer--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        .keys-footer--hover { background: $footer-item-background; text-style: reverse; }
        .keys-footer--more { color: $footer-description-foreground; }
        .keys-footer--rule { color: $foreground 20%; }
    }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.hints: list[KeyHint] = []
        self.palette: KeyHint | None = None
        self.shown = 0  # how many hints, from the left, the last line drew whole
        self._spans: list[tuple[int, int, KeyHint]] = []  # (x0, x1, hint) as last drawn
        self._hover: KeyHint | None = None
        self._mouse_x: int | None = None  # where the mouse is over the footer, if it is
        self._strip: tuple[object, Strip] | None = None  # (what it was drawn from, the line)

    # -- what it shows ----------------------------------------------------------------------

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self.bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, screen: Screen[Any]) -> None:
        """The keys in force changed (focus moved, a screen opened, a command's state changed):
        read them again and repaint. While the terminal has lost focus Textual moves focus about;
        the hints stay as they were, as Textual's footer does."""
        if not screen.app.app_focus and self.hints:
            return
        hints: list[KeyHint] = []
        seen: set[str] = set()
        active = screen.active_bindings
        for _node, binding, enabled, tooltip in active.values():
            if not binding.show or binding.action in seen:
                continue  # one hint per action: its first key
            seen.add(binding.action)
            hints.append(self._hint(binding, enabled, tooltip))
        palette = None
        app = screen.app
        if app.ENABLE_COMMAND_PALETTE and app.COMMAND_PALETTE_BINDING in active:
            _node, binding, enabled, tooltip = active[app.COMMAND_PALETTE_BINDING]
            palette = self._hint(binding, enabled, binding.tooltip or tooltip or binding.description)
        if hints != self.hints or palette != self.palette:
            self.hints, self.palette = hints, palette
            self.refresh()
            self._reaim()

    def _hint(self, binding: Binding, enabled: bool, tooltip: str) -> KeyHint:
        return KeyHint(binding.key, self.app.get_key_display(binding), binding.description, enabled, tooltip)

    # -- drawing ----------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        key = (width, self.hints, self.palette, self._hover)
        if self._strip is None or self._strip[0] != key:
            self._strip = (key, self._line(width))
        return self._strip[1]

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strip = None  # a new theme or stylesheet: draw the line again in its colours

    def _line(self, width: int) -> Strip:
        item = self.get_component_rich_style("keys-footer--item")
        hover = self.get_component_rich_style("keys-footer--hover")
        key = self.get_component_rich_style("keys-footer--key", partial=True)
        description = self.get_component_rich_style("keys-footer--description", partial=True)
        blank = Style(bgcolor=self.rich_style.bgcolor)
        dim = Style(dim=True)

        def base(hint: KeyHint) -> Style:
            style = hover if hint == self._hover else item
            return style if hint.enabled else style + dim

        palette_width = 0
        if self.palette is not None:
            palette_width = len(RULE) + sum(cell_len(t) for t in palette_text(self.palette))
        parts = [hint_text(h) for h in self.hints]
        widths = [cell_len(k) + cell_len(d) for k, d in parts]
        shown, more, with_palette = plan(widths, palette_width, width)
        self.shown = shown

        segments: list[Segment] = []
        spans: list[tuple[int, int, KeyHint]] = []
        x = 0
        for hint, (k, d), w in zip(self.hints[:shown], parts[:shown], widths[:shown], strict=True):
            under = base(hint)
            segments.append(Segment(k, under + key))
            if d:
                segments.append(Segment(d, under + description))
            spans.append((x, x + w, hint))
            x += w
        right = width - palette_width if with_palette else width  # where the palette's key begins
        if more:
            segments.append(Segment(MORE, self.get_component_rich_style("keys-footer--more")))
            x += len(MORE)
            if x < right:
                segments.append(Segment(" ", blank))
                x += 1
        if with_palette and self.palette is not None:
            if right > x:
                segments.append(Segment(" " * (right - x), blank))
            x = right
            hint = self.palette
            under = base(hint)
            k, d = palette_text(hint)
            segments.append(Segment(RULE, self.get_component_rich_style("keys-footer--rule")))
            segments.append(Segment(k, under + key))
            segments.append(Segment(d[:-1], under + description))
            segments.append(Segment(d[-1], under if hint == self._hover else under.background_style))
            spans.append((x, x + palette_width, hint))
            x += palette_width
        elif width > x:
            segments.append(Segment(" " * (width - x), blank))
        self._spans = spans
        return Strip(segments).crop_extend(0, width, blank)

    # -- the mouse --------------------------------------------------------------------------

    def hint_at(self, x: int) -> KeyHint | None:
        for x0, x1, hint in self._spans:
            if x0 <= x < x1:
                return hint
        return None

    def _aim(self, x: int | None) -> None:
        """The mouse is at column `x` (None: off the footer): light the hint under it, show its
        usage as the tooltip, and a hand as the pointer over it. A tooltip that is showing is
        hidden by Textual on the next move, and shown again when the mouse rests."""
        self._mouse_x = x
        hint = None if x is None else self.hint_at(x)
        if hint != self._hover:
            self._hover = hint
            self.tooltip = hint.tooltip if hint is not None and hint.tooltip else None
            self.styles.pointer = "pointer" if hint is not None else "default"
            self.refresh()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        self._aim(event.x)

    def on_leave(self, event: events.Leave) -> None:
        self._aim(None)

    def on_resize(self) -> None:
        self.call_after_refresh(self._reaim)

    def _reaim(self) -> None:
        """The hints moved under a mouse that stayed (new keys, a new width): the lit hint and
        the tooltip follow what is under the mouse now."""
        if self._mouse_x is not None:
            self.render_line(0)  # the spans of the line as it is now
            self._aim(self._mouse_x)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        hint = self.hint_at(event.x)
        if hint is None:
            return
        if hint.enabled:
            self.app.simulate_key(hint.key)
        else:
            self.app.bell()
