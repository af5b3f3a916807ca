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


async def test_a_paused_replay_is_not_called_stale(paths: Paths) -> None:
    from trii_term.commands import CommandContext

    session = Session(parse_config("[providers.replay]\nspeed = 600\n"), paths, feed_stale_after=0.2)
    await session.start()
    try:
        await session.commands.run("replay pause", CommandContext(session))
        import asyncio

        await asyncio.sleep(0.6)
        assert session.feed_status.state is FeedState.PAUSED
    finally:
        await session.stop()


def test_store_path_overrides_the_data_dir(paths: Paths, tmp_path: Path) -> None:
    custom = tmp_path / "elsewhere" / "desk.duckdb"
    paths.config_file.write_text(f'[store]\npath = "{custom}"\n[providers.replay]\nspeed = 600\n')
    result = run_cli("record", "--seconds", "1", paths=paths)
    assert result.returncode == 0, result.stderr
    assert custom.exists() and str(custom) in result.stdout
    assert not paths.default_store.exists()
    assert (paths.data_dir / "logs" / "trii-term.log").exists()  # logs stay in the data dir
