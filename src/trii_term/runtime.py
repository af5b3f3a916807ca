"""Process-wide runtime policy, in one place: how the process ends on a signal, and what the
cyclic garbage collector scans. Screens and widgets never set either; `cli` installs the signal
watch for one workstation run, the app and the chat session ask for the heap to be frozen.

Ending on SIGTERM, SIGHUP or a closed terminal, within a deadline
-----------------------------------------------------------------

A handler run by the event loop cannot help when the loop itself is stuck: Textual's output
thread died on a closed terminal (EIO) and the loop then waited for ever on the thread's full
queue, so SIGTERM was never handled and the store stayed locked (`tmux kill-session` left
orphans). Here the signals are read by a thread of their own, from the fd CPython's C-level
handler writes to the moment a signal arrives, whichever thread is running:

1. the first SIGTERM/SIGHUP (or `request()`, e.g. when the terminal has gone) asks the app to
   close the way ctrl+q does: the feed stops, the queue is written, the store is closed;
2. if that has not finished within `deadline` seconds, this thread writes the queue and closes
   the store itself (`force_close(until)`), then ends the process;
3. the process ends at `limit` seconds whatever happens (a library thread that never returns,
   an import that holds the interpreter, must not keep it alive with the store locked).

The operating system releases the store's lock when the process ends, and what the writer
committed is in DuckDB's write-ahead log, so in every case the store is intact and free for the
next trii-term within `limit` seconds.

The heap out of the collector's scans
-------------------------------------

What start-up built (modules, the store, Textual's widgets, caches) is moved out of the cyclic
collector's reach once the first frames are out (`FREEZE_HEAP_AFTER`), and what the first AI
reply loaded (the SDK) after that reply: a full collection over that heap stalled the screen
for 150-180 ms every second or so while a chat reply or a busy feed allocated (measured in
bench/chat.py). Objects made later are collected as usual. At exit the heap is given back
(`give_back_heap`), so the store's and Arrow's objects are finalized, not reported as leaks.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

log = logging.getLogger(__name__)


FREEZE_HEAP_AFTER = 2.0  # seconds after the chart attaches: start-up's heap leaves the GC's scans


def freeze_heap() -> None:
    """Move every object alive now out of the cyclic collector's scans (see the module
    docstring). No collection first: that alone is such a stall; what start-up left as garbage
    is small and stays."""
    gc.freeze()


def give_back_heap() -> None:
    """At exit: the frozen heap is scanned again and collected, so what it holds is finalized."""
    gc.unfreeze()
    gc.collect()


SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
_STOP_WATCHING = b"\0"  # written by uninstall(): no signal has number 0


class Shutdown:
    """Watches SIGTERM/SIGHUP for the life of one workstation run (see the module docstring)."""

    def __init__(
        self,
        *,
        close: Callable[[str], None],
        force_close: Callable[[float], None],
        deadline: float = 1.5,
        limit: float = 2.7,
    ) -> None:
        self._close = close
        self._force_close = force_close
        self.deadline = deadline
        self.limit = limit
        self.reason: str | None = None
        self.forced = False
        self._exit_code = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._never = threading.Event()  # a timed wait that is not a sleep
        self._fds: tuple[int, int] | None = None
        self._previous_fd = -1
        self._previous: dict[signal.Signals, Any] = {}
        self._watcher: threading.Thread | None = None

    # -- the main thread ----------------------------------------------------------------------

    def install(self) -> bool:
        """Watch the signals (main thread only). False where that is not possible: then the
        signals keep their previous handling."""
        if not SIGNALS or threading.current_thread() is not threading.main_thread():
            return False
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # the C-level handler must never block
        try:
            self._previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        except (ValueError, OSError):
            os.close(read_fd)
            os.close(write_fd)
            return False
        self._fds = (read_fd, write_fd)
        for sig in SIGNALS:
            # a Python-level handler only so the default action (die at once, the queue unwritten)
            # is not taken; the watcher thread does the work
            self._previous[sig] = signal.signal(sig, _ignore)
        self._watcher = threading.Thread(target=self._watch, name="trii-signals", daemon=True)
        self._watcher.start()
        return True

    def uninstall(self) -> None:
        """Give the signals back (the orderly close is over)."""
        if self._fds is None:
            return
        for sig, handler in self._previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, handler)
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(self._previous_fd)
        read_fd, write_fd = self._fds
        self._fds = None
        with contextlib.suppress(OSError):
            os.write(write_fd, _STOP_WATCHING)
        if self._watcher is not None:
            self._watcher.join(1.0)
        for fd in (read_fd, write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- any thread ---------------------------------------------------------------------------

    def request(self, reason: str, *, exit_code: int = 128 + signal.SIGTERM) -> None:
        """Close now, for `reason`; the deadline starts. Later requests change nothing.
        `exit_code` is used only if the process has to be ended by force."""
        with self._lock:
            if self.reason is not None:
                log.info("%s while closing (%s)", reason, self.reason)
                return
            self.reason = reason
            self._exit_code = exit_code
        log.warning("closing the workstation: %s", reason)
        started = time.monotonic()
        threading.Thread(
            target=self._enforce_deadline, args=(started,), name="trii-deadline", daemon=True
        ).start()
        try:
            self._close(reason)
        except Exception:  # the loop is already closed, …: the deadline still holds
            log.exception("asking the workstation to close failed")

    def closed(self) -> None:
        """The orderly close is done: queue written, store closed."""
        self._closed.set()

    # -- the watcher threads ------------------------------------------------------------------

    def _watch(self) -> None:
        fds = self._fds
        assert fds is not None
        read_fd = fds[0]
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data or _STOP_WATCHING in data:
                return
            for number in data:
                if number in SIGNALS:
                    sig = signal.Signals(number)
                    self.request(f"{sig.name} received", exit_code=128 + number)

    def _enforce_deadline(self, started: float) -> None:
        end = started + self.limit
        if not self._closed.wait(self.deadline):
            self.forced = True
            log.error(
                "the workstation did not close within %.1f s of %s: writing the queue and closing "
                "the store directly",
                self.deadline,
                self.reason,
            )
            _log_thread_stacks()
            closer = threading.Thread(
                target=self._run_force_close, args=(end,), name="trii-force-close", daemon=True
            )
            closer.start()
            closer.join(max(0.0, end - time.monotonic()))
            if closer.is_alive():
                log.error("closing the store did not finish in time; ending anyway")
        else:
            # closed in time: the process ends by itself now, normally long before this wait ends
            self._never.wait(max(0.0, end - time.monotonic()))
        log.warning("ending the process %.1f s after %s", time.monotonic() - started, self.reason)
        _flush_logs()
        os._exit(self._exit_code if self.forced else 0)

    def _run_force_close(self, until: float) -> None:
        try:
            self._force_close(until)
        except Exception:
            log.exception("closing the store directly failed")


def _ignore(signum: int, frame: object) -> None:
    """The watcher thread handles the signal (see `Shutdown.install`)."""


def _log_thread_stacks() -> None:
    """Where every thread is, into the log file: why the orderly close did not finish."""
    import faulthandler

    for handler in logging.getLogger().handlers:
        stream = getattr(handler, "stream", None)
        if stream is None or stream in (sys.stdout, sys.stderr):
            continue
        with contextlib.suppress(Exception):
            stream.flush()
            faulthandler.dump_traceback(stream, all_threads=True)
            return


def _flush_logs() -> None:
    """Flush the log files without waiting on a handler's lock (a stuck thread may hold it)."""
    for handler in logging.getLogger().handlers:
        stream = getattr(handler, "stream", None)
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.flush()


