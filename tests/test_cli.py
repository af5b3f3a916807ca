"""The real `trii-term` entry point: --version/--help, record, doctor, a locked store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from trii_term import __version__
from trii_term.domain import US
from trii_term.feeds.replay_path import day_path
from trii_term.paths import Paths
from trii_term.store import migrations
from trii_term.store.db import Store
from trii_term.store.history import daily_history

from .conftest import run_cli, trii_term_exe

FAST = "[providers.replay]\nspeed = 600\n"


def line_for(output: str, label: str) -> str:
    """The doctor line whose label (second column) is `label`."""
    for line in output.splitlines():
        parts = line.split()
        if len(parts) > 1 and parts[1] == label:
            return line
    raise AssertionError(f"no {label!r} line in:\n{output}")


def test_version_and_help() -> None:
    v = run_cli("--version")
    assert v.returncode == 0 and v.stdout.strip() == f"trii-term {__version__}"
    h = run_cli("--help")
    assert h.returncode == 0
    for word in ("record", "doctor", "--config", "--data-dir", "ctrl+p"):
        assert word in h.stdout
    r = run_cli("record", "--help")
    assert "--symbols" in r.stdout and "--seconds" in r.stdout
    m = subprocess.run([sys.executable, "-m", "trii_term", "--version"], capture_output=True, text=True)
    assert m.stdout.strip() == f"trii-term {__version__}"


def test_record_for_some_seconds_prints_what_it_stored(paths: Paths) -> None:
    paths.config_file.write_text(FAST)
    result = run_cli("record", "--seconds", "2", paths=paths)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "for 4 symbols (AAPL, GOOG, IBM, MSFT)" in out
    assert "from  2013-03-01 09:30:00 EST" in out
    assert str(paths.default_store) in out
    ticks = int(out.split("Stored ")[1].split(" ticks")[0].replace(",", ""))
    quotes = int(out.split(" and ")[1].split(" quotes")[0].replace(",", ""))
    assert ticks > 1000 and quotes > 1000
    store = Store.open(paths.default_store, read_only=True)
    try:
        assert store.con.execute("SELECT count(*) FROM ticks").fetchone() == (ticks,)
        assert store.con.execute("SELECT count(*) FROM quotes").fetchone() == (quotes,)
    finally:
        store.close()


def test_record_json_and_chosen_symbols(paths: Paths) -> None:
    paths.config_file.write_text(FAST)
    result = run_cli("record", "--symbols", "ibm,SPX", "--seconds", "1", "--json", paths=paths)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["symbols"] == ["IBM", "SPX"] and summary["simulated"] is True
    assert summary["provider"] == "replay" and summary["ticks"] > 0
    assert summary["first"] == "2013-03-01T14:30:00Z"


def test_record_refuses_unknown_symbols(paths: Paths) -> None:
    result = run_cli("record", "--symbols", "TSLA", "--seconds", "1", paths=paths)
    assert result.returncode == 2
    assert "unknown symbol TSLA" in result.stderr and "AAPL" in result.stderr
    assert "Traceback" not in result.stderr


def _start_recorder(paths: Paths, *extra: str) -> subprocess.Popen[str]:
    cmd = [
        *trii_term_exe(),
        "--config",
        str(paths.config_file),
        "--data-dir",
        str(paths.data_dir),
        "record",
        *extra,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()  # "Recording replay → … until ctrl+c: …"
    assert line.startswith("Recording"), line
    return proc


def test_ctrl_c_loses_nothing(paths: Paths) -> None:
    """Interrupt a recording: every trade the replay produced up to the last stored one is in
    the store, once. The replay is deterministic, so the expected tape can be rebuilt."""
    paths.config_file.write_text('[feed]\nsymbols = ["IBM"]\n[providers.replay]\nspeed = 300\n')
    proc = _start_recorder(paths, "--json")
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    stored = summary["ticks"]
    # everything the feed handed over was stored: no queue left behind by the interrupt
    assert summary["received"] == summary["ticks"] + summary["quotes"] + summary["snapshots"]
    assert summary["lost"] == 0 and summary["snapshots"] == 1

    store = Store.open(paths.default_store, read_only=True)
    try:
        rows = store.con.execute(
            "SELECT epoch_ns(ts), price, size FROM ticks WHERE symbol = 'IBM' ORDER BY ts"
        ).fetchall()
        bar = daily_history(store.con, ["IBM"], date(2013, 3, 1), date(2013, 3, 1))["IBM"][0]
    finally:
        store.close()
    assert len(rows) == stored > 0
    o, c = US.session_bounds(bar.day)
    path = day_path("IBM", bar, o, c, 1)
    expected = []
    for k in range(path.segments):
        trades, _ = path.segment(k)
        expected += [(t.ts // 1000 * 1000, t.price, t.size) for t in trades if t.ts <= rows[-1][0]]
        if trades and trades[-1].ts > rows[-1][0]:
            break
    assert rows == expected


def test_a_second_recorder_is_told_the_store_is_in_use(paths: Paths) -> None:
    paths.config_file.write_text(FAST)
    first = _start_recorder(paths)
    try:
        second = run_cli("record", "--seconds", "1", paths=paths)
        assert second.returncode == 1
        assert "is open in another trii-term" in second.stderr and f"PID {first.pid}" in second.stderr
        assert "--data-dir" in second.stderr and "Traceback" not in second.stderr
        doctor = run_cli("doctor", paths=paths)
        assert doctor.returncode == 0
        assert f"in use by PID {first.pid}" in doctor.stdout
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    assert first.returncode == 0


@pytest.mark.first_start
def test_doctor_on_the_defaults(paths: Paths) -> None:
    result = run_cli("doctor", paths=paths, env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    assert result.returncode == 0, result.stdout
    for label in ("versions", "config", "data", "store", "history", "time", "terminal", "keyring", "log"):
        line_for(result.stdout, label)
    assert f"trii-term {__version__}" in result.stdout and "duckdb" in result.stdout
    assert "does not exist: defaults in use" in result.stdout
    assert "will be created on first run" in result.stdout
    keyring = line_for(result.stdout, "keyring")
    assert keyring.startswith("warn") and "no usable keyring" in keyring
    assert "offline defaults need no credentials" in result.stdout
    assert "TERM=" in result.stdout and "output is redirected" in result.stdout
    assert "trii-term can run on its defaults" in result.stdout


def test_doctor_reports_a_store_after_recording(paths: Paths) -> None:
    paths.config_file.write_text(FAST)
    assert run_cli("record", "--seconds", "1", paths=paths).returncode == 0
    result = run_cli("doctor", paths=paths)
    store_line = line_for(result.stdout, "store")
    assert (
        store_line.startswith("ok")
        and f"MB, schema {migrations.LATEST}," in store_line
        and "ticks" in store_line
    )


def test_doctor_flags_a_broken_config_and_exits_2(paths: Paths) -> None:
    paths.config_file.write_text("[feed]\nprovider = 3\n")
    result = run_cli("doctor", paths=paths)
    assert result.returncode == 2
    line = line_for(result.stdout, "config")
    assert line.startswith("PROBLEM") and "line 2" in line and "feed.provider" in line


def test_doctor_flags_an_unwritable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"  # a folder cannot be made inside a file, even by root
    blocker.write_text("")
    target = blocker / "data"
    result = run_cli("doctor", "--data-dir", str(target), "--config", str(tmp_path / "none.toml"))
    assert result.returncode == 1
    assert "PROBLEM" in result.stdout and "not writable" in result.stdout


def test_doctor_says_ok_for_a_usable_keyring(paths: Paths) -> None:
    here = Path(__file__).parent
    env = {
        "PYTHON_KEYRING_BACKEND": "memory_keyring.MemoryKeyring",
        "PYTHONPATH": str(here / "fakes") + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    result = run_cli("doctor", paths=paths, env=env)
    keyring = line_for(result.stdout, "keyring")
    assert keyring.startswith("ok") and "MemoryKeyring" in keyring


@pytest.mark.parametrize("args", [["record", "--seconds", "0"], ["record", "--symbols", ","]])
def test_record_rejects_bad_arguments(paths: Paths, args: list[str]) -> None:
    result = run_cli(*args, paths=paths)
    assert result.returncode == 2 and "trii-term record:" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_the_workstation_closes_cleanly_on_sigterm_and_sighup(paths: Paths, sig: signal.Signals) -> None:
    """A dropped SSH session (SIGHUP) or a kill (SIGTERM) writes the store and closes it."""
    import pty
    import select

    paths.config_file.write_text(FAST)
    master, slave = pty.openpty()
    cmd = [*trii_term_exe(), "--config", str(paths.config_file), "--data-dir", str(paths.data_dir)]
    proc = subprocess.Popen(
        cmd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 20
        while b"LIVE" not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                seen += os.read(master, 65536)
        assert b"LIVE" in seen, "the workstation did not come up"
        time.sleep(1.0)  # let some ticks arrive
        proc.send_signal(sig)
        end = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < end:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    os.read(master, 65536)
                except OSError:
                    break
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    store = Store.open(paths.default_store, read_only=True)  # closed: it opens without a lock error
    try:
        assert store.con.execute("SELECT count(*) FROM ticks").fetchall()[0][0] > 0
    finally:
        store.close()
