"""Alpaca's market-data stream on the wire: RFC-3339 times, the stream's error codes in the
trader's words, and one element of a frame as our Bar / DayStats."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import websockets

from trii_term.domain import (
    NS_PER_MINUTE,
    NS_PER_SECOND,
    US,
    Bar,
    DayStats,
)

NAME = "alpaca"
MALFORMED_LOG_SECONDS = 10.0
HANDSHAKE_SECONDS = 10.0  # Alpaca drops a client that has not authenticated within 10 s

# --------------------------------------------------------------------------------------------
# RFC-3339 timestamps -> int ns, fast
# --------------------------------------------------------------------------------------------

_SECONDS: dict[str, int] = {}  # "2021-02-22T15:51:44" (UTC) -> ns of that second
_SECONDS_MAX = 100_000
FUTURE_NS = 86_400 * NS_PER_SECOND  # how far ahead of this machine's clock a time may be
_FRACTION_SCALE = tuple(10 ** (9 - k) for k in range(1, 10))  # k fractional digits -> ns factor
_RFC3339_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))\Z",
    re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time_ns(t: str) -> int:
    """Nanoseconds since the epoch of an RFC-3339 time such as "2021-02-22T15:51:45.335689322Z".

    The date and time of day up to the second are looked up in a cache (one entry per second
    of the stream), so a message costs a few slices and one `int()`, not a `datetime` parse.
    Raises ValueError (or TypeError for a non-string) on anything that is not such a time, and
    on a time more than a day ahead of this machine's clock: no market data comes from the
    future (and past 2262 a time cannot be stored). Checked before a second is cached, so the
    cache holds only seconds that were never in the future, and stay so."""
    base = _SECONDS.get(t[:19])
    n = len(t)
    if base is None or t[n - 1] != "Z":
        return _parse_time_slow(t)
    if n == 20:
        return base
    if t[19] == "." and n <= 30:
        digits = t[20 : n - 1]
        if digits.isascii() and digits.isdigit():
            return base + int(digits) * _FRACTION_SCALE[n - 22]
    raise ValueError(f"not an RFC-3339 time: {t[:40]!r}")


def _parse_time_slow(t: str) -> int:
    """Validate with a full parse; offsets and lower-case separators; fills the cache."""
    if not isinstance(t, str):
        raise TypeError(f"a time must be a string, not {type(t).__name__}")
    m = _RFC3339_RE.match(t)
    if m is None:
        raise ValueError(f"not an RFC-3339 time: {t[:40]!r}")
    y, mo, d, h, mi, s, frac, zulu, sign, oh, om = m.groups()
    if int(s) > 60:
        raise ValueError(f"bad seconds in {t!r}")
    delta = datetime(int(y), int(mo), int(d), int(h), int(mi), tzinfo=UTC) - _EPOCH  # range checks
    second = (delta.days * 86_400 + delta.seconds + int(s)) * NS_PER_SECOND
    ns = second + (int(frac) * _FRACTION_SCALE[len(frac) - 1] if frac else 0)
    if not zulu:
        if int(oh) > 23 or int(om) > 59:
            raise ValueError(f"bad UTC offset in {t!r}")
        offset = (int(oh) * 60 + int(om)) * NS_PER_MINUTE
        ns += -offset if sign == "+" else offset
    if ns > time.time_ns() + FUTURE_NS:
        raise ValueError(f"a time more than a day ahead: {t[:40]!r}")
    if zulu == "Z" and t[10] == "T":  # the form the fast path reads: remember its second
        if len(_SECONDS) >= _SECONDS_MAX:
            _SECONDS.clear()
        _SECONDS[t[:19]] = second
    return ns


def format_time(ns: int) -> str:
    """RFC-3339 UTC with seconds, as the REST API takes it."""
    return (_EPOCH + timedelta(seconds=ns // NS_PER_SECOND)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# Errors the stream sends, in the trader's words
# --------------------------------------------------------------------------------------------


class StreamError(Exception):
    """The connection ends. `code` is Alpaca's error code when Alpaca sent one."""

    def __init__(self, reason: str, *, code: object = None) -> None:
        super().__init__(reason)
        self.code = code

    @property
    def refused(self) -> bool:
        """Retrying with the same keys and plan cannot help: a person must act."""
        return self.code in REFUSED_CODES


REFUSED_CODES = frozenset({402, 406, 409, 411})  # keys, connection limit, plan, scope
CLOSING_CODES = frozenset({401, 402, 403, 404, 406, 409, 411})  # the session is unusable


def error_reason(
    code: object, msg: object, feed: str, *, stream_url: str = "", config_file: Path | None = None,
    from_env: bool = False,
) -> str:  # fmt: skip
    """What an `[{"T":"error"}]` means and what to do about it."""
    if code == 402:
        if from_env:
            fix = "fix TRII_ALPACA_KEY_ID and TRII_ALPACA_SECRET_KEY (they come first), or unset them"
        else:
            fix = "log in again: `trii-term login alpaca`"
        return f"Alpaca refused the API key (402 auth failed): {fix}"
    if code == 406:
        return (
            "Alpaca allows one market-data stream per account, and another program holds it "
            "(406 connection limit exceeded): close the other program streaming with these keys "
            "(another trii-term, a script, a notebook)"
        )
    if code == 409:
        return _plan_advice(feed, stream_url, config_file)
    if code == 411:
        return (
            "these Alpaca keys may not read market data (411 insufficient scope): create keys with "
            "market-data access on the Alpaca dashboard, then `trii-term login alpaca`"
        )
    if code == 405:
        return "symbol limit (405): Alpaca refused the new symbols — your plan streams fewer; remove some"
    if code == 404:
        return "auth timeout (404): Alpaca closed the stream before the key was checked"
    return f"Alpaca stream error {code}: {msg}"


