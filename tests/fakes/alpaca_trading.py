"""A loopback Alpaca trading API: REST (`/v2/orders`, `/v2/orders:by_client_order_id`,
`/v2/account`, `/v2/positions`) and the `trade_updates` websocket, speaking the wire format
alpaca-py and the real service use (protocols.md §3-4): order objects with every field the SDK
requires, numbers as strings (floats accepted in requests), error bodies `{"code", "message"}`,
429 with `X-Ratelimit-Reset`, and binary JSON frames on the stream with an authenticate/listen
handshake.

The test drives the market: `fill`, `cancel`, `reject`, `expire` change an order and push the
matching trade update (or, with `silent=True`, change it without a word — as if it happened
while trii-term was away). `fail_next` queues an error answer; `drop_next_post` records a POST
and closes the connection before answering (with or without creating the order)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.fakes.loopback import HttpFake, Request, Response, WsFake

KEY_ID = "PKTESTKEY"
SECRET = "test-secret-value"


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # ns digits, as Alpaca sends


def _d(x: Any) -> Decimal:
    return Decimal(str(x))


def _s(x: Decimal | None) -> str | None:
    return None if x is None else format(x.normalize(), "f")


class Drop(Response):
    """Close the connection without answering (the request was read)."""

    def encoded(self) -> tuple[bytes, str | None]:
        raise ConnectionAbortedError("fake: dropping the connection before answering")


@dataclass
class Failure:
    method: str
    path: str
    response: Response


class AlpacaTradingFake:
    def __init__(
        self, *, buying_power: Decimal = Decimal("100000"), last_price: Decimal = Decimal("100")
    ) -> None:
        self.http = HttpFake()
        self.ws = WsFake(self._serve_ws)
        self.lock = threading.RLock()
        self._start_cash = buying_power
        self.sockets: set[Any] = set()
        self.reset(last_price)
        for method, pattern, handler in (
            ("POST", "/v2/orders", self._post_order),
            ("GET", "/v2/orders", self._list_orders),
            ("GET", "/v2/orders:by_client_order_id", self._by_client_id),
            ("GET", "/v2/orders/{id}", self._get_order),
            ("DELETE", "/v2/orders/{id}", self._cancel_order),
            ("PATCH", "/v2/orders/{id}", self._replace_order),
            ("GET", "/v2/account", self._account),
            ("GET", "/v2/positions", self._positions),
        ):
            self.http.route(method, pattern, self._guard(method, handler))

    def reset(self, last_price: Decimal = Decimal("100")) -> None:
        """A fresh account (one server can serve many tests)."""
        self.http.requests.clear()
        self.orders: dict[str, dict[str, Any]] = {}
        self.positions: dict[str, dict[str, Decimal]] = {}
        self.cash = self._start_cash
        self.buying_power = self._start_cash
        self.last_price = last_price  # what a market buy is checked against
        self.posts: list[dict[str, Any]] = []
        self.failures: list[Failure] = []
        self.drop_posts: list[bool] = []  # True: create the order, then drop; False: drop only
        self.stream_auth_ok = True
        self.on_post: Any = None  # called with each POST /v2/orders body, before it is handled

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> AlpacaTradingFake:
        self.http.start()
        self.ws.start()
        return self

    def stop(self) -> None:
        self.http.stop()
        self.ws.stop()

    def __enter__(self) -> AlpacaTradingFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def rest_url(self) -> str:
        return self.http.url

    @property
    def stream_url(self) -> str:
        return self.ws.url + "/stream"

    # -- what the test sets up --------------------------------------------------------------

    def fail_next(
        self, method: str, path: str, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        """The next `method` request whose path starts with `path` gets this answer."""
        self.failures.append(Failure(method, path, Response(status, body, headers or {})))

    def rate_limit_next(self, method: str, path: str, *, reset_in: int) -> None:
        """The next such request is over Alpaca's 200 a minute: 429, with the reset time."""
        headers = {
            "X-Ratelimit-Limit": "200",
            "X-Ratelimit-Remaining": "0",
            "X-Ratelimit-Reset": str(int(time.time()) + reset_in),
        }
        self.fail_next(method, path, 429, {"code": 42910000, "message": "rate limit exceeded"}, headers)

    def drop_next_post(self, *, create: bool) -> None:
        self.drop_posts.append(create)

    def post_bodies(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.http.requests if r.method == "POST" and r.path == "/v2/orders"]

    def set_position(self, symbol: str, qty: Decimal, avg: Decimal) -> None:
        with self.lock:
            self.positions[symbol] = {"qty": qty, "avg": avg}

    def add_order(
        self, symbol: str, side: str, qty: int, type_: str = "limit", limit: str | None = "50"
    ) -> dict:
        """An order placed elsewhere (the website, another app)."""
        body = {"symbol": symbol, "side": side, "qty": str(qty), "type": type_, "time_in_force": "day"}
        if limit is not None:
            body["limit_price"] = limit
        with self.lock:
            order = self._new_order(body, str(uuid.uuid4()))
        return order

    def by_client_id(self, client_order_id: str) -> dict[str, Any]:
        with self.lock:
            return next(o for o in self.orders.values() if o["client_order_id"] == client_order_id)

    # -- what the market does ---------------------------------------------------------------

    def fill(self, order_id: str, qty: Decimal | int | str | None = None, price: Decimal | str = "100",
             *, silent: bool = False) -> None:  # fmt: skip
        with self.lock:
            o = self.orders[order_id]
            total, filled = _d(o["qty"]), _d(o["filled_qty"])
            q = _d(qty) if qty is not None else total - filled
            p = _d(price)
            avg = _d(o["filled_avg_price"]) if o["filled_avg_price"] else Decimal(0)
            new_filled = filled + q
            o["filled_avg_price"] = _s((avg * filled + p * q) / new_filled)
            o["filled_qty"] = _s(new_filled)
            o["status"] = "filled" if new_filled >= total else "partially_filled"
            o["updated_at"] = _now_iso()
            if o["status"] == "filled":
                o["filled_at"] = o["updated_at"]
            sign = 1 if o["side"] == "buy" else -1
            pos = self.positions.setdefault(o["symbol"], {"qty": Decimal(0), "avg": Decimal(0)})
            if pos["qty"] == 0 or (pos["qty"] > 0) == (sign > 0):
                pos["avg"] = (pos["avg"] * abs(pos["qty"]) + p * q) / (abs(pos["qty"]) + q)
            pos["qty"] += sign * q
            self.cash -= sign * q * p
            self.buying_power -= sign * q * p
            event = "fill" if o["status"] == "filled" else "partial_fill"
            extra = {
                "price": _s(p),
                "qty": _s(q),
                "position_qty": _s(pos["qty"]),
                "execution_id": str(uuid.uuid4()),
            }
            if o["status"] == "filled":
                self._end_legs_siblings(o)
        if not silent:
            self.push(event, o, **extra)

    def _end_legs_siblings(self, o: dict[str, Any]) -> None:
        """A filled bracket leg cancels its sibling (one cancels the other)."""
        for parent in self.orders.values():
            legs = parent.get("legs") or []
            if any(leg["id"] == o["id"] for leg in legs):
                for leg in legs:
                    if leg["id"] != o["id"] and leg["status"] in ("new", "held", "accepted"):
                        leg["status"] = "canceled"

    def set_status(
        self, order_id: str, status: str, *, event: str | None = None, silent: bool = False
    ) -> None:
        with self.lock:
            o = self.orders[order_id]
            o["status"] = status
            o["updated_at"] = _now_iso()
            if status in ("canceled", "expired"):
                o[f"{status}_at"] = o["updated_at"]
            if status == "rejected":
                o["failed_at"] = o["updated_at"]
        if not silent:
            self.push(event or status, o)

    def cancel(self, order_id: str, *, silent: bool = False) -> None:
        self.set_status(order_id, "canceled", silent=silent)

    def reject(self, order_id: str, *, silent: bool = False) -> None:
        self.set_status(order_id, "rejected", silent=silent)

    def expire(self, order_id: str, *, silent: bool = False) -> None:
        self.set_status(order_id, "expired", silent=silent)

    # -- the stream -------------------------------------------------------------------------

    def push(self, event: str, order: dict[str, Any], **extra: Any) -> None:
        """A trade update to every listening client (binary JSON, as on Alpaca's paper API)."""
        data = {"event": event, "order": json.loads(json.dumps(order)), "timestamp": _now_iso(), **extra}
        frame = json.dumps({"stream": "trade_updates", "data": data}).encode()
        self._send_all(frame)

    def drop_stream(self) -> None:
        """Close every stream connection (the client should reconnect and catch up)."""

        async def close() -> None:
            for ws in list(self.sockets):
                await ws.close()

        asyncio.run_coroutine_threadsafe(close(), self.ws.loop).result(5)

    def listening(self) -> int:
        return len(self.sockets)

    def _send_all(self, frame: bytes) -> None:
        async def send() -> None:
            for ws in list(self.sockets):
                await ws.send(frame)

        asyncio.run_coroutine_threadsafe(send(), self.ws.loop).result(5)

    async def _serve_ws(self, ws: Any) -> None:
        msg = json.loads(await ws.recv())
        data = msg.get("data") or {}
        if msg.get("action") != "authenticate" or not self.stream_auth_ok or data.get("key_id") != KEY_ID \
                or data.get("secret_key") != SECRET:  # fmt: skip
            reply = {
                "status": "unauthorized",
                "action": "authenticate",
                "message": "access key verification failed",
            }
            await ws.send(json.dumps({"stream": "authorization", "data": reply}).encode())
            await ws.close()
            return
        await ws.send(
            json.dumps(
                {"stream": "authorization", "data": {"status": "authorized", "action": "authenticate"}}
            ).encode()
        )
        msg = json.loads(await ws.recv())
        if msg.get("action") != "listen":
            return
        streams = (msg.get("data") or {}).get("streams") or []
        await ws.send(json.dumps({"stream": "listening", "data": {"streams": streams}}).encode())
        self.sockets.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            self.sockets.discard(ws)

    # -- REST -------------------------------------------------------------------------------

    def _guard(self, method: str, handler: Any) -> Any:
        def serve(req: Request) -> Response:
            if (
                req.headers.get("apca-api-key-id") != KEY_ID
                or req.headers.get("apca-api-secret-key") != SECRET
            ):
                return Response(401, {"message": "unauthorized"})
            with self.lock:
                for i, f in enumerate(self.failures):
                    if f.method == method and req.path.startswith(f.path):
                        del self.failures[i]
                        return f.response
            return handler(req)

        return serve

    def _post_order(self, req: Request) -> Response:
        body = req.json()
        if self.on_post is not None:
            self.on_post(body)
        with self.lock:
            self.posts.append(body)
            drop = self.drop_posts.pop(0) if self.drop_posts else None
            if drop is False:
                return Drop()
            problem = self._invalid(body)
            if problem is not None:
                return problem
            order = self._new_order(body, body.get("client_order_id") or str(uuid.uuid4()))
        self.push("new", order)
        return Drop() if drop else Response(200, order)

    def _invalid(self, body: dict[str, Any]) -> Response | None:
        typ = body.get("type")
        if typ in ("limit", "stop_limit") and body.get("limit_price") is None:
            return Response(422, {"code": 42210000, "message": "limit_price is required for limit orders"})
        if typ in ("stop", "stop_limit") and body.get("stop_price") is None:
            return Response(422, {"code": 42210000, "message": "stop_price is required for stop orders"})
        coid = body.get("client_order_id")
        if coid and any(o["client_order_id"] == coid for o in self.orders.values()):
            return Response(422, {"code": 40010001, "message": "client_order_id must be unique"})
        if body.get("side") == "buy":
            price = _d(body.get("limit_price") or body.get("stop_price") or self.last_price)
            cost = _d(body["qty"]) * price
            if cost > self.buying_power:
                return Response(
                    403,
                    {"buying_power": _s(self.buying_power), "code": 40310000, "cost_basis": _s(cost),
                     "message": "insufficient buying power"},
                )  # fmt: skip
        return None

    def _new_order(self, body: dict[str, Any], coid: str) -> dict[str, Any]:
        now = _now_iso()
        oid = str(uuid.uuid4())
        order = _order_object(oid, coid, body, now)
        legs = []
        if body.get("order_class") in ("bracket", "oto", "oco"):
            opposite = "sell" if body["side"] == "buy" else "buy"
            if body.get("take_profit"):
                legs.append(_order_object(str(uuid.uuid4()), str(uuid.uuid4()), {
                    "symbol": body["symbol"], "qty": body["qty"], "side": opposite, "type": "limit",
                    "time_in_force": body["time_in_force"], "limit_price": body["take_profit"]["limit_price"],
                }, now, status="held"))  # fmt: skip
            if body.get("stop_loss"):
                sl = body["stop_loss"]
                legs.append(_order_object(str(uuid.uuid4()), str(uuid.uuid4()), {
                    "symbol": body["symbol"], "qty": body["qty"], "side": opposite,
                    "type": "stop_limit" if sl.get("limit_price") else "stop",
                    "time_in_force": body["time_in_force"], "stop_price": sl["stop_price"],
                    "limit_price": sl.get("limit_price"),
                }, now, status="held"))  # fmt: skip
            order["order_class"] = body["order_class"]
            order["legs"] = legs
        self.orders[oid] = order
        for leg in legs:
            self.orders[leg["id"]] = leg
        return order

    def _list_orders(self, req: Request) -> Response:
        status = (req.query.get("status") or ["open"])[0]
        nested = (req.query.get("nested") or ["false"])[0] == "true"
        after = (req.query.get("after") or [None])[0]
        leg_ids = {leg["id"] for o in self.orders.values() for leg in o.get("legs") or []}
        out = []
        with self.lock:
            for o in self.orders.values():
                if nested and o["id"] in leg_ids:
                    continue
                done = o["status"] in ("filled", "canceled", "expired", "rejected", "replaced")
                if (status == "open" and done) or (status == "closed" and not done):
                    continue
                if after and o["submitted_at"] < after.replace("+00:00", "Z"):
                    continue
                out.append(o)
        return Response(200, out)

    def _get_order(self, req: Request) -> Response:
        with self.lock:
            o = self.orders.get(req.params["id"])
        if o is None:
            return Response(404, {"code": 40410000, "message": "order not found"})
        return Response(200, o)

    def _by_client_id(self, req: Request) -> Response:
        coid = (req.query.get("client_order_id") or [""])[0]
        with self.lock:
            o = next((o for o in self.orders.values() if o["client_order_id"] == coid), None)
        if o is None:
            return Response(404, {"code": 40410000, "message": "order not found"})
        return Response(200, o)

    def _cancel_order(self, req: Request) -> Response:
        with self.lock:
            o = self.orders.get(req.params["id"])
            if o is None:
                return Response(404, {"code": 40410000, "message": "order not found"})
            if o["status"] in ("filled", "canceled", "expired", "rejected", "replaced"):
                return Response(
                    422, {"code": 42210000, "message": f"order is not cancelable (status {o['status']})"}
                )
        self.cancel(o["id"])
        for leg in o.get("legs") or []:
            if leg["status"] in ("held", "new"):
                self.cancel(leg["id"])
        return Response(204, b"")

    def _replace_order(self, req: Request) -> Response:
        body = req.json()
        with self.lock:
            old = self.orders.get(req.params["id"])
            if old is None:
                return Response(404, {"code": 40410000, "message": "order not found"})
            if old["status"] not in ("new", "accepted"):
                return Response(422, {"code": 42210000, "message": "order is not replaceable"})
            merged = {
                k: old[k]
                for k in ("symbol", "side", "type", "time_in_force", "qty", "limit_price", "stop_price")
            }
            merged.update({k: v for k, v in body.items() if v is not None})
            new = self._new_order(merged, body.get("client_order_id") or str(uuid.uuid4()))
            new["replaces"] = old["id"]
            old["status"] = "replaced"
            old["replaced_by"] = new["id"]
            old["replaced_at"] = old["updated_at"] = _now_iso()
        self.push("replaced", old)
        self.push("new", new)
        return Response(200, new)

    def _account(self, req: Request) -> Response:
        with self.lock:
            value = sum((p["qty"] * self.last_price for p in self.positions.values()), Decimal(0))
            return Response(200, {
                "id": "e6fe16f3-64a4-4921-8928-cadf02f92f98", "account_number": "PA1234567",
                "status": "ACTIVE",
                "currency": "USD", "cash": _s(self.cash), "buying_power": _s(self.buying_power),
                "regt_buying_power": _s(self.buying_power), "daytrading_buying_power": "0",
                "non_marginable_buying_power": _s(self.cash), "portfolio_value": _s(self.cash + value),
                "equity": _s(self.cash + value), "last_equity": _s(self.cash + value),
                "long_market_value": _s(value), "short_market_value": "0", "initial_margin": "0",
                "maintenance_margin": "0", "last_maintenance_margin": "0", "sma": "0", "daytrade_count": 0,
                "multiplier": "1", "pattern_day_trader": False, "trading_blocked": False,
                "transfers_blocked": False, "account_blocked": False, "shorting_enabled": True,
                "trade_suspended_by_user": False, "created_at": "2024-01-02T15:00:00Z",
                "crypto_status": "ACTIVE",
                "accrued_fees": "0", "pending_transfer_in": "0", "pending_transfer_out": "0",
            })  # fmt: skip

    def _positions(self, req: Request) -> Response:
        out = []
        with self.lock:
            for symbol, p in sorted(self.positions.items()):
                if p["qty"] == 0:
                    continue
                qty, avg = p["qty"], p["avg"]
                value = qty * self.last_price
                out.append({
                    "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)), "symbol": symbol,
                    "exchange": "NASDAQ",
                    "asset_class": "us_equity", "avg_entry_price": _s(avg), "qty": _s(qty),
                    "qty_available": _s(qty), "side": "long" if qty > 0 else "short",
                    "market_value": _s(value), "cost_basis": _s(qty * avg),
                    "unrealized_pl": _s(value - qty * avg), "unrealized_plpc": "0",
                    "unrealized_intraday_pl": "0", "unrealized_intraday_plpc": "0",
                    "current_price": _s(self.last_price), "lastday_price": _s(self.last_price),
                    "change_today": "0",
                })  # fmt: skip
        return Response(200, out)


