"""`trii-term record`: stream the configured feed into the store, headless.

Stops after --seconds, on ctrl+c (SIGINT), SIGTERM or SIGHUP (the terminal went away), or when
the feed fails for good (keys or token refused, the connection limit, no instruments): writes
everything queued, closes the store, then prints what was stored. A signal while saving is
ignored: nothing queued is lost. A SIGHUP that was ignored when it started (`nohup`) stays
ignored. A terminal that hung up cannot stop the saving: output that cannot be written is
dropped (and logged).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from trii_term.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Subcommands, with_config

if TYPE_CHECKING:
    import asyncio

    from trii_term.config import Config
    from trii_term.domain import FeedStatus
    from trii_term.paths import Paths
    from trii_term.session import Session

START_GRACE_SECONDS = 1.5  # a signal while starting: how long the start may still take

log = logging.getLogger(__name__)


def register(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    rec = sub.add_parser(
        "record",
        parents=[common],
        help="stream the configured feed into the store, headless",
        description="Stream the configured provider into the store until --seconds pass, ctrl+c, "
        "SIGTERM or SIGHUP, then print what was stored. Nothing queued is lost. Exits 1 when the "
        "provider refuses the keys, the token or the plan, or the disk is full.",
    )
    rec.add_argument("--symbols", metavar="A,B", help="symbols to record (default: every watchlist symbol)")
    rec.add_argument(
        "--seconds", type=float, metavar="N", help="stop after N seconds (default: until ctrl+c)"
    )
    rec.add_argument("--json", action="store_true", help="print the summary as JSON")
    rec.set_defaults(run=with_config(_record))


def _record(args: argparse.Namespace, config: Config, paths: Paths) -> int:
    if args.seconds is not None and args.seconds <= 0:
        print("trii-term record: --seconds must be more than 0", file=sys.stderr)
        return EXIT_USAGE
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()] if args.symbols else None
    if args.symbols is not None and not symbols:
        print(
            "trii-term record: --symbols needs at least one symbol, e.g. --symbols AAPL,MSFT",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return run_record(config, paths, symbols=symbols, seconds=args.seconds, as_json=args.json)


def run_record(
    config: Config,
    paths: Paths,
    *,
    symbols: list[str] | None,
    seconds: float | None,
    as_json: bool = False,
    out: TextIO | None = None,
) -> int:
    import asyncio

    return asyncio.run(
        record(config, paths, symbols=symbols, seconds=seconds, as_json=as_json, out=out or sys.stdout)
    )


@contextlib.contextmanager
def _signals_set(on_signal: Callable[[], None]) -> Iterator[None]:
    """ctrl+c (SIGINT), SIGTERM and SIGHUP call `on_signal` while recording; a SIGHUP ignored
    by whoever started us (`nohup trii-term record &`) stays ignored. Loops without Unix signal
    support (Windows) raise NotImplementedError: there ctrl+c stays Python's default."""
    import asyncio

    loop = asyncio.get_running_loop()
    signals = [signal.SIGINT, signal.SIGTERM]
    hup = getattr(signal, "SIGHUP", None)
    if hup is not None and signal.getsignal(hup) is not signal.SIG_IGN:
        signals.append(hup)
    handled = []
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
            handled.append(sig)
    try:
        yield
    finally:
        for sig in handled:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def _say(text: str, file: TextIO) -> None:
    """One line for the trader. A terminal that hung up (EIO) or a closed pipe must not stop
    the saving: the line goes to the log instead, and the stream is pointed at /dev/null so
    that Python's last flush cannot fail either."""
    try:
        print(text, file=file, flush=True)
    except (OSError, ValueError):
        log.info("could not write to the terminal: %s", text)
        _silence(file)


def _silence(file: TextIO) -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, file.fileno())
        os.close(devnull)


