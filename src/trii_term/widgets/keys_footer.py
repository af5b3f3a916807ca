"""The key hints at the bottom: Textual's footer, but a hint that does not fit is left out whole
and `…` says there are more (F1 lists every key); Textual's cut the last one mid-word (`c Ch`)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Label


class MoreKeys(Label):
    """`…`: more keys than fit (F1 lists them all)."""

    DEFAULT_CSS = """
    MoreKeys { width: 2; height: 1; color: $footer-description-foreground; }
    """


class KeysFooter(Footer):
    def compose(self) -> ComposeResult:
        yield from super().compose()
        more = MoreKeys("…")
        more.display = False
        yield more

    _recompose_pending = False

    def bindings_changed(self, screen: Screen[Any]) -> None:
        """Textual's footer builds every key again (a widget each, styled anew) after each change
        of bindings: five times as the workstation starts, most of its styling work. Changes that
        come before the rebuild ran share it; the rebuild reads the bindings as they are then."""
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._recompose_pending:
            self._recompose_pending = True
            self.call_after_refresh(self._recompose_once)

    async def _recompose_once(self) -> None:
        self._recompose_pending = False
        await self.recompose()

    async def recompose(self) -> None:
        await super().recompose()
        self.call_after_refresh(self.fit_keys)

    def on_resize(self) -> None:
        for child in self.children:
            child.display = not isinstance(child, MoreKeys)
        self.call_after_refresh(self.fit_keys)

    def fit_keys(self) -> None:
        """Leave out, whole, every hint past the right edge (less the palette's key and `…`)."""
        hints = [
            c for c in self.children if not c.has_class("-command-palette") and not isinstance(c, MoreKeys)
        ]
        palette = [c for c in self.children if c.has_class("-command-palette")]
        right = self.region.right - sum(p.outer_size.width for p in palette) - 2
        cut = False
        for child in hints:
            if cut or child.region.right + child.styles.margin.right > right:
                cut = True
                child.display = False
        for more in self.query(MoreKeys):
            more.display = cut