def _plan_advice(feed: str, stream_url: str, config_file: Path | None) -> str:
    """409 (insufficient subscription): the plan of these keys does not include the feed the
    stream was asked for (the last part of its URL). Every plan streams IEX; SIP (every US
    exchange) needs Algo Trader Plus."""
    said = "Alpaca refused the market-data stream (409 insufficient subscription)"
    streamed = stream_url.rstrip("/").rsplit("/", 1)[-1] if stream_url else feed
    if streamed == "iex":
        return (
            f"{said}: these keys have no IEX market data, which every Alpaca plan includes: check "
            "the plan of the keys' account on the Alpaca dashboard, or log in with other keys: "
            "`trii-term login alpaca`"
        )
    where = f"in {config_file}" if config_file else "in your config file (`trii-term doctor` shows where)"
    if stream_url:
        fix = (
            f'under [providers.alpaca] {where}, set feed = "iex" and stream_url = '
            '"wss://stream.data.alpaca.markets/v2/iex" (or remove stream_url)'
        )
    else:
        fix = f'set feed = "iex" under [providers.alpaca] {where}'
    return (
        f'{said}: your plan does not include the "{streamed}" feed (SIP data needs the Algo Trader '
        f"Plus plan; every plan streams IEX). To stream IEX, {fix}"
    )


_NUM = frozenset({int, float})  # JSON numbers; bool (a subclass of int) is not one
# Numbers are checked before they reach the bus: a price at or below 0 is no trade, and a number
# past TOO_BIG (1e400 reads as inf; 10**20 cannot be stored) would draw a phantom or stall the
# store writer (so would a time past 2262: `parse_time_ns` refuses times more than a day ahead).
TOO_BIG = 1e12  # above any US price, size or volume
_BAR_KINDS = {"b": "1m", "u": "1m", "d": "1d"}
_CONTROL_KINDS = frozenset({"success", "error", "subscription"})
_SKIPPED_KINDS = frozenset({"s", "l", "c", "x", "i"})  # status, LULD, correction, cancel, imbalance
_BAD_NUMBER = object()  # what NaN / Infinity decode to: not a number, so the element is malformed
_DECODER = json.JSONDecoder(parse_constant=lambda _name: _BAD_NUMBER)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _bar(m: dict[str, Any], sym: str, interval: str) -> Bar:
    """A bar as Alpaca sends it (stream or REST), or an error when it cannot be true: it would
    replace the bar the store builds from the ticks."""
    o, h, lo, c, v = m["o"], m["h"], m["l"], m["c"], m["v"]
    for x in (o, h, lo, c, v):
        if x.__class__ not in _NUM:
            raise TypeError("bar prices and volume must be numbers")
    if not (0 < lo <= min(o, c) and max(o, c) <= h < TOO_BIG and 0 <= v < TOO_BIG):
        raise ValueError("a bar whose open or close is outside its low-high, or a price at or below 0")
    return Bar(parse_time_ns(m["t"]), sym, interval, o, h, lo, c, v)


def _control(data: str | bytes) -> dict[str, Any]:
    """The single element of a control frame (handshake)."""
    try:
        items = json.loads(data)
    except ValueError:
        raise StreamError(f"the Alpaca stream sent something that is not JSON: {data[:80]!r}") from None
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise StreamError(f"the Alpaca stream sent an unexpected frame: {_short(items)}")
    return items[0]


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _day_stats(symbol: str, snap: dict[str, Any]) -> DayStats:
    """A snapshot's daily bar, previous daily bar and latest trade as the day so far."""
    day_bar = snap.get("dailyBar") or {}
    prev = snap.get("prevDailyBar") or {}
    trade = snap.get("latestTrade") or {}

    def num(d: dict[str, Any], key: str) -> float | None:
        x = d.get(key)
        if x is None:
            return None
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) or x < 0:
            raise ValueError(f"{key} is not a number at or above 0: {x!r}")
        return float(x)

    stamp = day_bar.get("t") or trade.get("t")
    if not isinstance(stamp, str):
        raise ValueError("the snapshot has no time")
    ts = parse_time_ns(stamp)
    day = US.local(ts).date()
    return DayStats(
        ts, symbol, day, num(prev, "c"), num(day_bar, "o"), num(day_bar, "h"), num(day_bar, "l"),
        num(trade, "p") if trade else num(day_bar, "c"), num(day_bar, "v") or 0.0,
    )  # fmt: skip


def _disconnect_reason(exc: BaseException) -> str | None:
    """A network failure in the trader's words; None for a bug (logged with its traceback)."""
    if isinstance(exc, websockets.ConnectionClosed):
        frame = exc.rcvd
        code = frame.code if frame is not None else 1006
        why = f": {frame.reason}" if frame is not None and frame.reason else ""
        return f"connection lost (code {code}{why})"
    if isinstance(exc, websockets.InvalidStatus):
        return f"the Alpaca stream refused the connection (HTTP {exc.response.status_code})"
    if isinstance(exc, websockets.InvalidURI):
        return f"providers.alpaca.stream_url is not a websocket URL ({exc})"
    if isinstance(exc, websockets.InvalidHandshake):
        return f"the websocket handshake failed ({exc})"
    if isinstance(exc, TimeoutError):
        return f"no answer from the Alpaca stream within {HANDSHAKE_SECONDS:.0f} s"
    if isinstance(exc, OSError):
        return f"cannot reach the Alpaca stream ({exc.strerror or type(exc).__name__})"
    return None
