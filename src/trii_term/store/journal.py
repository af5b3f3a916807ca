"""The audit journal: an append-only table of every order decision — intent, risk checks,
submission, acknowledgement, fills, cancels, replaces, rejections, expiries, drafts — with the
time, the broker, the source (ticket, palette, key, cli, macro, ai, session, broker) and the full
request or response as JSON.

Times are on one clock: `ts` is the wall clock in UTC when the entry was written, and never runs
backwards (an entry is never older than the one before it). The market's time — simulated in
replay — is kept beside it as `market_ts`, so a replayed fill says both when it happened in the
market and when the trader saw it.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import duckdb

from trii_term.domain import from_ns

EVENTS = (
    "intent",
    "submitted",
    "acknowledged",
    "partially_filled",
    "filled",
    "canceled",
    "replaced",
    "rejected",
    "expired",
    "drafted",
    "triggered",
    "checked",  # every pre-trade risk rule passed; detail: each rule and its reason
    "reset",  # a fresh paper account; detail: the name the old one is kept under
    "reconciled",  # a live broker's truth differed from ours at start; detail says how
    "ai_tool",  # the AI desk called a tool (source "ai"); detail: tool, input, output, is_error
)


def _plain(value: Any) -> Any:
    """JSON-ready: Decimals as strings (exact), enums by value, nested containers walked."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Entry:
    seq: int
    ts: datetime  # UTC wall clock (naive, as the store keeps it)
    event: str
    broker: str
    source: str
    order_id: str | None
    client_order_id: str | None
    detail: dict[str, Any]
    market_ts: datetime | None = None  # the market's clock (UTC), when it differs (replay)

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": _iso(self.ts),
            "market_ts": _iso(self.market_ts) if self.market_ts is not None else None,
            "event": self.event,
            "broker": self.broker,
            "source": self.source,
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "detail": self.detail,
        }


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="microseconds") + "Z"


MARKET_TS_APART_NS = 1_000_000_000  # a market time within a second of the wall clock is not kept
_CLOCK = threading.Lock()  # the journal's clock, shared by every Journal on one store
_LAST_US: dict[str, int] = {}  # store file -> the newest ts this process wrote there (µs)
# a store in memory has no file: its journals share the clock through the object they are given
_LAST_US_IN_MEMORY: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()


def _store_file(con: duckdb.DuckDBPyConnection) -> str:
    """The store file a cursor writes to ("" in memory)."""
    try:
        rows = con.execute("SELECT file FROM pragma_database_list WHERE name = current_database()").fetchall()
    except duckdb.Error:
        return ""
    return str(rows[0][0] or "") if rows else ""


class Journal:
    """The journal of one store. Every Journal on one store file shares one clock; a store in
    memory has no file, so its journals share the clock through `share` (the Store: pass it
    wherever a store may be in memory and more than one Journal writes to it)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        wall_ns: Callable[[], int] = time.time_ns,
        share: object | None = None,
    ) -> None:
        self._con = con
        self._wall = wall_ns
        # live brokers record from their network threads too (each with its own cursor)
        self._lock = threading.Lock()
        self._last_us: int | None = None  # the newest entry's ts, µs since the epoch
        self._file = ""  # the store file (journals on one file share one clock)
        self._share = share

    def record(
        self,
        event: str,
        *,
        broker: str,
        source: str,
        ts_ns: int | None = None,
        order_id: str | None = None,
        client_order_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append an entry. `ts_ns` is the market's time of the event (the session clock); the
        entry's own time is the wall clock, kept strictly increasing."""
        if event not in EVENTS:
            raise ValueError(f"unknown journal event {event!r}")
        with self._lock, _CLOCK:  # (one clock for every Journal on a store: a live broker has two)
            now_us = self._wall() // 1000
            if self._last_us is None:
                (newest,) = self._con.execute("SELECT epoch_us(max(ts)) FROM journal").fetchone() or (None,)
                self._last_us = int(newest) if newest is not None else 0
                self._file = _store_file(self._con)
            # never backwards, never two entries at one instant
            now_us = max(now_us, self._last_us + 1, self._shared_us() + 1)
            market = None
            if ts_ns is not None and abs(ts_ns - now_us * 1000) >= MARKET_TS_APART_NS:
                market = from_ns(ts_ns).replace(tzinfo=None)
            self._con.execute(
                "INSERT INTO journal (ts, market_ts, event, broker, source, order_id, client_order_id, "
                "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    from_ns(now_us * 1000).replace(tzinfo=None),
                    market,
                    event,
                    broker,
                    source,
                    order_id,
                    client_order_id,
                    json.dumps(_plain(detail or {}), sort_keys=True),
                ],
            )
            self._last_us = now_us
            if self._file:
                _LAST_US[self._file] = now_us
            elif self._share is not None:
                _LAST_US_IN_MEMORY[self._share] = now_us

    def _shared_us(self) -> int:
        """The newest ts any Journal on this store wrote in this process (under _CLOCK)."""
        if self._file:
            return _LAST_US.get(self._file, 0)
        if self._share is not None:
            return _LAST_US_IN_MEMORY.get(self._share, 0)
        return 0

    def entries(
        self, *, order_id: str | None = None, last: int | None = None, after_seq: int | None = None
    ) -> list[Entry]:
        """Entries oldest first: of one order, the `last` N, or those after `after_seq` (what a
        screen that has read up to there has not seen yet)."""
        sql = (
            "SELECT seq, ts, event, broker, source, order_id, client_order_id, detail, market_ts FROM journal"
        )
        params: list[object] = []
        where = []
        if order_id is not None:
            where.append("order_id = ?")
            params.append(order_id)
        if after_seq is not None:
            where.append("seq > ?")
            params.append(after_seq)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq"
        with self._lock:  # (a live broker writes from its threads on the same cursor)
            rows = self._con.execute(sql, params).fetchall()
        if last is not None:
            rows = rows[-last:]
        return [Entry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), r[8]) for r in rows]
