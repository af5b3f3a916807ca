"""Loopback fakes of Alpaca market data: the v2 stream (JSON text frames) and the data REST API.

`AlpacaStreamFake` speaks the stream protocol of protocols.md §1: `connected` on upgrade, message
auth, subscription replies carrying the whole current set, batched data arrays, error codes,
and drops mid-stream. `AlpacaDataFake` serves `GET /v2/stocks/bars` (multi-symbol form, paged with
next_page_token) and the trading API's `GET /v2/assets`, checking the auth headers.

Bars exist on the REST side only once a test `publish`es them: a REST backfill can then fetch
only what the "exchange" had produced by the time it asked, as the real API does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .loopback import HttpFake, Request, Response, WsFake

KEY = "PKTESTKEY0001"
SECRET = "test-secret-value-0001"
CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rfc3339(ns: int, digits: int = 9) -> str:
    """Alpaca's timestamp text: UTC, 'Z', the fraction with trailing zeros dropped."""
    whole = (_EPOCH + timedelta(seconds=ns // 1_000_000_000)).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{ns % 1_000_000_000:09d}"[:digits].rstrip("0")
    return f"{whole}.{frac}Z" if frac else f"{whole}Z"


def trade(sym: str, price: float, size: float, ts: int, i: int = 1) -> dict[str, Any]:
    return {
        "T": "t",
        "i": i,
        "S": sym,
        "x": "V",
        "p": price,
        "s": size,
        "t": rfc3339(ts),
        "c": ["@"],
        "z": "C",
    }


def quote(sym: str, bid: float, ask: float, bid_size: float, ask_size: float, ts: int) -> dict[str, Any]:
    return {
        "T": "q",
        "S": sym,
        "bx": "V",
        "bp": bid,
        "bs": bid_size,
        "ax": "V",
        "ap": ask,
        "as": ask_size,
        "t": rfc3339(ts),
        "c": ["R"],
        "z": "C",
    }


def bar(sym: str, start: int, o: float, h: float, lo: float, c: float, v: float, kind: str = "b") -> dict:
    return {
        "T": kind,
        "S": sym,
        "o": o,
        "h": h,
        "l": lo,
        "c": c,
        "v": v,
        "n": 10,
        "vw": c,
        "t": rfc3339(start),
    }


@dataclass
class StreamConnection:
    """One client connection as the server sees it."""

    ws: Any
    number: int
    authenticated: bool = False
    subscribed: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in CHANNELS})
    received: list[Any] = field(default_factory=list)  # client messages, decoded


class AlpacaStreamFake:
    """The market-data stream. Tests push frames with `send`, drop the line with `drop`.

    `auth_error` (code, msg) answers the auth message with an error and closes; `forbidden`
    channels answer a subscribe with 409; `symbol_limit` answers a subscribe that would exceed it
    with 405 (subscriptions stay as they were)."""

    def __init__(self, key: str = KEY, secret: str = SECRET) -> None:
        self.key, self.secret = key, secret
        self.auth_error: tuple[int, str] | None = None
        self.forbidden: set[str] = set()
        self.symbol_limit: int | None = None
        self.conns: list[StreamConnection] = []
        self.server = WsFake(self._serve)

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> AlpacaStreamFake:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url + "/v2/iex"

    @property
    def current(self) -> StreamConnection:
        return self.conns[-1]

    # -- what tests do -----------------------------------------------------------------------

    def send(self, payload: str | bytes | list[Any], conn: StreamConnection | None = None) -> None:
        """One frame to the client: a list is sent as a JSON array, str/bytes as they are."""
        conn = conn or self.current
        data = json.dumps(payload) if isinstance(payload, list) else payload
        asyncio.run_coroutine_threadsafe(conn.ws.send(data), self.server.loop).result(5)

    def drop(self, conn: StreamConnection | None = None) -> None:
        """Cut the TCP connection without a close frame: the client sees code 1006."""
        conn = conn or self.current
        self.server.loop.call_soon_threadsafe(conn.ws.transport.abort)

    def subscribe_messages(self, conn: StreamConnection | None = None) -> list[dict[str, Any]]:
        conn = conn or self.current
        return [
            m
            for m in conn.received
            if isinstance(m, dict) and m.get("action") in ("subscribe", "unsubscribe")
        ]

    # -- the protocol ------------------------------------------------------------------------

    async def _serve(self, ws: Any) -> None:
        conn = StreamConnection(ws, len(self.conns) + 1)
        self.conns.append(conn)
        await self._send(ws, {"T": "success", "msg": "connected"})
        async for raw in ws:
            try:
                msg = json.loads(raw)
            except ValueError:
                await self._send(ws, {"T": "error", "code": 400, "msg": "invalid syntax"})
                continue
            conn.received.append(msg)
            action = msg.get("action") if isinstance(msg, dict) else None
            if action == "auth":
                if not await self._auth(conn, msg):
                    return
            elif action in ("subscribe", "unsubscribe"):
                if not conn.authenticated:
                    await self._send(ws, {"T": "error", "code": 401, "msg": "not authenticated"})
                    continue
                await self._subscription(conn, msg, action == "subscribe")
            else:
                await self._send(ws, {"T": "error", "code": 400, "msg": "invalid syntax"})

    async def _auth(self, conn: StreamConnection, msg: dict[str, Any]) -> bool:
        if conn.authenticated:
            await self._send(conn.ws, {"T": "error", "code": 403, "msg": "already authenticated"})
            return True
        if self.auth_error is not None:
            code, text = self.auth_error
            await self._send(conn.ws, {"T": "error", "code": code, "msg": text})
            await conn.ws.close()
            return False
        if msg.get("key") != self.key or msg.get("secret") != self.secret:
            await self._send(conn.ws, {"T": "error", "code": 402, "msg": "auth failed"})
            await conn.ws.close()
            return False
        conn.authenticated = True
        await self._send(conn.ws, {"T": "success", "msg": "authenticated"})
        return True

    async def _subscription(self, conn: StreamConnection, msg: dict[str, Any], add: bool) -> None:
        wanted = {c: msg[c] for c in CHANNELS if isinstance(msg.get(c), list)}
        if add and self.forbidden & {c for c, syms in wanted.items() if syms}:
            await self._send(conn.ws, {"T": "error", "code": 409, "msg": "insufficient subscription"})
            return
        updated = {c: list(v) for c, v in conn.subscribed.items()}
        for channel, symbols in wanted.items():
            have = updated[channel]
            for s in symbols:
                if add and s not in have:
                    have.append(s)
                elif not add and s in have:
                    have.remove(s)
        if self.symbol_limit is not None and len(set().union(*updated.values())) > self.symbol_limit:
            await self._send(conn.ws, {"T": "error", "code": 405, "msg": "symbol limit exceeded"})
            return
        conn.subscribed = updated
        reply = {"T": "subscription", **updated}
        reply["corrections"] = list(updated["trades"])
        reply["cancelErrors"] = list(updated["trades"])
        await self._send(conn.ws, reply)

    @staticmethod
    async def _send(ws: Any, element: dict[str, Any]) -> None:
        await ws.send(json.dumps([element]))


