"""`trii-term record`: stream the configured feed into the store, headless.

Stops after --seconds or on ctrl+c (SIGINT) / SIGTERM, writes everything queued, then prints
what was stored. A second ctrl+c while saving is ignored: nothing queued is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Iterator
from typing import TextIO

from trii_term.config import Config, ConfigError
from trii_term.domain import FeedState, FeedStatus, from_ns
from trii_term.paths import Paths
from trii_term.session import Session
from trii_term.store.db import StoreError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

log = logging.getLogger(__name__)


def run_record(
    config: Config,
    paths: Paths,
    *,
    symbols: list[str] | None,
    seconds: float | None,
    as_json: bool = False,
    out: TextIO | None = None,
) -> int:
    return asyncio.run(
        record(config, paths, symbols=symbols, seconds=seconds, as_json=as_json, out=out or sys.stdout)
    )


@contextlib.contextmanager
def _signals_set(stop: asyncio.Event) -> Iterator[None]:
    """ctrl+c (SIGINT) and SIGTERM set `stop` while recording. Loops without Unix signal
    support (Windows) raise NotImplementedError: there ctrl+c stays Python's default."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


async def record(
    config: Config,
    paths: Paths,
    *,
    symbols: list[str] | None,
    seconds: float | None,
    as_json: bool,
    out: TextIO,
) -> int:
    err = sys.stderr
    try:
        session = Session(config, paths, symbols=symbols)
    except ConfigError as exc:
        print(f"trii-term record: config error: {exc}", file=err)
        return EXIT_USAGE

    stop = asyncio.Event()
    ended: list[FeedStatus] = []  # the feed failed or ran out: recording more is pointless

    def on_status(status: FeedStatus) -> None:
        if status.state in (FeedState.ERROR, FeedState.ENDED):
            ended.append(status)
            stop.set()

    session.bus.subscribe(FeedStatus, on_status)
    with _signals_set(stop):
        try:
            await session.start()
        except ConfigError as exc:
            print(f"trii-term record: config error: {exc}", file=err)
            await session.stop()
            return EXIT_USAGE
        except StoreError as exc:
            print(f"trii-term record: {exc}", file=err)
            return EXIT_FAILED
        except Exception as exc:
            log.exception("record could not start")
            print(
                f"trii-term record: could not start: {type(exc).__name__}: {exc}. Details: {paths.log_file}",
                file=err,
            )
            await session.stop()
            return EXIT_FAILED
        for notice in session.notices:
            print(f"trii-term record: {notice}", file=err)
        watching = ", ".join(session.subscribed()) or "nothing (no symbols to record)"
        until = f"for {seconds:g}s" if seconds else "until ctrl+c"
        print(f"Recording {session.provider_name} → {session.store_path} {until}: {watching}", file=err)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()
        print("Saving…", file=err)
        await session.stop()

    failed = next((s for s in ended if s.state is FeedState.ERROR), None)
    _summary(session, out, as_json, failed.reason if failed else None)
    lost = session.writer.stats.dropped if session.writer else 0
    if failed is not None:
        print(f"trii-term record: the {session.provider_name} feed failed: {failed.reason}", file=err)
    for status in ended:
        if status.state is FeedState.ENDED:
            print(f"trii-term record: the feed ended: {status.reason}", file=err)
    if lost:
        print(f"trii-term record: {lost:,} rows could not be written (see {paths.log_file})", file=err)
    return EXIT_FAILED if failed is not None or lost else EXIT_OK


def _summary(session: Session, out: TextIO, as_json: bool, feed_error: str | None) -> None:
    writer = session.writer
    assert writer is not None
    s = writer.stats
    symbols = sorted(s.symbols)
    first = from_ns(s.first_ts) if s.first_ts is not None else None
    last = from_ns(s.last_ts) if s.last_ts is not None else None
    if as_json:
        json.dump(
            {
                "provider": session.provider_name,
                "simulated": session.clock.simulated,
                "store": str(session.store_path),
                "ticks": s.trades,
                "quotes": s.quotes,
                "symbols": symbols,
                "first": first.isoformat().replace("+00:00", "Z") if first else None,
                "last": last.isoformat().replace("+00:00", "Z") if last else None,
                "received": s.received,  # = ticks + quotes + snapshots + lost
                "snapshots": s.skipped,
                "lost": s.dropped,
                "feed_error": feed_error,
            },
            out,
            indent=2,
        )
        out.write("\n")
        return
    market = session.market_of(symbols[0] if symbols else None)
    lines = [
        f"Stored {s.trades:,} ticks and {s.quotes:,} quotes for {len(symbols)} symbols"
        + (f" ({', '.join(symbols)})" if symbols else ""),
    ]
    if first and last:
        lo, hi = first.astimezone(market.tz), last.astimezone(market.tz)
        lines.append(f"  from  {lo:%Y-%m-%d %H:%M:%S} {market.tz_abbrev(lo)}")
        lines.append(
            f"  to    {hi:%Y-%m-%d %H:%M:%S} {market.tz_abbrev(hi)}"
            + ("   (simulated time: replay)" if session.clock.simulated else "")
        )
    lines.append(f"  into  {session.store_path}")
    lines.append(
        f"  received {s.received:,} market events: every tick and quote stored, "
        f"{s.skipped:,} day snapshots not stored"
        if not s.dropped
        else f"  received {s.received:,} market events; {s.dropped:,} LOST (see the log)"
    )
    out.write("\n".join(lines) + "\n")
