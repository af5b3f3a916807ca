"""Orders as traders type them — one grammar for the palette, the ticket, the CLI and the AI:

    buy 100 AAPL                         market, day
    sell 50 MSFT lmt 28.10 gtc           limit, good till canceled
    buy 10 IBM stp 205 lmt 205.5         stop-limit
    sell 100 AAPL trail 2.5              trailing stop by 2.50 (trail% 1.5 for a percent)
    buy 100 AAPL lmt 430 tp 450 sl 420   a bracket

Words may come in any order after the side. Numbers are strict (`trii_term.numbers`): ASCII
digits with at most one point (thousands commas allowed: 1,000 or 10,00,000), at most 18 digits
and 10 places, above zero — so `1e400`, `nan`, `inf`, `1_0`, `١٠` and 30-digit quantities are
refused with a message, never turned into something else. `request_line` writes an order back
in the same words.

The grammar belongs to the desk, below the commands and the AI: `read_draft` raises
`OrderLineError` (an `OrderError`); the `buy`/`sell` commands read a line through it
(`commands.order_grammar`), and so does the AI's `draft_order` tool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from trii_term.domain.orders import TIF, Bracket, OrderError, OrderRequest, OrderType, Side
from trii_term.numbers import NumberError, parse_decimal

PRICE_WORDS = {
    "lmt": "limit",
    "limit": "limit",
    "stp": "stop",
    "stop": "stop",
    "trail": "trail",
    "trail%": "trail_pct",
    "trailpct": "trail_pct",
    "tp": "take_profit",
    "sl": "stop_loss",
}
USAGE = "QTY SYMBOL [lmt P] [stp P] [trail P | trail% X] [tp P] [sl P] [day|gtc|ioc|fok]"
# what each price word takes, as said when it is missing: `trail% needs a percent after it, …`
EXAMPLES = {"trail": ("an amount", "2.50"), "trail_pct": ("a percent", "1.5")}


def order_number(what: str, text: str) -> Decimal | None:
    """A quantity or price as typed, exactly; None when empty. Raises OrderError naming the field
    (read by the one strict parser, `trii_term.numbers`)."""
    text = text.strip()
    if not text:
        return None
    try:
        return parse_decimal(text, what)
    except NumberError as exc:
        raise OrderError(str(exc)) from None


NOT_NUMBERS = {"nan", "snan", "inf", "infinity", "∞"}


def is_number(text: str) -> bool:
    """Does the token look like a number (well formed or not)? A token that starts with a digit
    (of any script) or a point, or that names a non-number (nan, inf), is taken as the quantity,
    so `1e400`, `١٠` or `nan` is refused as a number — never looked up as a symbol."""
    return bool(text) and (text[0].isdigit() or text[0] in ".-+" or text.lower().lstrip("+-") in NOT_NUMBERS)


def is_word(text: str) -> bool:
    """Is the token one of the grammar's own words (a price word or a time in force)?"""
    low = text.lower()
    return low in PRICE_WORDS or low in {t.value for t in TIF}


