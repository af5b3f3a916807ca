"""Every command, given a store it cannot use, says so in one sentence and exits 1.

Found before: 14 of 42 runs on corrupt stores and 12 of 30 on tampered schemas ended in a
traceback (or, for `doctor`, in `ok`). Each damage kind below is made on a copy of a small real
store, and each command is the real console script in a subprocess.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from trii_term.paths import Paths, resolve_paths, shipped_data_dir
from trii_term.store import migrations
from trii_term.store.db import Store
from trii_term.store.history import import_shipped_history

from .conftest import run_cli
from .test_signals import Workstation

LOG_WARNING = "cannot write the log file"  # a read-only data dir: said once, beside the store's line


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small store as trii-term leaves it: migrated, the shipped history imported, some ticks,
    quotes and a paper order, checkpointed."""
    path = tmp_path_factory.mktemp("real") / "trii.duckdb"
    store = Store.open(path)
    con = store.con
    import_shipped_history(con, shipped_data_dir())
    con.execute(
        "INSERT INTO ticks SELECT make_timestamp(1362148200000000 + i * 1000), 'AAPL', 400 + i % 97, "
        "1 + i % 5, 'replay' FROM range(200000) t(i)"
    )
    con.execute(
        "INSERT INTO quotes SELECT make_timestamp(1362148200000000 + i * 1000), 'AAPL', 400, 400.1, 1, 1, "
        "'replay' FROM range(50000) t(i)"
    )
    con.execute(
        "INSERT INTO journal (ts, event, broker, source, detail) "
        "VALUES (now(), 'intent', 'paper', 'cli', '{}')"
    )
    store.close()
    return path


