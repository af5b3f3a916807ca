"""Settings: TOML, every key optional, validated strictly.

An unknown key or a wrong type is an error that names the key and its line, and the command
line exits with code 2. Later features add their sections to `SCHEMA`.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from trii_term.domain import normalize_symbol
from trii_term.trading.ledger import FeeModel
from trii_term.trading.risk import RiskLimits

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "IBM", "GOOG")
BUILTIN_PROVIDERS = ("replay", "alpaca", "kite")
BROKERS = ("paper", "alpaca", "kite")
# Commission per market when the config has no [fees.MARKET]: a US per-share schedule, and
# nothing for NSE delivery (brokerage-free there; statutory charges are not modelled yet).
DEFAULT_FEES = {
    "US": FeeModel(per_share=Decimal("0.005"), pct=Decimal(0), minimum=Decimal("1.00")),
    "NSE": FeeModel(),
}  # alpaca and kite arrive with the live-data issue


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


@dataclass(frozen=True, slots=True)
class FeedConfig:
    provider: str = "replay"  # one name, or several joined by "+" (from a TOML array)
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self.provider.split("+"))


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


@dataclass(frozen=True, slots=True)
class AlpacaProviderConfig:
    feed: str = "iex"  # iex | sip | delayed_sip | test
    stream_url: str = ""  # full websocket URL; default wss://stream.data.alpaca.markets/v2/<feed>
    data_url: str = ""  # default https://data.alpaca.markets

    @property
    def stream(self) -> str:
        return self.stream_url or f"wss://stream.data.alpaca.markets/v2/{self.feed}"

    @property
    def data(self) -> str:
        return (self.data_url or "https://data.alpaca.markets").rstrip("/")


@dataclass(frozen=True, slots=True)
class KiteProviderConfig:
    mode: str = "quote"  # ltp | quote | full
    ticker_url: str = ""  # default wss://ws.kite.trade
    root: str = ""  # REST root; default https://api.kite.trade

    @property
    def ticker(self) -> str:
        return self.ticker_url or "wss://ws.kite.trade"

    @property
    def rest(self) -> str:
        return (self.root or "https://api.kite.trade").rstrip("/")


@dataclass(frozen=True, slots=True)
class AlpacaBrokerConfig:
    paper: bool = True
    url: str = ""  # default: the paper or live trading API per `paper`
    stream_url: str = ""  # trade_updates websocket; default from `url`

    @property
    def rest(self) -> str:
        if self.url:
            return self.url.rstrip("/")
        return "https://paper-api.alpaca.markets" if self.paper else "https://api.alpaca.markets"

    @property
    def stream(self) -> str:
        if self.stream_url:
            return self.stream_url
        base = self.rest
        scheme, _, rest = base.partition("://")
        return ("wss" if scheme == "https" else "ws") + "://" + rest + "/stream"


@dataclass(frozen=True, slots=True)
class KiteBrokerConfig:
    root: str = ""  # default: providers.kite.root, else https://api.kite.trade
    product: str = "CNC"  # CNC | MIS | NRML


@dataclass(frozen=True, slots=True)
class ProvidersConfig:
    alpaca: AlpacaProviderConfig = field(default_factory=AlpacaProviderConfig)
    kite: KiteProviderConfig = field(default_factory=KiteProviderConfig)


@dataclass(frozen=True, slots=True)
class BrokersConfig:
    default: str = "paper"
    paper: PaperConfig = field(default_factory=PaperConfig)
    alpaca: AlpacaBrokerConfig = field(default_factory=AlpacaBrokerConfig)
    kite: KiteBrokerConfig = field(default_factory=KiteBrokerConfig)


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
    providers: ProvidersConfig = field(default_factory=ProvidersConfig)
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


def _toml_type(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
        date: "a date",
    }.get(type(value), type(value).__name__)


def _string(choices: tuple[str, ...] | None = None) -> Check:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {_toml_type(value)}")
        if choices is not None and value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)} (got {value!r})")
        return value

    return check


_NAME_RE = re.compile(r"^[a-z][a-z0-9_\-]{0,39}$")


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_toml_type(value)}")
    if not _NAME_RE.match(value):
        raise ValueError(f'must be a provider name such as "replay" (got {value!r})')
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
            raise ValueError(f"must contain only strings; found {_toml_type(item)} {item!r}")
        sym = normalize_symbol(item)
        if not _SYMBOL_RE.match(sym):
            raise ValueError(f"{item!r} is not a symbol")
        if sym not in out:
            out.append(sym)
    return tuple(out)


def _url(schemes: tuple[str, ...]) -> Check:
    """A URL with one of `schemes`, or "" for the default."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {_toml_type(value)}")
        value = value.strip()
        if value and not re.match(rf"^({'|'.join(schemes)})://[^\s/]+", value):
            example = f"{schemes[-1]}://host:port"
            raise ValueError(
                f"must be a URL starting {' or '.join(s + '://' for s in schemes)} such as "
                f'"{example}", or "" for the default (got {value!r})'
            )
        return value

    return check


