"""Zerodha Kite market data: the binary ticker over `websockets`, candles and the instrument
master over httpx (`feed.provider = "kite"`).

Why not the SDK's KiteTicker: it runs on Twisted's global reactor in a thread, which cannot be
restarted in one process and would hand every tick across threads. Here the ticker is one asyncio
task on the session's loop, and the binary parser is a tight loop over `struct` (see
`bench/kite_ticker.py`: it must parse and publish 500k packets/s on one core).

What a packet becomes (one `MarketBatch` per binary message, events in packet order):

- quote (44 B) and full (184 B): a `Trade` when the cumulative volume rises (size = the rise,
  price = LTP; the first packet of a token only sets the baseline, since what it traded before
  is unknown), then `DayStats` (prev_close = the packet's close, open/high/low, last, volume);
  full mode adds a `Quote` from the best bid and offer when both sides are present.
- price-only packets (ltp mode, 8 B; indices, 28/32 B) carry no volume: a change of price is a
  `Trade` of size 0, so the tape and the charts move; index packets also give `DayStats`, an
  ltp packet gives a `DayStats` with only `last` the first time a token is seen.
- timestamps: the exchange timestamp in full packets, else the arrival time (`time.time_ns()`).

A message is applied all or nothing, before anything of it is published (`TickParser.parse`):
a message whose structure is wrong (its packet count, a packet's length or its total size do
not add up) is dropped whole. Inside a well-formed message the lengths delimit each packet
exactly, so one packet that cannot be true is skipped alone and the others are kept: a size its
token's segment cannot have (indices send 8/28/32 bytes, everything else 8/44/184), a token not
subscribed, a negative price (prices are int32), a last price outside the day's low-high,
a low above the high, volume without a price. A last price of 0 means "not traded
yet": it never becomes a trade or a last price. Every fault is counted (`malformed`) and logged
at most every 10 s.

Candles (`/instruments/historical`) are published as `Bar`s when a symbol is first subscribed
(the recent session's minutes and a year of days) and after a reconnect (the gap), spaced to
Kite's 3 requests/s; only closed bars are sent, since a provider bar wins over the bar the store
derives from ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import httpx
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from trii_term import credentials
from trii_term.adapters.kite.candles import KiteCandles, _Backfill, kite_error
from trii_term.adapters.kite.instruments import _PRELOAD_SQL, KiteInstruments, _kite_instrument
from trii_term.adapters.kite.master import KiteInstrument, KiteMaster, MasterError
from trii_term.adapters.kite.token import kite_expiry_warning
from trii_term.adapters.kite.wire import KiteOrderUpdate, TickParser
from trii_term.domain import (
    FeedState,
    FeedStatus,
    MarketBatch,
)
from trii_term.feeds import FeedContext

log = logging.getLogger(__name__)

MAX_TOKENS = 3000  # instruments per ticker connection (Kite's limit)
KITE_HEADERS = {"X-Kite-Version": "3"}
LOGIN_HINT = "run `trii-term login kite`"

# --------------------------------------------------------------------------------------------
# The feed
# --------------------------------------------------------------------------------------------


class KiteFeed(KiteCandles):
    name = "kite"
    simulated = False

    def __init__(
        self,
        ctx: FeedContext,
        *,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        credential_poll: float = 5.0,
        limit_retry: float = 30.0,
        silence_timeout: float = 30.0,
        open_timeout: float = 10.0,
        history_spacing: float = 0.34,
        history_retries: int = 5,
    ) -> None:
        self._bus = ctx.bus
        self._store = ctx.store
        self._cfg = ctx.config.providers.kite
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.credential_poll = credential_poll  # after a refused token: how often to look for a new one
        self.limit_retry = limit_retry
        self.silence_timeout = silence_timeout
        self.open_timeout = open_timeout
        self.history_spacing = history_spacing
        self.history_retries = history_retries
        self._parser = TickParser()
        self._status = FeedStatus(self.name, FeedState.CONNECTING)
        self._creds: credentials.Credentials | None = None
        self._expiry_note = ""
        self._fatal = ""  # set when the feed cannot stream at all (no credentials, no master)
        self._prepared = False
        self._db_lock = threading.Lock()
        self._con: Any = None
        self._master: KiteMaster | None = None
        self._instruments = KiteInstruments({}, self._lookup)
        self._ws: Any = None
        self._lost_at: datetime | None = None
        self._history: asyncio.Queue[_Backfill] = asyncio.Queue()
        self._history_blocked = ""
        self._next_history_at = 0.0
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.last_message_ns = 0  # time.monotonic_ns() of the last message, heartbeats included
        self.connections = 0
        self._retry_now = asyncio.Event()  # set by reconnect(): try again after a refused token

    # -- Feed protocol ----------------------------------------------------------------------

    @property
    def status(self) -> FeedStatus:
        return self._status

    @property
    def malformed(self) -> int:
        return self._parser.malformed

    @property
    def parser(self) -> TickParser:
        return self._parser

    def instruments(self) -> KiteInstruments:
        return self._instruments

    def subscribe(self, symbols: Iterable[str]) -> None:
        parser = self._parser
        added: list[int] = []
        for sym in symbols:
            ki = self._instruments.kite(sym)
            if ki is None:
                log.warning("Kite: %s is not in the instrument master; not streamed", sym)
                continue
            if ki.token in parser.subs:
                continue
            if len(parser.subs) >= MAX_TOKENS:
                log.warning(
                    "Kite streams at most %d instruments per connection; %s left out", MAX_TOKENS, sym
                )
                continue
            parser.add(ki.token, ki.symbol)
            added.append(ki.token)
            self._queue_first_history(ki)
        if added and self._ws is not None:
            self._send_soon([self._subscribe_msg(added), self._mode_msg(added)])

    def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone: list[int] = []
        for sym in symbols:
            ki = self._instruments.kite(sym)
            if ki is not None and ki.token in self._parser.subs:
                self._parser.remove(ki.token)
                gone.append(ki.token)
        if gone and self._ws is not None:
            self._send_soon([json.dumps({"a": "unsubscribe", "v": gone})])

    async def prepare(self) -> None:
        """Credentials, then the instrument master: cached in the store, downloaded once per IST
        day. Problems become an ERROR status with what to do; nothing raises."""
        self._prepared = True
        self._creds, why = await asyncio.to_thread(self._load_credentials)
        if self._con is None:
            self._con = self._store.cursor()
            self._master = KiteMaster(self._con)
        if self._creds is None:
            self._fail(why)
        else:
            warning = kite_expiry_warning(self._creds)
            if warning:
                log.warning("%s", warning)
            if "expired" in warning:
                self._expiry_note = warning
            await self._refresh_master()
        preloaded = await asyncio.to_thread(self._preload)
        if not preloaded and not self._fatal:
            self._fail("the Kite instrument master is empty: no instruments to stream")
        self._instruments = KiteInstruments(preloaded, self._lookup, "" if preloaded else self._fatal)

    async def run(self) -> None:
        if not self._prepared:
            await self.prepare()
        try:
            if self._fatal:
                # said again: prepare() ran before the session listened to the bus
                self._set_status(FeedState.ERROR, self._fatal)
                await asyncio.Event().wait()  # nothing to stream; the status says why
            self._http = httpx.AsyncClient(base_url=self._cfg.rest, timeout=30.0)
            self._spawn(self._history_worker())
            await self._connect_forever()
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=2.0)
            if self._http is not None:
                await self._http.aclose()
                self._http = None
            self._close_db()
            if self._status.state is not FeedState.ERROR:
                self._set_status(FeedState.STOPPED)

    # -- credentials and the master -----------------------------------------------------------

    def _load_credentials(self) -> tuple[credentials.Credentials | None, str]:
        missing = f"no Kite credentials: {LOGIN_HINT} (or set TRII_KITE_API_KEY and TRII_KITE_ACCESS_TOKEN)"
        try:
            creds = credentials.load("kite")
        except credentials.CredentialError as exc:
            log.warning("Kite credentials unavailable: %s", exc)
            return None, missing
        return creds, "" if creds is not None else missing

    def _auth_headers(self) -> dict[str, str]:
        assert self._creds is not None
        token = f"token {self._creds['api_key']}:{self._creds['access_token']}"
        return {**KITE_HEADERS, "Authorization": token}

    def _scrub(self, text: str) -> str:
        """Never let a key or token reach a status line or the log (the log also masks them)."""
        if self._creds is not None:
            for field in ("api_key", "access_token"):
                value = self._creds.get(field)
                if value:
                    text = text.replace(value, "****")
        return text

    async def _refresh_master(self) -> None:
        have = await asyncio.to_thread(self._db, lambda m: m.count())
        if not await asyncio.to_thread(self._db, lambda m: m.needs_refresh()):
            return
        problem = await self._download_master()
        if problem is None:
            return
        if have:
            log.warning("%s; using the cached instrument master (%d instruments)", problem, have)
        else:
            self._fail(problem)

    async def _download_master(self) -> str | None:
        """Download and store the master; None when done, else what went wrong."""
        url = f"{self._cfg.rest}/instruments"
        try:
            async with httpx.AsyncClient(timeout=60.0) as client:
                response = await client.get(url, headers=self._auth_headers())
        except httpx.HTTPError as exc:
            log.warning("Kite instrument master download failed: %s", type(exc).__name__, exc_info=True)
            return f"the Kite instrument master could not be downloaded ({type(exc).__name__})"
        if response.status_code != 200:
            error_type, message = kite_error(response)
            if response.status_code == 403 or error_type == "TokenException":
                return (
                    "Kite refused the access token (expired or invalid), so the instrument master "
                    f"could not be downloaded: {self._relogin()}; then start trii-term again"
                )
            return self._scrub(f"the Kite instrument master could not be downloaded: {message}")
        ctype = response.headers.get("content-type", "")
        if "csv" not in ctype:
            return f"Kite answered the instrument master download with {ctype or 'no content type'}, not CSV"
        try:
            rows = await asyncio.to_thread(self._db, lambda m: m.store_csv(response.text))
        except MasterError as exc:
            return f"the Kite instrument master was not usable: {exc}"
        log.info("Kite instrument master: %d instruments stored", rows)
        return None

    def _db(self, work: Callable[[KiteMaster], Any]) -> Any:
        """Run `work(master)` on the feed's own cursor, one thread at a time."""
        with self._db_lock:
            if self._master is None:
                raise MasterError("the Kite feed has stopped")
            return work(self._master)

    def _preload(self) -> dict[str, KiteInstrument]:
        with self._db_lock:
            if self._con is None:
                return {}
            rows = self._con.execute(_PRELOAD_SQL).fetchall()
        out: dict[str, KiteInstrument] = {}
        for row in rows:
            ki = _kite_instrument(row)
            out[ki.symbol] = ki
        return out

    def _lookup(self, symbol: str) -> KiteInstrument | None:
        try:
            return self._db(lambda m: m.lookup(symbol))
        except MasterError:
            return None

    def _close_db(self) -> None:
        with self._db_lock:
            if self._con is not None:
                with contextlib.suppress(Exception):
                    self._con.close()
            self._con = None
            self._master = None

    # -- the ticker ---------------------------------------------------------------------------

    def _ticker_url(self) -> str:
        assert self._creds is not None
        base = self._cfg.ticker
        sep = "&" if "?" in base else "?"
        return f"{base}{sep}api_key={self._creds['api_key']}&access_token={self._creds['access_token']}"

    def _subscribe_msg(self, tokens: list[int]) -> str:
        return json.dumps({"a": "subscribe", "v": tokens})

    def _mode_msg(self, tokens: list[int]) -> str:
        return json.dumps({"a": "mode", "v": [self._cfg.mode, tokens]})

    def backoff(self, attempt: int) -> float:
        """Jittered exponential backoff: 50-100 % of base * 2**attempt, capped at the max."""
        return min(self.backoff_max, self.backoff_base * 2 ** min(attempt, 30)) * random.uniform(0.5, 1.0)

    async def _connect_forever(self) -> None:
        attempt = 0
        while True:
            if attempt:
                await self._reload_credentials()
            self._set_status(FeedState.CONNECTING, self._expiry_note)
            floor = 0.0
            refused = False
            try:
                async with websockets.connect(
                    self._ticker_url(),
                    additional_headers=KITE_HEADERS,
                    open_timeout=self.open_timeout,
                    close_timeout=2.0,
                    max_size=16 * 1024 * 1024,
                ) as ws:
                    self.connections += 1
                    await self._on_connected(ws)
                    attempt = 0
                    reason = await self._stream(ws)
            except InvalidStatus as exc:
                status = exc.response.status_code
                refused = status == 403
                reason, floor = self._rejected(status)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                reason = f"the connection to Kite was lost (close code {code})"
            except TimeoutError:
                reason = f"the Kite ticker did not answer within {self.open_timeout:.0f}s"
            except (OSError, InvalidHandshake, InvalidURI) as exc:
                reason = f"cannot reach the Kite ticker ({type(exc).__name__})"
                log.info("Kite ticker connect failed: %s", exc)
            except Exception as exc:  # a bug must not stop the feed: log it, reconnect
                log.exception("Kite ticker failed")
                reason = f"the Kite ticker stopped unexpectedly ({type(exc).__name__}; see the log)"
            finally:
                if self._ws is not None:
                    self._lost_at = datetime.now(UTC)
                self._ws = None
            if refused:  # no retry with this token can help
                await self._wait_for_login(reason)
                attempt = 0
                continue
            delay = max(floor, self.backoff(attempt))
            attempt += 1
            reason = self._scrub(reason)
            log.warning("Kite ticker: %s; reconnecting in %.1fs", reason, delay)
            self._set_status(
                FeedState.RECONNECTING,
                f"{reason}; retrying in {delay:.0f}s",
                retry_at=time.monotonic() + delay,
            )
            await asyncio.sleep(delay)

    def _rejected(self, status: int) -> tuple[str, float]:
        if status == 403:
            note = f"; {self._expiry_note}" if self._expiry_note else ""
            return (
                f"Kite refused the access token (HTTP 403: expired or invalid{note}): {self._relogin()}",
                0.0,
            )
        if status == 429:
            return (
                "Kite refused the connection (HTTP 429): too many connections or requests — Kite "
                "allows 3 ticker connections per API key; close other Kite apps",
                self.limit_retry,
            )
        return f"the Kite ticker refused the connection (HTTP {status})", 0.0

    def _relogin(self) -> str:
        """What to do about a refused token: where the token came from decides."""
        if self._creds is not None and self._creds.source == "environment":
            return (
                "set a new TRII_KITE_ACCESS_TOKEN (the environment comes before the keyring), or "
                "unset it and log in again: `trii-term login kite`"
            )
        return "log in again: `trii-term login kite`"

    async def _wait_for_login(self, reason: str) -> None:
        """Kite refused the token: no retry with it can help (tokens expire at 6 AM IST). Say
        what to do (ERROR) and return once there is a new token (a login in another shell,
        noticed by reading the keyring every `credential_poll` s; no network) or `reconnect()`."""
        reason = self._scrub(reason)
        if self._status.state is not FeedState.ERROR or self._status.reason != reason:
            log.error("Kite ticker: %s", reason)
            self._set_status(FeedState.ERROR, reason)
        refused = self._creds
        self._retry_now.clear()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.credential_poll):
                    await self._retry_now.wait()
                    log.info("Kite ticker: connecting again, as asked")
                    return
            creds, _ = await asyncio.to_thread(self._load_credentials)
            if creds is not None and creds != refused:
                log.info("Kite ticker: a new access token; connecting again")
                await self._reload_credentials()
                return

    def reconnect(self) -> None:
        """Connect again now if the ticker waits after a refused token (a trader's action)."""
        self._retry_now.set()

    async def _reload_credentials(self) -> None:
        """A new login (`trii-term login kite` in another shell) is picked up on the next try."""
        creds, _ = await asyncio.to_thread(self._load_credentials)
        if creds is not None:
            self._creds = creds
            warning = kite_expiry_warning(creds)
            self._expiry_note = warning if "expired" in warning else ""

    async def _on_connected(self, ws: Any) -> None:
        tokens = list(self._parser.subs)
        self._ws = ws
        self._history_blocked = ""
        if tokens:
            await ws.send(self._subscribe_msg(tokens))
            await ws.send(self._mode_msg(tokens))
        if self._lost_at is not None:
            self._queue_gap(self._lost_at)
            self._lost_at = None
        self.last_message_ns = time.monotonic_ns()
        self._set_status(FeedState.LIVE, self._expiry_note)

    async def _stream(self, ws: Any) -> str:
        """Read until the connection drops (raises) or goes silent (returns the reason)."""
        on_message = self.on_message
        silence = self.silence_timeout
        while True:
            try:
                async with asyncio.timeout(silence):
                    message = await ws.recv()
            except TimeoutError:
                return f"no data or heartbeat from Kite for {silence:.0f}s"
            on_message(message, time.monotonic_ns())

    def on_message(self, message: bytes | str, received_ns: int) -> None:
        """One websocket message: binary market data as one MarketBatch (a heartbeat only marks
        the line alive), or a text message (order update, error, broker message)."""
        self.last_message_ns = received_ns
        if type(message) is bytes:
            events = self._parser.parse(message, time.time_ns())
            if events:
                self._bus.publish(MarketBatch(self.name, events, received_ns))
        else:
            self._on_text(message)

    def _on_text(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            self._parser.bad(f"a text message that is not JSON ({len(text)} characters)")
            return
        if not isinstance(msg, dict):
            self._parser.bad("a text message that is not a JSON object")
            return
        kind, data = msg.get("type"), msg.get("data")
        if kind == "order" and isinstance(data, dict):
            self._bus.publish(KiteOrderUpdate(data))
        elif kind == "error":
            said = self._scrub(str(data))[:200]
            log.warning("Kite ticker error: %s", said)
            self._set_status(
                self._status.state, f"Kite says: {said}", retry_at=self._status.retry_at_monotonic
            )
        elif kind == "message":
            log.info("Kite message: %s", self._scrub(str(data))[:500])
        else:
            self._parser.bad(f"a text message of type {str(kind)[:40]!r} without the expected data")

    def _send_soon(self, messages: list[str]) -> None:
        ws = self._ws

        async def send() -> None:
            try:
                for text in messages:
                    await ws.send(text)
            except ConnectionClosed:
                log.info(
                    "Kite ticker closed before a subscription change was sent; it is resent on reconnect"
                )

        self._spawn(send())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- status -----------------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        self._fatal = reason
        log.error("Kite feed cannot stream: %s", reason)
        self._set_status(FeedState.ERROR, reason)

    def _set_status(self, state: FeedState, reason: str = "", *, retry_at: float | None = None) -> None:
        self._status = FeedStatus(self.name, state, reason, simulated=False, retry_at_monotonic=retry_at)
        self._bus.publish(self._status)
