"""Settings: TOML, every key optional, validated strictly.

An unknown key, a wrong type or a number out of its range is an error that names the key and
its line, and the command line exits with code 2. Later features add their sections to `SCHEMA`;
each venue declares its own tables (see `schema()`).

Numbers. TOML numbers are read as TOML defines them (a float literal is kept as written, so
`pct = 0.0125` is exactly 0.0125), except that a number written with underscores (`100_000`,
which TOML reads as 100000) is refused with its key and line: a trader's number never has one
(a typo of `1,000`, or `1_0` meant as 1.0). Numbers written in strings (money) are read by
`numbers.parse_decimal`, the trader's rules: digits 0-9, one point, optional thousands commas,
no exponent, no underscores, no nan/inf. Every number key has a range (in `SCHEMA` below, and
in the README): anything outside it, or not finite, is refused — never rounded, clamped or
guessed.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from trii_term import venues
from trii_term.domain import normalize_symbol
from trii_term.domain.ledger import FeeModel
from trii_term.numbers import NumberError, parse_decimal, shown
from trii_term.toml_lines import key_lines, line_of

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "IBM", "GOOG")
DEFAULT_BROKER = "paper"
# Commission per market when the config has no [fees.MARKET]: a US per-share schedule, and
# nothing for NSE delivery (brokerage-free there; statutory charges are not modelled yet).
DEFAULT_FEES = {
    "US": FeeModel(per_share=Decimal("0.005"), pct=Decimal(0), minimum=Decimal("1.00")),
    "NSE": FeeModel(),
}


class ConfigError(Exception):
    """A problem in the config file, with where it is and what to do."""

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        line: int | None = None,
        path: Path | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.line = line
        self.path = path

    def __str__(self) -> str:
        where = str(self.path) if self.path else "config"
        if self.line:
            where += f", line {self.line}"
        key = f"{self.key}: " if self.key else ""
        return f"{where}: {key}{self.message}"


# --------------------------------------------------------------------------------------------
# Typed settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskLimits:
    """`[risk]` in the config; None switches a rule off."""

    max_order_notional: Decimal | None = Decimal("250000")
    max_position_pct: Decimal | None = Decimal(25)
    daily_loss_limit: Decimal | None = Decimal("5000")
    price_band_pct: Decimal | None = Decimal(10)
    max_order_qty: Decimal | None = Decimal(100000)
    restricted: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class FeedConfig:
    provider: str = "replay"  # one name, or several joined by "+" (from a TOML array)
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self.provider.split("+"))


MIN_REPLAY_SPEED = 0.01  # one market second per 100 real seconds
MAX_REPLAY_SPEED = 100_000.0


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    date: date | None = None  # None: the last day in the data
    speed: float = 60.0  # simulated seconds per real second
    seed: int = 1
    at_end: str = "loop"  # when the history runs out: "loop" from the first common day, or "stop"


@dataclass(frozen=True, slots=True)
class StoreConfig:
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class UiConfig:
    stale_after: float = 60.0  # session-clock seconds without an update before a quote is stale


@dataclass(frozen=True, slots=True)
class PaperConfig:
    starting_cash: Decimal = Decimal("100000")
    currency: str = "USD"
    partial_fills: bool = False
    allow_short: bool = False


@dataclass(frozen=True, slots=True)
class TradingConfig:
    confirm: bool = True  # false skips the confirm dialog (paper broker only)


class VenueSettings(Mapping[str, Any]):
    """Each venue's settings table by venue name, read as an attribute: `config.providers.kite`
    is the `[providers.kite]` table as the Kite package declares it. A venue with no table in
    the file has its defaults."""

    __slots__ = ("_tables",)

    def __init__(self, tables: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_tables", dict(tables))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._tables[name]
        except KeyError:
            raise AttributeError(f"no venue named {name!r} has settings here") from None

    def __getitem__(self, name: str) -> Any:
        return self._tables[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)

    def __repr__(self) -> str:
        return f"VenueSettings({self._tables!r})"


def _venue_tables(kind: str, given: Mapping[str, Mapping[str, Any]] | None = None) -> VenueSettings:
    """`[providers.*]` (kind "provider_settings") or `[brokers.*]` ("broker_settings") of every
    venue: the values given, else its defaults."""
    given = given or {}
    return VenueSettings(
        {
            v.name: getattr(v, kind)(**given.get(v.name, {}))
            for v in venues.venues()
            if getattr(v, kind) is not None
        }
    )


def ProvidersConfig() -> VenueSettings:
    return _venue_tables("provider_settings")


@dataclass(frozen=True, slots=True)
class BrokersConfig:
    default: str = DEFAULT_BROKER
    paper: PaperConfig = field(default_factory=PaperConfig)
    # [brokers.<venue>] of every venue, by name; read as `config.brokers.alpaca`
    venues: VenueSettings = field(default_factory=lambda: _venue_tables("broker_settings"))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.venues, name)


@dataclass(frozen=True, slots=True)
class AiConfig:
    model: str = "claude-sonnet-4-6"
    max_tokens: int = 1500
    temperature: float | None = None  # None: the API's default
    base_url: str = ""  # "": the SDK's (ANTHROPIC_BASE_URL, else https://api.anthropic.com)
    persona: str = "analyst"  # analyst | risk | coach


@dataclass(frozen=True, slots=True)
class Config:
    feed: FeedConfig = field(default_factory=FeedConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    providers: VenueSettings = field(default_factory=ProvidersConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    keys: Mapping[str, str] = field(default_factory=dict)
    brokers: BrokersConfig = field(default_factory=BrokersConfig)
    trading: TradingConfig = field(default_factory=TradingConfig)
    risk: RiskLimits = field(default_factory=RiskLimits)
    ai: AiConfig = field(default_factory=AiConfig)
    fees: Mapping[str, FeeModel] = field(default_factory=lambda: dict(DEFAULT_FEES))
    source: Path | None = None  # the file it came from, None when no file exists
    lines: Mapping[str, int] = field(default_factory=dict)  # dotted key -> line in the file

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError about `key`, pointing at its line when the key is in the file."""
        return ConfigError(message, key=key, line=self.lines.get(key), path=self.source)


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------

