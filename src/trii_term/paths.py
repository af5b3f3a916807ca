"""Where trii-term keeps things: config file, data dir (store, logs, caches), shipped data.

Precedence for each: command-line flag, then environment variable, then the platformdirs
default. `store.path` in the config overrides the store file inside the data dir.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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
