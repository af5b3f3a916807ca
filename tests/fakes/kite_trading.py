"""A loopback Kite Connect trading API speaking the wire format kiteconnect 5.2 expects
(protocols.md §5.1-5.2, shapes from zerodha/kiteconnect-mocks): form-encoded POST/PUT bodies,
`{"status": "success", "data": ...}` envelopes, error envelopes with `error_type`, a JSON
Content-Type on every answer, `/orders/{variety}` (place), `PUT`/`DELETE
/orders/{variety}/{order_id}`, `GET /orders`, `/orders/{id}` (history), `/orders/{id}/trades`,
`/portfolio/positions` and `/user/margins/equity`.

The test drives the exchange: `fill`, `cancel`, `reject` change an order (nothing is pushed: Kite
delivers updates as postbacks, which `postback()` builds for the test to hand to the broker).
`fail_next` queues an error envelope; `drop_next_post` closes the connection before answering."""

from __future__ import annotations

import copy
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from tests.fakes.alpaca_trading import Drop, Failure
from tests.fakes.loopback import HttpFake, Request, Response

API_KEY = "kiteapikey"
ACCESS_TOKEN = "kite-access-token"
IST = timezone(timedelta(hours=5, minutes=30))
OPEN = ("OPEN", "AMO REQ RECEIVED", "TRIGGER PENDING")


def _ist_now() -> str:
    return datetime.now(IST).strftime("%Y-%m-%d %H:%M:%S")


def ok(data: Any) -> Response:
    return Response(200, {"status": "success", "data": data})


def error(status: int, error_type: str, message: str) -> Response:
    return Response(status, {"status": "error", "message": message, "data": None, "error_type": error_type})


def _num(x: Decimal) -> float | int:
    """Kite sends JSON numbers (floats for prices)."""
    return int(x) if x == x.to_integral_value() else float(x)