class TerminalOutput:
    """The terminal as the UI's output thread writes to it. Once a write fails — the terminal
    has gone (EIO after a hang-up, EPIPE) — `on_gone` is called once and everything after is
    dropped, so the output thread keeps draining its queue instead of dying and leaving the
    event loop waiting for ever on that queue."""

    def __init__(self, file: TextIO, on_gone: Callable[[str], None]) -> None:
        self._file = file
        self._on_gone = on_gone
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self._file.write(text)
            except BlockingIOError:  # a terminal in non-blocking mode that is full: not gone
                pass
            except (OSError, ValueError) as exc:
                self._lost(exc)
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._file.flush()
            except BlockingIOError:
                pass
            except (OSError, ValueError) as exc:
                self._lost(exc)

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return self._file.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def _lost(self, exc: BaseException) -> None:
        self.gone = True
        why = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc)
        self._on_gone(f"the terminal closed ({why})")


class TerminalModes:
    """The terminal's modes before the workstation took it over, given back when the workstation
    has to be closed without the UI (the deadline passed): line mode and echo, the main screen,
    the cursor, no mouse reports."""

    RESET = "\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?2004l\x1b[?1049l\x1b[?25h"

    def __init__(self, fd: int, attrs: list[Any] | None) -> None:
        self.fd, self.attrs = fd, attrs

    @classmethod
    def save(cls) -> TerminalModes:
        try:
            import termios

            fd = sys.__stdin__.fileno()
            return cls(fd, termios.tcgetattr(fd))
        except Exception:  # not a terminal, no termios (Windows)
            return cls(-1, None)

    def restore(self) -> None:
        if self.attrs is None:
            return
        import termios

        with contextlib.suppress(Exception):
            termios.tcsetattr(self.fd, termios.TCSANOW, self.attrs)
        with contextlib.suppress(Exception):
            os.write(sys.__stderr__.fileno(), self.RESET.encode())
