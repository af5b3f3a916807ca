"""The tools Claude may call: thin wrappers over the workstation's own commands and core
functions, so the model sees exactly what the keyboard sees. Results are compact JSON (exact
decimals as strings). A tool never raises out: a bad argument or a missing broker is a result
with `is_error` that says what happened and what to do.

`draft_order` builds the same Draft the `buy`/`sell` commands put in the ticket, validates it the
same way, journals it as "drafted" with source "ai", and hands it back for the ticket — it never
submits. Every call and its result are journalled (event "ai_tool", source "ai").
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trii_term.trading.order_line import Draft

log = logging.getLogger(__name__)

MAX_BARS_OUT = 200
JOURNAL_OUTPUT_CHARS = 2000


_ORDER_KEYS = frozenset(
    {
        "id", "symbol", "side", "qty", "type", "limit_price", "stop_price", "trail_amount", "trail_pct",
        "take_profit", "stop_loss", "tif", "status", "filled_qty", "avg_fill_price", "reason", "created_at",
    }
)  # fmt: skip


class ToolError(Exception):
    """A tool could not do what was asked: the message goes back to the model as the result."""


@dataclass(frozen=True)
class ToolOutcome:
    output: str
    is_error: bool = False
    draft: Draft | None = None  # from draft_order, for the ticket


def _schema(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


_SYMBOL = {"type": "string", "description": "Ticker as the workstation keys it, e.g. AAPL or NSE:INFY"}
_INTERVAL = {"type": "string", "enum": ["1m", "5m", "15m", "1h", "1D", "1W"], "description": "Bar interval"}

DEFINITIONS: list[dict[str, Any]] = [
    {
        "name": "get_quote",
        "description": "The live quote for a symbol: last, change, bid/ask with sizes, day range, "
        "volume and the market's session phase.",
        "input_schema": _schema({"symbol": _SYMBOL}, ["symbol"]),
    },
    {
        "name": "get_bars",
        "description": "The newest N OHLCV bars of a symbol (the chart's data), oldest first, with a "
        "short summary (range, returns, trend).",
        "input_schema": _schema(
            {
                "symbol": _SYMBOL,
                "interval": _INTERVAL,
                "n": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_BARS_OUT,
                    "description": "How many bars",
                },
            },
            ["symbol"],
        ),
    },
    {
        "name": "indicators",
        "description": "Current indicator readings, typed like chart studies: e.g. ['rsi 14', "
        "'sma 50', 'macd 12 26 9', 'bb 20 2', 'atr', 'ema 20', 'stoch', 'obv', 'vwap', 'wma 20'].",
        "input_schema": _schema(
            {
                "symbol": _SYMBOL,
                "interval": _INTERVAL,
                "names": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            },
            ["symbol", "names"],
        ),
    },
    {
        "name": "portfolio",
        "description": "Positions (quantity, average cost, last, P&L) and the account (cash, equity, "
        "buying power).",
        "input_schema": _schema({}, []),
    },
    {
        "name": "orders",
        "description": "Orders on the broker: working ones only (default) or all of today's.",
        "input_schema": _schema({"open_only": {"type": "boolean", "default": True}}, []),
    },
    {
        "name": "draft_order",
        "description": "Fill the order ticket for the trader to review and send. It NEVER sends: only "
        "the trader can. Returns the draft and the desk's risk checks.",
        "input_schema": _schema(
            {
                "side": {"type": "string", "enum": ["buy", "sell"]},
                "qty": {"type": "string", "description": "Quantity, as a number"},
                "symbol": _SYMBOL,
                "type": {
                    "type": "string",
                    "enum": ["market", "limit", "stop", "stop_limit", "trailing_stop"],
                    "default": "market",
                },
                "limit_price": {"type": "string"},
                "stop_price": {"type": "string"},
                "trail_amount": {"type": "string"},
                "trail_pct": {"type": "string"},
                "take_profit": {"type": "string", "description": "Bracket exit: take-profit limit"},
                "stop_loss": {"type": "string", "description": "Bracket exit: stop-loss"},
                "tif": {"type": "string", "enum": ["day", "gtc", "ioc", "fok"], "default": "day"},
            },
            ["side", "qty", "symbol"],
        ),
    },
    {
        "name": "add_to_watchlist",
        "description": "Add symbols to the active watchlist (they start streaming quotes).",
        "input_schema": _schema(
            {"symbols": {"type": "array", "items": _SYMBOL, "minItems": 1}},
            ["symbols"],
        ),
    },
]

TOOL_NAMES = tuple(d["name"] for d in DEFINITIONS)


def definitions(*, cache: bool = True) -> list[dict[str, Any]]:
    """The tool definitions for a request; the last carries the prompt-cache breakpoint, so the
    tools and the persona (cached with them) are read from cache on every later call."""
    defs = [dict(d) for d in DEFINITIONS]
    if cache:
        defs[-1]["cache_control"] = {"type": "ephemeral"}
    return defs


# -- shared helpers (the context uses them too) -------------------------------------------------


def price_text(x: float | None, decimals: int) -> str | None:
    if x is None or not math.isfinite(x):
        return None
    return f"{x:.{decimals}f}"


def known_symbol(session: Any, text: Any) -> str:
    from trii_term.domain import normalize_symbol

    if not isinstance(text, str) or not text.strip():
        raise ToolError("symbol: give a ticker, e.g. AAPL")
    symbol = normalize_symbol(text)
    if symbol not in session.instruments:
        from trii_term.feeds import instruments_problem
        from trii_term.format import some_of

        problem = instruments_problem(session.instruments)
        if problem:
            raise ToolError(f"{symbol}: {problem}")

        raise ToolError(
            f"unknown symbol {symbol} for the {session.provider_name} feed; "
            f"known: {some_of(session.instruments)}"
        )
    return symbol


def decimals_of(session: Any, symbol: str) -> int:
    inst = session.instruments.get(symbol)
    return max(inst.price_decimals, 2) if inst is not None else 2


def parse_interval_arg(text: Any) -> str:
    from trii_term.charting import SpecError
    from trii_term.charting.spec import parse_interval

    try:
        return parse_interval(str(text or "1D"))
    except SpecError as exc:
        raise ToolError(str(exc)) from None


def load_series(session: Any, symbol: str, interval: str, last: int | None = None) -> Any:
    """The chart's bars for `symbol` (blocking: call on a worker thread). A replay sees nothing
    after its clock, as its chart does."""
    from trii_term.charting.series import MAX_BARS, load_bars

    store = session.store
    if store is None:
        raise ToolError("the store is not open yet: try again in a moment")
    market = session.market_of(symbol)
    until = until_day = None
    if session.clock.simulated:
        now = session.clock.now_ns()
        until = datetime.fromtimestamp(now / 1e9, UTC)
        until_day = market.local(now).date()
    with store.reader() as con:
        return load_bars(
            con,
            symbol,
            interval,
            market,
            sources=[session.provider_name],
            until=until,
            until_day=until_day,
            last=last or MAX_BARS,
        ).bars


def bar_time(ts: Any, interval: str) -> str:
    dt: datetime = ts.astype("datetime64[us]").astype(datetime)
    return dt.date().isoformat() if interval in ("1D", "1W") else dt.strftime("%Y-%m-%d %H:%M")


def summarize_bars(bars: Any, interval: str, decimals: int) -> dict[str, Any]:
    """Range, returns and trend of a bar series — what a trader reads off a chart, not a table."""
    n = len(bars)
    if n == 0:
        return {"bars": 0}
    close = bars.close
    last = float(close[-1])

    def ret(k: int) -> str | None:
        if n <= k or not close[-1 - k]:
            return None
        return f"{(last / float(close[-1 - k]) - 1) * 100:+.2f}%"

    mean = float(sum(close) / n)
    high = float(max(bars.high))
    low = float(min(bars.low))
    out: dict[str, Any] = {
        "bars": n,
        "from": bar_time(bars.ts[0], interval),
        "to": bar_time(bars.ts[-1], interval),
        "last_close": price_text(last, decimals),
        "high": price_text(high, decimals),
        "low": price_text(low, decimals),
        "position_in_range": f"{(last - low) / (high - low) * 100:.0f}%" if high > low else None,
        "return_1": ret(1),
        "return_5": ret(5),
        "return_all": f"{(last / float(close[0]) - 1) * 100:+.2f}%" if close[0] else None,
        "vs_mean": f"{(last / mean - 1) * 100:+.2f}%" if mean else None,
        "avg_volume": f"{float(sum(bars.volume) / n):.0f}",
    }
    half = n // 2
    if half >= 2:
        first, second = float(sum(close[:half]) / half), float(sum(close[half:]) / (n - half))
        out["trend"] = "up" if second > first * 1.005 else "down" if second < first * 0.995 else "flat"
    return out


def study_readings(
    bars: Any, interval: str, texts: list[str] | tuple[str, ...], decimals: int
) -> dict[str, Any]:
    """The newest value of each study's outputs (and the one before, for direction)."""
    from trii_term.charting import SpecError
    from trii_term.charting.spec import parse_studies

    try:
        studies = parse_studies(list(texts))
    except SpecError as exc:
        raise ToolError(str(exc)) from None
    if len(bars) == 0:
        raise ToolError(f"no {interval} bars to compute indicators on")
    anchor = "day" if interval not in ("1D", "1W") else "month" if interval == "1D" else "year"
    frame = bars.frame(anchor)
    out: dict[str, Any] = {}
    for study in studies:
        values = study.compute(frame)
        reading: dict[str, Any] = {}
        places = study.kind.decimals if study.kind.decimals is not None else decimals
        for output, series in zip(study.kind.outputs, values, strict=True):
            now = float(series[-1]) if len(series) else float("nan")
            before = float(series[-2]) if len(series) > 1 else float("nan")
            reading[output.name] = price_text(now, places)
            if math.isfinite(now) and math.isfinite(before):
                reading[output.name + "_prev"] = price_text(before, places)
        if all(v is None for v in reading.values()):
            reading = {"note": f"not enough bars ({len(bars)}) for {study.label}"}
        out[study.label] = reading
    return out


