"""The key hints at the bottom: Textual's footer, but a hint that does not fit is left out whole
and `…` says there are more (F1 lists every key); Textual's cut the last one mid-word (`c Ch`)."""

from __future__ import annotations

from textual.app import ComposeResult
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
