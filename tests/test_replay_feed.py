"""The replay feed and the session around it, through the real bus, clock and store."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from trii_term.config import ConfigError, parse_config
from trii_term.domain import (
    US,
    DayStats,
    FeedState,
    FeedStatus,
    MarketBatch,
    Quote,
    SessionDay,
    SessionPhase,
    Trade,
)
from trii_term.feeds import replay as replay_module
from trii_term.paths import Paths
from trii_term.session import Session
from trii_term.store.db import Store

from .conftest import wait_until


class Tape:
    """Everything the session's bus carried."""

    def __init__(self, session: Session) -> None:
        self.trades: list[Trade] = []
        self.quotes: list[Quote] = []
        self.stats: list[DayStats] = []
        self.days: list[SessionDay] = []
        self.status: list[FeedStatus] = []
        session.bus.subscribe(MarketBatch, self._batch)
        session.bus.subscribe(SessionDay, self.days.append)
        session.bus.subscribe(FeedStatus, self.status.append)

    def _batch(self, batch: MarketBatch) -> None:
        for e in batch.events:
            {Trade: self.trades, Quote: self.quotes, DayStats: self.stats}[type(e)].append(e)


async def start(paths: Paths, text: str, **kwargs) -> tuple[Session, Tape]:  # type: ignore[no-untyped-def]
    session = Session(parse_config(text), paths, writer_flush_interval=0.05, **kwargs)
    tape = Tape(session)
    await session.start()
    return session, tape


async def test_default_replays_the_last_common_day_from_the_open(paths: Paths) -> None:
    session, tape = await start(paths, "[providers.replay]\nspeed = 60\n")
    try:
        feed = session.feed
        assert feed is not None and feed.simulated
        assert feed.start_day == date(2013, 3, 1)  # type: ignore[attr-defined]
        await wait_until(lambda: len(tape.trades) >= 4)
        open_ns, _ = US.session_bounds(date(2013, 3, 1))
        assert tape.days[0] == SessionDay(
            "US", date(2013, 3, 1), open_ns, open_ns + 6 * 3600 * 10**9 + 1800 * 10**9
        )
        firsts = {t.symbol: t for t in reversed(tape.trades)}
        assert set(firsts) == {"AAPL", "MSFT", "IBM", "GOOG"}
        assert all(t.ts == open_ns for t in firsts.values())
        assert firsts["AAPL"].price == 438.0  # the real open
        prev = {s.symbol: s.prev_close for s in tape.stats}
        assert prev["AAPL"] == pytest.approx(441.4)  # 2013-02-28's real close
        assert session.clock.simulated and session.clock.phase(US) is SessionPhase.OPEN
        assert session.feed_status.state is FeedState.LIVE and session.feed_status.simulated
    finally:
        await session.stop()


