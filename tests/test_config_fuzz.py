"""Config files fuzzed: TOML documents with random keys, types and values for the real sections.
Every document is either refused with a ConfigError that names a key written wrongly and its
line, or read as a Config whose every value is exactly what was written — never another
exception, never a number rounded, clamped or guessed.

The ranges below are written out again on purpose (not imported): they are the documented
contract (README, configuration), and the code must keep to them.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trii_term.config import Config, ConfigError, parse_config
from trii_term.domain import normalize_symbol

# -- the contract -------------------------------------------------------------------------------

FLOATS = {  # key: (low, high), inclusive; TOML integer or float; kept as float
    "providers.replay.speed": (0.01, 100_000),
    "ui.stale_after": (0.1, 86_400),
    "ai.temperature": (0, 1),
}
INTS = {"providers.replay.seed": (0, 2**32 - 1), "ai.max_tokens": (1, 64_000)}


@dataclass(frozen=True)
class Exact:  # a Decimal key: string (trader's rules) or TOML integer, floats only for percents
    high: int
    places: int
    zero: bool = False
    floats: bool = False


EXACT = {
    "brokers.paper.starting_cash": Exact(10**12, 2),
    "risk.max_order_notional": Exact(10**12, 2),
    "risk.daily_loss_limit": Exact(10**12, 2),
    "risk.max_position_pct": Exact(100, 4, floats=True),
    "risk.price_band_pct": Exact(100, 4, floats=True),
    "risk.max_order_qty": Exact(10**9, 6),
    **{f"fees.{m}.per_share": Exact(100, 6, zero=True) for m in ("US", "NSE")},
    **{f"fees.{m}.min": Exact(10_000, 2, zero=True) for m in ("US", "NSE")},
    **{f"fees.{m}.pct": Exact(10, 4, zero=True, floats=True) for m in ("US", "NSE")},
}
CHOICES = {
    "providers.replay.at_end": ("loop", "stop"),
    "providers.alpaca.feed": ("iex", "sip", "delayed_sip", "test"),
    "providers.kite.mode": ("ltp", "quote", "full"),
    "brokers.default": ("paper", "alpaca", "kite"),
    "brokers.kite.product": ("CNC", "MIS", "NRML"),
    "ai.persona": ("analyst", "risk", "coach"),
}
BOOLS = (
    "brokers.paper.partial_fills",
    "brokers.paper.allow_short",
    "brokers.alpaca.paper",
    "trading.confirm",
)
URLS = (
    "providers.alpaca.stream_url",
    "providers.alpaca.data_url",
    "providers.kite.ticker_url",
    "providers.kite.root",
    "brokers.alpaca.url",
    "brokers.alpaca.stream_url",
    "brokers.kite.root",
    "ai.base_url",
)
OTHER = (
    "feed.provider",
    "feed.symbols",
    "risk.restricted",
    "providers.replay.date",
    "store.path",
    "brokers.paper.currency",
    "ai.model",
)
ALL_KEYS = (*FLOATS, *INTS, *EXACT, *CHOICES, *BOOLS, *URLS, *OTHER)


# -- values as TOML writes them -----------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A TOML number literal written as is, with the value TOML gives it."""

    text: str
    value: int | float


RAW = [
    Raw("1e400", math.inf),
    Raw("-1e400", -math.inf),
    Raw("1e-400", 0.0),
    Raw("nan", math.nan),
    Raw("+nan", math.nan),
    Raw("inf", math.inf),
    Raw("-inf", -math.inf),
    Raw("1_000", 1000),
    Raw("1_0", 10),
    Raw("1_000.5", 1000.5),
    Raw("0x10", 16),
    Raw("0o17", 15),
    Raw("0b101", 5),
    Raw("+1.5", 1.5),
    Raw("6E1", 60.0),
    Raw("-0.0", -0.0),
    Raw("1" * 30, int("1" * 30)),
    Raw("9" * 400, int("9" * 400)),
    Raw("12.5", 12.5),
    Raw("0.0125", 0.0125),
]