@dataclass(frozen=True)
class Draft:
    """An order as typed or as the ticket holds it: strings may still be incomplete."""

    side: Side = Side.BUY
    qty: str = ""
    symbol: str = ""
    limit: str = ""
    stop: str = ""
    trail: str = ""
    trail_pct: str = ""
    tif: TIF = TIF.DAY
    take_profit: str = ""
    stop_loss: str = ""

    @property
    def type(self) -> OrderType:
        if self.trail or self.trail_pct:
            return OrderType.TRAILING_STOP
        if self.limit and self.stop:
            return OrderType.STOP_LIMIT
        if self.limit:
            return OrderType.LIMIT
        if self.stop:
            return OrderType.STOP
        return OrderType.MARKET

    def request(self) -> OrderRequest:
        """The order, or OrderError naming the field to fix."""
        if not self.symbol:
            raise OrderError("symbol: type one")
        qty = order_number("quantity", self.qty)
        if qty is None:
            raise OrderError("quantity: type how many")
        bracket = None
        tp = order_number("take-profit", self.take_profit)
        sl = order_number("stop-loss", self.stop_loss)
        if tp is not None or sl is not None:
            bracket = Bracket(tp, sl)
        req = OrderRequest(
            self.symbol,
            self.side,
            qty,
            self.type,
            self.tif,
            order_number("limit", self.limit),
            order_number("stop", self.stop),
            order_number("trail", self.trail),
            order_number("trail %", self.trail_pct),
            bracket,
        )
        req.check()
        return req

    def line(self) -> str:
        """The draft in the grammar's words (what the ticket sends as a command line)."""
        parts = [self.side.value, self.qty, self.symbol]
        for word, value in (
            ("lmt", self.limit),
            ("stp", self.stop),
            ("trail", self.trail),
            ("trail%", self.trail_pct),
            ("tp", self.take_profit),
            ("sl", self.stop_loss),
        ):
            if value:
                parts += [word, value]
        if self.tif is not TIF.DAY:
            parts.append(self.tif.value)
        return " ".join(p for p in parts if p)


class OrderLineError(OrderError):
    """A line that does not read as an order (a word not understood, a price word without its
    price, a price given twice); the message says what to type."""


def read_draft(side: Side, tokens: list[str], resolve: Callable[[str], str] | None = None) -> Draft:
    """`100 AAPL lmt 28.10 gtc` → a Draft. Unknown words are an OrderLineError that says what is
    allowed; the symbol typed is `resolve`d (checked against the feed's instruments) when given,
    else upper-cased."""
    draft = Draft(side=side)
    seen: set[str] = set()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        low = tok.lower()
        if low in PRICE_WORDS:
            field = PRICE_WORDS[low]
            if i + 1 >= len(tokens) or is_word(tokens[i + 1]):  # (`lmt gtc`: the price is missing)
                what, example = EXAMPLES.get(field, ("a price", "28.10"))
                raise OrderLineError(f"{tok} needs {what} after it, e.g. {tok} {example}")
            if field in seen:
                raise OrderLineError(f"{tok} is given twice: say each price once")
            seen.add(field)
            price: dict[str, Any] = {field: tokens[i + 1]}  # field is one of the price fields (str)
            draft = replace(draft, **price)
            i += 2
            continue
        if low in {t.value for t in TIF}:
            if "tif" in seen:
                raise OrderLineError(f"{tok}: the time in force is given twice")
            seen.add("tif")
            draft = replace(draft, tif=TIF(low))
        elif not draft.qty and is_number(tok):
            draft = replace(draft, qty=tok)
        elif not draft.symbol:
            draft = replace(draft, symbol=resolve(tok) if resolve is not None else tok.upper())
        else:
            raise OrderLineError(f"{tok!r} is not understood. Usage: {side.value} {USAGE}")
        i += 1
    return draft


def request_line(r: OrderRequest) -> str:
    """An order in the grammar's words: parsing it gives the same order back."""
    parts = [r.side.value, _plain(r.qty), r.symbol]
    if r.limit_price is not None:
        parts += ["lmt", _plain(r.limit_price)]
    if r.stop_price is not None:
        parts += ["stp", _plain(r.stop_price)]
    if r.trail_amount is not None:
        parts += ["trail", _plain(r.trail_amount)]
    if r.trail_pct is not None:
        parts += ["trail%", _plain(r.trail_pct)]
    if r.bracket is not None:
        if r.bracket.take_profit is not None:
            parts += ["tp", _plain(r.bracket.take_profit)]
        if r.bracket.stop_loss is not None:
            parts += ["sl", _plain(r.bracket.stop_loss)]
    if r.tif is not TIF.DAY:
        parts.append(r.tif.value)
    return " ".join(parts)


def _plain(x: Decimal) -> str:
    return format(x, "f")
