"""Alpaca's errors in the trader's words: what the SDK raised (an HTTP error answer, a network
failure) as the BrokerError the desk shows, naming the field Alpaca refused and its figures."""

from __future__ import annotations

import json
import logging
import math
import re
import time

import requests
from alpaca.common.exceptions import APIError

from trii_term.adapters.alpaca.order_json import _retry_after, _why
from trii_term.brokers.base import BrokerAuthError, BrokerError, BrokerUnavailable, RateLimited, opt
from trii_term.brokers.live import money
from trii_term.domain.orders import Order

log = logging.getLogger(__name__)

# fields Alpaca names in its 422 messages, as the trader calls them
_FIELDS = {
    "limit_price": "limit price",
    "stop_price": "stop price",
    "trail_price": "trail amount",
    "trail_percent": "trail percent",
    "time_in_force": "time in force",
    "client_order_id": "client order id",
    "take_profit": "take-profit",
    "stop_loss": "stop-loss",
    "order_class": "order class",
    "extended_hours": "extended hours",
    "notional": "notional",
    "qty": "quantity",
    "quantity": "quantity",
    "symbol": "symbol",
    "side": "side",
    "type": "order type",
}
_FIELD_RE = re.compile(
    r"\b(" + "|".join(k.replace("_", "[_ ]") for k in sorted(_FIELDS, key=len, reverse=True)) + r")\b"
)


def broker_error(exc: BaseException, *, action: str, order: Order | None, login_hint: str) -> BrokerError:
    """An exception from the SDK as a message for the trader."""
    if isinstance(exc, BrokerError):
        return exc
    if isinstance(exc, APIError):
        return api_error(exc, action, order, login_hint)
    if isinstance(exc, requests.RequestException):
        why = _why(exc)
        if action == "place" and order is not None:
            return BrokerUnavailable(
                f"Alpaca could not be reached ({why}): order {order.id} may or may not have reached it. "
                f"trii-term checks it with Alpaca by its id ({order.id}) and shows what it finds — "
                "do not place it again"
            )
        what = f" order {order.id}" if order is not None else ""
        return BrokerUnavailable(
            f"Alpaca could not be reached ({why}): could not {action}{what} — check the connection and retry"
        )
    log.error("unexpected error from Alpaca while trying to %s", action, exc_info=exc)
    return BrokerUnavailable(f"Alpaca sent an answer trii-term could not read (to {action}); see the log")


def api_error(exc: APIError, action: str, order: Order | None, login_hint: str) -> BrokerError:
    """Alpaca's error answer (its status and `{"code", "message"}` body) in the trader's words."""
    status = exc.status_code or 0
    text = str(exc)
    try:
        body = json.loads(text)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or text.strip() or f"HTTP {status}")
    if status == 401 or (status == 403 and "code" not in body):
        return BrokerAuthError(f"Alpaca refused the keys — run `{login_hint}`")
    if status == 429:
        wait = _retry_after(exc)
        nothing = "nothing was placed" if action == "place" else f"could not {action}"
        return RateLimited(
            f"Alpaca is limiting requests (HTTP 429, too many this minute): {nothing} — "
            f"try again in {math.ceil(wait)} s",
            time.monotonic() + wait,
        )
    if status == 403 and "buying power" in message.lower():
        have, need = opt(body.get("buying_power")), opt(body.get("cost_basis"))
        figures = ""
        if have is not None and need is not None:
            figures = f" — ${money(have)} available, the order needs ${money(need)}"
        elif have is not None:
            figures = f" — ${money(have)} available"
        return BrokerError(f"Alpaca refused: insufficient buying power{figures}")
    if status in (400, 422):
        found = _FIELD_RE.search(message)
        field = f" ({_FIELDS[found.group(1).replace(' ', '_')]})" if found else ""
        what = "the order" if action == "place" else f"the {action}"
        return BrokerError(f"Alpaca refused {what}{field}: {message}")
    if status == 404:
        which = f"order {order.id}" if order is not None else "that"
        return BrokerError(f"Alpaca does not know {which}: {message}")
    if status >= 500:
        tail = (
            f"; trii-term checks order {order.id} with Alpaca by its id — do not place it again"
            if action == "place" and order is not None
            else "; try again shortly"
        )
        return BrokerUnavailable(f"Alpaca had a server error (HTTP {status}: {message}){tail}")
    return BrokerError(f"Alpaca refused: {message} (HTTP {status})")
