"""Cash, positions and P&L, exact to the cent: every fill is applied to one ledger per account.

Average-cost accounting on an exact cost basis. A fill that adds to a position adds its cost; a
fill that reduces it removes that share of the cost (to the cent; all of it when the position
closes) and realizes the difference. The average cost is the basis over the quantity, for show:
kept as a division it would repeat (1.00333…) and lose cents. Commissions are paid from cash and
counted in `fees`, not in the cost, so that

    equity = cash + Σ qty × mark
    equity − starting cash = realized + unrealized − fees

holds after any sequence of fills (the property tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from trii_term.domain.orders import Fill, OrderError, Side

ZERO = Decimal(0)
CENT = Decimal("0.01")


def cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, ROUND_HALF_UP)


@dataclass
class Position:
    symbol: str
    qty: Decimal = ZERO  # negative: short
    cost: Decimal = ZERO  # signed cost basis of the open quantity (negative for a short)
    realized: Decimal = ZERO  # realized P&L on this symbol, all time

    @property
    def avg_cost(self) -> Decimal:
        return self.cost / self.qty if self.qty else ZERO

    def market_value(self, mark: Decimal) -> Decimal:
        return self.qty * mark

    def unrealized(self, mark: Decimal) -> Decimal:
        return self.qty * mark - self.cost


@dataclass(init=False)
class Ledger:
    currency: str
    starting_cash: Decimal
    cash: Decimal
    positions: dict[str, Position]
    realized: Decimal
    fees: Decimal
    allow_short: bool

    def __init__(
        self,
        currency: str,
        starting_cash: Decimal,
        cash: Decimal | None = None,  # None: the starting cash (an account restored at 0 stays at 0)
        positions: dict[str, Position] | None = None,
        realized: Decimal = ZERO,
        fees: Decimal = ZERO,
        allow_short: bool = False,
    ) -> None:
        self.currency = currency
        self.starting_cash = starting_cash
        self.cash = starting_cash if cash is None else cash
        self.positions = {} if positions is None else positions
        self.realized = realized
        self.fees = fees
        self.allow_short = allow_short

    def position(self, symbol: str) -> Position:
        return self.positions.get(symbol) or Position(symbol)

    def check_fill(self, side: Side, symbol: str, qty: Decimal) -> None:
        """A cash account sells only what it holds (unless shorting is enabled)."""
        if side is Side.SELL and not self.allow_short and qty > self.position(symbol).qty:
            held = self.position(symbol).qty
            raise OrderError(f"cannot sell {qty} {symbol}: the account holds {held} and short selling is off")

    def apply(self, fill: Fill) -> Decimal:
        """Apply a fill; returns the P&L it realized."""
        self.check_fill(fill.side, fill.symbol, fill.qty)
        pos = self.positions.get(fill.symbol)
        if pos is None:
            pos = self.positions[fill.symbol] = Position(fill.symbol)
        signed = fill.qty * fill.side.sign
        realized = ZERO
        if pos.qty == 0 or (pos.qty > 0) == (signed > 0):  # opening or adding
            pos.qty += signed
            pos.cost += signed * fill.price
        else:  # reducing, closing, maybe reversing
            closing = min(fill.qty, abs(pos.qty))
            direction = 1 if pos.qty > 0 else -1
            removed = pos.cost if closing == abs(pos.qty) else cents(pos.cost * closing / abs(pos.qty))
            realized = direction * fill.price * closing - removed
            pos.cost -= removed
            pos.qty += closing * fill.side.sign
            rest = fill.qty - closing
            if rest > 0:
                pos.qty = rest * fill.side.sign
                pos.cost = pos.qty * fill.price
        pos.realized += realized
        self.realized += realized
        self.cash -= signed * fill.price
        self.cash -= fill.commission
        self.fees += fill.commission
        if pos.qty == 0 and pos.realized == 0:
            self.positions.pop(fill.symbol, None)
        return realized

    def market_value(self, marks: dict[str, Decimal]) -> Decimal:
        return sum((p.market_value(self._mark(marks, p)) for p in self.positions.values()), ZERO)

    @staticmethod
    def _mark(marks: dict[str, Decimal], p: Position) -> Decimal:
        """The mark for a position (its average cost when no price is known)."""
        mark = marks.get(p.symbol)
        return mark if mark is not None else p.avg_cost

    def unrealized(self, marks: dict[str, Decimal]) -> Decimal:
        return sum((p.unrealized(self._mark(marks, p)) for p in self.positions.values()), ZERO)

    def equity(self, marks: dict[str, Decimal]) -> Decimal:
        return self.cash + self.market_value(marks)

    def buying_power(self, marks: dict[str, Decimal]) -> Decimal:
        """Cash account: the cash not already spent (short proceeds are not buying power)."""
        shorts = sum(
            (-p.market_value(self._mark(marks, p)) for p in self.positions.values() if p.qty < 0), ZERO
        )
        return max(ZERO, self.cash - shorts)


@dataclass(frozen=True)
class FeeModel:
    """Commission per market: per share plus a percent of the notional, at least `minimum`."""

    per_share: Decimal = ZERO
    pct: Decimal = ZERO
    minimum: Decimal = ZERO

    def __call__(self, qty: Decimal, price: Decimal) -> Decimal:
        if self.per_share == 0 and self.pct == 0 and self.minimum == 0:
            return ZERO
        fee = self.per_share * qty + self.pct / 100 * qty * price
        return cents(max(fee, self.minimum))
