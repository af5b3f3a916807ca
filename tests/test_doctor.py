"""`trii-term doctor`: it really checks the store, and reads well in an 80-column terminal."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import duckdb

from trii_term.cli.doctor import render
from trii_term.cli.doctor_checks import Check
from trii_term.paths import Paths, resolve_paths
from trii_term.store.db import Store

from .conftest import run_cli, trii_term_exe
from .test_store_damage import corrupt_data_blocks

ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


def doctor_on_a_terminal(paths: Paths, columns: int = 80) -> tuple[int, list[str]]:
    """doctor's output as a terminal of `columns` shows it: the lines it writes."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    cmd = [*trii_term_exe(), "--config", str(paths.config_file), "--data-dir", str(paths.data_dir), "doctor"]
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed: everything was read
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    code = proc.wait(timeout=60)
    return code, ANSI.sub("", out.decode()).split("\r\n")


def test_every_line_fits_80_columns_and_the_credentials_read_clearly() -> None:
    """Found before: the credentials line ran past 80 columns four times over, each name with
    "unknown: No usable OS keyring (keyring" cut mid-sentence. (Short paths: a path is never
    broken, so one longer than a line would stand out past the edge.)"""
    with tempfile.TemporaryDirectory(prefix="d", dir="/tmp") as short:
        paths = resolve_paths(config=Path(short) / "c.toml", data_dir=Path(short) / "data")
        code, lines = doctor_on_a_terminal(paths)
    assert code == 0, lines
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    text = "\n".join(lines)
    assert "(keyring;" not in text and "unknown:" not in text
    at = next(i for i, line in enumerate(lines) if line.split()[1:2] == ["credentials"])
    credentials = " ".join(line.strip() for line in lines[at : at + 2]).split("credentials", 1)[1]
    assert "cannot be read: no usable OS keyring (alpaca, alpaca-live, kite, anthropic)" in credentials


def test_long_details_wrap_under_their_column() -> None:
    checks = [
        Check("ok", "store", "a " * 60 + "end"),
        Check("PROBLEM", "data dir", "short", "do this " * 20 + "then that"),
    ]
    text = render(checks, columns=50)
    lines = text.splitlines()
    assert all(len(line) <= 50 for line in lines)
    indent = " " * (8 + len("data dir") + 2)
    assert all(line.startswith(indent) for line in lines[1:] if not line.startswith(("ok", "PROBLEM")))
    assert " ".join(text.split()).count("do this") == 20 and text.split()[-1] == "that"
    assert render(checks).splitlines()[0].endswith("a end")  # redirected: lines stay whole


def test_a_damaged_block_that_counting_rows_does_not_read_is_found(paths: Paths) -> None:
    """`SELECT count(*)` is answered from the row groups' counts without reading a block: doctor
    said `ok` for such a store. It now reads every column of every table."""
    store = Store.open(paths.default_store)
    store.con.execute(
        "INSERT INTO ticks SELECT make_timestamp(1362148200000000 + i * 1000), 'AAPL', 400 + i % 7, 1, "
        "'replay' FROM range(100000) t(i)"
    )
    store.close()
    corrupt_data_blocks(paths.default_store, ["ticks"])
    con = duckdb.connect(str(paths.default_store), read_only=True)
    assert con.execute("SELECT count(*) FROM ticks").fetchall() == [(100000,)]  # no block read
    con.close()

    result = run_cli("doctor", paths=paths)
    assert result.returncode == 1
    line = next(x for x in result.stdout.splitlines() if x.split()[1:2] == ["store"])
    assert line.startswith("PROBLEM") and "fails its checksum), in the table ticks" in line
    assert "move it aside" in result.stdout


def test_ok_means_every_table_was_read(paths: Paths, tmp_path: Path) -> None:
    Store.open(paths.default_store).close()
    result = run_cli("doctor", paths=paths)
    line = next(x for x in result.stdout.splitlines() if x.split()[1:2] == ["store"])
    assert line.startswith("ok") and "every table read through" in line