def _model(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^[a-z0-9][a-z0-9.\-_:@]{1,99}$", value):
        raise ValueError(f'must be a model name such as "claude-sonnet-4-6" (got {value!r})')
    return value


def _max_tokens(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64_000:
        raise ValueError(f"must be a whole number of tokens from 1 to 64000 (got {value!r})")
    return value


def _temperature(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"must be a number from 0 to 1 (got {value!r})")
    return float(value)


def _date(value: Any) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f'must be a date such as "2013-03-01" (got {value!r})')


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, not {_toml_type(value)}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a number greater than 0 (got {value})")
    return float(value)


def _speed(value: Any) -> float:
    speed = _positive_number(value)
    if speed > MAX_REPLAY_SPEED:
        raise ValueError(f"must be at most {MAX_REPLAY_SPEED:g} simulated seconds per second (got {value})")
    return speed


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer, not {_toml_type(value)}")
    return value


def _path(value: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a file path string")
    return Path(value).expanduser()


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_toml_type(value)}")
    return value


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f'must be {what} such as "100000", not {_toml_type(value)}')
    if isinstance(value, float):
        raise ValueError(f'must be {what} written as a string ("{value}"): a TOML float is not exact')
    try:
        out = Decimal(str(value).replace("_", ""))
    except InvalidOperation:
        raise ValueError(f"must be {what} (got {value!r})") from None
    if not out.is_finite() or out < 0:
        raise ValueError(f"must be {what}, 0 or more (got {value!r})")
    return out


def _money(value: Any) -> Decimal:
    return _decimal(value, "an amount of money")


def _percent(value: Any) -> Decimal:
    if isinstance(value, float) and math.isfinite(value):
        value = repr(value)  # a percent such as 2.5 is fine as a float: it is not money
    pct = _decimal(value, "a percent")
    if pct > 100:
        raise ValueError(f"must be a percent from 0 to 100 (got {value})")
    return pct


def _quantity(value: Any) -> Decimal:
    qty = _decimal(value, "a quantity")
    if qty <= 0:
        raise ValueError(f"must be a quantity above 0 (got {value})")
    return qty


def _currency(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Z]{3}", value):
        raise ValueError(f'must be a three-letter currency code such as "USD" (got {value!r})')
    return value


_FEES = {"per_share": _money, "min": _money, "pct": _percent}


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
            "speed": _speed,
            "seed": _integer,
            "at_end": _string(("loop", "stop")),
        },
        "alpaca": {
            "feed": _string(("iex", "sip", "delayed_sip", "test")),
            "stream_url": _url(("ws", "wss")),
            "data_url": _url(("http", "https")),
        },
        "kite": {
            "mode": _string(("ltp", "quote", "full")),
            "ticker_url": _url(("ws", "wss")),
            "root": _url(("http", "https")),
        },
    },
    "store": {"path": _path},
    "ui": {"stale_after": _positive_number},
    "keys": _keymap,
    "brokers": {
        "default": _string(BROKERS),
        "paper": {
            "starting_cash": _money,
            "currency": _currency,
            "partial_fills": _bool,
            "allow_short": _bool,
        },
        "alpaca": {
            "paper": _bool,
            "url": _url(("http", "https")),
            "stream_url": _url(("ws", "wss")),
        },
        "kite": {
            "root": _url(("http", "https")),
            "product": _string(("CNC", "MIS", "NRML")),
        },
    },
    "trading": {"confirm": _bool},
    "risk": {
        "max_order_notional": _money,
        "max_position_pct": _percent,
        "daily_loss_limit": _money,
        "price_band_pct": _percent,
        "max_order_qty": _quantity,
        "restricted": _symbols,
    },
    "fees": {"US": _FEES, "NSE": _FEES},
    "ai": {
        "model": _model,
        "max_tokens": _max_tokens,
        "temperature": _temperature,
        "base_url": _url(("http", "https")),
        "persona": _string(("analyst", "risk", "coach")),
    },
}


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


