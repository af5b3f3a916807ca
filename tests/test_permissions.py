"""The data dir is 0700; the store, its WAL and the logs 0600 — journal, positions and chats are
the trader's alone. Found before: 0755 and 0644 (the umask's defaults), readable by every user."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from trii_term.paths import Paths

from .conftest import FAST, run_cli, trii_term_exe

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.first_start
def test_a_new_data_dir_store_and_log_are_private(paths: Paths) -> None:
    assert not paths.data_dir.exists()
    result = run_cli("orders", paths=paths)
    assert result.returncode == 0, result.stderr
    assert mode(paths.data_dir) == 0o700
    assert mode(paths.log_dir) == 0o700
    assert mode(paths.default_store) == 0o600
    assert mode(paths.log_file) == 0o600


def test_the_wal_is_private_while_recording(paths: Paths) -> None:
    paths.config_file.write_text(FAST)
    wal = paths.default_store.with_name(paths.default_store.name + ".wal")
    cmd = [*trii_term_exe(), "--config", str(paths.config_file), "--data-dir", str(paths.data_dir), "record"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 30
        while not wal.exists() and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.02)  # polling a file the recorder will create
        assert wal.exists(), "the recorder wrote no WAL"
        assert mode(wal) == 0o600
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def test_loose_files_are_reported_by_doctor_and_tightened_by_the_next_command(paths: Paths) -> None:
    assert run_cli("orders", paths=paths).returncode == 0
    paths.data_dir.chmod(0o755)
    paths.log_dir.chmod(0o755)
    paths.default_store.chmod(0o644)
    paths.log_file.chmod(0o644)

    doctor = run_cli("doctor", paths=paths)
    line = next(x for x in doctor.stdout.splitlines() if x.split()[1:2] == ["privacy"])
    assert (
        line.startswith("warn")
        and f"{paths.default_store} (0644)" in line
        and f"{paths.data_dir} (0755)" in line
    )
    assert f"chmod 600 {paths.default_store}" in doctor.stdout
    assert mode(paths.default_store) == 0o644  # doctor changes nothing

    assert run_cli("orders", paths=paths).returncode == 0
    assert [mode(p) for p in (paths.data_dir, paths.log_dir)] == [0o700, 0o700]
    assert [mode(p) for p in (paths.default_store, paths.log_file)] == [0o600, 0o600]
    doctor = run_cli("doctor", paths=paths)
    line = next(x for x in doctor.stdout.splitlines() if x.split()[1:2] == ["privacy"])
    assert line.startswith("ok")


def test_a_store_chosen_outside_the_data_dir_is_private_and_its_folder_left_alone(
    paths: Paths, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    store = shared / "desk.duckdb"
    paths.config_file.write_text(f'[store]\npath = "{store}"\n')
    assert run_cli("orders", paths=paths).returncode == 0
    assert mode(store) == 0o600
    assert mode(shared) == 0o755  # the trader's folder, not trii-term's


@pytest.mark.first_start
def test_a_data_dir_holding_the_traders_own_files_keeps_its_mode(paths: Paths) -> None:
    paths.data_dir.mkdir(mode=0o755)
    paths.data_dir.chmod(0o755)
    (paths.data_dir / "notes.txt").write_text("mine")
    assert run_cli("orders", paths=paths).returncode == 0
    assert mode(paths.data_dir) == 0o755
    assert mode(paths.default_store) == 0o600
