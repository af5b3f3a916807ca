"""Session-level behaviour: third-party feeds by entry point, the stale-feed watchdog, store.path."""

from __future__ import annotations

from pathlib import Path

import pytest

from trii_term.config import parse_config
from trii_term.domain import FeedState
from trii_term.feeds import available_feeds
from trii_term.paths import Paths
from trii_term.session import Session

from .conftest import run_cli, wait_until

FAKES = Path(__file__).parent / "fakes"


@pytest.fixture
def quiet_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install the quiet provider the way a package is installed: a dist-info with an entry
    point in the trii_term.feeds group, on sys.path."""
    monkeypatch.syspath_prepend(str(FAKES))


async def test_a_plugin_feed_is_found_and_a_silent_feed_turns_stale(
    paths: Paths, quiet_installed: None
) -> None:
    assert "quiet" in available_feeds()
    session = Session(
        parse_config('[feed]\nprovider = "quiet"\nsymbols = ["AAPL"]\n'), paths, feed_stale_after=0.3
    )
    await session.start()
    try:
        await wait_until(lambda: session.quotes.get("AAPL") is not None)
        await wait_until(lambda: session.feed_status.state is FeedState.STALE, timeout=5)
        assert "no data for" in session.feed_status.reason and "market is open" in session.feed_status.reason
        session.feed.speak.set()  # type: ignore[union-attr]
        await wait_until(lambda: session.feed_status.state is FeedState.LIVE, timeout=5)
    finally:
        await session.stop()


async def test_a_replay_paused_before_its_first_step_stays_paused(paths: Paths) -> None:
    """Pausing right after start (before the feed task ran) once let the feed announce LIVE
    over PAUSED with a frozen clock, which the watchdog then called STALE."""
    from trii_term.commands import CommandContext
    from trii_term.domain import SessionDay

    session = Session(parse_config("[providers.replay]\nspeed = 600\n"), paths, feed_stale_after=0.2)
    days: list[SessionDay] = []
    session.bus.subscribe(SessionDay, days.append)
    await session.start()
    try:
        await session.commands.run("replay pause", CommandContext(session))
        await wait_until(lambda: bool(days))  # the feed has taken its first step
        assert session.feed_status.state is FeedState.PAUSED
    finally:
        await session.stop()


@pytest.mark.first_start
def test_store_path_overrides_the_data_dir(paths: Paths, tmp_path: Path) -> None:
    custom = tmp_path / "elsewhere" / "desk.duckdb"
    paths.config_file.write_text(f'[store]\npath = "{custom}"\n[providers.replay]\nspeed = 600\n')
    result = run_cli("record", "--seconds", "1", paths=paths)
    assert result.returncode == 0, result.stderr
    assert custom.exists() and str(custom) in result.stdout
    assert not paths.default_store.exists()
    assert (paths.data_dir / "logs" / "trii-term.log").exists()  # logs stay in the data dir


async def test_a_failing_feed_shows_error_with_its_reason(paths: Paths, quiet_installed: None) -> None:
    from trii_term.app import TriiTermApp

    from .test_app import screen_text

    session = Session(parse_config('[feed]\nprovider = "broken"\nsymbols = ["AAPL"]\n'), paths)
    app = TriiTermApp(session)
    async with app.run_test(size=(100, 24)) as pilot:
        await wait_until(lambda: session.feed_status.state is FeedState.ERROR)
        assert "ConnectionError: the provider closed the connection" in session.feed_status.reason
        await wait_until(lambda: "ERROR: ConnectionError" in screen_text(app).splitlines()[-2])
        assert "✖ broken feed error: ConnectionError: the provider closed the connection" in " ".join(
            screen_text(app).split()
        )
        assert session.quotes.get("AAPL") is not None  # what arrived before is kept
        await pilot.press("ctrl+q")


def test_a_provider_that_fails_to_load_is_a_config_error(paths: Paths) -> None:
    import os

    paths.config_file.write_text('[feed]\nprovider = "unloadable"\n')
    env = {"PYTHONPATH": str(FAKES) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = run_cli("record", "--seconds", "1", paths=paths, env=env)
    assert result.returncode == 2
    assert "'unloadable' is installed but cannot be loaded" in result.stderr
    assert "ModuleNotFoundError" in result.stderr and "Traceback" not in result.stderr


def test_record_says_when_the_feed_fails_and_exits_1(paths: Paths) -> None:
    import json
    import os

    paths.config_file.write_text('[feed]\nprovider = "broken"\nsymbols = ["AAPL"]\n')
    env = {"PYTHONPATH": str(FAKES) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = run_cli("record", "--seconds", "20", "--json", paths=paths, env=env)
    assert result.returncode == 1
    assert "the broken feed failed: ConnectionError: the provider closed the connection" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["ticks"] == 1 and summary["lost"] == 0  # what arrived before is kept
    assert "ConnectionError" in summary["feed_error"]