ODD_TEXT = [
    "1e400", "1E3", "١٠", "१०", "１０", "1_0", "nan", "NaN", "inf", "-Infinity", "sNaN", "1" * 30,
    "-5", "0", "-0", "1,5", "1.2.3", "5.", "$100", "0x10", "1 000", "", " ", "1.0000001", "10.005",
]  # fmt: skip


def toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise AssertionError(v)


def number_of(v: Any) -> Any:
    """What TOML gives for `v` (a Raw literal's value)."""
    return v.value if isinstance(v, Raw) else v


# -- strategies ---------------------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=24)
scalar = st.one_of(
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(RAW),
    text,
    st.sampled_from(ODD_TEXT),
    st.dates(),
    st.datetimes(),
)
anything = st.one_of(scalar, st.lists(scalar, max_size=3))


def plain(d: D, commas: bool) -> str:
    return f"{d:,f}" if commas else format(d, "f")


def valid_for(key: str) -> st.SearchStrategy[Any]:
    if key in FLOATS:
        lo, hi = FLOATS[key]
        return st.one_of(st.floats(lo, hi), st.integers(math.ceil(lo), int(hi)))
    if key in INTS:
        return st.integers(*INTS[key])
    if key in EXACT:
        e = EXACT[key]
        step = D(1).scaleb(-e.places)
        decimals = st.decimals(D(0) if e.zero else step, D(e.high), places=e.places)
        as_text = st.builds(plain, decimals, st.booleans())
        whole = st.integers(0 if e.zero else 1, e.high)
        pct_floats = st.decimals(D(0) if e.zero else D("0.01"), D(e.high), places=2).map(float)
        return st.one_of(as_text, whole, pct_floats) if e.floats else st.one_of(as_text, whole)
    if key in CHOICES:
        return st.sampled_from(CHOICES[key])
    if key in BOOLS:
        return st.booleans()
    if key in URLS:
        scheme = "ws" if key.endswith(("stream_url", "ticker_url")) else "http"
        return st.sampled_from(["", f"{scheme}://127.0.0.1:8080", f"{scheme}s://example.test/v2"])
    return {
        "feed.provider": st.sampled_from(["replay", "alpaca", "kite"]),
        "feed.symbols": st.lists(st.from_regex(r"[A-Za-z]{1,5}", fullmatch=True), max_size=4),
        "risk.restricted": st.lists(st.from_regex(r"[A-Z]{1,5}", fullmatch=True), max_size=3),
        "providers.replay.date": st.dates(),
        # (brackets, quotes and # in a string must not move the lines of the keys after it)
        "store.path": st.from_regex(r"/[a-z\[\]{}#'\"= ]{1,8}/[a-z]{1,8}\.duckdb", fullmatch=True),
        "brokers.paper.currency": st.sampled_from(["USD", "INR"]),
        "ai.model": st.sampled_from(["claude-sonnet-4-6", "claude-haiku-4-5"]),
    }[key]


@st.composite
def entries(draw: st.DrawFn) -> list[tuple[str, Any]]:
    keys = draw(st.lists(st.sampled_from(ALL_KEYS), unique=True, min_size=1, max_size=8))
    out: list[tuple[str, Any]] = []
    for key in keys:
        value = draw(st.one_of(valid_for(key), anything))
        out.append((key, value))
    if draw(st.integers(0, 9)) == 0:  # now and then a key that does not exist
        table = draw(st.sampled_from(["feed", "risk", "ai", "providers.replay", "brokers.paper"]))
        out.append((f"{table}.{draw(st.from_regex(r'[a-z]{3,9}', fullmatch=True))}x", 1))
    return out


def render(items: list[tuple[str, Any]], dotted: bool) -> tuple[str, dict[str, int]]:
    """The document, and the line of each key. Headers per table, or every key dotted."""
    lines = ["# fuzzed", ""]
    where: dict[str, int] = {}
    if dotted:
        for key, value in items:
            lines.append(f"{key} = {toml_value(value)}")
            where[key] = len(lines)
        return "\n".join(lines) + "\n", where
    tables: dict[str, list[tuple[str, Any]]] = {}
    for key, value in items:
        table, _, leaf = key.rpartition(".")
        tables.setdefault(table, []).append((leaf, value))
    for table, rows in tables.items():
        lines += ["", f"[{table}]"]
        for leaf, value in rows:
            lines.append(f"{leaf} = {toml_value(value)}")
            where[f"{table}.{leaf}"] = len(lines)
    return "\n".join(lines) + "\n", where


