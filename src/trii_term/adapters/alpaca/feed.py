"""Alpaca market data: the v2 stream (websockets, JSON text frames) and the data REST API (httpx).

The stream is read directly with `websockets`, not through alpaca-py's stream class: alpaca-py
decodes msgpack into pydantic models one message at a time on its own thread, which is an order
of magnitude slower than decoding a JSON array and building our small tuples on the loop.

    connect ─▶ [{"T":"success","msg":"connected"}] ─▶ auth ─▶ authenticated ─▶ subscribe (all)
            ─▶ frames: arrays of trades "t", quotes "q", bars "b"/"u"/"d", status, errors …

Every frame becomes one MarketBatch. Anything malformed or impossible (a price at or below 0,
a negative size, a number too big to be true or to be stored, a bar whose open or close lies
outside its low-high, a time more than a day ahead) is counted in `malformed`, logged at most
once per `MALFORMED_LOG_SECONDS` and skipped; the good elements of the same array are kept.
A refusal that no retry can cure (402 keys refused, 406 connection limit, 409 plan, 411 scope)
is an ERROR that says what to do: the feed stops connecting until something changes: new keys
(`trii-term login alpaca` in another shell, noticed within `credential_poll` seconds, no
network), `reconnect()`, or, for the connection limit only, a quiet try every `limit_retry`
seconds (the other program may have closed). A dropped connection is retried with jittered
exponential backoff, and once the stream is back
the minute bars of the gap are fetched over REST (bars are stored by their start, so an overlap
is stored once). A symbol subscribed for the first time gets the current session's minute bars
and about a year of daily bars, so its chart has data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

from trii_term import credentials
from trii_term.domain import (
    NS_PER_MINUTE,
    NS_PER_SECOND,
    US,
    Bar,
    DayStats,
    FeedState,
    FeedStatus,
    Instrument,
    InstrumentKind,
    MarketBatch,
    MarketEvent,
    Quote,
    Trade,
)
from trii_term.feeds import FeedContext
from trii_term.store.history import load_instruments

log = logging.getLogger(__name__)
# websockets logs every frame at DEBUG, the auth message (key and secret) included: its own
# logger never goes below INFO, whatever the root level
_ws_log = logging.getLogger(__name__ + ".websocket")
_ws_log.setLevel(logging.INFO)

NAME = "alpaca"
TEST_SYMBOL = "FAKEPACA"  # the only symbol the test stream serves
LOGIN_HINT = "no Alpaca credentials: run `trii-term login alpaca`"
HANDSHAKE_SECONDS = 10.0  # Alpaca drops a client that has not authenticated within 10 s
MALFORMED_LOG_SECONDS = 10.0
REST_PAGE_LIMIT = 10_000
REST_SYMBOLS_PER_REQUEST = 200  # keeps the query string a sane length
REST_MAX_PAGES = 500  # a server that never stops paging is cut off, not followed forever
REST_RATE_LIMIT_TRIES = 5
DAILY_HISTORY_DAYS = 370


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


# --------------------------------------------------------------------------------------------
# The feed
# --------------------------------------------------------------------------------------------

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


class AlpacaFeed:
    name = NAME
    simulated = False

    # reconnect backoff: base doubling to max, +-jitter; reset after a healthy connection
    backoff_base = 1.0
    backoff_max = 60.0
    backoff_jitter = 0.25
    stable_after = 30.0  # seconds up that make a connection healthy even without data
    rate_limit_max_wait = 60.0  # longest wait a 429 can impose before a retry
    rest_timeout = 30.0
    credential_poll = 5.0  # after a refusal: how often the keyring is read for new keys
    limit_retry = 60.0  # after a 406 (connection limit): a quiet try this often

    def __init__(self, ctx: FeedContext, **settings: float) -> None:
        for key, value in settings.items():
            if key not in _SETTINGS:
                raise TypeError(f"unknown AlpacaFeed setting {key!r}; known: {', '.join(sorted(_SETTINGS))}")
            setattr(self, key, value)
        self._bus = ctx.bus
        self._clock = ctx.clock
        self._store = ctx.store
        self._config = ctx.config
        cfg = ctx.config.providers.alpaca
        self.feed = cfg.feed
        self.stream_url = cfg.stream
        self.data_url = cfg.data
        self.rest_feed = "iex" if cfg.feed == "test" else cfg.feed
        self._initial = list(ctx.config.feed.symbols)
        self._status = FeedStatus(NAME, FeedState.CONNECTING)
        self._instruments: Mapping[str, Instrument] = {}
        self.untradable: set[str] = set()  # assets Alpaca lists as not tradable
        self._symbols: dict[str, None] = {}  # subscribed, in order
        self._creds: credentials.Credentials | None = None
        self._cred_error = ""
        self._prepared = False
        # the connection
        self._outbox: asyncio.Queue[dict[str, Any]] | None = None  # set while subscribed
        self._live_since: float | None = None
        self.server_subscription: dict[str, list[str]] = {}
        self._closing: StreamError | None = None  # set by an error message that ends the session
        self._retry_now = asyncio.Event()  # set by reconnect(): try again after a refusal
        # REST
        self._http: httpx.AsyncClient | None = None
        self._want_history: dict[str, None] = {}
        self._history_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._history_problem = ""  # why the last REST history call failed, until one succeeds
        self._last_bar_ns: int | None = None  # start of the newest minute bar the stream sent
        self._gap_from_ns: int | None = None  # minute bars from here on must come over REST
        # counters
        self.connections = 0
        self.frames = 0
        self.events = 0
        self.malformed = 0
        self.skipped: Counter[str] = Counter()  # kinds we do not store, and unsubscribed symbols
        self._malformed_logged = 0
        self._next_malformed_log = 0.0

    # -- Feed protocol ----------------------------------------------------------------------

    @property
    def status(self) -> FeedStatus:
        return self._status

    def instruments(self) -> Mapping[str, Instrument]:
        return self._instruments

    def subscribe(self, symbols: Iterable[str]) -> None:
        new = [s for s in dict.fromkeys(symbols) if s not in self._symbols]
        if not new:
            return
        for sym in new:
            self._symbols[sym] = None
            self._want_history[sym] = None
        if self._outbox is not None:
            self._outbox.put_nowait(self._subscription("subscribe", new))
        self._start_history()

    def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = [s for s in dict.fromkeys(symbols) if s in self._symbols]
        for sym in gone:
            del self._symbols[sym]
            self._want_history.pop(sym, None)
        if gone and self._outbox is not None:
            self._outbox.put_nowait(self._subscription("unsubscribe", gone))

    def subscribed(self) -> list[str]:
        return list(self._symbols)

    async def prepare(self) -> None:
        """Credentials, the instruments the store knows, and Alpaca's asset list (if reachable)."""
        self._creds, self._cred_error = await asyncio.to_thread(_load_credentials)
        known = await asyncio.to_thread(self._store_instruments)
        assets: dict[str, Instrument] = {}
        if self._creds is not None:
            assets = await self._load_assets()
            for sym, inst in assets.items():
                known.setdefault(sym, inst)
        for sym in self._initial:  # (NSE:INFY in a mixed watchlist is another provider's)
            if US_TICKER.match(sym):
                known.setdefault(sym, _instrument(sym, sym, "US"))
        if self.feed == "test":
            known.setdefault(TEST_SYMBOL, _instrument(TEST_SYMBOL, "Alpaca test stream symbol", "TEST"))
        # Without Alpaca's asset list any well-formed US ticker is accepted (a watchlist can still
        # add a symbol the store has never seen); with it, only listed assets are.
        self._instruments = UsInstruments(known, open_ended=not assets)
        self._prepared = True

    async def run(self) -> None:
        if not self._prepared:
            await self.prepare()
        try:
            if self._creds is None:
                self._set_status(FeedState.ERROR, self._cred_error)
                await asyncio.Event().wait()  # nothing to stream with: idle until cancelled
            async with httpx.AsyncClient(
                headers=_auth_headers(self._creds), timeout=self.rest_timeout
            ) as http:
                self._http = http
                self._start_history()
                await self._stream_forever()
        finally:
            self._http = None
            for task in [*self._tasks, self._history_task]:
                if task is not None:
                    task.cancel()
            if self._status.state is not FeedState.ERROR:
                self._set_status(FeedState.STOPPED)

    # -- instruments ------------------------------------------------------------------------

    def _store_instruments(self) -> dict[str, Instrument]:
        """US stocks the store already knows (the shipped history, earlier sessions)."""
        con = self._store.cursor()
        try:
            have = load_instruments(con)
        except Exception:
            log.exception("could not read the instruments from the store")
            return {}
        finally:
            con.close()
        return {s: i for s, i in have.items() if i.market == US.code and i.kind is not InstrumentKind.INDEX}

    async def _load_assets(self) -> dict[str, Instrument]:
        """Alpaca's list of active US equities: names, listing exchanges, tradability."""
        assert self._creds is not None
        brokers = self._config.brokers.alpaca
        base = brokers.rest
        if self._creds.name == "alpaca-live" and not brokers.url:
            base = "https://api.alpaca.markets"
        url = f"{base}/v2/assets"
        try:
            async with httpx.AsyncClient(headers=_auth_headers(self._creds), timeout=15.0) as http:
                resp = await http.get(url, params={"status": "active", "asset_class": "us_equity"})
            if resp.status_code != 200:
                why = "rate limit (429)" if resp.status_code == 429 else f"HTTP {resp.status_code}"
                self._rest_problem(_NO_ASSETS.format(f"{why}: {_error_text(resp)}"))
                return {}
            assets = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            self._rest_problem(_NO_ASSETS.format(_describe(exc)))
            return {}
        out: dict[str, Instrument] = {}
        if not isinstance(assets, list):
            log.warning("Alpaca asset list: unexpected %s", type(assets).__name__)
            return out
        for a in assets:
            if not isinstance(a, dict) or not isinstance(a.get("symbol"), str) or not a["symbol"]:
                continue
            sym = a["symbol"]
            name = a.get("name") if isinstance(a.get("name"), str) and a.get("name") else sym
            exchange = a.get("exchange") if isinstance(a.get("exchange"), str) else "US"
            out[sym] = _instrument(sym, name, exchange)
            if a.get("tradable") is False:
                self.untradable.add(sym)
        log.info("Alpaca asset list: %d active US equities", len(out))
        return out

    # -- the connection loop ----------------------------------------------------------------

    async def _stream_forever(self) -> None:
        """Connect, stream, and on any failure wait (backoff) and connect again. Never raises
        but for cancellation; a refusal waits in ERROR for a person to act (`_refused`)."""
        failures = 0
        while True:
            started = time.monotonic()
            events_before = self.events
            try:
                await self._connect_once()  # returns only by raising
                reason = "the Alpaca stream ended"
            except asyncio.CancelledError:
                raise
            except StreamError as exc:
                reason = str(exc)
                if exc.refused:
                    self._mark_gap()
                    self._outbox = None
                    await self._refused(exc)
                    failures = 0
                    continue
            except Exception as exc:
                reason = _disconnect_reason(exc)
                if reason is None:
                    log.exception("Alpaca stream failed")
                    reason = f"unexpected error ({type(exc).__name__}); see the log"
            self._mark_gap()
            self._outbox = None
            healthy = self.events > events_before or time.monotonic() - started >= self.stable_after
            if healthy:
                failures = 0
            delay = self._backoff(failures)
            failures += 1
            log.warning("Alpaca stream: %s; reconnecting in %.1fs", reason, delay)
            self._set_status(FeedState.RECONNECTING, reason, time.monotonic() + delay)
            await asyncio.sleep(delay)

    async def _refused(self, exc: StreamError) -> None:
        """Alpaca refused these keys, this plan or a second stream: no retry with the same keys
        can help. Say what to do (ERROR) and return only when something changed: new keys (a
        login, noticed by reading the keyring every `credential_poll` s; no network),
        `reconnect()`, or, for the connection limit (406) alone, `limit_retry` s (the other
        program may have closed; the try is quiet: the status stays as it is unless it works)."""
        reason = str(exc)
        if self._status.state is not FeedState.ERROR or self._status.reason != reason:
            log.error("Alpaca stream refused: %s", reason)
            self._set_status(FeedState.ERROR, reason)
        refused = self._creds
        self._retry_now.clear()
        deadline = time.monotonic() + self.limit_retry if exc.code == 406 else math.inf
        while True:
            wait = min(self.credential_poll, max(0.0, deadline - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._retry_now.wait()
                    log.info("Alpaca stream: connecting again, as asked")
                    return
            creds, _ = await asyncio.to_thread(_load_credentials)
            if creds is not None and creds != refused:
                log.info("Alpaca stream: new keys; connecting again")
                self._use_credentials(creds)
                return
            if time.monotonic() >= deadline:
                return

    def reconnect(self) -> None:
        """Connect again now if the stream waits after a refusal (a trader's action: the plan
        was upgraded, the other program closed)."""
        self._retry_now.set()

    def _use_credentials(self, creds: credentials.Credentials) -> None:
        self._creds = creds
        if self._http is not None:
            self._http.headers.update(_auth_headers(creds))

    def _backoff(self, failures: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** min(failures, 30))
        return delay * random.uniform(1 - self.backoff_jitter, 1 + self.backoff_jitter)

    async def _connect_once(self) -> None:
        if self._status.state is not FeedState.ERROR:  # a try after a refusal is quiet
            self._set_status(FeedState.CONNECTING)
        self.connections += 1
        async with websockets.connect(
            self.stream_url,
            additional_headers={"Content-Type": "application/json"},
            open_timeout=HANDSHAKE_SECONDS,
            ping_interval=10,
            ping_timeout=30,
            close_timeout=2,
            max_size=2**24,
            max_queue=1024,
            logger=_ws_log,
        ) as ws:
            await self._handshake(ws)
            self._closing = None
            outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            symbols = list(self._symbols)
            if symbols:
                outbox.put_nowait(self._subscription("subscribe", symbols))
            else:  # nothing to subscribe: live as soon as authenticated
                self._went_live()
            self._outbox = outbox  # from here on subscribe()/unsubscribe() queue changes
            sender = asyncio.create_task(self._send_loop(ws, outbox), name="alpaca-stream-send")
            try:
                recv = ws.recv
                on_frame = self._on_frame
                while True:
                    data = await recv()
                    on_frame(data, time.monotonic_ns())
                    if self._closing is not None:  # an error message that ends the session
                        closing, self._closing = self._closing, None
                        raise closing
            finally:
                self._outbox = None
                sender.cancel()

    async def _handshake(self, ws: Any) -> None:
        async with asyncio.timeout(HANDSHAKE_SECONDS):
            first = _control(await ws.recv())
            if first.get("T") == "error":
                code = first.get("code")
                raise StreamError(self._error_reason(code, first.get("msg")), code=code)
            if first.get("T") != "success" or first.get("msg") != "connected":
                raise StreamError(f"unexpected greeting from the Alpaca stream: {_short(first)}")
            assert self._creds is not None
            await ws.send(
                json.dumps(
                    {"action": "auth", "key": self._creds["key_id"], "secret": self._creds["secret_key"]}
                )
            )
            reply = _control(await ws.recv())
        if reply.get("T") == "error":
            code = reply.get("code")
            raise StreamError(self._error_reason(code, reply.get("msg")), code=code)
        if reply.get("T") != "success" or reply.get("msg") != "authenticated":
            raise StreamError(f"Alpaca did not authenticate the key: {_short(reply)}")

    async def _send_loop(self, ws: Any, outbox: asyncio.Queue[dict[str, Any]]) -> None:
        """Subscription changes go out in the order they were made."""
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await ws.send(json.dumps(await outbox.get()))

    def _subscription(self, action: str, symbols: list[str]) -> dict[str, Any]:
        msg: dict[str, Any] = {"action": action, "trades": symbols, "quotes": symbols, "bars": symbols}
        if self.feed != "test":  # the test stream serves trades, quotes and minute bars only
            msg["updatedBars"] = symbols
            msg["dailyBars"] = symbols
        return msg

    # -- frames -----------------------------------------------------------------------------

    def _on_frame(self, data: str | bytes, received_ns: int) -> None:
        """One frame: its market data as one MarketBatch, then its control messages. Never
        raises: an error message that ends the session is left in `_closing` for the loop."""
        self.frames += 1
        if type(data) is not str:
            self._bad("a binary frame (we asked for JSON)", data)
            return
        try:
            items = _DECODER.decode(data)
        except (ValueError, RecursionError):
            self._bad("a frame that is not JSON", data)
            return
        if type(items) is not list:
            self._bad("a frame that is not an array", data)
            return
        events: list[MarketEvent] = []
        add = events.append
        subs = self._symbols
        ts = parse_time_ns
        num = _NUM
        big = TOO_BIG
        controls: list[dict[str, Any]] | None = None
        last_bar = self._last_bar_ns
        for m in items:
            try:
                kind = m["T"]
                if kind == "t":
                    sym = m["S"]
                    if sym in subs:
                        p = m["p"]
                        s = m["s"]
                        if p.__class__ not in num or s.__class__ not in num or not 0 < p < big > s >= 0:
                            raise ValueError(
                                "the price must be a number above 0 and the size one at or above 0"
                            )
                        add(Trade(ts(m["t"]), sym, p, s))
                    else:
                        self.skipped["unsubscribed"] += 1
                elif kind == "q":
                    sym = m["S"]
                    if sym in subs:
                        bp = m["bp"]
                        ap = m["ap"]
                        bs = m["bs"]
                        az = m["as"]
                        # 0 is "no bid" / "no offer" (a one-sided quote); below 0 is garbage
                        if (
                            bp.__class__ not in num
                            or ap.__class__ not in num
                            or bs.__class__ not in num
                            or az.__class__ not in num
                            or not 0 <= bp < big > ap >= 0 <= bs < big > az >= 0
                        ):
                            raise ValueError("prices and sizes must be numbers at or above 0")
                        add(Quote(ts(m["t"]), sym, bp, ap, bs, az))
                    else:
                        self.skipped["unsubscribed"] += 1
                elif kind in _BAR_KINDS:
                    sym = m["S"]
                    if sym in subs:
                        bar = _bar(m, sym, _BAR_KINDS[kind])
                        add(bar)
                        if kind != "d" and (last_bar is None or bar.ts > last_bar):
                            last_bar = bar.ts
                    else:
                        self.skipped["unsubscribed"] += 1
                elif kind in _CONTROL_KINDS:
                    if controls is None:
                        controls = []
                    controls.append(m)
                elif kind in _SKIPPED_KINDS:
                    self.skipped[kind] += 1
                else:
                    raise ValueError(f"unknown message type {kind!r}")
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                self._bad(f"a bad message ({type(exc).__name__}: {exc})", m)
        self._last_bar_ns = last_bar
        if events:
            self.events += len(events)
            self._bus.publish(MarketBatch(NAME, events, received_ns))
            if self._status.state is not FeedState.LIVE:  # data before (or without) the ack
                self._went_live()
        if controls:
            for c in controls:
                self._on_control(c)

    def _on_control(self, m: dict[str, Any]) -> None:
        kind = m["T"]
        if kind == "subscription":
            self.server_subscription = {k: v for k, v in m.items() if k != "T" and isinstance(v, list)}
            if self._status.state is not FeedState.LIVE:
                self._went_live()
        elif kind == "error":
            code = m.get("code")
            reason = self._error_reason(code, m.get("msg"))
            if type(code) is int and code in CLOSING_CODES:
                if self._closing is None:
                    self._closing = StreamError(reason, code=code)
                return
            log.warning("Alpaca stream: %s", reason)
            self._set_status(self._status.state, reason, self._status.retry_at_monotonic)

    def _error_reason(self, code: object, msg: object) -> str:
        return error_reason(
            code,
            msg,
            self.feed,
            stream_url=self._config.providers.alpaca.stream_url,
            config_file=self._config.source,
            from_env=self._creds is not None and self._creds.source == "environment",
        )

    def _went_live(self) -> None:
        self._live_since = time.monotonic()
        self._set_status(FeedState.LIVE, self._history_problem)
        if self._gap_from_ns is not None:
            start, self._gap_from_ns = self._gap_from_ns, None
            self._spawn(self._fill_gap(start), "alpaca-gap-backfill")

    def _mark_gap(self) -> None:
        """The stream is down: minute bars from the last one received will come over REST."""
        if self._live_since is None:
            return  # never live on this connection: the gap (if any) is already marked
        self._live_since = None
        if self._gap_from_ns is None:
            now = self._clock.now_ns()
            self._gap_from_ns = (
                self._last_bar_ns
                if self._last_bar_ns is not None
                else now - now % NS_PER_MINUTE - NS_PER_MINUTE
            )

    def _bad(self, what: str, sample: object) -> None:
        """Count a malformed frame or element; log now and then, never once per message."""
        self.malformed += 1
        now = time.monotonic()
        if now >= self._next_malformed_log:
            log.warning(
                "Alpaca sent %d malformed message(s) since the last report; skipped. Latest: %s: %.200r",
                self.malformed - self._malformed_logged,
                what,
                sample,
            )
            self._malformed_logged = self.malformed
            self._next_malformed_log = now + MALFORMED_LOG_SECONDS

    def _set_status(self, state: FeedState, reason: str = "", retry_at: float | None = None) -> None:
        self._status = FeedStatus(NAME, state, reason, False, retry_at)
        self._bus.publish(self._status)

    # -- REST history -----------------------------------------------------------------------

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_history(self) -> None:
        """New symbols get recent minute bars and a year of daily bars (one task drains them)."""
        if self._http is None or not self._want_history:
            return
        if self._history_task is None or self._history_task.done():
            self._history_task = asyncio.get_running_loop().create_task(
                self._history_loop(), name="alpaca-history"
            )

    async def _history_loop(self) -> None:
        while self._want_history:
            await asyncio.sleep(0)  # let a burst of subscribe() calls gather into one request
            symbols = list(self._want_history)
            self._want_history.clear()
            now = self._clock.now_ns()
            await self._snapshots(symbols)
            await self._backfill(symbols, "1Min", recent_session_start(now), now, _RECENT_MINUTES)
            await self._backfill(
                symbols, "1Day", now - DAILY_HISTORY_DAYS * 86_400 * NS_PER_SECOND, now, _DAILY_BARS
            )

    async def _fill_gap(self, start_ns: int) -> None:
        end = self._clock.now_ns()
        symbols = list(self._symbols)
        if symbols and not await self._backfill(symbols, "1Min", start_ns, end, _GAP_MINUTES):
            # try again after the next reconnect
            self._gap_from_ns = start_ns if self._gap_from_ns is None else min(start_ns, self._gap_from_ns)

    async def _backfill(
        self, symbols: list[str], timeframe: str, start_ns: int, end_ns: int, what: tuple[str, str]
    ) -> bool:
        """Fetch bars of `symbols` over REST (every page) and publish them. False on failure,
        which is logged and shown as the feed's reason, naming what could not be read and for
        which symbols (`what`: the bars, what follows); the stream carries on."""
        try:
            for i in range(0, len(symbols), REST_SYMBOLS_PER_REQUEST):
                await self._fetch_bars(symbols[i : i + REST_SYMBOLS_PER_REQUEST], timeframe, start_ns, end_ns)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            bars, after = what
            if not isinstance(exc, RestError | httpx.HTTPError):
                log.exception("Alpaca %s failed", bars)
            self._rest_problem(
                f"could not read {bars} of {_names(symbols)} from Alpaca ({_describe(exc)}); {after}"
            )
            return False
        if self._history_problem:
            self._history_problem = ""
            if self._status.state is FeedState.LIVE and self._status.reason.startswith("could not read"):
                self._set_status(FeedState.LIVE)
        return True

    def _rest_problem(self, reason: str) -> None:
        """A REST read failed: logged, and shown with the LIVE state until one succeeds (a stream
        that is down has the more important reason to show)."""
        log.warning("%s", reason)
        self._history_problem = reason
        if self._status.state is FeedState.LIVE:
            self._set_status(FeedState.LIVE, reason)

    async def _snapshots(self, symbols: list[str]) -> None:
        """The day so far per symbol (the previous close above all: the watchlist's change
        column), from `/v2/stocks/snapshots`, published as DayStats. The stream has no such
        message. A failure is logged; the stream carries on without it."""
        try:
            for i in range(0, len(symbols), REST_SYMBOLS_PER_REQUEST):
                chunk = symbols[i : i + REST_SYMBOLS_PER_REQUEST]
                body = await self._get_json(
                    f"{self.data_url}/v2/stocks/snapshots",
                    {"symbols": ",".join(chunk), "feed": self.rest_feed},
                )
                if not isinstance(body, dict):
                    raise RestError(f"unexpected answer from /v2/stocks/snapshots: {_short(body)}")
                events: list[MarketEvent] = []
                for sym, snap in body.items():
                    if sym not in self._symbols:
                        continue
                    try:
                        events.append(_day_stats(sym, snap))
                    except (KeyError, TypeError, ValueError, AttributeError) as exc:
                        self._bad(f"a bad snapshot ({type(exc).__name__}: {exc})", snap)
                if events:
                    self._bus.publish(MarketBatch(NAME, events, time.monotonic_ns()))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._rest_problem(
                f"could not read the day so far (the previous close) of {_names(symbols)} from Alpaca "
                f"({_describe(exc)}); their change column stays empty"
            )

    async def _fetch_bars(self, symbols: list[str], timeframe: str, start_ns: int, end_ns: int) -> None:
        interval = "1d" if timeframe == "1Day" else "1m"
        params: dict[str, str | int] = {
            "symbols": ",".join(symbols),
            "timeframe": timeframe,
            "start": format_time(start_ns),
            "end": format_time(end_ns),
            "limit": REST_PAGE_LIMIT,
            "feed": self.rest_feed,
            "adjustment": "raw",
        }
        for _ in range(REST_MAX_PAGES):
            body = await self._get_json(f"{self.data_url}/v2/stocks/bars", params)
            bars = body.get("bars") if isinstance(body, dict) else None
            if not isinstance(bars, dict):
                raise RestError(f"unexpected answer from /v2/stocks/bars: {_short(body)}")
            events: list[MarketEvent] = []
            for sym, rows in bars.items():
                if sym not in self._symbols or not isinstance(rows, list):
                    continue
                for row in rows:
                    try:
                        events.append(_bar(row, sym, interval))
                    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                        self._bad(f"a bad REST bar ({type(exc).__name__}: {exc})", row)
            if events:
                self._bus.publish(MarketBatch(NAME, events, time.monotonic_ns()))
            token = body.get("next_page_token")
            if not token:
                return
            if not isinstance(token, str) or token == params.get("page_token"):
                raise RestError(f"bad next_page_token {token!r}")
            params["page_token"] = token
        raise RestError(f"more than {REST_MAX_PAGES} pages; stopped")

    async def _get_json(self, url: str, params: dict[str, str | int]) -> Any:
        """GET with the rate limit honoured: a 429 waits per Retry-After / X-Ratelimit-Reset."""
        assert self._http is not None
        for _ in range(REST_RATE_LIMIT_TRIES):
            resp = await self._http.get(url, params=params)
            if resp.status_code == 429:
                wait = _rate_limit_wait(resp.headers, self.rate_limit_max_wait)
                log.warning("Alpaca data API rate limit (429); retrying in %.1fs", wait)
                await asyncio.sleep(wait)
                continue
            if resp.status_code != 200:
                raise RestError(f"HTTP {resp.status_code}: {_error_text(resp)}")
            try:
                return resp.json()
            except ValueError:
                raise RestError(f"the answer is not JSON: {resp.text[:120]!r}") from None
        raise RestError(f"rate limit (429) still hit after {REST_RATE_LIMIT_TRIES} tries")


_SETTINGS = frozenset(
    {
        "backoff_base",
        "backoff_max",
        "backoff_jitter",
        "stable_after",
        "rate_limit_max_wait",
        "rest_timeout",
        "credential_poll",
        "limit_retry",
    }
)


class RestError(Exception):
    """A data REST call that failed in a way the trader can read."""


# what a failed REST read could not read, and what follows from it
_RECENT_MINUTES = ("the recent minute bars", "their charts start from live ticks")
_DAILY_BARS = ("a year of daily bars", "their daily charts show only what the store holds")
_GAP_MINUTES = ("the minute bars missed while the stream was down", "tried again after the next reconnect")
_NO_ASSETS = (
    "could not read Alpaca's list of assets ({}); any well-formed US ticker is accepted, shown "
    "without its name"
)


def _names(symbols: list[str], limit: int = 5) -> str:
    """AAPL, MSFT and 3 more"""
    if not symbols:
        return "no symbols"
    if len(symbols) <= limit:
        return ", ".join(symbols[:-1]) + (" and " if len(symbols) > 1 else "") + symbols[-1]
    return f"{', '.join(symbols[:limit])} and {len(symbols) - limit} more"


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


US_TICKER = re.compile(r"^[A-Z][A-Z0-9]{0,5}([./][A-Z]{1,2})?$")  # AAPL, BRK.B, BF/B


class UsInstruments(Mapping[str, Instrument]):
    """The instruments the feed knows; when `open_ended` (Alpaca's asset list could not be
    loaded), also any well-formed US ticker, as a plain US stock in USD."""

    def __init__(self, known: dict[str, Instrument], *, open_ended: bool) -> None:
        self._known = known
        self.open_ended = open_ended

    def __getitem__(self, symbol: str) -> Instrument:
        inst = self._known.get(symbol)
        if inst is None:
            if not (self.open_ended and isinstance(symbol, str) and US_TICKER.match(symbol)):
                raise KeyError(symbol)
            inst = self._known[symbol] = _instrument(symbol, symbol, "US")
        return inst

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._known or bool(
            self.open_ended and isinstance(symbol, str) and US_TICKER.match(symbol)
        )

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._known))

    def __len__(self) -> int:
        return len(self._known)


