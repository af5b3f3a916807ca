"""The audit journal: an append-only table of every order decision — intent, submission,
acknowledgement, fills, cancels, replaces, rejections, expiries, drafts — with the time, the
broker, the source (ticket, cli, macro, ai) and the full request or response as JSON."""

from __future__ import annotations

import json
import threading
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
    ts: datetime
    event: str
    broker: str
    source: str
    order_id: str | None
    client_order_id: str | None
    detail: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts.isoformat() + "Z",
            "event": self.event,
            "broker": self.broker,
            "source": self.source,
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "detail": self.detail,
        }


class Journal:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        # live brokers record from their network threads too (each with its own cursor)
        self._lock = threading.Lock()

    def record(
        self,
        event: str,
        *,
        broker: str,
        source: str,
        ts_ns: int,
        order_id: str | None = None,
        client_order_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown journal event {event!r}")
        with self._lock:
            self._con.execute(
                "INSERT INTO journal (ts, event, broker, source, order_id, client_order_id, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    from_ns(ts_ns).replace(tzinfo=None),
                    event,
                    broker,
                    source,
                    order_id,
                    client_order_id,
                    json.dumps(_plain(detail or {}), sort_keys=True),
                ],
            )

    def entries(self, *, order_id: str | None = None, last: int | None = None) -> list[Entry]:
        sql = "SELECT seq, ts, event, broker, source, order_id, client_order_id, detail FROM journal"
        params: list[object] = []
        if order_id is not None:
            sql += " WHERE order_id = ?"
            params.append(order_id)
        sql += " ORDER BY seq"
        with self._lock:  # (a live broker writes from its threads on the same cursor)
            rows = self._con.execute(sql, params).fetchall()
        if last is not None:
            rows = rows[-last:]
        return [Entry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7])) for r in rows]