def quote_json(session: Any, symbol: str) -> dict[str, Any]:
    d = decimals_of(session, symbol)
    market = session.market_of(symbol)
    q = session.quotes.get(symbol)
    out: dict[str, Any] = {"symbol": symbol, "session": str(session.clock.phase(market))}
    if q is None or (q.last is None and q.bid is None):
        streaming = symbol in session.subscribed()
        out["note"] = (
            "no quote yet (the feed has sent nothing for it so far)"
            if streaming
            else "not streaming: add it to the watchlist to get quotes"
        )
        return out
    out |= {
        "last": price_text(q.last, d),
        "change": price_text(q.change, d),
        "change_pct": f"{q.change_pct:+.2f}%" if q.change_pct is not None else None,
        "bid": price_text(q.bid, d),
        "bid_size": f"{q.bid_size:g}",
        "ask": price_text(q.ask, d),
        "ask_size": f"{q.ask_size:g}",
        "open": price_text(q.open, d),
        "high": price_text(q.high, d),
        "low": price_text(q.low, d),
        "prev_close": price_text(q.prev_close, d),
        "volume": f"{q.volume:.0f}",
        "as_of": market.local(q.updated_ns).strftime("%Y-%m-%d %H:%M:%S %Z") if q.updated_ns else None,
        "simulated": bool(session.clock.simulated),
    }
    return {k: v for k, v in out.items() if v is not None}


