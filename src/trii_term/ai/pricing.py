"""What a reply costs: token counts × the model family's list price, as an exact Decimal.

Prices are US dollars per million tokens (Anthropic's list prices for each family). Cache reads
cost 0.1× the input price and cache writes (5-minute) 1.25×. A model we do not know is priced as
Sonnet, the default, and said to be an estimate."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

MTOK = Decimal(1_000_000)
CACHE_READ = Decimal("0.1")
CACHE_WRITE = Decimal("1.25")


@dataclass(frozen=True)
class Price:
    input: Decimal  # $ per million input tokens
    output: Decimal  # $ per million output tokens
    known: bool = True


# most specific first: the first prefix that matches the model name wins
_TABLE: tuple[tuple[str, Price], ...] = (
    ("claude-opus-4-0", Price(Decimal(15), Decimal(75))),
    ("claude-opus-4-1", Price(Decimal(15), Decimal(75))),
    ("claude-opus-4-2025", Price(Decimal(15), Decimal(75))),
    ("claude-3-opus", Price(Decimal(15), Decimal(75))),
    ("claude-opus", Price(Decimal(5), Decimal(25))),  # opus 4.5 and later
    ("claude-3-5-haiku", Price(Decimal("0.8"), Decimal(4))),
    ("claude-3-haiku", Price(Decimal("0.25"), Decimal("1.25"))),
    ("claude-haiku", Price(Decimal(1), Decimal(5))),  # haiku 4.5 and later
    ("claude-sonnet", Price(Decimal(3), Decimal(15))),
    ("claude-3", Price(Decimal(3), Decimal(15))),
)
DEFAULT = Price(Decimal(3), Decimal(15), known=False)


def price_for(model: str) -> Price:
    low = model.strip().lower()
    for prefix, price in _TABLE:
        if low.startswith(prefix):
            return price
    return DEFAULT


def cost_usd(
    model: str, *, input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0
) -> Decimal:
    p = price_for(model)
    total = (
        p.input * input_tokens
        + p.output * output_tokens
        + p.input * CACHE_READ * cache_read
        + p.input * CACHE_WRITE * cache_write
    )
    return total / MTOK
