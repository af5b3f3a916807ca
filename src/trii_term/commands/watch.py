"""`watch …`: the watchlist commands."""

from __future__ import annotations

from collections.abc import Callable

from trii_term.commands.registry import (
    Arg,
    Command,
    CommandContext,
    CommandError,
    Invocation,
    Result,
    Unavailable,
)
from trii_term.watchlists import (
    SORT_BY_NAME,
    SORT_COLUMNS,
    Watchlist,
    WatchlistError,
    Watchlists,
    ordered_symbols,
    sort_column,
)


def _lists(inv: Invocation) -> Watchlists:
    lists = inv.session.watchlists
    if lists is None:  # (the store opens before any command runs: this is a start-up cut short)
        raise Unavailable("The watchlists are still loading: try again in a moment. Nothing was changed.")
    return lists


def _focused(inv: Invocation, given: str | None) -> str:
    symbol = given or inv.ctx.focused_symbol
    if not symbol:
        raise CommandError(f"Which symbol? Usage: {inv.command.usage}")
    return symbol


def _guard(fn: Callable[[Invocation], Result]) -> Callable[[Invocation], Result]:
    """WatchlistError -> CommandError: same message, nothing changed."""

    def wrapper(inv: Invocation) -> Result:
        try:
            return fn(inv)
        except WatchlistError as exc:
            raise CommandError(str(exc)) from None

    return wrapper


def _shown_order(inv: Invocation, w: Watchlist) -> list[str]:
    s = inv.session
    return ordered_symbols(w, s.quotes, s.clock.now_ns())


@_guard
def add(inv: Invocation) -> Result:
    lists = _lists(inv)
    symbols: list[str] = inv.args["symbol"]
    added = lists.add(symbols)
    name = lists.active.name
    if not added:
        return Result(f"{', '.join(symbols)} already in {name}.", "warning")
    skipped = [s for s in symbols if s not in added]
    msg = f"Added {', '.join(added)} to {name}."
    if skipped:
        msg += f" ({', '.join(skipped)} already there.)"
    return Result(msg)


@_guard
def remove(inv: Invocation) -> Result:
    lists = _lists(inv)
    symbols = inv.args["symbol"] or [_focused(inv, None)]
    for sym in symbols:
        if sym not in lists.active.symbols:
            raise CommandError(f"{sym} is not in watchlist {lists.active.name!r}; nothing removed.")
    for sym in symbols:
        lists.remove(sym)
    return Result(f"Removed {', '.join(symbols)} from {lists.active.name}.")


def _step(inv: Invocation, delta: int) -> Result:
    lists = _lists(inv)
    w = lists.active
    sym = _focused(inv, inv.args.get("symbol"))
    if sym not in w.symbols:
        raise CommandError(f"{sym} is not in watchlist {w.name!r}.")
    note = ""
    if w.sort_column is not None:  # moving by hand adopts the order on screen
        lists.reorder(_shown_order(inv, w))
        lists.set_sort(None)
        note = " Sorting is off: the list keeps the order you set."
    index = w.symbols.index(sym)
    new = lists.move(sym, index + delta)
    return Result(f"{sym} moved to row {new + 1}.{note}")


@_guard
def move_up(inv: Invocation) -> Result:
    return _step(inv, -1)


@_guard
def move_down(inv: Invocation) -> Result:
    return _step(inv, +1)


@_guard
def move(inv: Invocation) -> Result:
    lists = _lists(inv)
    w = lists.active
    sym: str = inv.args["symbol"]
    where: str = inv.args["position"]
    if sym not in w.symbols:
        raise CommandError(f"{sym} is not in watchlist {w.name!r}.")
    if where.lower() in ("top", "first"):
        index = 0
    elif where.lower() in ("bottom", "last", "end"):
        index = len(w.symbols) - 1
    else:
        try:
            index = int(where) - 1
        except ValueError:
            raise CommandError(f"POSITION is a row number, top or bottom (got {where!r}).") from None
        if not 0 <= index < len(w.symbols):
            raise CommandError(f"Row {where} does not exist: {w.name} has {len(w.symbols)} rows.")
    if w.sort_column is not None:
        lists.reorder(_shown_order(inv, w))
        lists.set_sort(None)
    new = lists.move(sym, index)
    return Result(f"{sym} moved to row {new + 1}.")


@_guard
def sort(inv: Invocation) -> Result:
    lists = _lists(inv)
    w = lists.active
    column: str | None = inv.args.get("column")
    direction: str | None = inv.args.get("direction")
    if column is None:  # cycle: off -> symbol -> last -> ... -> age -> off
        current = w.sort_column
        names = [c.name for c in SORT_COLUMNS]
        i = names.index(current) + 1 if current in names else 0
        column = names[i] if i < len(names) else "off"
    if column.lower() in ("off", "none", "manual"):
        lists.set_sort(None)
        return Result(f"{w.name}: your own order.")
    col = sort_column(column)
    desc = (direction == "desc") if direction else col not in ("symbol", "age")
    lists.set_sort(col, desc)
    return Result(f"{w.name} sorted by {SORT_BY_NAME[col].words} {'descending' if desc else 'ascending'}.")


@_guard
def reverse(inv: Invocation) -> Result:
    lists = _lists(inv)
    w = lists.active
    if w.sort_column is None:
        lists.reorder(list(reversed(w.symbols)))
        return Result(f"{w.name}: order reversed.")
    lists.set_sort(w.sort_column, not w.sort_desc)
    col = w.sort_column or ""
    return Result(
        f"{w.name} sorted by {SORT_BY_NAME[col].words if col else col} "
        f"{'descending' if w.sort_desc else 'ascending'}."
    )


