"""`trii-term` (and `trii-term run`): the workstation, on a session that is closed whatever
happens — ctrl+q, a dropped SSH session or terminal (SIGHUP, output that fails), a kill (SIGTERM).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from trii_term.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Subcommands,
    config_error_line,
    say,
    with_config,
)

if TYPE_CHECKING:
    from trii_term.config import Config
    from trii_term.paths import Paths


def register(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("run", parents=[common], help="open the workstation (the default)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, paths: Paths) -> int:
    return with_config(lambda _args, config, paths: run_workstation(config, paths))(args, paths)


def run_workstation(config: Config, paths: Paths) -> int:
    import asyncio
    import logging

    from trii_term.config import ConfigError
    from trii_term.runtime import Shutdown, TerminalModes, TerminalOutput, give_back_heap
    from trii_term.session import Session

    log = logging.getLogger(__name__)
    try:
        session = Session(config, paths, memory_fallback=True)
    except ConfigError as exc:  # an unknown or broken provider, …
        print(config_error_line(exc), file=sys.stderr)
        return EXIT_USAGE

    terminal = TerminalModes.save()
    loop_box: list[asyncio.AbstractEventLoop] = []

    def close(reason: str) -> None:
        # on the signal thread: the app closes on its own loop, as ctrl+q does
        if loop_box:
            loop_box[0].call_soon_threadsafe(_quit_app, app)

    def force_close(until: float) -> None:
        # the deadline passed with the loop still busy: write the queue and free the store here
        _close_store_now(session, until, before_store=terminal.restore)

    # A dropped SSH session or terminal (SIGHUP, or output that fails) and a kill (SIGTERM)
    # close the workstation the way ctrl+q does, within 3 s whatever the loop is doing.
    shutdown = Shutdown(close=close, force_close=force_close)
    shutdown.install()
    session.open_store_in_background()
    from trii_term.app import TriiTermApp

    app = TriiTermApp(session)

    def terminal_gone(why: str) -> None:
        shutdown.request(why, exit_code=129)  # as for SIGHUP

    if sys.platform != "win32":
        app.driver_class = _hangup_aware_driver(terminal_gone)
    stderr = sys.stderr
    sys.stderr = TerminalOutput(stderr, terminal_gone)  # Textual's last words go there too

    async def run() -> None:
        loop_box.append(asyncio.get_running_loop())
        try:
            await app.run_async()
        finally:
            await _close_session(session)
            shutdown.closed()
            give_back_heap()  # the store's and Arrow's objects are finalized, not reported as leaks

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        log.exception("the workstation stopped with an error")
        say(f"trii-term stopped with an error: {exc}. Details: {paths.log_file}")
        return EXIT_FAILED
    finally:
        sys.stderr = stderr
        shutdown.uninstall()
    return app.return_code or EXIT_OK


def _quit_app(app) -> None:
    """Quit as ctrl+q does (no new command runs, the session stops, then the app exits)."""
    if not app.call_later(app.action_quit):
        app.exit()


async def _close_session(session) -> None:
    """Stop the feed, write what is queued and close the store — also after a start-up that was
    cut short (a signal during start-up), so the store is never left open."""
    import logging

    log = logging.getLogger(__name__)
    try:
        await session.stop()
    except Exception:
        log.exception("stopping the session failed")
    writer = session.writer
    if writer is not None:
        s = writer.stats
        log.info(
            "store closed: %d events received, %d trades, %d quotes, %d bars stored, %d skipped, %d lost",
            s.received,
            s.trades,
            s.quotes,
            s.bars,
            s.skipped,
            s.dropped,
        )


def _close_store_now(session, until: float, before_store) -> None:
    """From any thread, when the event loop cannot: write the queue, close the store, both by
    `until` (monotonic). The writer gets most of the time: what it commits is safe even if the
    process ends during the store's checkpoint."""
    import time

    writer, store = session.writer, session.store
    if writer is not None:
        writer.stop(timeout=max(0.1, until - time.monotonic() - 0.3))
    before_store()
    if store is not None:
        store.close(reader_timeout=0.05)


def _hangup_aware_driver(on_gone):
    """Textual's terminal driver, writing through `TerminalOutput`: when the terminal has gone,
    output is dropped and the workstation closes, instead of the output thread dying and the
    event loop blocking on its queue for ever."""
    from textual.drivers.linux_driver import LinuxDriver

    from trii_term.runtime import TerminalOutput

    class HangupAwareDriver(LinuxDriver):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._file = TerminalOutput(self._file, on_gone)

    return HangupAwareDriver
