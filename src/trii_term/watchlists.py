"""Named watchlists: the model the watchlist pane shows and the `watch …` commands change.

Every change is checked first and persisted at once; a change that cannot be made raises
`WatchlistError` with a message for the trader, and nothing changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb

from trii_term.store.sql import one, transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SortColumn:
    """A column a watchlist can be sorted by: how it is keyed, shown, said and typed."""

    name: str  # as stored: "pct"
    label: str  # as the pane shows it: "%chg"
    words: str  # in a sentence: "% change"
    aliases: tuple[str, ...]  # what a trader may type


# In the order `watch sort` (with no column) cycles through them.
SORT_COLUMNS: tuple[SortColumn, ...] = (
    SortColumn("symbol", "symbol", "symbol", ("symbol", "sym", "name")),
    SortColumn("last", "last", "last price", ("last", "price", "px")),
    SortColumn("change", "chg", "change", ("change", "chg", "net")),
    SortColumn("pct", "%chg", "% change", ("pct", "%", "%chg", "pctchg", "percent", "change%")),
    SortColumn("bid", "bid", "bid", ("bid",)),
    SortColumn("ask", "ask", "ask", ("ask", "offer")),
    SortColumn("volume", "volume", "volume", ("volume", "vol")),
    SortColumn("age", "age", "quote age", ("age", "time")),
)
SORT_BY_NAME = {c.name: c for c in SORT_COLUMNS}

MAX_NAME = 24


class WatchlistError(ValueError):
    """A watchlist change that cannot be made; the message says why."""


def sort_column(word: str) -> str:
    """The canonical name of a column a trader typed."""
    w = word.strip().lower()
    for col in SORT_COLUMNS:
        if w in col.aliases:
            return col.name
    names = ", ".join(c.name for c in SORT_COLUMNS)
    raise WatchlistError(f"Cannot sort by {word!r}: choose one of {names}, or off.")


@dataclass
class Watchlist:
    id: int
    name: str
    symbols: list[str] = field(default_factory=list)
    sort_column: str | None = None  # None: the trader's own order
    sort_desc: bool = False


class Watchlists:
    """All watchlists and which one is shown."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.lists: list[Watchlist] = []
        self.active_id: int | None = None
        self._listeners: list[Callable[[], None]] = []

    # -- loading ------------------------------------------------------------------------------

    def load(self, seed_name: str, seed_symbols: Iterable[str]) -> None:
        """Read all lists; on a fresh store create the first one from the seed symbols."""
        rows = self._con.execute(
            "SELECT id, name, sort_column, sort_desc FROM watchlists ORDER BY position, id"
        ).fetchall()
        items = self._con.execute(
            "SELECT watchlist_id, symbol FROM watchlist_items ORDER BY watchlist_id, position"
        ).fetchall()
        by_id: dict[int, list[str]] = {}
        for wid, sym in items:
            by_id.setdefault(wid, []).append(sym)
        self.lists = [
            Watchlist(wid, name, by_id.get(wid, []), col, bool(desc)) for wid, name, col, desc in rows
        ]
        if not self.lists:
            self.lists.append(self._insert(seed_name, list(dict.fromkeys(seed_symbols)), 0))
        active = one(self._con, "SELECT value FROM settings WHERE key = 'watchlist.active'")
        ids = {w.id for w in self.lists}
        self.active_id = int(active[0]) if active and int(active[0]) in ids else self.lists[0].id

    # -- reading ------------------------------------------------------------------------------

    @property
    def active(self) -> Watchlist:
        for w in self.lists:
            if w.id == self.active_id:
                return w
        return self.lists[0]

    def names(self) -> list[str]:
        return [w.name for w in self.lists]

    def find(self, name: str) -> Watchlist:
        want = name.strip().casefold()
        for w in self.lists:
            if w.name.casefold() == want:
                return w
        raise WatchlistError(f"There is no watchlist named {name!r}. Watchlists: {', '.join(self.names())}.")

    def all_symbols(self) -> list[str]:
        seen: dict[str, None] = {}
        for w in self.lists:
            for s in w.symbols:
                seen.setdefault(s, None)
        return list(seen)

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    # -- changing -----------------------------------------------------------------------------

    def add(self, symbols: Iterable[str], *, watchlist: Watchlist | None = None) -> list[str]:
        """Append symbols (already validated as instruments). Returns those actually added."""
        w = watchlist or self.active
        added = [s for s in dict.fromkeys(symbols) if s not in w.symbols]
        if not added:
            return []
        self._save_items(w, w.symbols + added)
        return added

    def remove(self, symbol: str, *, watchlist: Watchlist | None = None) -> None:
        w = watchlist or self.active
        if symbol not in w.symbols:
            raise WatchlistError(f"{symbol} is not in watchlist {w.name!r}.")
        self._save_items(w, [s for s in w.symbols if s != symbol])

    def move(self, symbol: str, to_index: int, *, watchlist: Watchlist | None = None) -> int:
        """Move a symbol to a position in the trader's own order (clamped). Returns it."""
        w = watchlist or self.active
        if symbol not in w.symbols:
            raise WatchlistError(f"{symbol} is not in watchlist {w.name!r}.")
        order = [s for s in w.symbols if s != symbol]
        to_index = max(0, min(to_index, len(order)))
        order.insert(to_index, symbol)
        if order != w.symbols:
            self._save_items(w, order)
        return to_index

    def reorder(self, symbols: list[str], *, watchlist: Watchlist | None = None) -> None:
        """Make `symbols` (a permutation of the list) the trader's own order."""
        w = watchlist or self.active
        if sorted(symbols) != sorted(w.symbols):
            raise WatchlistError("A reorder must keep the same symbols.")
        self._save_items(w, list(symbols))

    def set_sort(self, column: str | None, descending: bool = False) -> None:
        w = self.active
        col = sort_column(column) if column is not None else None
        self._con.execute(
            "UPDATE watchlists SET sort_column = ?, sort_desc = ? WHERE id = ?", [col, descending, w.id]
        )
        w.sort_column, w.sort_desc = col, descending if col else False
        self._changed()

    def create(self, name: str, symbols: Iterable[str] = ()) -> Watchlist:
        name = self._valid_name(name)
        w = self._insert(name, list(dict.fromkeys(symbols)), len(self.lists))
        self.lists.append(w)
        self._set_active(w)
        return w

    def rename(self, old: str | None, new: str) -> Watchlist:
        w = self.find(old) if old is not None else self.active
        new = self._valid_name(new, allow=w)
        self._con.execute("UPDATE watchlists SET name = ? WHERE id = ?", [new, w.id])
        w.name = new
        self._changed()
        return w

    def delete(self, name: str) -> Watchlist:
        w = self.find(name)
        if len(self.lists) == 1:
            raise WatchlistError(
                f"{w.name!r} is the only watchlist; create another (watch new NAME) before deleting it."
            )
        self._transaction(
            [
                ("DELETE FROM watchlist_items WHERE watchlist_id = ?", [w.id]),
                ("DELETE FROM watchlists WHERE id = ?", [w.id]),
            ]
        )
        index = self.lists.index(w)
        self.lists.remove(w)
        if self.active_id == w.id:
            self._set_active(self.lists[max(0, index - 1)])
        else:
            self._changed()
        return w

    def switch(self, name: str) -> Watchlist:
        w = self.find(name)
        self._set_active(w)
        return w

    def cycle(self, step: int) -> Watchlist:
        index = self.lists.index(self.active)
        w = self.lists[(index + step) % len(self.lists)]
        self._set_active(w)
        return w

    # -- internals ----------------------------------------------------------------------------

    def _valid_name(self, name: str, allow: Watchlist | None = None) -> str:
        name = " ".join(name.split())
        if not name:
            raise WatchlistError("A watchlist needs a name.")
        if len(name) > MAX_NAME:
            raise WatchlistError(f"Watchlist names are at most {MAX_NAME} characters.")
        for w in self.lists:
            if w is not allow and w.name.casefold() == name.casefold():
                raise WatchlistError(f"There is already a watchlist named {w.name!r}.")
        return name

    def _insert(self, name: str, symbols: list[str], position: int) -> Watchlist:
        row = one(
            self._con, "INSERT INTO watchlists (name, position) VALUES (?, ?) RETURNING id", [name, position]
        )
        assert row is not None
        w = Watchlist(int(row[0]), name, [])
        self._save_items(w, symbols, notify=False)
        return w

    def _save_items(self, w: Watchlist, symbols: list[str], *, notify: bool = True) -> None:
        statements: list[tuple[str, list[object]]] = [
            ("DELETE FROM watchlist_items WHERE watchlist_id = ?", [w.id])
        ]
        if symbols:
            statements.append(
                (
                    "INSERT INTO watchlist_items SELECT ?, unnest(?), unnest(range(?))",
                    [w.id, symbols, len(symbols)],
                )
            )
        self._transaction(statements)
        w.symbols = list(symbols)
        if notify:
            self._changed()

    def _set_active(self, w: Watchlist) -> None:
        self._con.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES ('watchlist.active', ?)", [str(w.id)]
        )
        self.active_id = w.id
        self._changed()

    def _transaction(self, statements: list[tuple[str, list[object]]]) -> None:
        with transaction(self._con):
            for sql, params in statements:
                self._con.execute(sql, params)

    def _changed(self) -> None:
        for listener in tuple(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("watchlist listener failed")


def ordered_symbols(w: Watchlist, book: QuoteBookLike, now_ns: int | None = None) -> list[str]:
    """The rows as shown: the trader's order, or sorted by a column. Missing values sort last
    whichever the direction; ties keep the trader's order."""
    if w.sort_column is None:
        return list(w.symbols)
    col = w.sort_column
    if col == "symbol":
        return sorted(w.symbols, reverse=w.sort_desc)

    def value(sym: str) -> float | None:
        st = book.get(sym)
        if st is None:
            return None
        if col == "age":
            if st.updated_ns is None or now_ns is None:
                return None
            return float(now_ns - st.updated_ns)
        v = {
            "last": st.last,
            "change": st.change,
            "pct": st.change_pct,
            "bid": st.bid,
            "ask": st.ask,
            "volume": st.volume if st.last is not None else None,
        }[col]
        return None if v is None else float(v)

    keyed = [(value(s), i, s) for i, s in enumerate(w.symbols)]
    present = [k for k in keyed if k[0] is not None]
    missing = [k for k in keyed if k[0] is None]
    present.sort(key=lambda k: (-k[0] if w.sort_desc else k[0], k[1]))  # type: ignore[operator]
    return [s for _, _, s in present] + [s for _, _, s in missing]


class QuoteBookLike(Protocol):
    def get(self, symbol: str) -> Any: ...