def _instrument(symbol: str, name: str, exchange: str) -> Instrument:
    return Instrument(symbol, name, exchange, US.code, "USD", InstrumentKind.STOCK, Decimal("0.01"))


def _load_credentials() -> tuple[credentials.Credentials | None, str]:
    """The paper keys, else the live ones; (None, why) when there are none."""
    try:
        creds = credentials.load("alpaca") or credentials.load("alpaca-live")
    except credentials.CredentialError as exc:
        return None, str(exc)
    return (creds, "") if creds is not None else (None, LOGIN_HINT)


def _auth_headers(creds: credentials.Credentials | None) -> dict[str, str]:
    if creds is None:
        return {}
    return {"APCA-API-KEY-ID": creds["key_id"], "APCA-API-SECRET-KEY": creds["secret_key"]}


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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return str(exc) or type(exc).__name__


def _error_text(resp: httpx.Response) -> str:
    """The message of an Alpaca error body ({"message": ...}), else the start of the text."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:160] or resp.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"][:160]
    return _short(body)


def _rate_limit_wait(headers: httpx.Headers, cap: float) -> float:
    """Seconds to wait after a 429: Retry-After (seconds or an HTTP date), else
    X-Ratelimit-Reset (epoch seconds), else 1 s; never more than `cap`."""
    wait = 1.0
    retry_after = headers.get("retry-after")
    reset = headers.get("x-ratelimit-reset")
    try:
        if retry_after is not None:
            try:
                wait = float(retry_after)
            except ValueError:
                wait = (parsedate_to_datetime(retry_after) - datetime.now(UTC)).total_seconds()
        elif reset is not None:
            wait = float(reset) - time.time()
    except (ValueError, TypeError):
        wait = 1.0
    return min(cap, max(0.05, wait))


def recent_session_start(now_ns: int) -> int:
    """Where "recent minute bars" start: the pre-market open (04:00 New York) of the session
    before the latest one that has begun, so a holiday in between still leaves one session."""
    local = US.local(now_ns)
    day = local.date()
    if local.time() < US.pre_open:
        day -= timedelta(days=1)
    sessions = 0
    while True:
        if day.weekday() < 5:
            sessions += 1
            if sessions == 2:
                return US.at(day, US.pre_open)
        day -= timedelta(days=1)
