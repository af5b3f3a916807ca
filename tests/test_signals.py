"""SIGHUP, SIGTERM and a closed terminal end the workstation within 3 s, in a real pty.

The workstation runs on a pseudo-terminal that is its controlling terminal, as under tmux, SSH
or a terminal emulator: closing the master side is what `tmux kill-session` or a dropped SSH
connection does (the kernel sends SIGHUP and every later write to the terminal fails with EIO).
Found before: 4 of 7 `tmux kill-session` left the workstation running, ignoring SIGTERM and
holding the store's lock — Textual's output thread died on EIO and the event loop then blocked
for ever on its full queue.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from trii_term.paths import Paths
from trii_term.store.db import Store

from .conftest import FAST, trii_term_exe

LIMIT = 3.0  # seconds from the signal (or the closed terminal) to the process gone
CLOSED = re.compile(
    r"store closed: (?P<received>\d+) events received, (?P<trades>\d+) trades, (?P<quotes>\d+) quotes, "
    r"(?P<bars>\d+) bars stored, (?P<skipped>\d+) skipped, (?P<lost>\d+) lost"
)


def _controlling_terminal(file_size_limit: int | None = None) -> None:
    """In the child, after setsid: the pty on fd 0 becomes its controlling terminal, so closing
    the master hangs it up (SIGHUP) as a terminal emulator or sshd would. With a file size
    limit, a write past it fails with EFBIG as on a full disk."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    if file_size_limit is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))


class Workstation:
    """`trii-term` on a pty (80×24 unless told), its output read all the time (a terminal that
    keeps up)."""

    def __init__(
        self,
        paths: Paths,
        term: str,
        *,
        columns: int = 80,
        lines: int = 24,
        file_size_limit: int | None = None,
    ) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        cmd = [*trii_term_exe(), "--config", str(paths.config_file), "--data-dir", str(paths.data_dir)]
        env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR")}
        self.proc = subprocess.Popen(
            cmd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=functools.partial(_controlling_terminal, file_size_limit),
            restore_signals=file_size_limit is None,  # keep SIGXFSZ ignored
            env={**env, "TERM": term},
        )
        os.close(slave)
        self._output = bytearray()
        self._changed = threading.Condition()
        self._master_open = True
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            with self._changed:
                self._output += data
                self._changed.notify_all()
            if not data:
                return

    def wait_for(self, text: bytes, timeout: float = 60) -> None:
        with self._changed:
            if not self._changed.wait_for(
                lambda: text in self._output or self.proc.poll() is not None, timeout
            ):
                raise AssertionError(f"{text!r} never appeared on the screen")
        assert self.proc.poll() is None, f"the workstation ended early: {bytes(self._output[-2000:])!r}"

    @property
    def output(self) -> bytes:
        with self._changed:
            return bytes(self._output)

    def wait_closed(self, timeout: float = 10) -> None:
        """Until everything the process wrote has been read (its end of the pty is closed)."""
        self._reader.join(timeout)

    def close_terminal(self) -> None:
        self._master_open = False
        os.close(self.master)

    def seconds_to_exit(self) -> float:
        started = time.monotonic()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=LIMIT + 5)
        return time.monotonic() - started

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._master_open:
            with contextlib.suppress(OSError):
                os.close(self.master)


def hang_up(ws: Workstation, how: str) -> None:
    if how == "close":
        ws.close_terminal()
    else:
        ws.proc.send_signal(getattr(signal, how))


def assert_store_free_and_complete(paths: Paths) -> None:
    """The lock is released (this process opens the store for writing) and every row the writer
    was given is in it."""
    store = Store.open(paths.default_store)
    try:
        ticks = store.con.execute("SELECT count(*) FROM ticks").fetchall()[0][0]
        quotes = store.con.execute("SELECT count(*) FROM quotes").fetchall()[0][0]
    finally:
        store.close()
    log = paths.log_file.read_text(encoding="utf-8")
    assert "rows unwritten" not in log and "queue full" not in log, log[-3000:]
    closed = CLOSED.search(log)
    if closed is None:  # closed by force after the deadline: the writer still wrote the queue
        assert "writing the queue and closing the store directly" in log, log[-3000:]
        assert ticks > 0
        return
    n = {k: int(v) for k, v in closed.groupdict().items()}
    assert n["lost"] == 0
    assert n["received"] == n["trades"] + n["quotes"] + n["bars"] + n["skipped"]
    assert (ticks, quotes) == (n["trades"], n["quotes"]) and ticks > 0


