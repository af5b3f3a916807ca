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
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
import websockets

from trii_term import credentials
from trii_term.adapters.alpaca.frames import AlpacaFrames
from trii_term.adapters.alpaca.history import _NO_ASSETS, _describe, _error_text
from trii_term.adapters.alpaca.instruments import US_TICKER, UsInstruments, _instrument
from trii_term.adapters.alpaca.wire import (
    HANDSHAKE_SECONDS,
    NAME,
    StreamError,
    _control,
    _disconnect_reason,
    _short,
)
from trii_term.domain import (
    US,
    FeedState,
    FeedStatus,
    Instrument,
    InstrumentKind,
)
from trii_term.feeds import FeedContext
from trii_term.store.history import load_instruments

log = logging.getLogger(__name__)
# websockets logs every frame at DEBUG, the auth message (key and secret) included: its own
# logger never goes below INFO, whatever the root level
_ws_log = logging.getLogger(__name__ + ".websocket")
_ws_log.setLevel(logging.INFO)

TEST_SYMBOL = "FAKEPACA"  # the only symbol the test stream serves
LOGIN_HINT = "no Alpaca credentials: run `trii-term login alpaca`"


# --------------------------------------------------------------------------------------------
# The feed
# --------------------------------------------------------------------------------------------


class AlpacaFeed(AlpacaFrames):
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

    def _set_status(self, state: FeedState, reason: str = "", retry_at: float | None = None) -> None:
        self._status = FeedStatus(NAME, state, reason, False, retry_at)
        self._bus.publish(self._status)


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
