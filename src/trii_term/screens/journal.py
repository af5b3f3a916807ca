"""The audit journal, newest first: when (with the zone; the market's time too in replay), what
happened, who asked (ticket, palette, key, cli, ai, macro, session…), at which broker, the order,
and one readable line (`buy 100 AAPL lmt 437.50 day — refused by max_order_notional: …`).
`/` filters as the blotter does, Enter shows an entry whole, and it follows new entries live."""

from __future__ import annotations

import json
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Input, Static

from trii_term.session import Session
from trii_term.store.journal import Entry, Journal
from trii_term.widgets.keys_footer import KeysFooter
from trii_term.widgets.status_bar import MessageLine, StatusBar

WIDE = 120  # from this width one line per entry; below, two (the detail wraps onto the second)
POLL_SECONDS = 1.0  # entries that no order update announces (a refusal, an AI tool call)
CHECK_SECONDS = 0.25


@dataclass(frozen=True)
class JournalRow:
    """One entry as the trader reads it."""

    entry: Entry
    when: datetime  # local time, with its zone
    market: str  # the market's own time in replay ("2013-03-01 09:35:02 EST"), else ""
    order: str  # what the entry is about, in the command's words, or ""
    detail: str  # the readable line

    @property
    def words(self) -> str:
        """What a filter matches against."""
        e = self.entry
        return " ".join(
            (self.stamp(wide=True), self.market, e.event, e.source, e.broker, e.order_id or "", self.detail)
        ).lower()

    def stamp(self, *, wide: bool) -> str:
        return self.when.strftime("%Y-%m-%d %H:%M:%S %Z" if wide else "%H:%M:%S %Z")


# -- reading an entry -----------------------------------------------------------------------------


def journal_rows(entries: list[Entry], session: Session) -> list[JournalRow]:
    """Newest first; events that carry only an order id (a fill) say which order it is."""
    orders: dict[str, dict[str, Any]] = {}
    rows: list[JournalRow] = []
    for e in entries:
        request = _request(e)
        if request and e.order_id:
            orders[e.order_id] = request
        request = request or orders.get(e.order_id or "", {})
        order = order_text(request) if request else ""
        rows.append(JournalRow(e, _local(e.ts), _market_time(e, request, session), order, describe(e, order)))
    rows.reverse()
    return rows


def _request(e: Entry) -> dict[str, Any]:
    d = e.detail
    if isinstance(d.get("request"), dict):
        return d["request"]
    if e.event == "drafted" and "symbol" in d:  # a draft is journalled as the request itself
        return d
    return {}


def order_text(r: dict[str, Any]) -> str:
    """The order in the palette's words: `buy 100 AAPL lmt 437.50 tp 450 sl 420 gtc`."""
    words = [str(r.get("side", "")), str(r.get("qty", "")), str(r.get("symbol", ""))]
    for key, word in (
        ("limit_price", "lmt"),
        ("stop_price", "stp"),
        ("trail_amount", "trail"),
        ("trail_pct", "trail%"),
        ("take_profit", "tp"),
        ("stop_loss", "sl"),
    ):
        if r.get(key) not in (None, ""):
            words += [word, str(r[key])]
    if r.get("type") == "market":
        words.append("market")
    if r.get("tif"):
        words.append(str(r["tif"]))
    return " ".join(w for w in words if w)


