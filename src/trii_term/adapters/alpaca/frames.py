"""The frames of Alpaca's market-data stream, read on the loop: each JSON array becomes one
MarketBatch; anything malformed or impossible is counted, logged at most every
`MALFORMED_LOG_SECONDS`, and skipped, while the good elements of the same array are kept; the
control messages (subscription acks, errors) change the feed's state."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from trii_term import credentials
from trii_term.adapters.alpaca.history import AlpacaHistory
from trii_term.adapters.alpaca.wire import (
    _BAR_KINDS,
    _CONTROL_KINDS,
    _DECODER,
    _NUM,
    _SKIPPED_KINDS,
    CLOSING_CODES,
    MALFORMED_LOG_SECONDS,
    NAME,
    TOO_BIG,
    StreamError,
    _bar,
    error_reason,
    parse_time_ns,
)
from trii_term.domain import (
    NS_PER_MINUTE,
    FeedState,
    MarketBatch,
    MarketEvent,
    Quote,
    Trade,
)

if TYPE_CHECKING:
    from trii_term.config import Config

log = logging.getLogger(__name__)


class AlpacaFrames(AlpacaHistory):
    """The frame-reading half of `AlpacaFeed` (its base)."""

    # what it uses of the feed (set in AlpacaFeed.__init__)
    _config: Config
    _creds: credentials.Credentials | None
    _closing: StreamError | None
    _last_bar_ns: int | None
    _live_since: float | None
    _malformed_logged: int
    _next_malformed_log: float
    server_subscription: dict[str, list[str]]
    feed: str
    frames: int
    events: int
    malformed: int
    skipped: Counter[str]

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
