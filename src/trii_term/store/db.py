"""Opening the one DuckDB file: locks, damaged files, schema versions, in-memory fallback."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb

from trii_term.store import migrations
from trii_term.store.sql import one

log = logging.getLogger(__name__)


class StoreError(Exception):
    """The store cannot be used. The message is one sentence: `problem` (what is wrong with
    which file), then `fix` (what to do)."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}: {fix}." if fix else problem)


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
        self.version = version
        super().__init__(
            f"The store {path} has schema version {version}, newer than this trii-term "
            f"understands ({migrations.LATEST})",
            "upgrade trii-term (pip install --upgrade trii-term), or use another store with --data-dir",
        )


class StoreDamaged(StoreError):
    """The file is not a usable store: empty, not DuckDB, cut short, failing its checksums, or
    missing tables or columns trii-term needs."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        super().__init__(
            f"The store {path} is damaged ({what})",
            f"move it aside (mv '{path}' '{path}.damaged') and trii-term starts a new store, or "
            "put back a backup; `trii-term doctor` checks a store",
        )


class StoreNotWritable(StoreError):
    def __init__(self, path: Path, why: str) -> None:
        self.path = path
        self.why = why  # "the disk is full", "the file size limit is reached"
        super().__init__(
            f"The store {path} cannot be written ({why})",
            "make its folder writable, or choose another place with --data-dir or store.path",
        )


class StoreFull(StoreError):
    """The disk (or the user's file size limit) is full: nothing more can be written."""

    def __init__(self, path: Path, why: str) -> None:
        self.path = path
        self.why = why  # "the disk is full", "the file size limit is reached"
        super().__init__(
            f"The store {path} cannot grow ({why})",
            "free some disk space, then start trii-term again; everything written before is kept",
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
        """Open (creating if needed), migrate and verify. `path=None` gives an in-memory store.

        A store that cannot be used raises a `StoreError` whose message is one sentence: what
        is wrong with which file, and what to do."""
        if path is not None:
            _check_file(path, read_only=read_only)
        target = ":memory:" if path is None else str(path)
        where = path or Path(target)
        try:
            con = duckdb.connect(target, read_only=read_only)
        except duckdb.IOException as exc:
            text = str(exc)
            match = _LOCK_RE.search(text)
            if match or "Could not set lock" in text:
                pid = int(match.group("pid")) if match else None
                prog = match.group("prog") if match else None
                raise StoreLocked(where, pid, prog) from exc
            raise store_error(where, exc) from exc
        except duckdb.Error as exc:
            raise store_error(where, exc) from exc
        try:
            con.execute("SET GLOBAL TimeZone = 'UTC'")
            if path is not None:
                _check_length(con, path)
            version = migrations.current_version(con)
            if version > migrations.LATEST:
                raise StoreTooNew(where, version)
            if version == 0 and migrations.schema_of(con):
                raise StoreDamaged(where, "the table schema_version is missing")
            if not read_only:
                applied = migrations.migrate(con)
                if applied:
                    log.info("store %s migrated to schema %s", target, applied[-1])
                    version = applied[-1]
            if version and path is not None:  # an in-memory store is the migrations' own work
                _verify_schema(con, where, version, read_only=read_only)
        except StoreError:
            con.close()
            raise
        except duckdb.Error as exc:
            con.close()
            raise store_error(where, exc) from exc
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
            except duckdb.Error as exc:
                problem = store_error(self.path or Path(":memory:"), exc)
                if isinstance(problem, StoreFull):  # said already; the WAL keeps what was committed
                    log.warning("no checkpoint on close: %s", problem.problem)
                else:
                    log.exception("checkpoint on close failed")
            finally:
                try:
                    self.con.close()
                except duckdb.Error:
                    log.exception("closing the store connection failed")


# -- what is wrong with a store ----------------------------------------------------------------

_MAGIC = b"DUCK"  # at byte 8 of every DuckDB file, after the header's checksum
_HEADERS = 3 * 4096  # the main header and the two database headers, before the first block
_FINGERPRINT = "store.schema_fingerprint"  # settings key: the catalog's digest when last verified


def _check_file(path: Path, *, read_only: bool) -> None:
    """What can be told from the file before DuckDB reads it: its folder, its size, its magic."""
    if not read_only:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreNotWritable(path, f"its folder cannot be created: {exc.strerror}") from exc
        # DuckDB writes a .wal file beside the store: a read-only folder fails at the first write,
        # in the middle of a command, unless it is seen here
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise StoreNotWritable(path, "its folder is read-only")
        if path.exists() and not os.access(path, os.W_OK):
            raise StoreNotWritable(path, "the file is read-only")
    try:
        with path.open("rb") as f:
            head = f.read(12)
    except FileNotFoundError:
        return  # a new store
    except IsADirectoryError:
        raise StoreDamaged(path, "it is a folder, not a file") from None
    except OSError as exc:
        raise StoreNotWritable(path, f"it cannot be read: {exc.strerror}") from exc
    if not head:
        raise StoreDamaged(path, "the file is empty, 0 bytes")
    if head[8:12] != _MAGIC:
        raise StoreDamaged(path, "the file is not a DuckDB database")


def _check_length(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """A file too short to hold the blocks in use was cut short (a full disk, a copy that
    stopped): reading it would fail later, in the middle of a command. (`total_blocks` may count
    free blocks DuckDB has already cut off the end of the file, so only the used ones count: a
    lower bound, never a false alarm; a smaller cut is found when its block is read.)"""
    row = one(con, "SELECT used_blocks, block_size FROM pragma_database_size()")
    if not row:
        return
    need = _HEADERS + int(row[0]) * int(row[1])
    try:
        size = path.stat().st_size
    except OSError:
        return
    if size < need:
        raise StoreDamaged(path, f"cut short: {size:,} of its {need:,} bytes are there")


def _verify_schema(con: duckdb.DuckDBPyConnection, path: Path, version: int, *, read_only: bool) -> None:
    """Every table and column the migrations made is there with its type. Cheap: the catalog is
    compared with the digest recorded the last time it was verified (~2 ms); only a store whose
    catalog changed since is compared with `migrations.expected_schema` (~40 ms)."""
    actual = migrations.schema_of(con)
    digest = migrations.fingerprint(actual, version)
    recorded = None
    if "settings" in actual:
        row = one(con, "SELECT value FROM settings WHERE key = ?", [_FINGERPRINT])
        recorded = row[0] if row else None
    if recorded == digest:
        return
    problems = migrations.schema_problems(actual, version)
    if problems:
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise StoreDamaged(path, f"{problems[0]}{more}, schema {version} has it")
    if not read_only:
        con.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", [_FINGERPRINT, digest])


_MISSING_TABLE = re.compile(r"Table with name (\w+) does not exist")
_MISSING_COLUMN = re.compile(r'[Cc]olumn (?:with name )?"?(\w+)"? (?:not found|does not exist)')


def store_error(path: Path, exc: BaseException) -> StoreError:
    """The `StoreError` for a DuckDB (or OS) error met while using the store at `path`, at open
    or later (a damaged block is found only when it is read)."""
    if isinstance(exc, StoreError):
        return exc
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    low = text.lower()
    if "no space left" in low or "file too large" in low or "disk quota" in low:
        why = "the disk is full" if "no space left" in low else "the file size limit is reached"
        return StoreFull(path, why)
    if "read-only file system" in low:
        return StoreNotWritable(path, "it is on a read-only file system")
    if "permission denied" in low:
        return StoreNotWritable(path, "permission denied")
    if "not a valid duckdb database" in low:
        return StoreDamaged(path, "the file is not a DuckDB database")
    if "could not read enough bytes" in low or "unexpected end of file" in low:
        return StoreDamaged(path, "cut short: a part of it is missing")
    if "checksum" in low or "corrupt" in low:
        return StoreDamaged(path, "a block of it fails its checksum")
    if match := _MISSING_TABLE.search(text):
        return StoreDamaged(path, f"the table {match.group(1)} is missing")
    if isinstance(exc, duckdb.BinderException) and (match := _MISSING_COLUMN.search(text)):
        return StoreDamaged(path, f"the column {match.group(1)} is missing")
    if "version" in low and "storage" in low:
        return StoreError(
            f"The store {path} was written by a different DuckDB storage version ({first})",
            "use the trii-term version that created it, or start a new store with --data-dir",
        )
    return StoreError(f"The store {path} failed ({first})", "`trii-term doctor` checks a store")