class KiteTradingFake:
    def __init__(self) -> None:
        self.http = HttpFake()
        self.lock = threading.RLock()
        self.reset()
        for method, pattern, handler in (
            ("POST", "/orders/{variety}", self._place),
            ("PUT", "/orders/{variety}/{order_id}", self._modify),
            ("DELETE", "/orders/{variety}/{order_id}", self._cancel),
            ("GET", "/orders", self._orders),
            ("GET", "/orders/{order_id}", self._history),
            ("GET", "/orders/{order_id}/trades", self._trades),
            ("GET", "/portfolio/positions", self._positions),
            ("GET", "/user/margins/equity", self._margins),
        ):
            self.http.route(method, pattern, self._guard(method, handler))

    def reset(self) -> None:
        with self.lock:
            self.http.requests.clear()
            self.orders: dict[str, dict[str, Any]] = {}
            self.trades: dict[str, list[dict[str, Any]]] = {}
            self.positions: list[dict[str, Any]] = []
            self.failures: list[Failure] = []
            self.drop_posts: list[bool] = []
            self.next_id = 250_304_000_000_100
            self.cash = Decimal("245431.6")
            self.net = Decimal("99725.05000000002")
            self.access_token = ACCESS_TOKEN
            # hold_book: GET /orders reads the book, sets `book_read`, then waits for `hold_book`
            # before answering (an answer that is stale by the time it arrives)
            self.hold_book: threading.Event | None = None
            self.book_read = threading.Event()

    def start(self) -> KiteTradingFake:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()

    def __enter__(self) -> KiteTradingFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.http.url

    # -- what the test sets up --------------------------------------------------------------

    def fail_next(self, method: str, path: str, status: int, error_type: str, message: str) -> None:
        self.failures.append(Failure(method, path, error(status, error_type, message)))

    def drop_next_post(self, *, create: bool) -> None:
        self.drop_posts.append(create)

    def place_forms(self) -> list[dict[str, str]]:
        """Each order placement's form body, one value per field."""
        return [
            {k: v[0] for k, v in r.form().items()}
            for r in self.http.requests
            if r.method == "POST" and r.path.startswith("/orders/")
        ]

    def by_tag(self, tag: str) -> dict[str, Any]:
        with self.lock:
            return next(o for o in self.orders.values() if o["tag"] == tag)

    def add_order(self, symbol: str, side: str, qty: int, price: str) -> dict[str, Any]:
        """An order placed elsewhere (Kite's web app): no tag."""
        exchange, tradingsymbol = symbol.split(":")
        form = {
            "variety": "regular", "exchange": exchange, "tradingsymbol": tradingsymbol,
            "transaction_type": side, "quantity": str(qty), "product": "CNC", "order_type": "LIMIT",
            "price": price, "validity": "DAY",
        }  # fmt: skip
        with self.lock:
            return self._new_order(form)

    def set_position(self, symbol: str, qty: int, avg: str, product: str = "CNC") -> None:
        exchange, tradingsymbol = symbol.split(":")
        with self.lock:
            self.positions = [
                p
                for p in self.positions
                if (p["exchange"], p["tradingsymbol"], p["product"]) != (exchange, tradingsymbol, product)
            ]
            self.positions.append(_position(exchange, tradingsymbol, product, Decimal(qty), Decimal(avg)))

    # -- what the exchange does -------------------------------------------------------------

    def fill(self, order_id: str, qty: int | None = None, price: str = "1500") -> dict[str, Any]:
        with self.lock:
            o = self.orders[order_id]
            total, filled = Decimal(o["quantity"]), Decimal(o["filled_quantity"])
            q = Decimal(qty) if qty is not None else total - filled
            p = Decimal(price)
            avg = Decimal(str(o["average_price"]))
            new_filled = filled + q
            o["average_price"] = _num((avg * filled + p * q) / new_filled)
            o["filled_quantity"] = int(new_filled)
            o["pending_quantity"] = int(total - new_filled)
            o["status"] = "COMPLETE" if new_filled >= total else "OPEN"
            o["exchange_update_timestamp"] = o["exchange_timestamp"] = _ist_now()
            self.trades.setdefault(order_id, []).append({
                "trade_id": str(len(self.trades[order_id]) + 10_000_000), "order_id": order_id,
                "exchange": o["exchange"], "tradingsymbol": o["tradingsymbol"],
                "instrument_token": o["instrument_token"], "product": o["product"], "average_price": _num(p),
                "quantity": int(q), "exchange_order_id": o["exchange_order_id"],
                "transaction_type": o["transaction_type"], "fill_timestamp": _ist_now(),
                "order_timestamp": _ist_now()[11:], "exchange_timestamp": _ist_now(),
            })  # fmt: skip
            sign = 1 if o["transaction_type"] == "BUY" else -1
            key = (o["exchange"], o["tradingsymbol"], o["product"])
            pos = next(
                (x for x in self.positions if (x["exchange"], x["tradingsymbol"], x["product"]) == key), None
            )
            if pos is None:
                pos = _position(*key, Decimal(0), Decimal(0))
                self.positions.append(pos)
            held = Decimal(pos["quantity"])
            if held == 0 or (held > 0) == (sign > 0):
                pos["average_price"] = _num(
                    (Decimal(str(pos["average_price"])) * abs(held) + p * q) / (abs(held) + q)
                )
            pos["quantity"] = int(held + sign * q)
            return dict(o)

    def cancel(self, order_id: str) -> dict[str, Any]:
        with self.lock:
            o = self.orders[order_id]
            o["status"] = "CANCELLED"
            o["cancelled_quantity"] = o["pending_quantity"]
            o["pending_quantity"] = 0
            o["exchange_update_timestamp"] = _ist_now()
            return dict(o)

    def reject(self, order_id: str, message: str) -> dict[str, Any]:
        with self.lock:
            o = self.orders[order_id]
            o["status"] = "REJECTED"
            o["status_message"] = message
            o["pending_quantity"] = 0
            return dict(o)

    def postback(self, order_id: str) -> dict[str, Any]:
        """The order as Kite posts it back (the shape of kiteconnect-mocks' postback.json)."""
        with self.lock:
            o = dict(self.orders[order_id])
        o.update({"user_id": "AB1234", "unfilled_quantity": 0, "app_id": 1234, "checksum": "0" * 64})
        o.pop("tags", None)
        return o

    # -- REST -------------------------------------------------------------------------------

    def _guard(self, method: str, handler: Any) -> Any:
        def serve(req: Request) -> Response:
            if req.headers.get("x-kite-version") != "3":
                return error(400, "InputException", "Missing or invalid X-Kite-Version header")
            if req.headers.get("authorization") != f"token {API_KEY}:{self.access_token}":
                return error(403, "TokenException", "Incorrect `api_key` or `access_token`.")
            with self.lock:
                for i, f in enumerate(self.failures):
                    if f.method == method and req.path.startswith(f.path):
                        del self.failures[i]
                        return f.response
            return handler(req)

        return serve

    def _place(self, req: Request) -> Response:
        if not req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return error(400, "InputException", "expected a form body")
        form = {k: v[0] for k, v in req.form().items()}
        variety = req.params["variety"]
        if variety not in ("regular", "amo", "co", "iceberg", "auction"):
            return error(400, "InputException", "Invalid `variety`.")
        for field in ("exchange", "tradingsymbol", "transaction_type", "quantity", "product", "order_type"):
            if not form.get(field):
                return error(400, "InputException", f"Missing `{field}`.")
        if form["order_type"] in ("LIMIT", "SL") and not form.get("price"):
            return error(400, "InputException", "Invalid `price`.")
        if form["order_type"] in ("SL", "SL-M") and not form.get("trigger_price"):
            return error(400, "InputException", "Invalid `trigger_price`.")
        tag = form.get("tag", "")
        if tag and (len(tag) > 20 or not tag.isalnum()):
            return error(
                400, "InputException", "Tag length should be less than 20 characters and alphanumeric."
            )
        with self.lock:
            drop = self.drop_posts.pop(0) if self.drop_posts else None
            if drop is False:
                return Drop()
            order = self._new_order({**form, "variety": variety})
        return Drop() if drop else ok({"order_id": order["order_id"]})

    def _new_order(self, form: dict[str, str]) -> dict[str, Any]:
        oid = str(self.next_id)
        self.next_id += 1
        now = _ist_now()
        amo = form["variety"] == "amo"
        qty = int(form["quantity"])
        order = {
            "placed_by": "AB1234", "order_id": oid,
            "exchange_order_id": None if amo else str(1_000_000_000 + self.next_id),
            "parent_order_id": None, "status": "AMO REQ RECEIVED" if amo else "OPEN", "status_message": None,
            "status_message_raw": None, "order_timestamp": now,
            "exchange_update_timestamp": None if amo else now,
            "exchange_timestamp": None if amo else now, "variety": form["variety"], "modified": False,
            "exchange": form["exchange"], "tradingsymbol": form["tradingsymbol"], "instrument_token": 408065,
            "order_type": form["order_type"], "transaction_type": form["transaction_type"],
            "validity": form.get("validity", "DAY"), "validity_ttl": 0, "product": form["product"],
            "quantity": qty, "disclosed_quantity": 0, "price": _num(Decimal(form.get("price") or 0)),
            "trigger_price": _num(Decimal(form.get("trigger_price") or 0)), "average_price": 0,
            "filled_quantity": 0, "pending_quantity": qty, "cancelled_quantity": 0, "market_protection": 0,
            "meta": {}, "tag": form.get("tag") or None, "tags": [form["tag"]] if form.get("tag") else [],
            "guid": "84504X" + oid,
        }  # fmt: skip
        self.orders[oid] = order
        return order

    def _modify(self, req: Request) -> Response:
        form = {k: v[0] for k, v in req.form().items()}
        with self.lock:
            o = self.orders.get(req.params["order_id"])
            if o is None:
                return error(400, "InputException", "Couldn't find that `order_id`.")
            if o["status"] not in OPEN:
                return error(
                    400, "OrderException", f"Order cannot be modified as it is {o['status'].lower()}."
                )
            if "quantity" in form:
                o["quantity"] = int(form["quantity"])
                o["pending_quantity"] = o["quantity"] - o["filled_quantity"]
            for field in ("price", "trigger_price"):
                if field in form:
                    o[field] = _num(Decimal(form[field]))
            for field in ("order_type", "validity"):
                if field in form:
                    o[field] = form[field]
            o["modified"] = True
        return ok({"order_id": o["order_id"]})

    def _cancel(self, req: Request) -> Response:
        with self.lock:
            o = self.orders.get(req.params["order_id"])
            if o is None:
                return error(400, "InputException", "Couldn't find that `order_id`.")
            if o["status"] not in OPEN:
                return error(
                    400, "OrderException", f"Order cannot be cancelled as it is {o['status'].lower()}."
                )
        self.cancel(o["order_id"])
        return ok({"order_id": o["order_id"]})

    def _orders(self, req: Request) -> Response:
        with self.lock:
            book = copy.deepcopy(list(self.orders.values()))
            hold = self.hold_book
        if hold is not None:
            self.book_read.set()
            hold.wait(5)
        return ok(book)

    def _history(self, req: Request) -> Response:
        with self.lock:
            o = self.orders.get(req.params["order_id"])
            if o is None:
                return error(400, "InputException", "Couldn't find that `order_id`.")
            return ok([dict(o)])

    def _trades(self, req: Request) -> Response:
        with self.lock:
            return ok(list(self.trades.get(req.params["order_id"], [])))

    def _positions(self, req: Request) -> Response:
        with self.lock:
            return ok({"net": [dict(p) for p in self.positions], "day": []})

    def _margins(self, req: Request) -> Response:
        return ok({
            "enabled": True, "net": float(self.net),
            "available": {"adhoc_margin": 0, "cash": float(self.cash), "opening_balance": float(self.cash),
                          "live_balance": float(self.net), "collateral": 0, "intraday_payin": 0},
            "utilised": {"debits": 145706.55, "exposure": 38981.25, "m2m_realised": 761.7,
                         "m2m_unrealised": 0, "option_premium": 0, "payout": 0, "span": 101989,
                         "holding_sales": 0, "turnover": 0,
                         "liquid_collateral": 0, "stock_collateral": 0, "delivery": 0},
        })  # fmt: skip


def _position(exchange: str, tradingsymbol: str, product: str, qty: Decimal, avg: Decimal) -> dict[str, Any]:
    last = avg + 10 if avg else Decimal(0)
    return {
        "tradingsymbol": tradingsymbol, "exchange": exchange, "instrument_token": 408065, "product": product,
        "quantity": int(qty), "overnight_quantity": 0, "multiplier": 1, "average_price": _num(avg),
        "close_price": 0, "last_price": _num(last), "value": _num(-qty * avg), "pnl": _num(qty * 10),
        "m2m": _num(qty * 10), "unrealised": _num(qty * 10), "realised": 0, "buy_quantity": int(max(qty, 0)),
        "buy_price": _num(avg), "buy_value": _num(max(qty, 0) * avg), "buy_m2m": 0, "sell_quantity": 0,
        "sell_price": 0, "sell_value": 0, "sell_m2m": 0, "day_buy_quantity": int(max(qty, 0)),
        "day_buy_price": _num(avg), "day_buy_value": _num(max(qty, 0) * avg), "day_sell_quantity": 0,
        "day_sell_price": 0, "day_sell_value": 0,
    }  # fmt: skip