def corrupt_data_blocks(path: Path, tables: list[str] | None = None) -> None:
    """Overwrite a stretch in the middle of every block that holds the data of `tables` (default:
    every table; never the headers or the catalog): the file opens, and reading those tables
    meets a failing checksum."""
    con = duckdb.connect(str(path), read_only=True)
    block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0]
    if tables is None:
        tables = [row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    blocks: set[int] = set()
    for table in tables:
        info = con.execute(f"SELECT block_id FROM pragma_storage_info('{table}') WHERE block_id >= 0")
        blocks |= {row[0] for row in info.fetchall()}
    con.close()
    assert blocks
    rng = random.Random(11)
    with path.open("r+b") as f:
        for block in sorted(blocks):
            f.seek(3 * 4096 + block * block_size + block_size // 2)
            f.write(rng.randbytes(512))


def _alter(path: Path, sql: str) -> None:
    con = duckdb.connect(str(path))
    con.execute(sql)
    con.close()


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """A folder nothing can be written into — also by root, for whom permissions do not count:
    then a read-only bind mount (skipped where mounting is not allowed)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    mount = shutil.which("mount")
    ok = mount is not None and (
        subprocess.run([mount, "--bind", folder, folder], capture_output=True).returncode == 0
    )
    if (
        ok
        and subprocess.run([mount, "-o", "remount,ro,bind", folder, folder], capture_output=True).returncode
    ):
        subprocess.run(["umount", folder], capture_output=True)
        ok = False
    if not ok:
        pytest.skip("running as root, and a read-only bind mount is not allowed here (needs CAP_SYS_ADMIN)")
    try:
        yield
    finally:
        subprocess.run(["umount", folder], check=True)


Damage = Callable[[Path, Path], None]  # (a copy of the real store, the real store)

DAMAGE: dict[str, tuple[Damage | None, str]] = {
    # kind: (how the copy is damaged, what the one sentence must say)
    "read_only_dir": (None, "cannot be written"),
    "empty": (lambda p, _: p.write_bytes(b""), "empty, 0 bytes"),
    "truncated": (lambda p, real: p.write_bytes(real.read_bytes()[: real.stat().st_size // 3]), "cut short"),
    "random_bytes": (
        lambda p, _: p.write_bytes(random.Random(5).randbytes(300_000)),
        "not a DuckDB database",
    ),
    "text": (lambda p, _: p.write_text("symbol,price\nAAPL,437.92\n" * 2000), "not a DuckDB database"),
    "corrupt_blocks": (lambda p, _: corrupt_data_blocks(p), "checksum"),
    "newer_schema": (
        lambda p, _: _alter(
            p, f"INSERT INTO schema_version (version, description) VALUES ({migrations.LATEST + 1}, 'new')"
        ),
        "newer than this trii-term",
    ),
    "dropped_table": (lambda p, _: _alter(p, "DROP TABLE journal"), "the table journal is missing"),
    "dropped_column": (
        lambda p, _: _alter(p, "ALTER TABLE orders DROP COLUMN broker_order_id"),
        "the column orders.broker_order_id is missing",
    ),
}

COMMANDS: dict[str, list[str]] = {
    "record": ["record", "--seconds", "1"],
    "bars": ["bars", "AAPL"],
    "order": ["order", "buy", "1", "AAPL", "--yes"],
    "orders": ["orders"],
    "positions": ["positions"],
    "account": ["account"],
    "journal": ["journal"],
    "cancel": ["cancel", "--all"],
    "ask": ["ask", "what", "moved?"],
}
# `ask` gets a key, so it reaches the store; the API address is a closed local port
ASK_ENV = {"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}


@pytest.fixture(params=list(DAMAGE))
def damaged(request: pytest.FixtureRequest, tmp_path: Path, real_store: Path) -> Iterator[tuple[Paths, str]]:
    kind = request.param
    make, says = DAMAGE[kind]
    paths = resolve_paths(config=tmp_path / "config.toml", data_dir=tmp_path / "data")
    paths.data_dir.mkdir()
    shutil.copy(real_store, paths.default_store)
    if make is not None:
        make(paths.default_store, real_store)
        yield paths, says
        return
    with _read_only(paths.data_dir):
        yield paths, says


def _store_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and LOG_WARNING not in line]


@pytest.mark.slow
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_says_what_is_wrong_in_one_sentence(damaged: tuple[Paths, str], command: str) -> None:
    paths, says = damaged
    result = run_cli(*COMMANDS[command], paths=paths, env=ASK_ENV if command == "ask" else None)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = _store_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"trii-term {command}: ") and says in line, line
    assert str(paths.default_store) in line or str(paths.data_dir) in line
    if "damaged" in line:
        assert "move it aside" in line


@pytest.mark.slow
def test_doctor_reports_the_damage_with_the_way_out(damaged: tuple[Paths, str]) -> None:
    paths, says = damaged
    result = run_cli("doctor", paths=paths)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 1, result.stdout
    problems = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]
    if "cannot be written" in says:  # read-only: doctor reads it, the folder is the problem
        assert any("data dir" in line and "not writable" in line for line in problems), result.stdout
        return
    store = next(line for line in problems if line.split()[1] == "store")
    assert says in store, result.stdout
    assert "→" in result.stdout.split(store, 1)[1].splitlines()[1]  # the way out, on the next line


def _screen_text(raw: bytes) -> str:
    text = re.sub(r"\x1b\][^\x07]*\x07|\x1b\[[0-9;?<>=$]*[a-zA-Z]", "", raw.decode(errors="replace"))
    return re.sub(r"\s+", " ", text)


@pytest.mark.slow
def test_the_workstation_ends_with_the_sentence(damaged: tuple[Paths, str]) -> None:
    """A damaged store ends the workstation with the sentence, exit 1 (it does not fall back to
    an in-memory store as for a store in use: the trader's records would silently not be kept)."""
    paths, says = damaged
    ws = Workstation(paths, "xterm-256color")
    try:
        code = ws.proc.wait(timeout=60)
        ws.wait_closed()
    finally:
        ws.end()
    screen = _screen_text(ws.output)
    assert code == 1, screen[-2000:]
    assert "Traceback" not in screen
    assert says in screen, screen[-2000:]
