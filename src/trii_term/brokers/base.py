"""The protocol every broker adapter implements, and what it reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, Protocol

from trii_term.domain import from_ns
from trii_term.domain.orders import TIF, Event, Order, OrderError, OrderRequest, OrderType


@dataclass(frozen=True)
class BrokerStatus:
    """Published on the bus when the session's broker becomes ready, fails to start, or reports
    something the trader should read (reconciliation differences, an expiring login)."""

    broker: str
    ready: bool
    message: str
    level: str = "info"  # info | warning | error


class BrokerError(OrderError):
    """A live broker refused an order or could not be reached. The message is for the trader:
    what happened, with the broker's figure or field, and what to do. Nothing was changed
    unless the message says so."""


class BrokerAuthError(BrokerError):
    """The credentials were refused or have expired: log in again."""


class BrokerUnavailable(BrokerError):
    """The broker could not be reached (network, 5xx). The order may not have been sent; the
    message says how to check."""


class RateLimited(BrokerError):
    """Too many requests (HTTP 429). `retry_at` is time.monotonic() when trying again makes sense."""

    def __init__(self, message: str, retry_at: float) -> None:
        super().__init__(message)
        self.retry_at = retry_at


@dataclass(frozen=True)
class Capabilities:
    """What a broker accepts; the ticket offers only these."""

    order_types: frozenset[OrderType]
    tifs: frozenset[TIF]
    fractional: bool = False
    extended_hours: bool = False
    brackets: bool = False
    short: bool = False


@dataclass(frozen=True)
class Account:
    cash: Decimal
    buying_power: Decimal
    equity: Decimal
    currency: str
    realized: Decimal = Decimal(0)
    unrealized: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)


@dataclass(frozen=True)
class PositionView:
    symbol: str
    qty: Decimal
    avg_cost: Decimal
    last: Decimal | None
    market_value: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    currency: str

    @property
    def unrealized_pct(self) -> Decimal | None:
        basis = abs(self.avg_cost * self.qty)
        return self.unrealized_pnl / basis * 100 if basis else None


Listener = Callable[[Event], None]


class Broker(Protocol):
    name: str
    capabilities: Capabilities

    def account(self) -> Account: ...

    def positions(self) -> list[PositionView]: ...

    def orders(self, *, open_only: bool = False) -> list[Order]: ...

    def place(self, request: OrderRequest, *, source: str) -> Order:
        """Send an order (already risk-checked and confirmed). Raises OrderError when the broker
        refuses it; the order's events reach the listeners."""
        ...

    def cancel(self, order_id: str, *, source: str) -> Order: ...

    def replace(
        self,
        order_id: str,
        *,
        source: str,
        qty: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order: ...

    def on_update(self, listener: Listener) -> None:
        """Order updates and fills, as they happen."""
        ...


class DayFill(NamedTuple):
    """A fill as the day's P&L needs it."""

    symbol: str
    signed: Decimal  # + bought, − sold
    price: Decimal
    realized: Decimal
    commission: Decimal
    ts_ns: int


FILLS_SINCE_SQL = (
    "SELECT symbol, side, qty, price, realized, commission, epoch_ns(ts) FROM fills "
    "WHERE broker = ? AND ts >= ? ORDER BY ts"
)


def day_fills(rows: list[tuple]) -> list[DayFill]:
    return [
        DayFill(s, norm(q) * (1 if side == "buy" else -1), norm(p), norm(r), norm(c), int(ts))
        for s, side, q, p, r, c, ts in rows
    ]


# -- values as the store keeps them (shared by the paper and the live brokers) ---------------------


def db_time(ns: int) -> datetime:
    """A UTC instant as the store's naive TIMESTAMP."""
    return from_ns(ns).replace(tzinfo=None)


def norm(x: object) -> Decimal:
    """A stored DECIMAL(38, 10), or a broker's number, without its trailing zeros (100.0000000000 → 100)."""
    d = x if isinstance(x, Decimal) else Decimal(str(x))
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d.normalize()


def opt(x: object) -> Decimal | None:
    return None if x is None or x == "" else norm(x)
