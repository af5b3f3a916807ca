"""The market context sent with every message: compact and current, rebuilt each time.

A few hundred tokens of what the trader is looking at — the focused symbol and interval, its
quote and session, the recent bars summarised (not pasted), the chart's indicator readings,
positions, working orders and the account. It goes in the system prompt after the cached
persona block, so it never spoils the prompt cache.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from trii_term.ai.tools import (
    ToolError,
    decimals_of,
    load_series,
    quote_json,
    study_readings,
    summarize_bars,
)

log = logging.getLogger(__name__)

CONTEXT_BARS = 60
MAX_POSITIONS = 12
MAX_ORDERS = 12


async def build_context(session: Any, focus: Any) -> str:
    """The context block for one message. Never raises: a part that cannot be read says so."""
    lines = [_header(session)]
    symbol = focus.symbol if focus is not None else None
    if symbol and symbol in session.instruments:
        lines += _focus_lines(session, symbol, focus.interval)
        try:
            lines += await asyncio.to_thread(
                _chart_lines, session, symbol, focus.interval, tuple(focus.studies)
            )
        except Exception as exc:
            log.warning("AI context: bars for %s %s not read: %s", symbol, focus.interval, exc)
            lines.append(f"Bars: not available ({exc})")
    elif symbol:
        lines.append(f"Focus: {symbol} (not a symbol the {session.provider_name} feed knows)")
    else:
        lines.append("Focus: no symbol selected")
    lines += await _trading_lines(session)
    return "\n".join(lines)


def _header(session: Any) -> str:
    from trii_term.domain import US

    clock = session.clock
    now = US.local(clock.now_ns())
    feed = session.feed_status
    sim = " (simulated replay clock)" if clock.simulated else ""
    return (
        f"Now: {now:%Y-%m-%d %H:%M} {now.tzname()}{sim} · feed {feed.provider} {feed.state}"
        f"{' — ' + feed.reason if feed.reason else ''} · orders go to {session.broker_label()}"
    )


def _focus_lines(session: Any, symbol: str, interval: str) -> list[str]:
    inst = session.instruments[symbol]
    market = session.market_of(symbol)
    q = quote_json(session, symbol)
    head = (
        f"Focus: {symbol} — {inst.name} ({inst.exchange}, {inst.currency}, tick {inst.tick_size}) · "
        f"chart {interval} · {market.code} session {q.get('session')}"
    )
    if "note" in q:
        return [head, f"Quote: {q['note']}"]
    parts = [f"last {q.get('last', '—')}"]
    if "change" in q:
        parts.append(f"({q['change']}, {q.get('change_pct', '')})")
    if "bid" in q or "ask" in q:
        parts.append(
            f"bid {q.get('bid', '—')} x {q.get('bid_size', '0')} / "
            f"ask {q.get('ask', '—')} x {q.get('ask_size', '0')}"
        )
    if "open" in q:
        parts.append(f"O {q['open']} H {q.get('high', '—')} L {q.get('low', '—')}")
    if "prev_close" in q:
        parts.append(f"prev close {q['prev_close']}")
    parts.append(f"volume {q.get('volume', '0')}")
    if q.get("as_of"):
        parts.append(f"as of {q['as_of']}")
    return [head, "Quote: " + " · ".join(parts)]


def _chart_lines(session: Any, symbol: str, interval: str, studies: tuple[str, ...]) -> list[str]:
    """Bars summarised, and the chart's studies read at the last bar (blocking)."""
    bars = load_series(session, symbol, interval)
    d = decimals_of(session, symbol)
    if len(bars) == 0:
        return [f"Bars ({interval}): none stored yet"]
    recent = bars
    if len(bars) > CONTEXT_BARS:
        from trii_term.charting.series import Bars

        k = -CONTEXT_BARS
        recent = Bars(
            bars.ts[k:], bars.open[k:], bars.high[k:], bars.low[k:], bars.close[k:], bars.volume[k:]
        )
    s = summarize_bars(recent, interval, d)
    text = (
        f"Bars ({interval}, last {s['bars']}: {s['from']} → {s['to']}): close {s['last_close']}, "
        f"range {s['low']}–{s['high']} (at {s['position_in_range']} of it), "
        f"returns 1 bar {s['return_1']}, 5 bars {s['return_5']}, {s['bars']} bars {s['return_all']}; "
        f"{s['vs_mean']} vs the mean; trend {s.get('trend', 'n/a')}; avg volume {s['avg_volume']}"
    )
    out = [text]
    if studies:
        try:
            readings = study_readings(bars, interval, list(studies), d)
        except ToolError as exc:
            out.append(f"Studies: {exc}")
        else:
            shown = []
            for label, values in readings.items():
                now = ", ".join(
                    f"{k} {v}" + (f" (prev {values[k + '_prev']})" if k + "_prev" in values else "")
                    for k, v in values.items()
                    if not k.endswith("_prev")
                )
                shown.append(f"{label}: {now}")
            out.append("Studies on the chart: " + "; ".join(shown))
    return out


async def _trading_lines(session: Any) -> list[str]:
    broker = session.broker
    if broker is None:
        note = getattr(session, "broker_note", "") or "starting"
        return [f"Trading: unavailable ({note})"]
    try:
        positions = await session.on_broker(broker.positions)
        orders = await session.on_broker(broker.orders, open_only=True)
        account = await session.on_broker(broker.account)
    except Exception as exc:
        log.warning("AI context: the broker did not answer: %s", exc)
        return [f"Trading: the broker did not answer ({exc})"]
    out = []
    if positions:
        items = [
            f"{p.symbol} {p.qty} @ {p.avg_cost:.2f} (last {p.last if p.last is not None else '—'}, "
            f"unrealized {p.unrealized_pnl:+.2f} {p.currency})"
            for p in positions[:MAX_POSITIONS]
        ]
        more = f" … and {len(positions) - MAX_POSITIONS} more" if len(positions) > MAX_POSITIONS else ""
        out.append("Positions: " + "; ".join(items) + more)
    else:
        out.append("Positions: none")
    if orders:
        items = []
        for o in orders[:MAX_ORDERS]:
            r = o.request
            price = " ".join(
                f"{w} {v}"
                for w, v in (
                    ("limit", r.limit_price),
                    ("stop", r.stop_price),
                    ("trail", r.trail_amount or r.trail_pct),
                )
                if v is not None
            )
            items.append(
                f"{o.id} {r.side.value} {r.qty} {r.symbol} {r.type.value} {price} {r.tif.value} "
                f"({o.status.value}, filled {o.filled_qty})".replace("  ", " ")
            )
        more = f" … and {len(orders) - MAX_ORDERS} more" if len(orders) > MAX_ORDERS else ""
        out.append("Working orders: " + "; ".join(items) + more)
    else:
        out.append("Working orders: none")
    out.append(
        f"Account ({account.currency}): equity {account.equity:,.2f}, cash {account.cash:,.2f}, "
        f"buying power {account.buying_power:,.2f}, realized {account.realized:+,.2f}, "
        f"unrealized {account.unrealized:+,.2f}"
    )
    return out