async def _start(session: Session, signalled: asyncio.Event) -> bool:
    """Start the session; False when a signal came first and the start was abandoned (after
    `START_GRACE_SECONDS`, so a start about to finish still finishes cleanly)."""
    import asyncio

    starting = asyncio.ensure_future(session.start())
    waiting = asyncio.ensure_future(signalled.wait())
    try:
        await asyncio.wait({starting, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            await asyncio.wait({starting}, timeout=START_GRACE_SECONDS)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return False
        starting.result()  # raises what the start raised
        return True
    finally:
        waiting.cancel()


async def record(
    config: Config,
    paths: Paths,
    *,
    symbols: list[str] | None,
    seconds: float | None,
    as_json: bool,
    out: TextIO,
) -> int:
    import asyncio

    from trii_term.config import ConfigError
    from trii_term.domain import FeedState, FeedStatus
    from trii_term.session import Session
    from trii_term.store.db import StoreError

    err = sys.stderr
    try:
        session = Session(config, paths, symbols=symbols)
    except ConfigError as exc:
        _say(f"trii-term record: config error: {exc}", err)
        return EXIT_USAGE

    stop = asyncio.Event()  # a signal, or the feed failed
    signalled = asyncio.Event()

    def on_signal() -> None:
        signalled.set()
        stop.set()

    ended: list[FeedStatus] = []  # the feed failed or ran out: recording more is pointless

    def on_status(status: FeedStatus) -> None:
        if status.state in (FeedState.ERROR, FeedState.ENDED):
            ended.append(status)
            stop.set()

    def failure() -> FeedStatus | None:
        return next((s for s in ended if s.state is FeedState.ERROR), None)

    session.bus.subscribe(FeedStatus, on_status)
    with _signals_set(on_signal):
        try:
            started = await _start(session, signalled)
        except ConfigError as exc:
            await session.stop()
            failed = failure()
            if failed is not None:  # e.g. "unknown symbol" because the token was refused
                _say(
                    f"trii-term record: the {session.provider_name} feed cannot stream: {failed.reason}", err
                )
                return EXIT_FAILED
            _say(f"trii-term record: config error: {exc}", err)
            return EXIT_USAGE
        except StoreError as exc:
            _say(f"trii-term record: {exc}", err)
            return EXIT_FAILED
        except Exception as exc:
            log.exception("record could not start")
            _say(
                f"trii-term record: could not start: {type(exc).__name__}: {exc}. Details: {paths.log_file}",
                err,
            )
            await session.stop()
            return EXIT_FAILED
        if not started:
            _say("trii-term record: stopped while starting; nothing was recorded", err)
            await session.stop()
            return EXIT_OK
        # (a feed that failed at once makes its symbols look unknown: no notices then)
        if failure() is None and not signalled.is_set():
            for notice in session.notices:
                _say(f"trii-term record: {notice}", err)
            watching = ", ".join(session.subscribed()) or "nothing (no symbols to record)"
            until = f"for {seconds:g}s" if seconds else "until ctrl+c"
            _say(f"Recording {session.provider_name} → {session.store_path} {until}: {watching}", err)
            disk = asyncio.create_task(_watch_disk(session, stop), name="record-disk")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await stop.wait()
            disk.cancel()
        _say("Saving…", err)
        await session.stop()
        # still under the handlers: a signal while the summary is written changes nothing
        failed = failure()
        _summary(session, out, as_json, failed.reason if failed else None)
        lost = session.writer.stats.dropped if session.writer else 0
        if failed is not None:
            _say(f"trii-term record: the {session.provider_name} feed failed: {failed.reason}", err)
        for status in ended:
            if status.state is FeedState.ENDED:
                _say(f"trii-term record: the feed ended: {status.reason}", err)
        full = session.writer.stats.full if session.writer else None
        if full is not None:  # the disk filled: one sentence, what was committed is kept
            _say(f"trii-term record: {full}", err)
        elif lost:
            _say(f"trii-term record: {lost:,} rows could not be written (see {paths.log_file})", err)
    return EXIT_FAILED if failed is not None or lost or full is not None else EXIT_OK


async def _watch_disk(session: Session, stop: asyncio.Event) -> None:
    """A full disk stops the recording at once (the writer has stopped writing)."""
    import asyncio

    while not stop.is_set():
        writer = session.writer
        if writer is not None and writer.stats.full is not None:
            stop.set()
            return
        await asyncio.sleep(0.2)


def _summary(session: Session, out: TextIO, as_json: bool, feed_error: str | None) -> None:
    from trii_term.domain import from_ns

    writer = session.writer
    assert writer is not None
    s = writer.stats
    symbols = sorted(s.symbols)
    first = from_ns(s.first_ts) if s.first_ts is not None else None
    last = from_ns(s.last_ts) if s.last_ts is not None else None
    if as_json:
        summary: dict[str, Any] = {
            "provider": session.provider_name,
            "simulated": session.clock.simulated,
            "store": str(session.store_path),
            "ticks": s.trades,
            "quotes": s.quotes,
            "bars": s.bars,  # provider bars (the REST backfill, the stream's bars) stored
            "stored": s.trades + s.quotes,  # = ticks + quotes
            "symbols": symbols,
            "first": first.isoformat().replace("+00:00", "Z") if first else None,
            "last": last.isoformat().replace("+00:00", "Z") if last else None,
            "received": s.received,  # = stored + snapshots + bars + lost
            "snapshots": s.skipped,
            "lost": s.dropped,
            "feed_error": feed_error,
        }
        _write(json.dumps(summary, indent=2) + "\n", out)
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
    if s.bars:
        lines.append(f"  and   {s.bars:,} bars from the provider (history and the stream's bars)")
    if s.dropped:
        lines.append(f"  received {s.received:,} market events; {s.dropped:,} LOST (see the log)")
    elif feed_error is not None and not s.received:
        lines.append("  nothing was recorded: the feed failed")
    elif feed_error is not None:
        lines.append(
            f"  received {s.received:,} market events before the feed failed, all of them written "
            f"({s.skipped:,} day snapshots not stored); the recording stopped there"
        )
    else:
        lines.append(
            f"  received {s.received:,} market events: every tick, quote and bar stored, "
            f"{s.skipped:,} day snapshots not stored"
        )
    _write("\n".join(lines) + "\n", out)


def _write(text: str, out: TextIO) -> None:
    try:
        out.write(text)
        out.flush()
    except (OSError, ValueError):
        log.info("could not write the summary to the terminal:\n%s", text)
        _silence(out)