@pytest.fixture
def fast(paths: Paths) -> Paths:
    paths.config_file.write_text(FAST)
    return paths


# closing the terminal under every TERM (the case that hung); the signals under two
CASES = [
    *[("close", term) for term in ("screen", "xterm-256color", "xterm", "linux")],
    *[(sig, term) for sig in ("SIGHUP", "SIGTERM") for term in ("screen", "xterm-256color")],
]


@pytest.mark.slow
@pytest.mark.parametrize(("how", "term"), CASES)
def test_the_workstation_ends_within_3_s_with_the_store_written_and_free(
    fast: Paths, how: str, term: str
) -> None:
    ws = Workstation(fast, term)
    try:
        ws.wait_for(b"LIVE")  # quotes stream and the writer has rows queued
        hang_up(ws, how)
        took = ws.seconds_to_exit()
    finally:
        ws.end()
    assert took < LIMIT, f"{how} with TERM={term}: still running after {took:.1f} s"
    assert ws.proc.returncode in (0, 128 + signal.SIGHUP, 128 + signal.SIGTERM)
    assert_store_free_and_complete(fast)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["close", "SIGTERM"])
def test_a_hang_up_during_start_up_ends_it_within_3_s(fast: Paths, how: str) -> None:
    """Before the first quotes: the store may still be opening, the screen is being drawn."""
    ws = Workstation(fast, "xterm-256color")
    try:
        ws.wait_for(b"\x1b[?1049h")  # the workstation has taken over the terminal
        hang_up(ws, how)
        took = ws.seconds_to_exit()
    finally:
        ws.end()
    assert took < LIMIT, f"{how} during start-up: still running after {took:.1f} s"
    Store.open(fast.default_store).close()  # the lock is free


STUCK = """
import sys, threading, time
from pathlib import Path
from trii_term.runtime import Shutdown

marker = Path(sys.argv[1])
def force_close(until):
    marker.write_text(f"{until - time.monotonic():.2f}")
shutdown = Shutdown(close=lambda reason: None, force_close=force_close)
assert shutdown.install()
print("ready", flush=True)
threading.Event().wait()  # a main thread that never returns to any loop
"""


def test_the_deadline_holds_when_the_main_thread_never_returns(tmp_path: Path) -> None:
    """Whatever the app is doing, a SIGTERM ends the process within the limit, after the queue
    was written and the store closed by the signal thread itself."""
    marker = tmp_path / "forced"
    proc = subprocess.Popen([sys.executable, "-c", STUCK, str(marker)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = proc.wait(timeout=LIMIT + 5)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert took < LIMIT
    assert code == 128 + signal.SIGTERM
    assert marker.exists() and float(marker.read_text()) > 0.5  # the writer had time left


def test_output_to_a_closed_terminal_is_dropped_and_reported_once() -> None:
    from trii_term.runtime import TerminalOutput

    master, slave = os.openpty()
    tty = os.fdopen(slave, "w", encoding="utf-8")
    gone: list[str] = []
    out = TerminalOutput(tty, gone.append)
    out.write("hello")
    out.flush()
    assert os.read(master, 100) == b"hello" and not gone
    os.close(master)  # the terminal goes away
    for _ in range(100):  # more than the UI's output queue holds
        assert out.write("x" * 10_000) == 10_000
        out.flush()
    assert out.gone and len(gone) == 1 and "terminal closed" in gone[0]
    with contextlib.suppress(OSError):
        tty.close()