@_guard
def new(inv: Invocation) -> Result:
    w = _lists(inv).create(inv.args["name"])
    return Result(f"Created watchlist {w.name!r}; add symbols with: watch add SYMBOL")


@_guard
def rename(inv: Invocation) -> Result:
    lists = _lists(inv)
    old = lists.active.name
    if inv.args["name"].strip() == old:
        return Result(f"{old!r} keeps its name.")
    w = lists.rename(None, inv.args["name"])
    return Result(f"Renamed {old!r} to {w.name!r}.")


@_guard
def delete(inv: Invocation) -> Result:
    lists = _lists(inv)
    w = lists.delete(inv.args["name"])
    return Result(
        f"Deleted watchlist {w.name!r} ({len(w.symbols)} symbols). Now showing {lists.active.name!r}."
    )


@_guard
def switch(inv: Invocation) -> Result:
    w = _lists(inv).switch(inv.args["name"])
    return Result(f"Watchlist {w.name!r} ({len(w.symbols)} symbols).")


@_guard
def next_list(inv: Invocation) -> Result:
    w = _lists(inv).cycle(+1)
    return Result(f"Watchlist {w.name!r}.")


@_guard
def prev_list(inv: Invocation) -> Result:
    w = _lists(inv).cycle(-1)
    return Result(f"Watchlist {w.name!r}.")


def select(inv: Invocation) -> Result:
    sym: str = inv.args["symbol"]
    w = _lists(inv).active
    if sym not in w.symbols:
        raise CommandError(f"{sym} is not in watchlist {w.name!r}; add it with: watch add {sym}")
    inv.ui.select_symbol(sym)
    return Result()


def lists(inv: Invocation) -> Result:
    wl = _lists(inv)
    parts = [f"{'▸' if w.id == wl.active_id else ' '}{w.name} ({len(w.symbols)})" for w in wl.lists]
    return Result("Watchlists: " + "  ".join(parts))


def _active_name(ctx: CommandContext) -> str:
    lists = ctx.session.watchlists
    return lists.active.name if lists is not None else ""


SYMBOL = Arg("SYMBOL", "symbol", help="a symbol the feed knows, e.g. AAPL")
SYMBOLS = Arg("SYMBOL", "symbols", help="one or more symbols, e.g. AAPL MSFT")
NAME = Arg("NAME", "text", help="a watchlist name")

COMMANDS: tuple[Command, ...] = (
    Command(
        "watch.add",
        ("watch", "add"),
        "Add symbols to the watchlist",
        add,
        (SYMBOLS,),
        aliases=(("wa",),),
        key="a,insert",
        key_label="Add",
        group="Watchlist",
    ),
    Command(
        "watch.remove",
        ("watch", "remove"),
        "Remove a symbol (default: the highlighted row)",
        remove,
        (Arg("SYMBOL", "symbols", optional=True),),
        aliases=(("watch", "rm"),),
        key="delete,x",
        key_label="Remove",
        group="Watchlist",
    ),
    Command(
        "watch.move-up",
        ("watch", "up"),
        "Move a symbol one row up",
        move_up,
        (Arg("SYMBOL", "symbol", optional=True),),
        key="shift+up,K",
        group="Watchlist",
    ),
    Command(
        "watch.move-down",
        ("watch", "down"),
        "Move a symbol one row down",
        move_down,
        (Arg("SYMBOL", "symbol", optional=True),),
        key="shift+down,J",
        group="Watchlist",
    ),
    Command(
        "watch.move",
        ("watch", "move"),
        "Move a symbol to a row (number, top or bottom)",
        move,
        (SYMBOL, Arg("POSITION", "word")),
        group="Watchlist",
    ),
    Command(
        "watch.sort",
        ("watch", "sort"),
        "Sort by a column (symbol last change pct bid ask volume age), or off; no column cycles",
        sort,
        (
            Arg("COLUMN", "word", optional=True),
            Arg("DIRECTION", "choice", optional=True, choices=("asc", "desc")),
        ),
        key="s",
        key_label="Sort",
        group="Watchlist",
    ),
    Command(
        "watch.reverse",
        ("watch", "reverse"),
        "Reverse the sort direction (or the order)",
        reverse,
        key="S",
        group="Watchlist",
    ),
    Command(
        "watch.new",
        ("watch", "new"),
        "Create a watchlist and show it",
        new,
        (NAME,),
        key="n",
        group="Watchlist",
    ),
    Command(
        "watch.rename",
        ("watch", "rename"),
        "Rename the watchlist shown",
        rename,
        (NAME,),
        key="R",
        prefill=lambda ctx: f"watch rename {_active_name(ctx)}",
        group="Watchlist",
    ),
    Command(
        "watch.delete",
        ("watch", "delete"),
        "Delete a watchlist (type its name to confirm)",
        delete,
        (NAME,),
        prefill=lambda ctx: f"watch delete {_active_name(ctx)}",
        group="Watchlist",
    ),
    Command(
        "watch.switch",
        ("watch", "switch"),
        "Show another watchlist by name",
        switch,
        (NAME,),
        aliases=(("watch", "use"),),
        key="w",
        key_label="Lists",
        group="Watchlist",
    ),
    Command(
        "watch.next",
        ("watch", "next"),
        "Show the next watchlist",
        next_list,
        key="right_square_bracket",
        group="Watchlist",
    ),
    Command(
        "watch.prev",
        ("watch", "prev"),
        "Show the previous watchlist",
        prev_list,
        key="left_square_bracket",
        group="Watchlist",
    ),
    Command("watch.lists", ("watch", "lists"), "List the watchlists", lists, group="Watchlist"),
    Command(
        "watch.select",
        ("watch", "select"),
        "Move the cursor to a symbol",
        select,
        (SYMBOL,),
        aliases=(("go",),),
        needs_ui=True,
        group="Watchlist",
    ),
)
