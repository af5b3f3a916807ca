"""A full disk: one clear message, writing stops, no flood of tracebacks, what was committed is kept.

The disk is filled portably with a file size limit (RLIMIT_FSIZE, SIGXFSZ ignored): every write
past it fails with EFBIG, as writes to a full disk fail with ENOSPC. The store is made first
without the limit, so only what is recorded afterwards meets it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import resource
import signal
import subprocess
from pathlib import Path

import pytest

from trii_term.logs import LogFile
from trii_term.paths import Paths
from trii_term.store.db import Store, StoreFull

from .conftest import FAST, run_cli, trii_term_exe, wait_until
from .test_app import make_app, ready
from .test_signals import CLOSED, Workstation

LIMIT = 300_000  # bytes: the store (~5 MB) is read, but no WAL or new block past this is written


def _limited() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


@pytest.fixture
def made(paths: Paths) -> Paths:
    paths.config_file.write_text(FAST)
    assert run_cli("orders", paths=paths).returncode == 0  # the store exists, history imported
    assert paths.default_store.stat().st_size > LIMIT
    return paths


def ticks_in(store_path: Path) -> int:
    store = Store.open(store_path)  # opens: nothing half-written
    try:
        return store.con.execute("SELECT count(*) FROM ticks").fetchall()[0][0]
    finally:
        store.close()


@pytest.mark.slow
def test_record_stops_writing_says_why_once_and_keeps_what_was_committed(made: Paths) -> None:
    cmd = [*trii_term_exe(), "--config", str(made.config_file), "--data-dir", str(made.data_dir)]
    result = subprocess.run(
        [*cmd, "record", "--seconds", "40"],  # it stops at once when the disk is full
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limited,
        restore_signals=False,  # keep SIGXFSZ ignored
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    # one sentence that says so, not "N rows could not be written"
    assert result.stderr.count("cannot grow") == 1 and "could not be written" not in result.stderr
    assert "Logging error" not in result.stderr
    log = made.log_file.read_text(encoding="utf-8")
    assert log.count("Traceback") == 1, log  # the first failure; no retry, no flood
    assert log.count("cannot grow (the file size limit is reached)") >= 1
    assert "store write failed" not in log  # a full disk is not retried
    stored = int(re.search(r"Stored ([\d,]+) ticks", result.stdout).group(1).replace(",", ""))  # type: ignore[union-attr]
    lost = int(re.search(r"([\d,]+) LOST", result.stdout).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert lost > 0
    assert ticks_in(made.default_store) == stored  # every committed tick is there


@pytest.mark.slow
def test_the_workstation_says_the_disk_is_full_and_keeps_working(made: Paths) -> None:
    made.config_file.write_text("[providers.replay]\nspeed = 6000\n")  # fills the limit sooner
    ws = Workstation(made, "xterm-256color", columns=80, lines=24, file_size_limit=LIMIT)
    try:
        ws.wait_for(b"Recording stopped", timeout=60)  # said, even at 80 columns
        # and what to do: in the toast it starts a line (the message line under it may already
        # say something newer at this speed: the replay's loop)
        ws.wait_for(b"Free some disk space")
        ws.wait_for(b"LIVE")  # quotes still stream
        os.write(ws.master, b"\x11")  # ctrl+q
        assert ws.proc.wait(timeout=20) == 1  # the shell is told: recording stopped
    finally:
        ws.end()
    log = made.log_file.read_text(encoding="utf-8")
    assert log.count("Traceback") == 1, log
    closed = CLOSED.search(log)
    assert closed is not None and int(closed["lost"]) > 0
    assert ticks_in(made.default_store) == int(closed["trades"])


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a device that is always full)")
def test_log_records_a_full_disk_refuses_are_counted_not_printed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Found before: logging printed '--- Logging error ---' and a traceback on stderr for every
    record it could not write."""
    handler = LogFile("/dev/full", encoding="utf-8")
    log = logging.getLogger("trii_term.test_disk_full")
    log.addHandler(handler)
    log.propagate = False
    try:
        for i in range(50):
            log.error("record %d", i)
        assert capfd.readouterr().err == ""
        assert handler.lost == 50
        full, handler.stream = handler.stream, (tmp_path / "freed.log").open("a", encoding="utf-8")
        with contextlib.suppress(OSError):  # its buffer still holds what /dev/full refused
            full.close()
        log.error("after")
    finally:
        log.removeHandler(handler)
        handler.close()
    text = (tmp_path / "freed.log").read_text(encoding="utf-8")
    assert "after" in text and "50 log records before this one could not be written" in text
    assert handler.lost == 0


async def test_the_workstation_says_a_full_disk_in_one_sentence_and_its_toast_goes(paths: Paths) -> None:
    """Found: the sentence ended "…everything written before is kept.. Quotes keep streaming",
    and its toast covered the screen for 30 s (the message line keeps the text)."""
    app = make_app(paths)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await ready(app)
        writer = app.session.writer
        assert writer is not None
        full = StoreFull(paths.default_store, "the disk is full")
        # what the writer does when a write meets the end of the disk
        writer._stop_writing(full, 0, OSError(28, "No space left on device"))
        said = lambda: app.workstation.message_line.message  # noqa: E731
        await wait_until(lambda: "Recording stopped" in said())
        # why and what to do come first: the store's path (long in a deep home) comes last
        assert said() == (
            "Recording stopped: the disk is full. Free some disk space, then start trii-term again; "
            f"everything written before is kept. Quotes keep streaming. The store: {paths.default_store}"
        )
        assert ".." not in said()
        await wait_until(lambda: any("Recording stopped" in n.message for n in app._notifications))
        toasts = [n for n in app._notifications if "Recording stopped" in n.message]
        assert len(toasts) == 1 and toasts[0].message == (
            "Recording stopped: the disk is full.\n"
            "Free some disk space, then start trii-term again; everything written before is kept."
        )
        assert toasts[0].timeout <= 8  # a few seconds; the message line keeps the text
        await pilot.press("ctrl+q")