async def test_a_whole_session_stays_in_the_real_envelope_and_rolls_to_the_next_day(
    paths: Paths,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(replay_module, "CLOSE_PAUSE_SECONDS", 0.05)
    session, tape = await start(
        paths, '[feed]\nsymbols = ["IBM", "SPX"]\n[providers.replay]\ndate = "2013-02-27"\nspeed = 100000\n'
    )
    try:
        await wait_until(lambda: len(tape.days) >= 2, timeout=60)
        assert [d.day for d in tape.days[:2]] == [date(2013, 2, 27), date(2013, 2, 28)]
        open_ns, close_ns = US.session_bounds(date(2013, 2, 27))
        day1 = [t for t in tape.trades if open_ns <= t.ts < close_ns]
        assert session.store is not None
        real = dict(
            session.store.con.execute(
                "SELECT symbol, [open, high, low, close, volume] FROM bars "
                "WHERE interval = '1d' AND ts = '2013-02-27' AND symbol IN ('IBM', 'SPX')"
            ).fetchall()
        )
        for sym in ("IBM", "SPX"):
            prices = [t.price for t in day1 if t.symbol == sym]
            volume = sum(t.size for t in day1 if t.symbol == sym)
            o, h, lo, c, v = real[sym]
            assert (prices[0], max(prices), min(prices), prices[-1], volume) == (o, h, lo, c, v)
        assert not any(q.symbol == "SPX" for q in tape.quotes)  # an index has no quotes
        # the next day starts from its own open with yesterday's close as previous close
        day2_stats = [s for s in tape.stats if s.day == date(2013, 2, 28) and s.symbol == "IBM"]
        assert day2_stats and day2_stats[0].prev_close == real["IBM"][3]
    finally:
        await session.stop()


async def test_the_replay_ends_at_the_end_of_the_history(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "CLOSE_PAUSE_SECONDS", 0.05)
    session, _ = await start(paths, '[feed]\nsymbols = ["FB"]\n[providers.replay]\nspeed = 100000\n')
    try:
        await wait_until(lambda: session.feed_status.state is FeedState.ENDED, timeout=60)
        assert "2018-12-31" in session.feed_status.reason or "2013-03-01" in session.feed_status.reason
    finally:
        await session.stop()


async def test_a_symbol_added_mid_session_joins_with_the_day_so_far(paths: Paths) -> None:
    session, tape = await start(paths, '[feed]\nsymbols = ["IBM"]\n[providers.replay]\nspeed = 2000\n')
    try:
        await wait_until(
            lambda: session.clock.now_ns() > US.session_bounds(date(2013, 3, 1))[0] + 3600 * 10**9
        )
        assert session.watchlists is not None
        session.watchlists.add(["MSFT"])
        await wait_until(lambda: any(s.symbol == "MSFT" and s.open is not None for s in tape.stats))
        snap = next(s for s in tape.stats if s.symbol == "MSFT" and s.open is not None)
        assert snap.open == 27.72  # MSFT's real open on 2013-03-01
        assert 27.42 <= snap.low <= snap.high <= 27.98  # inside the real range
        assert snap.volume > 0
        await wait_until(lambda: any(t.symbol == "MSFT" and t.ts > snap.ts for t in tape.trades))
        st = session.quotes.get("MSFT")
        assert st is not None and st.open == 27.72 and st.volume >= snap.volume
        # and removing it stops its stream
        session.watchlists.remove("MSFT")
        assert "MSFT" not in session.subscribed()
    finally:
        await session.stop()


async def test_pause_stops_the_session_clock(paths: Paths) -> None:
    session, tape = await start(paths, "[providers.replay]\nspeed = 600\n")
    try:
        from trii_term.commands import CommandContext

        ctx = CommandContext(session, source="test")
        await session.commands.run("replay pause", ctx)
        assert session.clock.paused and session.feed_status.state is FeedState.PAUSED
        frozen = session.clock.now_ns()
        await asyncio.sleep(0.3)  # real time passes; market time must not
        assert session.clock.now_ns() == frozen
        assert all(t.ts <= frozen for t in tape.trades)
        await session.commands.run("replay resume", ctx)
        await wait_until(lambda: session.clock.now_ns() > frozen)
        await session.commands.run("replay speed 1200", ctx)
        assert session.clock.speed == 1200
    finally:
        await session.stop()


async def test_goto_replays_another_day(paths: Paths) -> None:
    session, tape = await start(paths, "[providers.replay]\nspeed = 600\n")
    try:
        from trii_term.commands import CommandContext, CommandError

        ctx = CommandContext(session, source="test")
        result = await session.commands.run("replay goto 2012-06-01", ctx)
        assert "2012-06-01" in result.message
        await wait_until(lambda: any(d.day == date(2012, 6, 1) for d in tape.days))
        with pytest.raises(CommandError, match="not a trading day"):
            await session.commands.run("replay goto 2012-06-02", ctx)
    finally:
        await session.stop()


async def test_a_date_without_trading_is_a_config_error(paths: Paths) -> None:
    session = Session(parse_config('[providers.replay]\ndate = "2013-03-02"\n'), paths)
    with pytest.raises(ConfigError) as info:
        await session.start()
    await session.stop()
    assert info.value.key == "providers.replay.date"
    assert "weekend" in str(info.value) and "2013-03-01" in str(info.value)


async def test_replaying_the_same_day_again_replaces_its_rows(paths: Paths) -> None:
    """Restarting the workstation replays the day from the open: the store must not double it."""
    text = '[feed]\nsymbols = ["IBM"]\n[providers.replay]\nspeed = 3000\n'
    for _ in range(2):
        session, tape = await start(paths, text)
        await wait_until(lambda tape=tape: len(tape.trades) > 200)
        await session.stop()
    store = Store.open(paths.default_store)
    try:
        total, distinct = store.con.execute(
            "SELECT count(*), count(DISTINCT (ts, symbol)) FROM ticks"
        ).fetchone()  # type: ignore[misc]
        assert total == distinct > 200
    finally:
        store.close()