# -- the oracle: what each value must be read as (None: it must be refused) ----------------------

REFUSED = object()
EITHER = object()  # (only for free text: refused, or read as `meaning`)


def _exact_meaning(e: Exact, v: Any) -> Any:
    literal: str | None = None  # a TOML float as written
    if isinstance(v, Raw):
        if isinstance(v.value, int):
            v = v.value
        else:
            literal = v.text.replace("_", "")  # TOML's digit separators
    elif isinstance(v, float):
        literal = toml_value(v)
    if isinstance(v, bool):
        return REFUSED
    if isinstance(v, int):
        ok = (v >= 0 if e.zero else v > 0) and v <= e.high
        return D(v) if ok else REFUSED
    if literal is not None:
        if not e.floats or not re.fullmatch(r"[+-]?[0-9]+(\.[0-9]+)?", literal):  # exponent, nan, inf
            return REFUSED
        return _in_range(e, D(literal))
    if isinstance(v, str):
        body = v.strip(" \t")
        if not re.fullmatch(r"[+-]?([0-9,]*\.?[0-9]+|[0-9,]+)", body):
            return REFUSED
        value = _in_range(e, D(body.replace(",", "")))
        return ("either", value) if "," in body and value is not REFUSED else value
    return REFUSED


def _in_range(e: Exact, d: D) -> Any:
    places = -d.normalize().as_tuple().exponent if d != 0 else 0
    ok = (d >= 0 if e.zero else d > 0) and d <= e.high and max(places, 0) <= e.places  # type: ignore[operator]
    return d if ok else REFUSED


def meaning(key: str, v: Any) -> Any:
    """What `v` written at `key` must be read as; REFUSED; or ("either", m): refused or m."""
    if isinstance(v, Raw) and "_" in v.text:  # TOML's digit separators: a trader's number has none
        return REFUSED
    if key in FLOATS or key in INTS:
        n = number_of(v)
        if isinstance(n, bool) or not isinstance(n, int | float) or (key in INTS and isinstance(n, float)):
            return REFUSED
        lo, hi = FLOATS.get(key) or INTS[key]
        if isinstance(n, float) and not math.isfinite(n):
            return REFUSED
        return (float(n) if key in FLOATS else n) if lo <= n <= hi else REFUSED
    if key in EXACT:
        return _exact_meaning(EXACT[key], v)
    if key in CHOICES:
        return v if isinstance(v, str) and v in CHOICES[key] else REFUSED
    if key in BOOLS:
        return v if isinstance(v, bool) else REFUSED
    if key in ("feed.symbols", "risk.restricted"):
        if not isinstance(v, list) or not all(isinstance(x, str) and x.isascii() for x in v):
            return REFUSED
        syms = tuple(dict.fromkeys(normalize_symbol(x) for x in v))
        return ("either", syms if key == "feed.symbols" else frozenset(syms))
    if key == "providers.replay.date":
        if isinstance(v, datetime):
            return REFUSED
        if isinstance(v, date):
            return v
        return ("either", v) if isinstance(v, str) else REFUSED
    if key == "feed.provider" and isinstance(v, list):
        return ("either", "+".join(v)) if all(isinstance(x, str) for x in v) else REFUSED
    if not isinstance(v, str):
        return REFUSED
    if key in URLS:
        return ("either", v.strip())
    return ("either", v)  # provider, path, currency, model: refused or exactly the text


def read(config: Config, key: str) -> Any:
    parts = key.split(".")
    if parts[0] == "fees":
        fee = config.fees[parts[1]]
        return getattr(fee, {"min": "minimum"}.get(parts[2], parts[2]))
    if parts[0] == "providers" and parts[1] == "replay":
        return getattr(config.replay, parts[2])
    obj: Any = config
    for p in parts:
        obj = getattr(obj, p)
    return obj


