"""Shared fixtures: every test runs isolated from the user's real config, data and keyring."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from trii_term.config import Config, parse_config
from trii_term.paths import Paths, resolve_paths

FAST = "[providers.replay]\nspeed = 600\n"

# Each trii-term command a test runs is a new Python process. Where PYTHONDONTWRITEBYTECODE is
# set (some machines set it for everyone) every one of them compiled the package from source
# again, 0.17 s a process here: the first one now leaves the bytecode cache for the others.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: a worker per core and one more. A third of a test's time here is spent waiting
    (on a trii-term process it started, a loopback server, a store another process holds), and
    the extra worker uses it. PYTEST_XDIST_AUTO_NUM_WORKERS still decides when it is set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return len(os.sched_getaffinity(0)) + 1 if hasattr(os, "sched_getaffinity") else None


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may read or write the real user's config or data."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.delenv("TRII_TERM_CONFIG", raising=False)
    monkeypatch.delenv("TRII_TERM_DATA_DIR", raising=False)
    # never the developer's real credentials or keyring: tests that need them set their own
    for var in (
        "TRII_ALPACA_KEY_ID",
        "TRII_ALPACA_SECRET_KEY",
        "TRII_KITE_API_KEY",
        "TRII_KITE_API_SECRET",
        "TRII_KITE_ACCESS_TOKEN",
        "ANTHROPIC_API_KEY",
        "DBUS_SESSION_BUS_ADDRESS",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")


@contextlib.contextmanager
def keys_wait_on_the_app() -> Iterator[None]:
    """Keys typed in here wait for the app to handle them, not for the process to go idle.

    After each key it sends, Textual's Pilot waits until the whole process uses no CPU for 20 ms,
    or 1 s has passed (`textual._wait.wait_for_idle`), twice. The workstation streams the replay,
    so it is never idle: every key cost a fixed two seconds of a CPU-busy wait. Inside this block
    those looks wait instead until the app and every widget of the screen on top have no message
    queued or being handled: the key went from the app to the focused widget, bubbled back and
    ran its binding's command. The keys still reach the app one by one and in order, and the
    caller then waits with `wait_until` on what the keys were for (a worker the command started).
    Every test runs inside it (`_keys_wait_on_the_app`)."""
    from textual import _wait, app
    from textual._context import active_app
    from textual.app import App
    from textual.pilot import Pilot

    real = _wait.wait_for_idle

    def queued(running: App[object]) -> bool:
        nodes = (running, *running.screen.walk_children(with_self=True))
        return any(node._message_queue.qsize() for node in nodes)

    async def handled(min_sleep: float = _wait.SLEEP_GRANULARITY, max_sleep: float = 1) -> None:
        running = active_app.get(None)
        if running is None or not running.is_running:
            await real(min_sleep, min(max_sleep, 0.05))
            return
        end = time.monotonic() + max_sleep
        # a round ends when every node has handled what it had (the handler running included);
        # done when nothing is queued after a round: what the key's handlers posted was handled too
        while True:
            await Pilot(running)._wait_for_screen()
            if not queued(running) or time.monotonic() > end:
                return

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app, "wait_for_idle", handled)
        yield


@pytest.fixture(autouse=True, scope="session")
def _keys_wait_on_the_app() -> Iterator[None]:
    """No key a test presses waits a hidden second: tests wait with `wait_until` on what they need."""
    with keys_wait_on_the_app():
        yield


@pytest.fixture(scope="session")
def started_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store as trii-term's first start leaves it, made once per test process by the real code:
    every migration run, the shipped daily history imported (0.25 s of every first start)."""
    from trii_term.paths import shipped_data_dir
    from trii_term.store.db import Store
    from trii_term.store.history import import_shipped_history

    path = tmp_path_factory.mktemp("started") / "trii.duckdb"
    store = Store.open(path)
    try:
        import_shipped_history(store.con, shipped_data_dir())
    finally:
        store.close()
    return path


@pytest.fixture
def paths(tmp_path: Path, request: pytest.FixtureRequest) -> Paths:
    """A config file and data dir of the test's own. The data dir holds a copy of
    `started_store`, as on every start after the first; a test marked `first_start` gets no
    data dir at all, as a new user does."""
    from trii_term.paths import PRIVATE_DIR, PRIVATE_FILE

    paths = resolve_paths(config=tmp_path / "config.toml", data_dir=tmp_path / "data")
    if request.node.get_closest_marker("first_start") is None:
        started: Path = request.getfixturevalue("started_store")
        paths.data_dir.mkdir(mode=PRIVATE_DIR)
        shutil.copyfile(started, paths.default_store)
        paths.default_store.chmod(PRIVATE_FILE)
    return paths


@pytest.fixture
def write_config(paths: Paths) -> Callable[[str], Config]:
    def write(text: str) -> Config:
        paths.config_file.write_text(text, encoding="utf-8")
        return parse_config(text, paths.config_file)

    return write


def trii_term_exe() -> list[str]:
    """The real console-script entry point installed with the package."""
    exe = shutil.which("trii-term", path=str(Path(sys.executable).parent)) or shutil.which("trii-term")
    if exe is None:
        pytest.fail("the trii-term console script is not installed; run: pip install -e '.[test]'")
    return [exe]


def run_cli(
    *args: str, paths: Paths | None = None, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = trii_term_exe()
    if paths is not None:
        cmd += ["--config", str(paths.config_file), "--data-dir", str(paths.data_dir)]
    return subprocess.run(
        cmd + list(args), capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


@contextlib.contextmanager
def store_held_by_another_process(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process with the DuckDB file open for writing, as a second trii-term would."""
    code = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
        "print('ready', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield holder
    finally:
        holder.kill()
        holder.wait()


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> None:
    """Wait for a condition the code under test will make true (never a bare sleep)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {condition}")
        await asyncio.sleep(step)


async def wait_until_it_holds(check: Callable[[], None], timeout: float = 10.0) -> None:
    """Wait until `check` (a block of assertions on what is drawn) passes; past the deadline its
    last failure is raised. For a screen that is still being laid out: the assertions hold once
    it is done, and a real fault fails them to the end."""
    failure: AssertionError | None = None

    def holds() -> bool:
        nonlocal failure
        try:
            check()
        except AssertionError as error:
            failure = error
            return False
        return True

    try:
        await wait_until(holds, timeout)
    except AssertionError:
        assert failure is not None
        raise failure from None
