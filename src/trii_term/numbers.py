"""The one strict reader of the numbers a trader types: quantities, prices, amounts, percents.

Python reads far more than a trader means: `Decimal("1e400")`, `Decimal("1_0")`, `int("١٠")`
(Arabic-Indic digits), `float("nan")` all succeed. Here a number is what a trader types and
nothing else, or it is refused with one sentence that says what to type instead:

- the ASCII digits 0-9, at most one decimal point (`2.5`, `.5`), an optional leading sign;
- optional thousands commas grouped as written in the US (`1,000,000`) or in India
  (`10,00,000`); commas anywhere else are refused (a decimal comma `2,5` is not guessed at);
- no exponent (`1e3`), no underscores (`1_000`), no `nan`/`inf`, no other digits (`١٠`, `１０`),
  no currency sign;
- at most `max_digits` digits in all and `max_places` after the point (trailing zeros after
  the point do not count: `1.50` has one place), and the value within the bounds asked for.

The value returned is exactly the number written: `parse_decimal("1,000.50", ...)` is
`Decimal("1000.50")`. Standard library only; the palette, the ticket, the CLI and the config
all read numbers through `parse_decimal`.
"""

from __future__ import annotations

import re
from decimal import Decimal

MAX_TEXT = 64  # characters: longer text is refused before it is looked at

_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_US_GROUPS = re.compile(r"[1-9][0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]+)?")
_INDIAN_GROUPS = re.compile(r"[1-9][0-9]?(?:,[0-9]{2})*,[0-9]{3}(?:\.[0-9]+)?")
_CURRENCY_SIGNS = "$₹€£¥"


class NumberError(ValueError):
    """A number that was refused: `what` (as the caller named it), the `text` typed, and the
    `problem` in words; str() is the whole sentence."""

    def __init__(self, what: str, text: str, problem: str) -> None:
        self.what = what
        self.text = text
        self.problem = problem
        super().__init__(f"{what} {shown(text)}: {problem}")


def shown(text: str) -> str:
    """The typed text quoted for a message, cut when long."""
    return repr(text if len(text) <= 24 else text[:23] + "…")


def parse_decimal(
    text: str,
    what: str,
    *,
    max_digits: int = 18,
    max_places: int = 10,
    positive: bool = True,
    allow_zero: bool = False,
    maximum: Decimal | None = None,
) -> Decimal:
    """`text` as the exact Decimal it says, or NumberError saying why not.

    `what` names the number in the message ("quantity", "limit price"). `positive` refuses
    a negative value and, unless `allow_zero`, zero; `positive=False` allows any sign.
    `maximum` is the largest value allowed (inclusive)."""
    raw = text
    body = text.strip(" \t")
    if not body:
        raise NumberError(what, raw, "is empty: type a number such as 10 or 2.5")
    if len(body) > MAX_TEXT:
        raise NumberError(what, raw, f"is too long for a number (at most {max_digits} digits)")
    sign = ""
    if body[0] in "+-":
        sign, body = body[0], body[1:]
    if _PLAIN.fullmatch(body):
        digits = body
    elif _US_GROUPS.fullmatch(body) or _INDIAN_GROUPS.fullmatch(body):
        digits = body.replace(",", "")
    else:
        raise NumberError(what, raw, _why_not(body))

    whole, _, places = digits.partition(".")
    whole = whole.lstrip("0")
    significant = len(places.rstrip("0"))
    if significant > max_places:
        if max_places == 0:
            raise NumberError(what, raw, "must be a whole number")
        raise NumberError(what, raw, f"has {_places(significant)} (at most {max_places})")
    if len(whole) + significant > max_digits:
        raise NumberError(what, raw, f"has too many digits (at most {max_digits})")
    places = places[: max(significant, min(len(places), max_places))]  # 400.50 stays 400.50

    value = Decimal(sign + (whole or "0") + ("." + places if places else ""))
    if value == 0:
        value = abs(value)  # never -0
    if positive and value < 0:
        raise NumberError(what, raw, "must be above 0" if not allow_zero else "must be 0 or more")
    if positive and value == 0 and not allow_zero:
        raise NumberError(what, raw, "must be above 0")
    if maximum is not None and value > maximum:
        raise NumberError(what, raw, f"must be at most {_plain(maximum)}")
    return value


def _why_not(body: str) -> str:
    """What is wrong with text that is not a plain number, in the trader's words."""
    lower = body.lower()
    if lower in ("nan", "snan", "inf", "infinity") or lower.lstrip("+-") in ("nan", "inf", "infinity"):
        return "is not a number: type digits such as 10 or 2.5"
    foreign = next((c for c in body if c.isdigit() and c not in "0123456789"), None)
    if foreign is not None:
        return f"use the digits 0-9 (found {foreign!r})"
    if "_" in body:
        return "no underscores: write 1000 or 1,000"
    if re.fullmatch(r"[0-9.,]*[0-9][eE][+-]?[0-9]+", body):
        return "no exponents: write the digits out, e.g. 1000 (not 1e3)"
    if body[:1] in _CURRENCY_SIGNS or body[-1:] in _CURRENCY_SIGNS:
        return "type the number without a currency sign"
    if "," in body and re.fullmatch(r"[0-9.,]+", body):
        return "commas group thousands (1,000 or 10,00,000); a decimal is written with a point (2.5)"
    if body.count(".") > 1 and re.fullmatch(r"[0-9.]+", body):
        return "has more than one decimal point"
    if body.endswith(".") and re.fullmatch(r"[0-9]+\.", body):
        return f"ends with a point: write {body[:-1]} or {body}0"
    if body[:1] in "+-":
        return "has more than one sign"
    return "is not a number: type digits such as 10 or 2.5"


def _places(n: int) -> str:
    return f"{n} decimal place" + ("" if n == 1 else "s")


def _plain(value: Decimal) -> str:
    """A bound written as a trader reads it: 1,000,000,000,000 (never 1E+12)."""
    text = format(value, "f")
    whole, dot, places = text.partition(".")
    return f"{int(whole):,}" + (dot + places.rstrip("0") if places.rstrip("0") else "")