Check = Callable[[Any], Any]  # returns the converted value or raises ValueError(message)


class _TomlFloat(float):
    """A TOML float that remembers its literal as written (tomllib's `parse_float` hook), so a
    message quotes `1e400` (not `inf`) and a percent is read exactly as written."""

    literal: str

    def __new__(cls, literal: str) -> _TomlFloat:
        self = super().__new__(cls, float(literal))
        self.literal = literal
        return self

    def __repr__(self) -> str:
        return self.literal


def _written(value: Any) -> str:
    """A value as the config file spells it, for messages."""
    if isinstance(value, _TomlFloat):
        return value.literal
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, date | time):
        return value.isoformat()
    text = repr(value)
    return text if len(text) <= 24 else text[:23] + "…"


def _toml_type(value: Any) -> str:
    if isinstance(value, datetime):
        return "a date-time"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        _TomlFloat: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
        date: "a date",
        time: "a time",
    }.get(type(value), type(value).__name__)


def _string(choices: tuple[str, ...] | None = None) -> Check:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {_toml_type(value)}")
        if choices is not None and value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)} (got {_written(value)})")
        return value

    return check


_NAME_RE = re.compile(r"^[a-z][a-z0-9_\-]{0,39}$")


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_toml_type(value)}")
    if not _NAME_RE.fullmatch(value):
        raise ValueError(f'must be a provider name such as "replay" (got {_written(value)})')
    return value


def _provider(value: Any) -> str:
    """One provider, or an array of live ones whose symbols share the watchlists."""
    if isinstance(value, list):
        if not value:
            raise ValueError('must name at least one provider, e.g. ["alpaca", "kite"]')
        names = [_name(v) for v in value]
        if len(set(names)) != len(names):
            raise ValueError(f"names a provider twice: {value!r}")
        if len(names) > 1 and "replay" in names:
            raise ValueError("replay runs a simulated clock and cannot be combined with live providers")
        return "+".join(names)
    return _name(value)


# (Kite's index names have spaces: "NSE:NIFTY 50")
_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.:\-^&_ ]{0,38}[A-Z0-9.\-^&_]$|^[A-Z0-9]$")