def parse_config(text: str, path: Path | None = None) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _line_from_decode_error(str(exc))
        raise ConfigError(f"not valid TOML: {exc}", line=line, path=path) from exc
    lines = _key_lines(text)
    values = _validate(raw, SCHEMA, "", lines, path)

    feed = values.get("feed", {})
    providers = values.get("providers", {})
    replay = providers.get("replay", {})
    store = values.get("store", {})
    ui = values.get("ui", {})
    brokers = dict(values.get("brokers", {}))
    paper = PaperConfig(**brokers.pop("paper", {}))
    alpaca_broker = AlpacaBrokerConfig(**brokers.pop("alpaca", {}))
    kite_broker = KiteBrokerConfig(**brokers.pop("kite", {}))
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
        providers=ProvidersConfig(
            alpaca=AlpacaProviderConfig(**providers.get("alpaca", {})),
            kite=KiteProviderConfig(**providers.get("kite", {})),
        ),
        store=StoreConfig(**store),
        ui=UiConfig(**ui),
        keys=values.get("keys", {}),
        brokers=BrokersConfig(paper=paper, alpaca=alpaca_broker, kite=kite_broker, **brokers),
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
            raise ConfigError(msg, key=dotted, line=_line_of(lines, dotted), path=path)
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"must be a table ([{dotted}]), not {_toml_type(value)}",
                    key=dotted,
                    line=_line_of(lines, dotted),
                    path=path,
                )
            out[key] = _validate(value, spec, f"{dotted}.", lines, path)
        else:
            try:
                out[key] = spec(value)
            except ValueError as exc:
                raise ConfigError(str(exc), key=dotted, line=_line_of(lines, dotted), path=path) from None
    return out


def _close(key: str, names: list[str]) -> list[str]:
    """Up to two likely meant keys, the closest first, ties in schema order (feeds → feed, fees)."""
    scored = [(difflib.SequenceMatcher(None, key, n).ratio(), -i, n) for i, n in enumerate(names)]
    return [n for r, _, n in sorted(scored, reverse=True)[:2] if r >= 0.6]


def _line_of(lines: Mapping[str, int], dotted: str) -> int | None:
    while dotted:
        if dotted in lines:
            return lines[dotted]
        dotted = dotted.rpartition(".")[0]
    return None


_HEADER_RE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY_RE = re.compile(
    r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _split_key(key: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'""", key)
    return [p.strip("\"'") for p in parts]


def _key_lines(text: str) -> dict[str, int]:
    """Map each dotted key (and table) to the line where it is written."""
    lines: dict[str, int] = {}
    table: list[str] = []
    depth = 0  # inside a multi-line array
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if depth > 0:
            depth += stripped.count("[") - stripped.count("]")
            continue
        if not stripped or stripped.startswith("#"):
            continue
        header = _HEADER_RE.match(line)
        if header and "=" not in line.split("#")[0]:
            table = _split_key(header.group(1))
            for i in range(1, len(table) + 1):
                lines.setdefault(".".join(table[:i]), number)
            continue
        key = _KEY_RE.match(line)
        if key:
            parts = table + _split_key(key.group(1))
            for i in range(1, len(parts) + 1):
                lines.setdefault(".".join(parts[:i]), number)
            value = line[key.end() :].split("#")[0]
            depth = max(0, value.count("[") - value.count("]"))
    return lines


def _line_from_decode_error(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None
