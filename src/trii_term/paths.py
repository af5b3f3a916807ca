"""Where trii-term keeps things: config file, data dir (store, logs, caches), shipped data.

Precedence for each: command-line flag, then environment variable, then the platformdirs
default. `store.path` in the config overrides the store file inside the data dir.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "trii-term"
CONFIG_ENV = "TRII_TERM_CONFIG"
DATA_DIR_ENV = "TRII_TERM_DATA_DIR"
STORE_FILE = "trii.duckdb"


@dataclass(frozen=True, slots=True)
class Paths:
    config_file: Path
    config_source: str  # "--config", "$TRII_TERM_CONFIG" or "default"
    data_dir: Path
    data_dir_source: str

    @property
    def default_store(self) -> Path:
        return self.data_dir / STORE_FILE

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "trii-term.log"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"


def resolve_paths(
    config: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Paths:
    env = os.environ if environ is None else environ
    if config is not None:
        config_file, config_source = Path(config), "--config"
    elif env.get(CONFIG_ENV):
        config_file, config_source = Path(env[CONFIG_ENV]), f"${CONFIG_ENV}"
    else:
        from platformdirs import user_config_path

        config_file, config_source = user_config_path(APP_NAME) / "config.toml", "default"

    if data_dir is not None:
        data, data_source = Path(data_dir), "--data-dir"
    elif env.get(DATA_DIR_ENV):
        data, data_source = Path(env[DATA_DIR_ENV]), f"${DATA_DIR_ENV}"
    else:
        from platformdirs import user_data_path

        data, data_source = user_data_path(APP_NAME), "default"

    return Paths(
        config_file=config_file.expanduser(),
        config_source=config_source,
        data_dir=data.expanduser(),
        data_dir_source=data_source,
    )


# -- privacy: the journal, positions and chats are the trader's alone ----------------------------

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_OURS = frozenset({STORE_FILE, "logs", "cache", "exports"})


def private_files(paths: Paths, store: Path | None = None) -> Iterator[tuple[Path, int]]:
    """trii-term's folders and files that exist, with the mode each must have: the data dir,
    its logs and cache, the store (also one at a chosen `store.path`), its WAL, the log files.
    A data dir that holds anything else is the trader's folder: it is not listed."""
    data = paths.data_dir
    if data.is_dir() and _only_ours(data):
        yield data, PRIVATE_DIR
    for folder in (paths.log_dir, paths.cache_dir, paths.data_dir / "exports"):
        if folder.is_dir():
            yield folder, PRIVATE_DIR
    store = store or paths.default_store
    for file in (store, store.with_name(store.name + ".wal")):
        if file.is_file():
            yield file, PRIVATE_FILE
    if paths.log_dir.is_dir():
        for file in sorted(paths.log_dir.glob("trii-term.log*")):
            if file.is_file():
                yield file, PRIVATE_FILE


def loose_files(paths: Paths, store: Path | None = None) -> list[tuple[Path, int]]:
    """Those of `private_files` that others can read, write or enter, with their mode."""
    if os.name == "nt":
        return []
    loose = []
    for path, _mode in private_files(paths, store):
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                loose.append((path, mode))
    return loose


def make_private(paths: Paths, store: Path | None = None) -> list[Path]:
    """Create the data dir 0700 and make everything trii-term creates from now on private (umask
    077: the store, its WAL, the logs are 0600), and tighten what an older trii-term left
    readable. Returns what was tightened. Files of other users are left alone."""
    if os.name == "nt":
        return []
    os.umask(0o077)
    with contextlib.suppress(OSError):
        paths.data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    fixed = []
    for path, mode in private_files(paths, store):
        with contextlib.suppress(OSError):
            st = path.stat()
            if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.getuid():
                path.chmod(stat.S_IMODE(st.st_mode) & mode)
                fixed.append(path)
    return fixed


def _only_ours(folder: Path) -> bool:
    try:
        return all(entry.name in _OURS or entry.name.startswith(STORE_FILE) for entry in folder.iterdir())
    except OSError:
        return False


def shipped_data_dir() -> Path:
    """The real daily history shipped with trii-term.

    In a wheel it sits inside the package (`trii_term/_data`); in a source checkout or an
    editable install it is the repository's `data/` folder.
    """
    here = Path(__file__).resolve().parent
    packaged = here / "_data"
    if packaged.is_dir():
        return packaged
    return here.parent.parent / "data"
