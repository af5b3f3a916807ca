"""Opening the one DuckDB file: locks, damaged files, schema versions, in-memory fallback."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb

from trii_term.store import migrations
from trii_term.store.sql import one

log = logging.getLogger(__name__)


class StoreError(Exception):
    """The store cannot be used; the message says why and what to do."""


class StoreLocked(StoreError):
    def __init__(self, path: Path, pid: int | None, program: str | None) -> None:
        self.path = path
        self.pid = pid
        self.program = program
        who = f"another program (PID {pid})" if pid else "another program"
        if pid and (_is_trii_term(pid) or (program and "trii" in program)):
            who = f"another trii-term (PID {pid})"
        super().__init__(
            f"The store {path} is open in {who}. Only one trii-term can write to a store: "
            f"close the other one, or run this one with --data-dir DIR (or store.path) "
            f"to use a different store."
        )


class StoreTooNew(StoreError):
    def __init__(self, path: Path, version: int) -> None:
        super().__init__(
            f"The store {path} has schema version {version}, newer than this trii-term "
            f"understands ({migrations.LATEST}). Upgrade trii-term, or use another --data-dir."
        )


def _is_trii_term(pid: int) -> bool:
    """Whether a process is trii-term (Linux: its command line; elsewhere unknown)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"trii-term" in cmdline or b"trii_term" in cmdline


_LOCK_RE = re.compile(r"Conflicting lock is held in (?P<prog>.*?) \(PID (?P<pid>\d+)\)")


class Store:
    """A DuckDB database, migrated to the latest schema.

    `con` belongs to the thread that opened the store; any other thread takes its own
    `cursor()` (DuckDB connections are not shared across threads).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None, *, read_only: bool) -> None:
        self.con = con
        self.path = path
        self.read_only = read_only
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # signalled when a reader finishes
        self._readers = 0
        self.closed = False

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | None, *, read_only: bool = False) -> Store:
        """Open (creating if needed) and migrate. `path=None` gives an in-memory store."""
        if path is not None and not read_only:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"Cannot create the folder for the store {path}: {exc.strerror}. "
                    "Choose another place with --data-dir or store.path."
                ) from exc
        target = ":memory:" if path is None else str(path)
        try:
            con = duckdb.connect(target, read_only=read_only)
        except duckdb.IOException as exc:
            text = str(exc)
            match = _LOCK_RE.search(text)
            if match or "Could not set lock" in text:
                pid = int(match.group("pid")) if match else None
                prog = match.group("prog") if match else None
                raise StoreLocked(path or Path(target), pid, prog) from exc
            raise StoreError(_explain_open_error(path, text)) from exc
        except duckdb.Error as exc:
            raise StoreError(_explain_open_error(path, str(exc))) from exc
        try:
            con.execute("SET GLOBAL TimeZone = 'UTC'")
            version = migrations.current_version(con)
            if version > migrations.LATEST:
                raise StoreTooNew(path or Path(target), version)
            if not read_only:
                applied = migrations.migrate(con)
                if applied:
                    log.info("store %s migrated to schema %s", target, applied[-1])
        except StoreError:
            con.close()
            raise
        except duckdb.Error as exc:
            con.close()
            raise StoreError(_explain_open_error(path, str(exc))) from exc
        return cls(con, path, read_only=read_only)

    # -- using ------------------------------------------------------------------------------

    @property
    def in_memory(self) -> bool:
        return self.path is None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for another thread, on the same database."""
        return self.con.cursor()

    def schema_version(self) -> int:
        return migrations.current_version(self.con)

    def size_bytes(self) -> int:
        if self.path is None:
            return 0
        total = 0
        for p in (self.path, self.path.with_name(self.path.name + ".wal")):
            with contextlib.suppress(OSError):
                total += p.stat().st_size
        return total

    def setting(self, key: str) -> str | None:
        row = one(self.con, "SELECT value FROM settings WHERE key = ?", [key])
        return row[0] if row else None

    def set_setting(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", [key, value])

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for reading on another thread (a chart loading its bars). `close()` waits
        for it to finish: closing a connection under a running query fails in DuckDB."""
        with self._lock:
            if self.closed:
                raise StoreError("the store is closed")
            cursor = self.con.cursor()
            self._readers += 1
        try:
            yield cursor
        finally:
            with self._lock:
                with contextlib.suppress(duckdb.Error):
                    cursor.close()
                self._readers -= 1
                self._idle.notify_all()

    def close(self, *, reader_timeout: float = 5.0) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if not self._idle.wait_for(lambda: self._readers == 0, timeout=reader_timeout):
                log.warning("closing the store with %d reader(s) still running", self._readers)
            try:
                if not self.read_only and self.path is not None:
                    self.con.execute("CHECKPOINT")
            except duckdb.Error:
                log.exception("checkpoint on close failed")
            finally:
                try:
                    self.con.close()
                except duckdb.Error:
                    log.exception("closing the store connection failed")


def _explain_open_error(path: Path | None, text: str) -> str:
    first = text.splitlines()[0] if text else "unknown error"
    if "not a valid DuckDB database" in text or "database file" in text.lower():
        return (
            f"The store {path} is not a readable DuckDB database ({first}). Move the file "
            f"aside (trii-term then creates a new one) or point store.path elsewhere."
        )
    if "version" in text.lower() and "storage" in text.lower():
        return (
            f"The store {path} was written by a different DuckDB storage version ({first}). "
            "Use the trii-term version that created it, or start a new store with --data-dir."
        )
    return f"Cannot open the store {path}: {first}"