def _symbols(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f'must be an array of symbols such as ["AAPL", "MSFT"], not {_toml_type(value)}')
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"must contain only strings; found {_toml_type(item)} {_written(item)}")
        sym = normalize_symbol(item)
        # ASCII only: "ß".upper() is "SS", "ﬁ".upper() is "FI" — not the symbol that was written
        if not item.isascii() or not _SYMBOL_RE.fullmatch(sym):
            raise ValueError(f"{_written(item)} is not a symbol")
        if sym not in out:
            out.append(sym)
    return tuple(out)


def _url(schemes: tuple[str, ...]) -> Check:
    """A URL with one of `schemes`, or "" for the default."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {_toml_type(value)}")
        value = value.strip()
        if value and not re.fullmatch(rf"({'|'.join(schemes)})://[^\s/]+\S*", value):
            example = f"{schemes[-1]}://host:port"
            raise ValueError(
                f"must be a URL starting {' or '.join(s + '://' for s in schemes)} such as "
                f'"{example}", or "" for the default (got {_written(value)})'
            )
        return value

    return check


def _model(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.\-_:@]{1,99}", value):
        raise ValueError(f'must be a model name such as "claude-sonnet-4-6" (got {_written(value)})')
    return value


def _date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f'must be a date such as "2013-03-01" (got {_written(value)})')


def _path(value: Any) -> Path:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ValueError("must be a file path string")
    try:
        return Path(value).expanduser()
    except RuntimeError:  # ~someone for a user this machine does not know
        raise ValueError(f"names a home directory this machine does not know: {_written(value)}") from None


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_toml_type(value)}")
    return value


# -- numbers ---------------------------------------------------------------------------------


def _plain(value: Decimal | float | int) -> str:
    """A bound as a trader reads it: 1,000,000,000,000 · 0.01 (never 1E+12)."""
    text = format(Decimal(str(value)), "f")
    whole, _, places = text.partition(".")
    places = places.rstrip("0")
    return f"{int(whole):,}" + (f".{places}" if places else "")


def _number(what: str, low: float, high: float) -> Check:
    """A TOML integer or float from `low` to `high` (inclusive), kept as a float."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, not {_toml_type(value)}")
        # compared as written: an int such as 10**400 has no float (float() would overflow)
        finite = not isinstance(value, float) or math.isfinite(value)
        if not finite or not low <= value <= high:
            raise ValueError(f"must be {what} from {_plain(low)} to {_plain(high)} (got {_written(value)})")
        return float(value)

    return check