def _same(key: str, expected: Any, got: Any) -> bool:
    if key == "providers.replay.date" and isinstance(expected, str):
        try:
            return bool(got == date.fromisoformat(expected))
        except ValueError:
            return False
    if key == "store.path":
        return bool(got == Path(expected).expanduser())
    if isinstance(expected, float):
        return type(got) is float and got == expected
    if isinstance(expected, D):
        return isinstance(got, D) and got == expected and got.is_finite()
    return bool(got == expected)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=entries(), dotted=st.booleans())
def test_a_config_is_refused_at_a_bad_key_or_read_exactly(items: list[tuple[str, Any]], dotted: bool) -> None:
    text, where = render(items, dotted)
    verdicts = {key: meaning(key, value) for key, value in items if key in ALL_KEYS}
    unknown = [key for key, _ in items if key not in ALL_KEYS]
    must_refuse = {k for k, m in verdicts.items() if m is REFUSED} | set(unknown)
    may_refuse = must_refuse | {k for k, m in verdicts.items() if isinstance(m, tuple)}
    try:
        config = parse_config(text, Path("fuzz.toml"))
    except ConfigError as err:
        assert err.key in may_refuse, (err, text)
        assert err.line == where[err.key], (err, text)
        assert str(err).startswith(f"fuzz.toml, line {err.line}: {err.key}: "), err
        return
    assert not must_refuse, (must_refuse, text)
    for key, m in verdicts.items():
        expected = m[1] if isinstance(m, tuple) else m
        got = read(config, key)
        assert _same(key, expected, got), (key, expected, got, text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_config_or_a_config_error(doc: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(doc)


@settings(max_examples=200, deadline=None)
@given(
    table=st.sampled_from(sorted({k.rpartition(".")[0] for k in ALL_KEYS})),
    key=st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
    value=anything,
)
def test_any_value_under_any_key_of_a_real_table(table: str, key: str, value: Any) -> None:
    dotted = f"{table}.{key}"
    try:
        config = parse_config(f"[{table}]\n{key} = {toml_value(value)}\n")
    except ConfigError as err:
        assert err.key == dotted and err.line == 2, err
        return
    m = meaning(dotted, value)
    assert dotted in ALL_KEYS and m is not REFUSED, (dotted, value)
    expected = m[1] if isinstance(m, tuple) else m
    assert _same(dotted, expected, read(config, dotted)), (dotted, value)


def _string_forms(s: str) -> list[str]:
    """`s` in each TOML string syntax that can hold it."""
    forms = [toml_string(s)]
    plain = all(c == "\t" or c == "\n" or " " <= c != "\x7f" for c in s)
    if plain and "'" not in s and "\n" not in s:
        forms.append(f"'{s}'")
    if plain and "'''" not in s and not s.endswith("'"):
        forms.append(f"'''{s}'''")
    basic = toml_string(s)[1:-1].replace("\\n", "\n")
    if not basic.endswith('"'):
        forms.append(f'"""{basic}"""')
    return forms


@settings(max_examples=300, deadline=None)
@given(
    strings=st.lists(
        st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20).filter(str.strip),
        min_size=1,
        max_size=4,
    ),
    pick=st.integers(0, 3),
    arrays=st.booleans(),
)
def test_no_string_moves_the_line_of_a_later_key(strings: list[str], pick: int, arrays: bool) -> None:
    lines = ["[keys]"]
    for i, s in enumerate(strings):
        forms = _string_forms(s)
        lines.append(f'"k{i}" = {forms[pick % len(forms)]}')
    if arrays:
        lines.append("[feed]\nprovider = [\n  'alpaca', # ]] [\n  'kite',\n]")
    doc = "\n".join(lines) + "\n"
    written = doc.count("\n")  # the next line is the bad key
    with_bad = doc + "[ai]\nmax_tokens = 0\n"
    try:
        parse_config(with_bad)
    except ConfigError as err:
        assert err.key == "ai.max_tokens" and err.line == written + 2, (err, with_bad)
    else:
        raise AssertionError(f"max_tokens = 0 was accepted in {with_bad!r}")