class AlpacaDataFake:
    """`GET /v2/stocks/bars` (paged) and `GET /v2/assets`, on one loopback HTTP server."""

    def __init__(self, key: str = KEY, secret: str = SECRET, page_size: int = 10_000) -> None:
        self.key, self.secret = key, secret
        self.page_size = page_size
        self.bars: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}  # (sym, timeframe) -> start -> bar
        self.assets: list[dict[str, Any]] = []
        self.snapshots: dict[str, dict[str, Any]] = {}  # symbol -> snapshot (no wrapper key, as Alpaca)
        self.failures: list[Response] = []  # answered (in order) before the real answers
        self.http = HttpFake()
        self.http.route("GET", "/v2/stocks/bars", self._bars)
        self.http.route("GET", "/v2/assets", self._assets)
        self.http.route("GET", "/v2/stocks/snapshots", self._snapshots)

    def __enter__(self) -> AlpacaDataFake:
        self.http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.stop()

    @property
    def url(self) -> str:
        return self.http.url

    def publish(
        self, sym: str, timeframe: str, bars: Iterable[tuple[int, float, float, float, float, float]]
    ) -> None:
        """Make bars (start ns, o, h, l, c, v) exist on the REST side."""
        book = self.bars.setdefault((sym, timeframe), {})
        for start, o, h, lo, c, v in bars:
            book[start] = {"t": rfc3339(start), "o": o, "h": h, "l": lo, "c": c, "v": v, "n": 5, "vw": c}

    def bar_requests(self, timeframe: str | None = None) -> list[Request]:
        return [
            r
            for r in self.http.requests
            if r.path == "/v2/stocks/bars" and (timeframe is None or r.query.get("timeframe") == [timeframe])
        ]

    # -- handlers ----------------------------------------------------------------------------

    def _authorized(self, req: Request) -> Response | None:
        if (
            req.headers.get("apca-api-key-id") != self.key
            or req.headers.get("apca-api-secret-key") != self.secret
        ):
            return Response(401, {"message": "unauthorized."})
        return None

    def _bars(self, req: Request) -> Response:
        denied = self._authorized(req)
        if denied:
            return denied
        if self.failures:
            return self.failures.pop(0)
        q = {k: v[0] for k, v in req.query.items()}
        try:
            symbols = q["symbols"].split(",")
            timeframe = q["timeframe"]
            start = _parse(q["start"])
            end = _parse(q["end"]) if "end" in q else 2**62
            limit = int(q.get("limit", "1000"))
        except (KeyError, ValueError) as exc:
            return Response(400, {"message": f"invalid request: {exc}"})
        rows = [
            (sym, ts, b)
            for sym in symbols
            for ts, b in sorted(self.bars.get((sym, timeframe), {}).items())
            if start <= ts <= end
        ]
        offset = int(q["page_token"].removeprefix("page-")) if "page_token" in q else 0
        size = min(limit, self.page_size)
        page = rows[offset : offset + size]
        out: dict[str, list[dict[str, Any]]] = {}
        for sym, _, b in page:
            out.setdefault(sym, []).append(b)
        more = offset + size < len(rows)
        return Response(200, {"bars": out, "next_page_token": f"page-{offset + size}" if more else None})

    def _snapshots(self, req: Request) -> Response:
        denied = self._authorized(req)
        if denied:
            return denied
        wanted = req.query.get("symbols", [""])[0].split(",")
        return Response(200, {s: self.snapshots[s] for s in wanted if s in self.snapshots})

    def _assets(self, req: Request) -> Response:
        denied = self._authorized(req)
        if denied:
            return denied
        return Response(200, self.assets)


def _parse(text: str) -> int:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000