def _whole(what: str, low: int, high: int) -> Check:
    """A TOML integer from `low` to `high` (inclusive)."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number ({what}), not {_toml_type(value)}")
        if not low <= value <= high:
            raise ValueError(f"must be {what} from {_plain(low)} to {_plain(high)} (got {_written(value)})")
        return value

    return check


def _exact(
    what: str, example: str, *, places: int, high: Decimal, zero: bool = False, floats: bool = False
) -> Check:
    """An exact number (Decimal): a string read by `parse_decimal`, a TOML integer, or (when
    `floats`) a TOML float read from its literal. Above 0 (or from 0 when `zero`), at most
    `high`, at most `places` decimal places."""
    allowed = f"Allowed: {'0 or more' if zero else 'above 0'}, at most {_plain(high)}, " + (
        f"at most {places} decimal places." if places else "a whole number."
    )

    def check(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"must be {what} such as {example}, not {_toml_type(value)}")
        if isinstance(value, float) and not floats:
            if not math.isfinite(value):  # nan, inf: no string of it would be a number either
                raise ValueError(f"got {_written(value)}: not a number. {allowed}")
            raise ValueError(
                f'must be {what} written as a string ("{_written(value)}"): a TOML float is not exact'
            )
        # a float's literal as written, without TOML's digit separators (as for integers)
        text = value.literal.replace("_", "") if isinstance(value, _TomlFloat) else str(value)
        try:
            return parse_decimal(text, what, max_digits=24, max_places=places, allow_zero=zero, maximum=high)
        except NumberError as exc:
            raise ValueError(f"got {_written(value)}: {exc.problem}. {allowed}") from None

    return check


# The range of every number key (also in the README's configuration section). Money is kept to
# the cent; a limit of 0 would refuse every order, so limits are above 0 (fees may be 0).
_MAX_MONEY = Decimal(10) ** 12
_money = _exact("an amount", '"100000"', places=2, high=_MAX_MONEY)
_percent = _exact("a percent", "25", places=4, high=Decimal(100), floats=True)
_FEES = {
    "per_share": _exact("a commission per share", '"0.005"', places=6, high=Decimal(100), zero=True),
    "min": _exact("a minimum commission", '"1.00"', places=2, high=Decimal(10_000), zero=True),
    "pct": _exact("a percent", "0", places=4, high=Decimal(10), zero=True, floats=True),
}


CURRENCIES = ("USD", "INR")  # the markets' currencies: a paper account in another could price nothing


def _currency(value: Any) -> str:
    if not isinstance(value, str) or value not in CURRENCIES:
        raise ValueError(
            f"must be the currency of a market trii-term trades: {' or '.join(CURRENCIES)} "
            f"(got {_written(value)})"
        )
    return value


def _keymap(value: Any) -> dict[str, str]:
    # [keys] maps binding ids to key strings: "watch.remove" = "delete,x"
    if not isinstance(value, dict):
        raise ValueError(f"must be a table, not {_toml_type(value)}")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f'{k} must be a key string such as "ctrl+w" or "delete,x"')
        out[k] = v.replace(" ", "")
    return out


SCHEMA: dict[str, Any] = {
    "feed": {
        # any installed provider (built in, or a plug-in's entry point): the session checks the
        # name against what is installed and reports it with this key's line
        "provider": _provider,
        "symbols": _symbols,
    },
    "providers": {
        "replay": {
            "date": _date,
            "speed": _number("market seconds per real second", MIN_REPLAY_SPEED, MAX_REPLAY_SPEED),
            "seed": _whole("a seed", 0, 2**32 - 1),
            "at_end": _string(("loop", "stop")),
        },
        # [providers.<venue>]: as each venue declares (see _venue_schema below)
    },
    "store": {"path": _path},
    "ui": {"stale_after": _number("market seconds", 0.1, 86_400)},
    "keys": _keymap,
    "brokers": {
        # "default": one of the installed brokers (added by `schema()`)
        "paper": {
            "starting_cash": _money,
            "currency": _currency,
            "partial_fills": _bool,
            "allow_short": _bool,
        },
        # [brokers.<venue>]: as each venue declares
    },
    "trading": {"confirm": _bool},
    "risk": {
        "max_order_notional": _money,
        "max_position_pct": _percent,
        "daily_loss_limit": _money,
        "price_band_pct": _percent,
        "max_order_qty": _exact("a quantity", "100000", places=6, high=Decimal(10) ** 9),
        "restricted": _symbols,
    },
    "fees": {"US": _FEES, "NSE": _FEES},
    "ai": {
        "model": _model,
        "max_tokens": _whole("a number of tokens", 1, 64_000),
        "temperature": _number("a temperature", 0, 1),
        "base_url": _url(("http", "https")),
        "persona": _string(("analyst", "risk", "coach")),
    },
}


def _venue_schema(settings: type) -> dict[str, Check]:
    """The keys of a venue's settings table, checked as its dataclass declares them (`choice`,
    `url`, `flag` in `trii_term.venues`), in the order the fields are written."""
    out: dict[str, Check] = {}
    for f in fields(settings):
        if "choices" in f.metadata:
            out[f.name] = _string(tuple(f.metadata["choices"]))
        elif "url" in f.metadata:
            out[f.name] = _url(tuple(f.metadata["url"]))
        elif "flag" in f.metadata:
            out[f.name] = _bool
        else:
            raise TypeError(f"{settings.__name__}.{f.name}: declare it with choice, url or flag")
    return out


@cache
def schema() -> dict[str, Any]:
    """The whole schema: `SCHEMA` with `brokers.default` (one of the installed brokers) and every
    installed venue's `[providers.X]` and `[brokers.X]`. Built on first use, not at import: the
    entry points are read only when a config is."""
    full = dict(SCHEMA)
    full["providers"] = dict(SCHEMA["providers"])
    full["brokers"] = {"default": _string(tuple(venues.names(venues.BROKER_GROUP))), **SCHEMA["brokers"]}
    for venue in venues.venues():
        if venue.provider_settings is not None:
            full["providers"][venue.name] = _venue_schema(venue.provider_settings)
        if venue.broker_settings is not None:
            full["brokers"][venue.name] = _venue_schema(venue.broker_settings)
    return full


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_config(path: Path | None) -> Config:
    """Read and validate the config file; a missing file means all defaults."""
    if path is None or not path.exists():
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config file ({exc})", path=path) from exc
    return parse_config(text, path)


_SEPARATED_NUMBER = re.compile(r"=\s*([+-]?[0-9][0-9_.eE+-]*_[0-9_.eE+-]*)\s*(?:#.*)?$")


def _no_digit_separators(text: str, lines: Mapping[str, int], path: Path | None) -> None:
    """TOML reads `1_000` as 1000; a trader's number never has `_` in it (a typo of `1,000`, or
    `1_0` meant as 1.0), so a number written with one is refused with its key and line."""
    rows = text.split("\n")
    longest: dict[int, str] = {}  # the key written on each line (not the tables it opens)
    for key, line in lines.items():
        if len(key) > len(longest.get(line, "")):
            longest[line] = key
    for line, key in sorted(longest.items()):
        found = _SEPARATED_NUMBER.search(rows[line - 1]) if 0 < line <= len(rows) else None
        if found is not None and not rows[line - 1].lstrip().startswith("["):
            raise ConfigError(
                f"got {found.group(1)}: no underscores in numbers: write {found.group(1).replace('_', '')}",
                key=key,
                line=line,
                path=path,
            )


def parse_config(text: str, path: Path | None = None) -> Config:
    try:
        raw = tomllib.loads(text, parse_float=_TomlFloat)
    except tomllib.TOMLDecodeError as exc:
        line = _line_from_decode_error(str(exc))
        raise ConfigError(f"not valid TOML: {exc}", line=line, path=path) from exc
    except RecursionError:  # tomllib has no depth limit of its own
        raise ConfigError("not valid TOML: arrays or tables nested too deeply", path=path) from None
    lines = key_lines(text)
    _no_digit_separators(text, lines, path)
    values = _validate(raw, schema(), "", lines, path)

    feed = values.get("feed", {})
    providers = values.get("providers", {})
    replay = providers.get("replay", {})
    store = values.get("store", {})
    ui = values.get("ui", {})
    brokers = dict(values.get("brokers", {}))
    paper = PaperConfig(**brokers.pop("paper", {}))
    default = brokers.pop("default", DEFAULT_BROKER)
    risk = dict(values.get("risk", {}))
    if "restricted" in risk:
        risk["restricted"] = frozenset(risk["restricted"])
    fees = dict(DEFAULT_FEES)
    for market, table in values.get("fees", {}).items():
        base = DEFAULT_FEES.get(market, FeeModel())
        fees[market] = FeeModel(
            per_share=table.get("per_share", base.per_share),
            pct=table.get("pct", base.pct),
            minimum=table.get("min", base.minimum),
        )
    return Config(
        feed=FeedConfig(**feed),
        replay=ReplayConfig(**replay),
        providers=_venue_tables("provider_settings", providers),
        store=StoreConfig(**store),
        ui=UiConfig(**ui),
        keys=values.get("keys", {}),
        brokers=BrokersConfig(default=default, paper=paper, venues=_venue_tables("broker_settings", brokers)),
        trading=TradingConfig(**values.get("trading", {})),
        ai=AiConfig(**values.get("ai", {})),
        risk=RiskLimits(**risk),
        fees=fees,
        source=path,
        lines=lines,
    )


def _validate(
    raw: Mapping[str, Any],
    schema: Mapping[str, Any],
    prefix: str,
    lines: Mapping[str, int],
    path: Path | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        spec = schema.get(key)
        if spec is None:
            hint = _close(key, list(schema))
            where = f"[{prefix[:-1]}]" if prefix else "the top level"
            msg = f"unknown key '{dotted}'"
            msg += f" (did you mean {' or '.join(repr(prefix + h) for h in hint)}?)" if hint else ""
            msg += f"; keys allowed in {where}: {', '.join(schema)}"
            raise ConfigError(msg, key=dotted, line=line_of(lines, dotted), path=path)
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"must be a table ([{dotted}]), not {_toml_type(value)}",
                    key=dotted,
                    line=line_of(lines, dotted),
                    path=path,
                )
            out[key] = _validate(value, spec, f"{dotted}.", lines, path)
        else:
            try:
                out[key] = spec(value)
            except ValueError as exc:
                raise ConfigError(str(exc), key=dotted, line=line_of(lines, dotted), path=path) from None
    return out


def _close(key: str, names: list[str]) -> list[str]:
    """Up to two likely meant keys, the closest first, ties in schema order (feeds → feed, fees)."""
    scored = [(difflib.SequenceMatcher(None, key, n).ratio(), -i, n) for i, n in enumerate(names)]
    return [n for r, _, n in sorted(scored, reverse=True)[:2] if r >= 0.6]


def _line_from_decode_error(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------------------------
# What each key is for, in the trader's words: docs/config.md is written from SCHEMA, the
# defaults above and these (tools/gen_docs.py). A key in SCHEMA without a line here fails the
# docs test. `*` stands for any one name (a market under [fees]).
# --------------------------------------------------------------------------------------------

DESCRIPTIONS: dict[str, str] = {
    "feed.provider": "Where quotes come from: replay (built in) or an installed venue's provider (the "
    "[providers.X] tables below). An array of live providers streams them side by side in one watchlist.",
    "feed.symbols": "Seeds the Default watchlist the first time a store is created; after that the "
    "watchlists in the store are what is streamed. Indian venues' symbols are EXCHANGE:SYMBOL (NSE:INFY).",
    "providers.replay.date": "The day to replay (default: the last day on which every symbol of "
    "feed.symbols has history).",
    "providers.replay.speed": "Market seconds per real second: 60 plays a 6½-hour session in 6½ minutes.",
    "providers.replay.seed": "The same seed gives exactly the same session.",
    "providers.replay.at_end": 'When the history runs out: "loop" from the first day all the watched '
    'symbols share, or "stop" (ENDED until replay goto DATE).',
    "store.path": "The DuckDB store file (default: <data dir>/trii.duckdb); moves the store alone.",
    "ui.stale_after": "Market seconds without an update, while its market is open, before a quote is "
    "dimmed and marked stale.",
    "keys": 'Remapped keys: binding id = keys, several comma-separated ("watch.remove" = "ctrl+x,delete"). '
    "The ids are in docs/keys.md and F1.",
    "brokers.default": "Where orders go (the CLI's --broker overrides it).",
    "brokers.paper.starting_cash": "The paper account's cash at the start and after paper reset; "
    "money is written as a string (a TOML float is not exact).",
    "brokers.paper.currency": "The paper account's currency.",
    "brokers.paper.partial_fills": "Limit each paper fill to the quote's size.",
    "brokers.paper.allow_short": "Allow selling what is not held (and reverse).",
    "trading.confirm": "false skips the confirm dialog, on the paper broker only; a live broker always asks.",
    "risk.max_order_notional": "Refuse an order worth more than this.",
    "risk.max_position_pct": "Refuse an order that adds to a position beyond this percent of equity.",
    "risk.daily_loss_limit": "Once the day's loss reaches this, no new opening orders until the next "
    "session (closing orders still go).",
    "risk.price_band_pct": "Refuse an order with any price (limit, stop, take-profit, stop-loss) more "
    "than this percent from the last.",
    "risk.max_order_qty": "Refuse an order for more than this quantity.",
    "risk.restricted": "Symbols no order may be placed for.",
    "fees.*.per_share": "Commission per share in this market (US or NSE).",
    "fees.*.min": "The least commission per fill in this market.",
    "fees.*.pct": "Commission as a percent of the notional in this market.",
    "ai.model": "The Claude model the AI desk asks.",
    "ai.max_tokens": "The longest reply, in tokens.",
    "ai.temperature": "Sampling temperature (default: the API's).",
    "ai.base_url": '"" means the SDK\'s (ANTHROPIC_BASE_URL, else https://api.anthropic.com); set it for '
    "a proxy or gateway.",
    "ai.persona": "Who answers: analyst, risk (risk manager) or coach (strategy coach).",
}


def descriptions() -> dict[str, str]:
    """What every key is for: the core's `DESCRIPTIONS` and each installed venue's, which its
    settings declare beside the key (`venues.choice(..., doc=...)`)."""
    from dataclasses import fields

    described = dict(DESCRIPTIONS)
    for venue in venues.venues():
        for table, settings in (("providers", venue.provider_settings), ("brokers", venue.broker_settings)):
            for f in fields(settings) if settings is not None else ():
                described[f"{table}.{venue.name}.{f.name}"] = f.metadata["doc"]
    return described
