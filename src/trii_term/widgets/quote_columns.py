"""Which columns of the watchlist fit a width, and how wide each is.

A number is never cut: every column is at least as wide as the widest text it holds now (its
"need"). When the columns do not fit, whole columns give way, least important first (volume,
age, bid and ask, change, % change); the symbol and the last price always stay. Text may be cut,
and then ends with `…`: a company name, and a symbol only when nothing else is left to drop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

GUTTER = 1  # the cursor marker `›`
MAX_GAP = 3
ELLIPSIS = "…"


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    width: int  # preferred: the roomy look at 80 columns
    align: str  # "<" left, ">" right
    sort: str | None  # the watchlist sort column it maps to

    @property
    def title_need(self) -> int:
        """The header with a sort arrow (`LAST▼`)."""
        return len(self.title) + (1 if self.sort else 0)


# in the order shown
COLUMNS: tuple[Column, ...] = (
    Column("symbol", "SYMBOL", 7, "<", "symbol"),
    Column("name", "NAME", 22, "<", None),
    Column("last", "LAST", 11, ">", "last"),
    Column("change", "CHG", 8, ">", "change"),
    Column("pct", "%CHG", 8, ">", "pct"),
    Column("bid", "BID", 9, ">", "bid"),
    Column("ask", "ASK", 9, ">", "ask"),
    Column("high", "HIGH", 9, ">", None),
    Column("low", "LOW", 9, ">", None),
    Column("volume", "VOLUME", 7, ">", "volume"),
    Column("age", "AGE", 8, ">", "age"),
)
BY_KEY = {c.key: c for c in COLUMNS}
# shown only when they fit at their preferred widths, in this order
EXTRAS: tuple[str, ...] = ("name", "high", "low")
# the base columns that give way when the rest does not fit, least important first
DROP_ORDER: tuple[tuple[str, ...], ...] = (("volume",), ("age",), ("bid", "ask"), ("change",), ("pct",))
TEXT_COLUMNS = frozenset({"symbol", "name"})  # may be cut (with …); numbers never


@dataclass(frozen=True)
class Layout:
    columns: tuple[Column, ...]  # with the widths to draw at
    gap: int

    def keys(self) -> list[str]:
        return [c.key for c in self.columns]


def _total(columns: list[Column], gap: int = 1) -> int:
    return GUTTER + sum(c.width for c in columns) + gap * max(0, len(columns) - 1)


def _sized(keys: list[str], widths: Mapping[str, int]) -> list[Column]:
    return [replace(BY_KEY[k], width=widths[k]) for k in keys]


def plan(width: int, needs: Mapping[str, int]) -> Layout:
    """The columns to show in `width` cells, given how wide each column's content is now."""
    need = {c.key: max(needs.get(c.key, 1), c.title_need) for c in COLUMNS}
    need["name"] = BY_KEY["name"].title_need  # a name is cut to fit its column (with …)
    roomy = {c.key: max(c.width, need[c.key]) for c in COLUMNS}
    base = [c.key for c in COLUMNS if c.key not in EXTRAS]

    columns = _sized(base, roomy)
    if _total(columns) <= width:
        for extra in EXTRAS:
            keys = [c.key for c in columns] + [extra]
            trial = _sized([k for k in BY_KEY if k in keys], roomy)
            if _total(trial) <= width:
                columns = trial
        return _spread(columns, width)

    keys = list(base)
    for group in ((), *DROP_ORDER):
        keys = [k for k in keys if k not in group]
        columns = _sized(keys, need)
        if _total(columns) <= width:
            return _spread(columns, width)

    # only the symbol and the last price are left: the symbol is cut before the price
    room = width - GUTTER - 1 - need["last"]
    symbol = max(min(need["symbol"], room), min(need["symbol"], 2))
    last = max(1, width - GUTTER - 1 - symbol)
    return Layout(tuple(_sized(["symbol", "last"], {"symbol": symbol, "last": last})), 1)


def _spread(columns: list[Column], width: int) -> Layout:
    slack = width - _total(columns)
    gap = 1 + min(MAX_GAP - 1, max(0, slack) // max(1, len(columns) - 1))
    return Layout(tuple(columns), gap)


def fit(text: str, width: int, align: str) -> str:
    """Exactly `width` cells. A text that is too long is cut and ends with `…` (never silently:
    a plan from the content's needs leaves no number to cut)."""
    if len(text) > width:
        return text[: max(0, width - 1)] + ELLIPSIS if width > 0 else ""
    return text.ljust(width) if align == "<" else text.rjust(width)


def columns_that_fit(
    width: int, needs: Sequence[tuple[str, int]], give_way: Sequence[str], *, padding: int = 2
) -> list[str]:
    """For any table whose cells are as wide as their content (a DataTable: `padding` cells
    around each): the columns, in their order, that fit `width` whole. Those in `give_way` are
    left out, the first first, until the rest fit; the others always stay."""
    keys = [k for k, _need in needs]
    widths = dict(needs)

    def total(shown: list[str]) -> int:
        return sum(widths[k] + padding for k in shown)

    for key in give_way:
        if total(keys) <= width:
            break
        if key in keys:
            keys.remove(key)
    return keys
