"""Kite's errors in the trader's words: what kiteconnect raised (Kite's exception types, a
network failure) as the BrokerError the desk shows."""

from __future__ import annotations

import logging
import time

import requests
from kiteconnect import exceptions as kex

from trii_term.brokers.base import BrokerAuthError, BrokerError, BrokerUnavailable, RateLimited
from trii_term.domain.orders import Order

log = logging.getLogger(__name__)

LOGIN = "Kite session expired — log in again: `trii-term login kite`"


def broker_error(exc: BaseException, *, action: str, order: Order | None) -> BrokerError:
    """An exception from kiteconnect as a message for the trader."""
    if isinstance(exc, BrokerError):
        return exc
    placing = action == "place" and order is not None
    if isinstance(exc, kex.KiteException):
        message = str(exc) or type(exc).__name__
        if getattr(exc, "code", None) == 429:
            nothing = "nothing was placed" if placing else f"could not {action}"
            return RateLimited(
                f"Kite is limiting requests (HTTP 429, too many a second): {nothing} — try again in a second",
                time.monotonic() + 1.0,
            )
        if isinstance(exc, kex.TokenException):
            return BrokerAuthError(LOGIN)
        if isinstance(exc, kex.InputException | kex.OrderException):
            what = "the order" if placing else f"the {action}"
            return BrokerError(f"Kite refused {what}: {message}")
        if isinstance(exc, kex.NetworkException | kex.DataException):
            return _unreachable(f"Kite's gateway failed ({message})", action, order)
        return BrokerError(f"Kite refused: {message}")
    if isinstance(exc, requests.RequestException | TimeoutError | ConnectionError):
        why = "no answer in time" if isinstance(exc, requests.Timeout) else "the connection failed or dropped"
        return _unreachable(f"Kite could not be reached ({why})", action, order)
    log.error("unexpected error from Kite while trying to %s", action, exc_info=exc)
    return BrokerUnavailable(f"Kite sent an answer trii-term could not read (to {action}); see the log")


def _unreachable(what: str, action: str, order: Order | None) -> BrokerUnavailable:
    if action == "place" and order is not None:
        return BrokerUnavailable(
            f"{what}: order {order.id} may or may not have reached it. trii-term checks Kite's order "
            f"book for its tag ({order.id}) and shows what it finds — do not place it again"
        )
    target = f" order {order.id}" if order is not None else ""
    return BrokerUnavailable(f"{what}: could not {action}{target} — check the connection and retry")
