"""Orders, their states and fills. Quantities and prices are Decimal; a price carries the
currency of its instrument (kept on the order)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"


class TIF(enum.StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(enum.StrEnum):
    NEW = "new"  # accepted, working (a stop not yet triggered is working too)
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def done(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)


class OrderError(ValueError):
    """An order that cannot be placed as given; the message names the field and what is allowed."""


def to_tick(price: Decimal, tick: Decimal, side: Side | None = None) -> Decimal:
    """A price on the instrument's tick grid. With a side, rounded to the side's safe direction
    (a buy limit down, a sell limit up — never a worse price than asked); otherwise nearest."""
    if tick <= 0:
        raise OrderError(f"tick size must be above 0, got {tick}")
    rounding = ROUND_HALF_EVEN if side is None else ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
    steps = (price / tick).to_integral_value(rounding)
    return (steps * tick).quantize(tick)


def exact_price(x: float, tick: Decimal) -> Decimal:
    """A feed's float price as the exact price it stands for, on the instrument's tick grid
    (repr gives the shortest decimal that round-trips: 437.12, not 437.1199999…)."""
    return Decimal(repr(x)).quantize(tick)


def px(price: Decimal | None) -> str:
    """A price as traders read it: at least two decimals (226.00, 0.0525, 1499.95)."""
    if price is None:
        return "—"
    exp = price.as_tuple().exponent
    return str(price.quantize(Decimal("0.01")) if isinstance(exp, int) and exp > -2 else price)


def to_lot(qty: Decimal, lot: int) -> Decimal:
    """A quantity in whole lots (rounded down: never more than asked)."""
    if lot <= 1:
        return qty
    return (qty / lot).to_integral_value(ROUND_DOWN) * lot


@dataclass(frozen=True)
class Bracket:
    """Exits attached to an entry: a take-profit limit and a stop-loss, one cancels the other."""

    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: Side
    qty: Decimal
    type: OrderType = OrderType.MARKET
    tif: TIF = TIF.DAY
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_amount: Decimal | None = None
    trail_pct: Decimal | None = None
    bracket: Bracket | None = None
    client_order_id: str = ""

    def check(self) -> None:
        """The request is well formed (prices where its type needs them, no others)."""
        t = self.type
        if not self.qty > 0:
            raise OrderError(f"quantity must be above 0, got {self.qty}")
        needs_limit = t in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = t in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_limit != (self.limit_price is not None):
            raise OrderError(
                f"a {t} order {'needs' if needs_limit else 'takes no'} limit price"
                + ("" if needs_limit else f" (got {self.limit_price})")
            )
        if needs_stop != (self.stop_price is not None):
            raise OrderError(
                f"a {t} order {'needs' if needs_stop else 'takes no'} stop price"
                + ("" if needs_stop else f" (got {self.stop_price})")
            )
        for name in ("limit_price", "stop_price"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise OrderError(f"{name.replace('_', ' ')} must be above 0, got {value}")
        if t is OrderType.TRAILING_STOP:
            trail = self.trail_amount if self.trail_amount is not None else self.trail_pct
            if trail is None or (self.trail_amount is not None and self.trail_pct is not None):
                raise OrderError("a trailing stop needs a trail: an amount or a percent, not both")
            if not trail > 0 or (self.trail_pct is not None and self.trail_pct >= 100):
                raise OrderError(f"the trail must be above 0 (a percent below 100), got {trail}")
        elif self.trail_amount is not None or self.trail_pct is not None:
            raise OrderError(f"a {t} order takes no trail")
        if self.tif in (TIF.IOC, TIF.FOK) and t not in (OrderType.MARKET, OrderType.LIMIT):
            raise OrderError(f"{self.tif} applies to market and limit orders only, not {t}")
        if self.bracket is not None:
            b = self.bracket
            if b.take_profit is None and b.stop_loss is None:
                raise OrderError("a bracket needs a take-profit, a stop-loss or both")
            if self.tif in (TIF.IOC, TIF.FOK):
                raise OrderError(f"a bracket entry cannot be {self.tif}")
            ref = self.limit_price
            s = self.side.sign
            if ref is not None and b.take_profit is not None and (b.take_profit - ref) * s <= 0:
                raise OrderError(
                    f"take-profit {b.take_profit} must be {'above' if s > 0 else 'below'} the entry {ref}"
                )
            if ref is not None and b.stop_loss is not None and (ref - b.stop_loss) * s <= 0:
                raise OrderError(
                    f"stop-loss {b.stop_loss} must be {'below' if s > 0 else 'above'} the entry {ref}"
                )


@dataclass
class Order:
    id: str
    request: OrderRequest
    created_ns: int
    status: OrderStatus = OrderStatus.NEW
    filled_qty: Decimal = Decimal(0)
    avg_fill_price: Decimal | None = None
    updated_ns: int = 0
    parent_id: str | None = None  # a bracket exit's entry
    oco_group: str | None = None  # exits that cancel each other
    triggered: bool = False  # a stop (or stop-limit) that has triggered
    trail_stop: Decimal | None = None  # a trailing stop's current stop price
    reason: str = ""  # why it was rejected, canceled or expired

    @property
    def symbol(self) -> str:
        return self.request.symbol

    @property
    def side(self) -> Side:
        return self.request.side

    @property
    def remaining(self) -> Decimal:
        return self.request.qty - self.filled_qty

    def with_request(self, **changes: Any) -> Order:  # OrderRequest's fields, by name
        return replace(self, request=replace(self.request, **changes))


@dataclass(frozen=True)
class Fill:
    order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    ts_ns: int
    commission: Decimal = Decimal(0)
    liquidity: str = ""  # "quote" (took the bid/ask) or "limit" (at the limit price)


@dataclass
class Event:
    """What the engine did: an order changed state, possibly with a fill."""

    order: Order
    kind: str  # accepted, triggered, partially_filled, filled, canceled, expired, rejected, replaced
    fill: Fill | None = None
    detail: dict[str, object] = field(default_factory=dict)


def request_json(r: OrderRequest) -> dict[str, object]:
    """The request as JSON-ready values (Decimals stay Decimal: the journal writes them as strings)."""
    return {
        "symbol": r.symbol,
        "side": r.side.value,
        "qty": r.qty,
        "type": r.type.value,
        "tif": r.tif.value,
        "limit_price": r.limit_price,
        "stop_price": r.stop_price,
        "trail_amount": r.trail_amount,
        "trail_pct": r.trail_pct,
        "take_profit": r.bracket.take_profit if r.bracket else None,
        "stop_loss": r.bracket.stop_loss if r.bracket else None,
        "client_order_id": r.client_order_id,
    }