def describe(e: Entry, order: str) -> str:
    d = e.detail
    if e.event == "ai_tool":
        args = ", ".join(f"{k}={v}" for k, v in (d.get("input") or {}).items())
        return f"{d.get('tool', '?')}({args}) " + ("✖ failed" if d.get("is_error") else "✓")
    what = []
    fill = d.get("fill")
    if isinstance(fill, dict):
        what.append(f"{fill.get('qty')} @ {fill.get('price')}, commission {fill.get('commission')}")
    if d.get("rule"):
        what.append(f"refused by {d['rule']}: {d.get('reason', '')}")
    elif d.get("reason"):
        what.append(str(d["reason"]))
    if d.get("error"):
        what.append(str(d["error"]))
    if e.event == "replaced":
        what += [f"{k} {v}" for k, v in d.items() if k not in ("status", "why", "request")]
        if d.get("why"):
            what.append(f"({d['why']})")
    if e.event == "triggered" and d.get("stop"):
        what.append(f"stop {d['stop']} reached")
    if e.event == "checked" and isinstance(d.get("checks"), list):
        rules = [str(c.get("rule")) for c in d["checks"] if isinstance(c, dict)]
        what.append(f"every rule passed: {', '.join(rules)}" if rules else "no rule applies")
    if d.get("action") in ("replace", "flatten", "reverse"):
        what.insert(0, str(d["action"]))
    if e.event == "reset" and d.get("archived_as"):
        what.append(f"a fresh paper account; the old one kept as {d['archived_as']}")
    if not order and not what:  # (reconciled, and anything new: its plain values)
        what = [f"{k} {v}" for k, v in d.items() if not isinstance(v, dict | list) and v not in (None, "")]
    return " — ".join(p for p in (order, "; ".join(what)) if p)


def _local(ts: datetime) -> datetime:
    """The journal's time (UTC; stored without a zone) in this machine's zone, with its name."""
    return (ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)).astimezone()


def _market_time(e: Entry, request: dict[str, Any], session: Session) -> str:
    """The simulated market's time of an entry, when the journal records it (replay)."""
    value = getattr(e, "market_ts", None) or e.detail.get("market_ts")
    if value in (None, ""):
        return ""
    try:
        if isinstance(value, datetime):
            when = value if value.tzinfo else value.replace(tzinfo=UTC)
        elif isinstance(value, int | float):
            when = datetime.fromtimestamp(value / 1e9, tz=UTC)
        else:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return str(value)
    market = session.market_of(str(request.get("symbol", "")) or None)
    local = when.astimezone(market.tz)
    return f"{local:%Y-%m-%d %H:%M:%S} {market.tz_abbrev(local)}"


def clip(text: str, width: int, lines: int = 1) -> list[str]:
    """`text` in `lines` lines of `width`, cut between words and then ending with `…` (a value
    cut short would read as another number)."""
    wrapped = textwrap.wrap(text, max(1, width)) or [""]
    if len(wrapped) <= lines:
        return wrapped
    shown = wrapped[:lines]
    words = shown[-1].split(" ")
    while words and len(" ".join(words)) + 2 > width:
        words.pop()
    shown[-1] = " ".join([*words, "…"])
    return shown


# -- the screen -----------------------------------------------------------------------------------