# -- the toolbox --------------------------------------------------------------------------------


class Toolbox:
    """Runs a tool call against the session and journals it."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "get_quote": self.get_quote,
            "get_bars": self.get_bars,
            "indicators": self.indicators,
            "portfolio": self.portfolio,
            "orders": self.orders,
            "draft_order": self.draft_order,
            "add_to_watchlist": self.add_to_watchlist,
        }

    async def run(self, name: str, payload: Any, *, conversation: str = "") -> ToolOutcome:
        handler = self._handlers.get(name)
        if not isinstance(payload, dict):
            payload = {}
        try:
            if handler is None:
                raise ToolError(f"no tool {name!r}; the tools are {', '.join(self._handlers)}")
            result = handler(payload)
            if asyncio.iscoroutine(result):
                result = await result
            outcome = result if isinstance(result, ToolOutcome) else ToolOutcome(_json(result))
        except ToolError as exc:
            outcome = ToolOutcome(str(exc), is_error=True)
        except Exception as exc:  # a bug or a broker failure: said plainly, logged, not raised
            log.exception("AI tool %s failed", name)
            outcome = ToolOutcome(f"{name} failed: {type(exc).__name__}: {exc}", is_error=True)
        self._journal(name, payload, outcome, conversation)
        return outcome

    def _journal(self, name: str, payload: dict[str, Any], outcome: ToolOutcome, conversation: str) -> None:
        journal = self._journal_obj()
        if journal is None:
            return
        try:
            journal.record(
                "ai_tool",
                broker=self.session.broker_name,
                source="ai",
                ts_ns=self.session.clock.now_ns(),
                detail={
                    "tool": name,
                    "input": payload,
                    "is_error": outcome.is_error,
                    "output": outcome.output[:JOURNAL_OUTPUT_CHARS],
                    "conversation": conversation,
                },
            )
        except Exception:
            log.exception("journalling the AI tool call %s failed", name)

    def _journal_obj(self) -> Any:
        broker = self.session.broker
        journal = getattr(broker, "journal", None)
        if journal is not None:
            return journal
        store = self.session.store
        if store is None:
            return None
        from trii_term.store.journal import Journal

        return Journal(store.con)

    # -- market data -------------------------------------------------------------------------

    def get_quote(self, args: dict[str, Any]) -> dict[str, Any]:
        return quote_json(self.session, known_symbol(self.session, args.get("symbol")))

    async def get_bars(self, args: dict[str, Any]) -> dict[str, Any]:
        symbol = known_symbol(self.session, args.get("symbol"))
        interval = parse_interval_arg(args.get("interval"))
        n = _count(args.get("n", 20))
        bars = await asyncio.to_thread(load_series, self.session, symbol, interval, n)
        if len(bars) > n:  # a replay's day so far is added after the history
            from trii_term.charting.series import Bars

            bars = Bars(
                bars.ts[-n:], bars.open[-n:], bars.high[-n:], bars.low[-n:], bars.close[-n:], bars.volume[-n:]
            )
        d = decimals_of(self.session, symbol)
        rows = [
            [
                bar_time(bars.ts[i], interval),
                price_text(float(bars.open[i]), d),
                price_text(float(bars.high[i]), d),
                price_text(float(bars.low[i]), d),
                price_text(float(bars.close[i]), d),
                f"{float(bars.volume[i]):.0f}",
            ]
            for i in range(len(bars))
        ]
        if not rows:
            raise ToolError(f"no {interval} bars for {symbol} yet (intraday bars come from recorded ticks)")
        return {
            "symbol": symbol,
            "interval": interval,
            "columns": ["time", "open", "high", "low", "close", "volume"],
            "bars": rows,
            "summary": summarize_bars(bars, interval, d),
        }

    async def indicators(self, args: dict[str, Any]) -> dict[str, Any]:
        symbol = known_symbol(self.session, args.get("symbol"))
        interval = parse_interval_arg(args.get("interval"))
        names = args.get("names")
        if isinstance(names, str):
            names = [names]
        if not names or not all(isinstance(n, str) for n in names):
            raise ToolError("names: a list of studies, e.g. ['rsi 14', 'sma 50']")
        bars = await asyncio.to_thread(load_series, self.session, symbol, interval)
        d = decimals_of(self.session, symbol)
        readings = study_readings(bars, interval, names, d)
        return {
            "symbol": symbol,
            "interval": interval,
            "close": price_text(float(bars.close[-1]), d),
            "as_of": bar_time(bars.ts[-1], interval),
            "readings": readings,
        }

    # -- trading (read) ------------------------------------------------------------------------

    def _broker(self) -> Any:
        broker = self.session.broker
        if broker is None:
            note = getattr(self.session, "broker_note", "")
            raise ToolError(f"trading unavailable: {note}" if note else "the broker is still starting")
        return broker

    async def portfolio(self, args: dict[str, Any]) -> dict[str, Any]:
        from trii_term.trading.as_json import account_json, position_json

        broker = self._broker()
        positions = await self.session.on_broker(broker.positions)
        account = await self.session.on_broker(broker.account)
        return {
            "broker": self.session.broker_label(),
            "positions": [position_json(p) for p in positions],
            "account": account_json(account),
        }

    async def orders(self, args: dict[str, Any]) -> dict[str, Any]:
        from trii_term.trading.as_json import order_json

        broker = self._broker()
        open_only = args.get("open_only", True)
        orders = await self.session.on_broker(broker.orders, open_only=bool(open_only))
        rows = [
            {k: v for k, v in order_json(o).items() if k in _ORDER_KEYS and v not in (None, "")}
            for o in orders
        ]
        return {"open_only": bool(open_only), "orders": rows}

    # -- trading (draft, never send) -------------------------------------------------------------

    def build_draft(self, args: dict[str, Any]) -> Any:
        """The Draft the `buy`/`sell` command would put in the ticket, validated like the ticket."""
        from trii_term.domain.orders import TIF, OrderError, OrderType, Side
        from trii_term.trading.order_line import read_draft

        side_text = str(args.get("side", "")).lower()
        if side_text not in ("buy", "sell"):
            raise ToolError("side: buy or sell")
        symbol = known_symbol(self.session, args.get("symbol"))
        qty = str(args.get("qty", "")).strip()
        tif = str(args.get("tif") or "day").lower()
        if tif not in {t.value for t in TIF}:
            raise ToolError(f"tif: one of {', '.join(t.value for t in TIF)} (got {tif!r})")
        tokens = [qty, symbol]
        for word, key in (
            ("lmt", "limit_price"),
            ("stp", "stop_price"),
            ("trail", "trail_amount"),
            ("trail%", "trail_pct"),
            ("tp", "take_profit"),
            ("sl", "stop_loss"),
        ):
            value = args.get(key)
            if value not in (None, ""):
                tokens += [word, str(value).strip()]
        tokens.append(tif)
        try:
            draft = read_draft(Side(side_text), [t for t in tokens if t])
        except OrderError as exc:
            raise ToolError(str(exc)) from None
        draft = replace(draft, symbol=symbol)
        if not draft.qty:
            raise ToolError(f"qty: a number above 0 (got {qty!r})")
        wanted = str(args.get("type") or "").lower()
        if wanted and wanted != draft.type.value:
            valid = ", ".join(t.value for t in OrderType)
            if wanted not in {t.value for t in OrderType}:
                raise ToolError(f"type: one of {valid} (got {wanted!r})")
            raise ToolError(
                f"type {wanted} does not match the prices given (they make a {draft.type.value} order): "
                "a limit order needs limit_price, a stop needs stop_price, a stop_limit both, "
                "a trailing_stop trail_amount or trail_pct"
            )
        try:
            request = draft.request()
        except OrderError as exc:
            raise ToolError(f"{exc}. Nothing was drafted.") from None
        inst = self.session.instruments[symbol]
        if not inst.tradable:
            raise ToolError(f"{symbol} is an index: it cannot be traded")
        return draft, request

    async def draft_order(self, args: dict[str, Any]) -> ToolOutcome:

        draft, request = self.build_draft(args)
        out: dict[str, Any] = {"drafted": _request_json(request), "sent": False}
        desk = self.session.desk
        if desk is not None:
            try:
                preview = await self.session.on_broker(desk.preview, request)
            except Exception as exc:  # a live broker may not answer: the draft still stands
                log.warning("preview of an AI draft failed: %s", exc)
                out["checks"] = f"not checked: {exc}"
            else:
                out["expected_price"] = str(preview.price) if preview.price is not None else None
                out["notional"] = str(preview.notional) if preview.notional is not None else None
                out["position_after"] = str(preview.position_after)
                out["checks"] = [{"rule": c.rule, "ok": c.ok, "reason": c.reason} for c in preview.checks]
                out["problems"] = preview.problems
        journal = self._journal_obj()
        if journal is not None:
            journal.record(
                "drafted",
                broker=self.session.broker_name,
                source="ai",
                ts_ns=self.session.clock.now_ns(),
                detail=_request_json(request),
            )
        out["note"] = (
            "In the order ticket for the trader to review. Nothing was sent; only the trader can send it."
        )
        return ToolOutcome(_json(out), draft=draft)

    # -- watchlist ---------------------------------------------------------------------------

    async def add_to_watchlist(self, args: dict[str, Any]) -> dict[str, Any]:
        """Runs `watch add` — the command the keyboard runs — with source `ai`."""
        raw = args.get("symbols")
        if isinstance(raw, str):
            raw = raw.replace(",", " ").split()
        if not raw or not isinstance(raw, list):
            raise ToolError("symbols: a list of tickers, e.g. ['AAPL', 'MSFT']")
        symbols = [known_symbol(self.session, s) for s in raw]
        lists = self.session.watchlists
        if lists is None:
            raise ToolError("the watchlists are not loaded yet: try again in a moment")
        before = set(lists.active.symbols)
        run = await self.session.run_line(f"watch add {' '.join(symbols)}", source="ai")
        if not run.ran:
            raise ToolError(run.message)
        return {
            "watchlist": lists.active.name,
            "added": [s for s in symbols if s not in before],
            "already_there": [s for s in symbols if s in before],
        }


def _count(value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ToolError(f"n: a whole number from 1 to {MAX_BARS_OUT} (got {value!r})") from None
    if not 1 <= n <= MAX_BARS_OUT:
        raise ToolError(f"n: a whole number from 1 to {MAX_BARS_OUT} (got {n})")
    return n


def _request_json(r: Any) -> dict[str, Any]:
    """The order as the journal writes it (decimals as exact strings), without empty fields."""
    from trii_term.domain.orders import request_json

    out = {k: str(v) if isinstance(v, Decimal) else v for k, v in request_json(r).items()}
    return {k: v for k, v in out.items() if v not in (None, "")}


def draft_json(draft: Any) -> dict[str, Any]:
    """A Draft as JSON (for `ask --json`)."""
    return _request_json(draft.request())


def draft_text(draft: Any) -> str:
    r = draft.request()
    parts = [r.side.value.upper(), str(r.qty), r.symbol, r.type.value.replace("_", " ")]
    if r.limit_price is not None:
        parts.append(f"limit {r.limit_price}")
    if r.stop_price is not None:
        parts.append(f"stop {r.stop_price}")
    if r.trail_amount is not None:
        parts.append(f"trail {r.trail_amount}")
    if r.trail_pct is not None:
        parts.append(f"trail {r.trail_pct}%")
    if r.bracket is not None:
        if r.bracket.take_profit is not None:
            parts.append(f"tp {r.bracket.take_profit}")
        if r.bracket.stop_loss is not None:
            parts.append(f"sl {r.bracket.stop_loss}")
    parts.append(r.tif.value)
    return " ".join(parts)


def _s(x: Decimal | None) -> str | None:
    return None if x is None else str(x)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
