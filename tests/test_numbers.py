"""The strict number reader every front end shares: what a trader types is read exactly, and
everything Python would also read (1e400, 1_0, ١٠, nan, inf) is refused with a reason."""

from __future__ import annotations

import re
from decimal import Decimal as D

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from trii_term.numbers import NumberError, parse_decimal


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10", D(10)),
        ("  400.50\t", D("400.50")),  # the places as written (a price shows as typed)
        (".5", D("0.5")),
        ("+5", D(5)),
        ("007", D(7)),
        ("1,000", D(1000)),
        ("1,000,000.25", D("1000000.25")),
        ("10,00,000", D(1_000_000)),  # Indian grouping (lakh)
        ("1,23,45,678", D(12_345_678)),  # (crore)
        ("1.5000000000000", D("1.5")),  # zeros past the last place are not places
        ("123456789012345678", D(123456789012345678)),  # 18 digits
    ],
)
def test_what_a_trader_types_is_read_exactly(text: str, value: D) -> None:
    got = parse_decimal(text, "quantity")
    assert got == value and got.is_finite()


def test_the_places_written_are_kept_up_to_the_limit() -> None:
    assert str(parse_decimal("400.50", "limit price")) == "400.50"
    assert str(parse_decimal("1.500000000000", "quantity", max_places=4)) == "1.5000"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1e400", "no exponents"),
        ("1E3", "no exponents"),
        ("2.5e-1", "no exponents"),
        ("nan", "is not a number"),
        ("NaN", "is not a number"),
        ("sNaN", "is not a number"),
        ("inf", "is not a number"),
        ("-Infinity", "is not a number"),
        ("١٠", "use the digits 0-9"),  # Arabic-Indic: int() and Decimal() both read 10
        ("१०", "use the digits 0-9"),  # Devanagari
        ("１０", "use the digits 0-9"),  # full-width
        ("1²", "use the digits 0-9"),
        ("1_0", "no underscores"),
        ("1_000.5", "no underscores"),
        ("1" * 30, "too many digits"),
        ("1" * 100, "too long"),
        ("0.00000000001", "11 decimal places"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("-5", "must be above 0"),
        ("0", "must be above 0"),
        ("-0", "must be above 0"),
        ("1,5", "commas group thousands"),
        ("1,00", "commas group thousands"),
        ("1,0000", "commas group thousands"),
        ("0,100", "commas group thousands"),
        ("1.2.3", "more than one decimal point"),
        ("5.", "ends with a point"),
        ("--5", "more than one sign"),
        ("$100", "currency sign"),
        ("100₹", "currency sign"),
        ("1 000", "is not a number"),
        ("0x10", "is not a number"),
        ("ten", "is not a number"),
        ("10\n5", "is not a number"),
    ],
)
def test_odd_numbers_are_refused_with_the_reason(text: str, words: str) -> None:
    with pytest.raises(NumberError) as info:
        parse_decimal(text, "quantity")
    assert words in str(info.value)
    assert str(info.value).startswith("quantity ")
    assert info.value.what == "quantity" and info.value.text == text


def test_the_bounds_asked_for() -> None:
    assert parse_decimal("-2.5", "offset", positive=False) == D("-2.5")
    assert parse_decimal("0", "fee", allow_zero=True) == 0
    assert str(parse_decimal("-0", "fee", allow_zero=True)) == "0"  # never -0
    with pytest.raises(NumberError, match="must be 0 or more"):
        parse_decimal("-1", "fee", allow_zero=True)
    assert parse_decimal("1,000,000,000,000", "cash", maximum=D(10) ** 12) == D(10) ** 12
    with pytest.raises(NumberError, match=r"must be at most 1,000,000,000,000$"):
        parse_decimal("1,000,000,000,000.01", "cash", maximum=D(10) ** 12)
    with pytest.raises(NumberError, match=r"has 3 decimal places \(at most 2\)"):
        parse_decimal("1.005", "cash", max_places=2)
    with pytest.raises(NumberError, match="must be a whole number"):
        parse_decimal("1.5", "shares", max_places=0)
    assert parse_decimal("12.00", "shares", max_places=0) == 12
    with pytest.raises(NumberError, match=r"too many digits \(at most 6\)"):
        parse_decimal("1234.567", "qty", max_digits=6)


def test_it_is_a_value_error_with_the_parts() -> None:
    with pytest.raises(ValueError) as info:
        parse_decimal("1e400", "limit price")
    err = info.value
    assert isinstance(err, NumberError)
    assert (err.what, err.text) == ("limit price", "1e400") and "exponent" in err.problem
    assert str(err) == "limit price '1e400': no exponents: write the digits out, e.g. 1000 (not 1e3)"


def _grouped(whole: str, indian: bool) -> str:
    if len(whole) <= 3:
        return whole
    head, tail = whole[:-3], whole[-3:]
    size = 2 if indian else 3
    groups = []
    while head:
        groups.insert(0, head[-size:])
        head = head[:-size]
    return ",".join([*groups, tail])


@given(
    whole=st.integers(min_value=0, max_value=10**8 - 1),
    places=st.text(alphabet="0123456789", max_size=10),
    sign=st.sampled_from(["", "+"]),
    style=st.sampled_from(["plain", "us", "indian"]),
    pad=st.sampled_from(["", " ", "\t"]),
)
def test_any_plain_number_reads_back_exactly(
    whole: int, places: str, sign: str, style: str, pad: str
) -> None:
    digits = str(whole)
    written = digits if style == "plain" else _grouped(digits, indian=style == "indian")
    text = pad + sign + written + (f".{places}" if places else "") + pad
    exact = D(digits + (f".{places}" if places else ""))
    if exact == 0:
        with pytest.raises(NumberError, match="must be above 0"):
            parse_decimal(text, "quantity")
        return
    assert parse_decimal(text, "quantity") == exact


@given(st.text(max_size=40))
@example("1e400")
@example("١٠")
@example("1_0")
@example("Infinity")
@example("1,000")
def test_any_text_is_refused_or_read_as_its_ascii_digits(text: str) -> None:
    try:
        value = parse_decimal(text, "amount", positive=False)
    except NumberError as exc:
        assert str(exc).startswith("amount ")
        return
    body = text.strip(" \t")
    assert re.fullmatch(r"[+-]?[0-9,]*\.?[0-9]*", body), text  # only what a trader types
    assert value.is_finite() and value == D(body.replace(",", ""))