def _order_object(oid: str, coid: str, body: dict[str, Any], now: str, status: str = "new") -> dict[str, Any]:
    def num(key: str) -> str | None:
        v = body.get(key)
        return None if v is None else _s(_d(v))

    return {
        "id": oid, "client_order_id": coid, "created_at": now, "updated_at": now, "submitted_at": now,
        "filled_at": None, "expired_at": None, "canceled_at": None, "failed_at": None, "replaced_at": None,
        "replaced_by": None, "replaces": None,
        "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, body["symbol"])),
        "symbol": body["symbol"], "asset_class": "us_equity", "notional": None, "qty": num("qty"),
        "filled_qty": "0", "filled_avg_price": None, "order_class": "", "order_type": body["type"],
        "type": body["type"], "side": body["side"], "time_in_force": body["time_in_force"],
        "limit_price": num("limit_price"), "stop_price": num("stop_price"), "status": status,
        "extended_hours": bool(body.get("extended_hours", False)), "legs": None,
        "trail_percent": num("trail_percent"), "trail_price": num("trail_price"), "hwm": None,
        "position_intent": "buy_to_open" if body["side"] == "buy" else "sell_to_close",
    }  # fmt: skip


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    """Block until `condition()` is true (for threads the test does not own)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {condition}")
        time.sleep(0.01)