class JournalScreen(Screen[None]):
    AUTO_FOCUS = "#journal-entries"
    BINDINGS = [
        Binding("escape,q", "close", "Close", id="journal.close"),
        Binding("slash", "filter", "Filter", id="journal.filter"),
    ]

    def __init__(self, session: Session, words: str = "") -> None:
        super().__init__()  # no id: a screen closed and opened again at once would clash
        self.session = session
        self._words = words
        self.rows: list[JournalRow] = []  # every entry, newest first
        self.shown: list[JournalRow] = []  # those the filter lets through
        self._seen: tuple[int, int] = (-1, -1)  # (count, last seq) read last
        self._entries: list[Entry] = []  # every entry read so far, oldest first
        self._layout: tuple[bool, int] = (False, -1)
        self._changed = True
        self._last_read = 0.0
        self.message_line = MessageLine(id="journal-message")

    def compose(self) -> ComposeResult:
        yield Static(id="journal-title")
        yield Input(
            self._words,
            placeholder="filter: event, symbol, source, order id, broker…  (Esc clears)",
            id="journal-filter",
        )
        yield DataTable(id="journal-entries", cursor_type="row", zebra_stripes=True)
        yield self.message_line
        yield StatusBar(self.session, id="journal-status")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#journal-filter", Input).display = bool(self._words)
        if self.session.broker is not None:
            self.session.broker.on_update(self._on_order_event)
        self.set_interval(CHECK_SECONDS, self._check)
        self.reload()

    def on_unmount(self) -> None:
        if self.session.broker is not None:
            self.session.broker.off_update(self._on_order_event)

    def _on_order_event(self, _event: object) -> None:
        self._changed = True  # (may come from a broker's thread: only a flag; the timer reads)

    def _check(self) -> None:
        if self._changed or time.monotonic() - self._last_read >= POLL_SECONDS:
            self.reload()

    def on_resize(self) -> None:
        self._fill()

    # -- reading ------------------------------------------------------------------------------

    def _journal(self) -> Journal | None:
        broker = self.session.broker
        if broker is not None:
            return broker.journal
        store = self.session.store
        return Journal(store.cursor()) if store is not None else None

    def reload(self) -> None:
        self._changed = False
        self._last_read = time.monotonic()
        journal = self._journal()
        if journal is None:
            self.query_one("#journal-title", Static).update("Journal: the store is still opening…")
            return
        new = journal.entries(after_seq=self._entries[-1].seq if self._entries else None)
        if not new and self._entries:
            return  # nothing since the last read (only the new rows are read)
        self._entries += new
        entries = self._entries
        seen = (len(entries), entries[-1].seq if entries else -1)
        if seen == self._seen:
            return
        self._seen = seen
        self.rows = journal_rows(entries, self.session)
        self._fill(force=True)

    # -- drawing ------------------------------------------------------------------------------

    def _fill(self, *, force: bool = False) -> None:
        table = self.query_one("#journal-entries", DataTable)
        width = table.size.width or self.size.width or 80
        wide = width >= WIDE
        if not force and self._layout == (wide, width):
            return
        self._layout = (wide, width)
        words = self.query_one("#journal-filter", Input).value.lower().split()
        self.shown = [r for r in self.rows if all(w in r.words for w in words)]
        keep = self._cursor_key(table)
        table.clear(columns=True)
        table.header_height = 1 if wide else 2
        if wide:
            self._fill_wide(table, width)
        else:
            self._fill_compact(table, width)
        if keep is not None and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep))
        elif self.shown:
            table.move_cursor(row=1 if not wide else 0)  # (below the first day's divider)
        self._title(words)

    def _fill_wide(self, table: DataTable[Any], width: int) -> None:
        market = any(r.market for r in self.shown)
        heads = ["Time", *(["Market time"] if market else []), "Event", "Source", "Broker", "Order"]
        cells = [[r.stamp(wide=True), *([r.market] if market else []), *self._who(r)] for r in self.shown]
        widths = [max([len(h), *(len(c[k]) for c in cells)]) for k, h in enumerate(heads)]
        for head, w in zip(heads, widths, strict=True):
            table.add_column(head, width=w)
        detail = max(10, width - sum(widths) - 2 * (len(widths) + 1) - 2)
        table.add_column("Detail", width=detail)
        for r, row in zip(self.shown, cells, strict=True):
            texts = [*row, clip(r.detail, detail)[0]]
            table.add_row(*(self._cell(r, t) for t in texts), key=str(r.entry.seq))

    def _fill_compact(self, table: DataTable[Any], width: int) -> None:
        """Two lines an entry: the time over the market's time, the event over the order id,
        the source over the broker, and the detail wrapped on both; a row per day's date."""
        market = any(r.market for r in self.shown)
        first = [(r.stamp(wide=False), "m " + r.market[11:] if r.market else "") for r in self.shown]
        heads = [("Time", "(market)" if market else ""), ("Event", "order"), ("Source", "broker")]
        cols = [
            first,
            [(r.entry.event, r.entry.order_id or "") for r in self.shown],
            [(r.entry.source, r.entry.broker) for r in self.shown],
        ]
        widths = [
            max([len(h[0]), len(h[1]), *(max(len(a), len(b)) for a, b in col)])
            for h, col in zip(heads, cols, strict=True)
        ]
        for (head, sub), w in zip(heads, widths, strict=True):
            table.add_column(Text(head + (f"\n{sub}" if sub else "")), width=w)
        detail = max(10, width - sum(widths) - 2 * 4 - 2)
        table.add_column("Detail", width=detail)
        day = None
        for k, r in enumerate(self.shown):
            if r.when.date() != day:
                day = r.when.date()
                table.add_row(Text(f"{day:%Y-%m-%d}", style="bold underline"), "", "", "", key=f"day {day}")
            texts = ["\n".join(c[k]) for c in cols] + ["\n".join(clip(r.detail, detail, 2))]
            table.add_row(*(self._cell(r, t) for t in texts), height=2, key=str(r.entry.seq))

    @staticmethod
    def _who(r: JournalRow) -> list[str]:
        e = r.entry
        return [e.event, e.source, e.broker, e.order_id or ""]

    @staticmethod
    def _cell(r: JournalRow, text: str) -> Text:
        e = r.entry
        refused = e.event == "rejected" or (e.event == "ai_tool" and bool(e.detail.get("is_error")))
        return Text(text, style="bold" if refused else "")

    @staticmethod
    def _cursor_key(table: DataTable[Any]) -> Any:
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key

    def _title(self, words: list[str]) -> None:
        total, shown = len(self.rows), len(self.shown)
        head = f"Journal · {total} entr{'y' if total == 1 else 'ies'}, newest first"
        if words:
            head += f" · {shown} match {' '.join(words)!r}"
        title = Text(head, style="bold")
        if total:
            title.append("  Enter: the whole entry", style="dim")
        else:
            title.append("  Every order, refusal and AI tool call is recorded here as it happens.")
        self.query_one("#journal-title", Static).update(title)

    # -- keys ---------------------------------------------------------------------------------

    def selected(self) -> JournalRow | None:
        table = self.query_one("#journal-entries", DataTable)
        key = self._cursor_key(table)
        seq = key.value if key is not None else None
        return next((r for r in self.shown if str(r.entry.seq) == seq), None)

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        row = self.selected()
        if row is not None:
            self.app.push_screen(JournalEntryScreen(row))

    def action_filter(self) -> None:
        box = self.query_one("#journal-filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, _event: Input.Changed) -> None:
        self._fill(force=True)

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.query_one("#journal-entries", DataTable).focus()

    def action_close(self) -> None:
        box = self.query_one("#journal-filter", Input)
        if box.has_focus and box.value:
            box.value = ""
            return
        self.dismiss(None)


class JournalEntryScreen(ModalScreen[None]):
    """One entry, whole: every field and the request or response as the journal holds it."""

    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close", id="journal.entry.close")]

    def __init__(self, row: JournalRow) -> None:
        super().__init__()
        self.row = row

    def compose(self) -> ComposeResult:
        r, e = self.row, self.row.entry
        utc = (e.ts if e.ts.tzinfo else e.ts.replace(tzinfo=UTC)).astimezone(UTC)
        lines = [
            Text(f"#{e.seq} {e.event}", style="bold"),
            Text(f"time         {r.when:%Y-%m-%d %H:%M:%S.%f %Z}"),
        ]
        if r.when.utcoffset():
            lines.append(Text(f"             {utc:%Y-%m-%d %H:%M:%S.%f} UTC"))
        if r.market:
            lines.append(Text(f"market time  {r.market}"))
        lines += [
            Text(f"source       {e.source}"),
            Text(f"broker       {e.broker}"),
            Text(f"order        {e.order_id or '—'}   client order id {e.client_order_id or '—'}"),
            Text(""),
            Text(r.detail, style="bold"),
            Text(""),
            Text(json.dumps(e.detail, indent=2, sort_keys=True, default=str)),
        ]
        with VerticalScroll(id="journal-entry"):
            yield Static(Text("\n").join(lines))
