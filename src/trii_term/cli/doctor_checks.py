"""What `trii-term doctor` checks: versions, config, data dir, store, privacy, shipped history,
time zones, calendars, terminal, keyring and credentials. Each `Check` is `ok`, `warn` (works,
but worth knowing) or `PROBLEM` (stops trii-term from running on its defaults), with what to do.
Nothing is changed: the store is opened read-only.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import dataclass
from datetime import date
from importlib import metadata
from pathlib import Path

from trii_term import __version__
from trii_term.paths import Paths, shipped_data_dir

OK, WARN, PROBLEM = "ok", "warn", "PROBLEM"
PACKAGES = ("textual", "rich", "duckdb", "polars", "pyarrow", "platformdirs", "keyring")


@dataclass(frozen=True)
class Check:
    status: str
    label: str
    detail: str
    fix: str = ""


def collect(paths: Paths) -> tuple[list[Check], bool]:
    checks: list[Check] = [_versions()]
    config_check, config = _config(paths)
    checks.append(config_check)
    checks.append(_data_dir(paths))
    store_path = (
        config.store.path if config is not None and config.store.path else None
    ) or paths.default_store
    checks.append(_store(store_path))
    checks.append(_privacy(paths, store_path))
    checks.append(_history())
    checks.append(_timezones())
    checks.append(_calendars())
    checks.append(_terminal())
    checks.append(_keyring())
    checks.append(_credentials())
    checks.append(Check(OK, "log file", str(paths.log_file)))
    return checks, config is None


def _versions() -> Check:
    found, missing = [], []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            missing.append(name)
    py = f"Python {platform.python_version()}"
    detail = f"trii-term {__version__}, {py}; " + ", ".join(found)
    if missing:
        return Check(
            PROBLEM,
            "versions",
            detail + f"; missing: {', '.join(missing)}",
            "reinstall: pip install --force-reinstall trii-term",
        )
    return Check(OK, "versions", detail)


def _config(paths: Paths):
    from trii_term.config import ConfigError, load_config

    where = f"{paths.config_file} (from {paths.config_source})"
    try:
        config = load_config(paths.config_file)
    except ConfigError as exc:
        return Check(PROBLEM, "config", f"{where}: {exc}", "fix that line (or move the file aside)"), None
    if config.source is None:
        return Check(OK, "config", f"{where} does not exist: defaults in use"), config
    return Check(OK, "config", f"{where}: valid"), config


def _data_dir(paths: Paths) -> Check:
    d = paths.data_dir
    where = f"{d} (from {paths.data_dir_source})"
    probe = d if d.exists() else next((p for p in d.parents if p.exists()), None)
    if probe is None or not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        return Check(
            PROBLEM,
            "data dir",
            f"{where}: not writable",
            "choose a writable folder with --data-dir or TRII_TERM_DATA_DIR",
        )
    if not d.exists():
        return Check(OK, "data dir", f"{where}: will be created on first run")
    free = shutil.disk_usage(d).free
    if free < 200_000_000:
        return Check(
            WARN,
            "data dir",
            f"{where}: only {free / 1e6:.0f} MB free",
            "free some space: recorded ticks grow the store",
        )
    return Check(OK, "data dir", f"{where}: writable, {free / 1e9:.1f} GB free")


def _store(path: Path) -> Check:
    """Open the store read-only (its file, length, schema version, every table and column are
    checked by `Store.open`), then read every table through: a damaged block shows only when it
    is read. `ok` only when all of that passed."""
    if not path.exists():
        return Check(OK, "store", f"{path}: will be created on first run")
    from trii_term.store.db import Store, StoreError, StoreLocked, store_error

    size = path.stat().st_size
    try:
        store = Store.open(path, read_only=True)
    except StoreLocked as exc:
        who = f"PID {exc.pid}" if exc.pid else "another process"
        return Check(
            WARN,
            "store",
            f"{path} ({size / 1e6:.1f} MB): in use by {who}, so it was not checked",
            "fine while that trii-term runs; a second workstation would run on a temporary "
            "in-memory store and `record` would refuse; close it and run doctor again to check "
            "the store",
        )
    except StoreError as exc:
        return _store_problem(exc)
    try:
        version = store.schema_version()
        rows = read_every_table(store.con, version)
    except Exception as exc:
        where = "".join(f", {note}" for note in getattr(exc, "__notes__", ()))
        return _store_problem(store_error(path, exc), where)
    finally:
        store.close()
    from trii_term.store.migrations import LATEST

    note = "" if version == LATEST else f" (will be migrated to {LATEST})"
    counts = ", ".join(f"{t}: {rows.get(t, 0):,}" for t in ("ticks", "quotes", "orders"))
    return Check(
        OK,
        "store",
        f"{path}: {size / 1e6:.1f} MB, schema {version}{note}, every table read through ({counts})",
    )


def _store_problem(exc: Exception, where: str = "") -> Check:
    problem = getattr(exc, "problem", str(exc))
    fix = getattr(exc, "fix", "").replace("; `trii-term doctor` checks a store", "")
    return Check(PROBLEM, "store", f"{problem}{where}", fix)


def read_every_table(con, version: int) -> dict[str, int]:
    """Read every value of every table of the schema: a hash of each row's columns, so no column
    can be answered from statistics or skipped. Returns the row count per table; a damaged block
    raises (DuckDB checks each block's checksum as it reads it)."""
    from trii_term.store.migrations import expected_schema

    rows: dict[str, int] = {}
    for table, columns in expected_schema(version).items():
        cols = ", ".join(f'"{c}"' for c in columns)
        try:
            count = con.execute(f'SELECT count(*), bit_xor(hash({cols})) FROM "{table}"').fetchall()[0][0]
        except Exception as exc:
            exc.add_note(f"in the table {table}")
            raise
        rows[table] = int(count)
    return rows


def _privacy(paths: Paths, store: Path) -> Check:
    """The data dir 0700, the store, its WAL and the logs 0600: the journal, positions and AI
    chats are the trader's alone. Reported, not changed (any other command tightens them)."""
    from trii_term.paths import loose_files

    loose = loose_files(paths, store)
    if not loose:
        return Check(OK, "privacy", "the data dir and logs are 0700, the store and log files 0600")
    listed = "; ".join(f"{path} ({mode:04o})" for path, mode in loose)
    dirs = [str(p) for p, _ in loose if p.is_dir()]
    files = [str(p) for p, _ in loose if not p.is_dir()]
    commands = [f"chmod 700 {' '.join(dirs)}"] * bool(dirs) + [f"chmod 600 {' '.join(files)}"] * bool(files)
    return Check(
        WARN,
        "privacy",
        f"others can read: {listed}",
        f"run any trii-term command (it makes them private), or: {'; '.join(commands)}",
    )


def _history() -> Check:
    from trii_term.store.history import SHIPPED_FILES

    d = shipped_data_dir()
    missing = [f.name for f in SHIPPED_FILES if not (d / f.name).is_file()]
    if missing:
        return Check(
            PROBLEM,
            "history",
            f"{d}: missing {', '.join(missing)}",
            "reinstall trii-term: the replay feed needs its shipped history",
        )
    return Check(OK, "history", f"{d}: {len(SHIPPED_FILES)} files of real daily prices for the replay feed")


def _timezones() -> Check:
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo("America/New_York")
        ZoneInfo("Asia/Kolkata")
    except Exception as exc:
        return Check(
            PROBLEM,
            "time zones",
            f"exchange time zones unavailable ({exc})",
            "pip install tzdata (or install the OS tz database)",
        )
    return Check(OK, "time zones", "America/New_York, Asia/Kolkata available")


def _terminal() -> Check:
    term = os.environ.get("TERM", "")
    colorterm = os.environ.get("COLORTERM", "")
    env = f"TERM={term or '(unset)'}, COLORTERM={colorterm or '(unset)'}"
    if not sys.stdout.isatty():
        return Check(OK, "terminal", f"{env}; output is redirected, so colours and size are not known")
    from rich.console import Console

    system = Console(force_terminal=True).color_system
    colours = {
        "truecolor": "truecolor",
        "256": "256 colours",
        "standard": "16 colours",
        "windows": "16 colours",
    }.get(str(system), "no colour")
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
        size_text, small = f"{size.columns}×{size.lines}", size.columns < 80 or size.lines < 24
    except OSError:
        size_text, small = "size unknown", False
    detail = f"{env}, {colours}, {size_text}"
    if not term:
        return Check(WARN, "terminal", detail, "set TERM (e.g. xterm-256color) so keys and colours work")
    if small:
        return Check(
            WARN, "terminal", detail, "trii-term is designed for 80×24 or larger; enlarge the window"
        )
    if system in ("standard", "windows", None):
        return Check(
            WARN,
            "terminal",
            detail,
            "everything still reads (signs and arrows carry meaning); over SSH set "
            "TERM=xterm-256color for more colours",
        )
    return Check(OK, "terminal", detail)


def _keyring() -> Check:
    try:
        import keyring
        from keyring.errors import KeyringError
    except Exception as exc:
        return Check(
            WARN,
            "keyring",
            f"keyring cannot be imported ({exc})",
            "not needed offline; reinstall trii-term before adding broker credentials",
        )
    try:
        backend = keyring.get_keyring()
    except Exception as exc:
        return Check(WARN, "keyring", f"no keyring backend ({exc})", _KEYRING_FIX)
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    priority = getattr(backend, "priority", 0)
    module = type(backend).__module__
    unusable = module.startswith(("keyring.backends.fail", "keyring.backends.null")) or (
        module.startswith("keyring.backends.chainer") and not getattr(backend, "backends", [])
    )
    if unusable:
        return Check(WARN, "keyring", f"{name}: no usable keyring on this machine", _KEYRING_FIX)
    try:
        backend.get_password("trii-term", "__doctor_probe__")
    except (KeyringError, RuntimeError) as exc:
        return Check(WARN, "keyring", f"{name}: not usable ({exc})", _KEYRING_FIX)
    if "plaintext" in name.lower() or (isinstance(priority, int | float) and priority < 1):
        return Check(
            WARN,
            "keyring",
            f"{name} (priority {priority}): works but is not a secure store",
            "prefer the OS keyring (Secret Service, macOS Keychain, Windows Credential Locker)",
        )
    return Check(OK, "keyring", f"{name}: usable (broker credentials will be stored here)")


def _credentials() -> Check:
    """Which credentials exist and where — never their values."""
    from trii_term import credentials

    try:
        where = credentials.inventory()
    except Exception as exc:  # a keyring that misbehaves must not stop the doctor
        return Check(WARN, "credentials", f"cannot be listed ({type(exc).__name__})", _KEYRING_FIX)
    unreadable = {name: place for name, place in where.items() if place.startswith("unknown")}
    if unreadable and len(unreadable) == len(where):
        reasons = {_unreadable_reason(place) for place in unreadable.values()}
        why = reasons.pop() if len(reasons) == 1 else "the keyring failed"
        return Check(WARN, "credentials", f"cannot be read: {why} ({', '.join(where)}); see keyring")
    detail = "; ".join(
        f"{name}: cannot be read ({_unreadable_reason(place)})" if name in unreadable else f"{name}: {place}"
        for name, place in where.items()
    )
    for spec in credentials.known().values():  # a venue's stored token that has expired
        if spec.expired_fix and "expired" in where.get(spec.name, ""):
            return Check(WARN, "credentials", detail, spec.expired_fix)
    return Check(WARN if unreadable else OK, "credentials", detail)


def _unreadable_reason(place: str) -> str:
    """The reason in an inventory's "unknown: …", as a phrase: its first words, without what
    follows in brackets ("No usable OS keyring (keyring.backends…)" -> "no usable OS keyring")."""
    reason = place.removeprefix("unknown").lstrip(": ").strip()
    reason = reason.split(" (")[0].strip()  # the phrase, without the backend's name in brackets
    reason = reason.rstrip(".") or "unknown reason"
    return reason[0].lower() + reason[1:]


_KEYRING_FIX = (
    "the offline defaults need no credentials; live brokers will. Install and unlock an OS "
    "keyring (e.g. gnome-keyring with D-Bus), or set PYTHON_KEYRING_BACKEND"
)


def _calendars(today: date | None = None) -> Check:
    """The exchange calendars shipped with trii-term: their years, and a warning from
    REFRESH_DAYS before they run out (after that, every weekday counts as a full session)."""
    from trii_term.calendars import FILES, REFRESH_DAYS, UPDATE_HINT, exchange_calendar

    today = today or date.today()
    years: list[str] = []
    notes: list[str] = []
    for code in FILES:
        cal = exchange_calendar(code)
        if cal.problem:
            notes.append(cal.problem)
            continue
        years.append(f"{cal.label} {cal.first.year}-{cal.last.year}")
        left = (cal.last - today).days
        if left < 0:
            notes.append(f"{cal.label} ran out on {cal.last}: every weekday since counts as a full session")
        elif left <= REFRESH_DAYS:
            notes.append(f"{cal.label} runs out on {cal.last} ({left} days left)")
    detail = (", ".join(years) + " (holidays, early closes, Muhurat)") if years else "none readable"
    if notes:
        return Check(WARN, "calendars", f"{detail}; {'; '.join(notes)}", UPDATE_HINT)
    return Check(OK, "calendars", detail)
