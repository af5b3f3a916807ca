"""The replay feed and the session around it, through the real bus, clock and store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
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


@contextlib.asynccontextmanager
async def replaying(paths: Paths, text: str, **kwargs) -> AsyncIterator[tuple[Session, Tape]]:  # type: ignore[no-untyped-def]
    """A started session and the tape of its bus; stopped however the test ends."""
    session, tape = await start(paths, text, **kwargs)
    try:
        yield session, tape
    finally:
        await session.stop()


async def start(paths: Paths, text: str, **kwargs) -> tuple[Session, Tape]:  # type: ignore[no-untyped-def]
    session = Session(parse_config(text), paths, writer_flush_interval=0.05, **kwargs)
    tape = Tape(session)
    await session.start()
    return session, tape


async def test_default_replays_the_last_common_day_from_the_open(paths: Paths) -> None:
    async with replaying(paths, "[providers.replay]\nspeed = 60\n") as (session, tape):
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


async def test_a_whole_session_stays_in_the_real_envelope_and_rolls_to_the_next_day(
    paths: Paths,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(replay_module, "CLOSE_PAUSE_SECONDS", 0.05)
    async with replaying(
        paths, '[feed]\nsymbols = ["IBM", "SPX"]\n[providers.replay]\ndate = "2013-02-27"\nspeed = 100000\n'
    ) as (session, tape):
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


async def test_at_the_end_of_the_history_the_replay_loops_by_default(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "CLOSE_PAUSE_SECONDS", 0.05)
    text = '[feed]\nsymbols = ["FB", "IBM"]\n[providers.replay]\nspeed = 100000\n'
    async with replaying(paths, text) as (_, tape):
        await wait_until(lambda: len(tape.days) >= 2, timeout=60)
        # the last day FB and IBM share, then the first day they share (FB's IPO)
        assert [d.day for d in tape.days[:2]] == [date(2013, 3, 1), date(2012, 5, 18)]
        looped = [s for s in tape.status if "replaying again" in s.reason]
        assert looped and looped[0].state is FeedState.LIVE
        assert looped[0].reason == "the history ends on 2013-03-01; replaying again from 2012-05-18"


async def test_at_end_stop_ends_says_when_and_still_answers(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trii_term.commands import CommandContext, CommandError

    monkeypatch.setattr(replay_module, "CLOSE_PAUSE_SECONDS", 0.05)
    text = '[feed]\nsymbols = ["IBM"]\n[providers.replay]\nspeed = 100000\nat_end = "stop"\n'
    async with replaying(paths, text) as (session, tape):
        ctx = CommandContext(session, source="test")
        await wait_until(lambda: session.feed_status.state is FeedState.ENDED, timeout=60)
        assert session.feed_status.reason.startswith("the history ends on 2013-03-01")
        with pytest.raises(CommandError, match="The replay has ended"):
            await session.commands.run("replay pause", ctx)
        assert session.feed_status.state is FeedState.ENDED  # not brought back to LIVE
        # a symbol added after the end still gets how the last day closed
        assert session.watchlists is not None
        session.watchlists.add(["MSFT"])
        await wait_until(lambda: any(s.symbol == "MSFT" for s in tape.stats))
        snap = next(s for s in tape.stats if s.symbol == "MSFT")
        assert (snap.day, snap.open, snap.last) == (date(2013, 3, 1), 27.72, 27.95)
        # and goto starts it again
        await session.commands.run("replay goto 2013-02-28", ctx)
        await wait_until(lambda: tape.days[-1].day == date(2013, 2, 28))
        await wait_until(lambda: session.feed_status.state is FeedState.LIVE)


async def test_a_symbol_added_mid_session_joins_with_the_day_so_far(paths: Paths) -> None:
    async with replaying(paths, '[feed]\nsymbols = ["IBM"]\n[providers.replay]\nspeed = 2000\n') as (
        session,
        tape,
    ):
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


async def test_pause_stops_the_session_clock(paths: Paths) -> None:
    async with replaying(paths, "[providers.replay]\nspeed = 600\n") as (session, tape):
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


async def test_goto_replays_another_day_from_its_open(paths: Paths) -> None:
    from trii_term.commands import CommandContext, CommandError

    async with replaying(paths, "[providers.replay]\nspeed = 600\n") as (session, tape):
        ctx = CommandContext(session, source="test")
        result = await session.commands.run("replay goto 2012-06-01", ctx)
        assert "2012-06-01" in result.message
        await wait_until(lambda: any(d.day == date(2012, 6, 1) for d in tape.days))
        open_ns, _ = US.session_bounds(date(2012, 6, 1))
        assert open_ns <= session.clock.now_ns() < open_ns + 600 * 10**9  # from the open
        with pytest.raises(CommandError, match="is a weekend"):
            await session.commands.run("replay goto 2012-06-02", ctx)

        # going to the day being played starts it again from the open
        await session.commands.run("replay speed 6000", ctx)
        await wait_until(lambda: session.clock.now_ns() > open_ns + 3600 * 10**9)
        days_before = len(tape.days)
        printed = []  # how many trades the tape held when each day started
        session.bus.subscribe(SessionDay, lambda _day: printed.append(len(tape.trades)))
        await session.commands.run("replay goto 2012-06-01", ctx)
        await wait_until(lambda: len(tape.days) > days_before)
        assert tape.days[-1].day == date(2012, 6, 1)
        assert session.clock.now_ns() < open_ns + 3600 * 10**9
        # the watchlist's day is the day played again, not added to the hour played before
        await wait_until(lambda: len(tape.trades) > printed[-1])
        again = [t for t in tape.trades[printed[-1] :] if t.symbol == "IBM"]
        q = session.quotes.get("IBM")
        assert q is not None and again
        assert q.volume == pytest.approx(sum(t.size for t in again))
        assert (q.high, q.low) == (max(t.price for t in again), min(t.price for t in again))


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
        async with replaying(paths, text) as (_, tape):
            await wait_until(lambda tape=tape: len(tape.trades) > 200)
    store = Store.open(paths.default_store)
    try:
        total, distinct = store.con.execute(
            "SELECT count(*), count(DISTINCT (ts, symbol)) FROM ticks"
        ).fetchone()  # type: ignore[misc]
        assert total == distinct > 200
    finally:
        store.close()


async def test_a_split_day_changes_against_the_split_adjusted_close(paths: Paths) -> None:
    """AAPL split 2:1 on 2005-02-28: the day's change is measured from yesterday's close halved,
    as the exchange sets the reference price, not a phantom -50 %."""
    async with replaying(
        paths, '[feed]\nsymbols = ["AAPL"]\n[providers.replay]\ndate = "2005-02-28"\nspeed = 600\n'
    ) as (session, tape):
        await wait_until(lambda: bool(tape.trades))
        assert tape.stats[0].prev_close == pytest.approx(88.99 / 2, abs=0.01)
        st = session.quotes.get("AAPL")
        assert st is not None and st.change_pct is not None and abs(st.change_pct) < 5


async def test_the_clock_holds_at_the_close_between_days(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "CLOSE_PAUSE_SECONDS", 2.0)
    async with replaying(
        paths, '[feed]\nsymbols = ["IBM"]\n[providers.replay]\ndate = "2013-02-27"\nspeed = 100000\n'
    ) as (session, tape):
        _, close_ns = US.session_bounds(date(2013, 2, 27))
        await wait_until(lambda: session.clock.paused, timeout=30)
        held = session.clock.now_ns()
        next_open, _ = US.session_bounds(date(2013, 2, 28))
        assert close_ns <= held < next_open  # after the close (by one loop step), never into the next day
        assert session.clock.phase(US) is SessionPhase.CLOSED
        await asyncio.sleep(0.1)  # real time passes while the market shows closed
        assert session.clock.now_ns() == held
        await wait_until(lambda: len(tape.days) >= 2, timeout=30)
        assert not session.clock.paused  # released for the next day


async def test_pausing_during_the_close_hold_keeps_the_replay_paused(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trii_term.commands import CommandContext

    monkeypatch.setattr(replay_module, "CLOSE_PAUSE_SECONDS", 0.3)
    async with replaying(
        paths, '[feed]\nsymbols = ["IBM"]\n[providers.replay]\ndate = "2013-02-27"\nspeed = 100000\n'
    ) as (session, tape):
        await wait_until(lambda: session.clock.paused, timeout=30)  # the hold after the close
        await session.commands.run("replay pause", CommandContext(session))
        assert session.feed_status.state is FeedState.PAUSED
        await asyncio.sleep(0.5)  # longer than the hold
        assert session.clock.paused and session.feed_status.state is FeedState.PAUSED
        assert len(tape.days) == 1  # the next day waits for the trader
        await session.commands.run("replay pause", CommandContext(session))  # p again: resume
        await wait_until(lambda: len(tape.days) >= 2, timeout=30)


async def test_the_replay_does_not_loop_back_past_the_paper_accounts_trades(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Looping back to the first day would put the account's positions in the past: it stops
    there instead, says why, and a fresh paper account lets it go on."""
    from decimal import Decimal

    from trii_term.domain.orders import OrderRequest, Side

    monkeypatch.setattr(replay_module, "CLOSE_PAUSE_SECONDS", 0.05)
    text = '[feed]\nsymbols = ["IBM"]\n[providers.replay]\nspeed = 4000\n'
    async with replaying(paths, text) as (session, tape):
        await wait_until(lambda: (q := session.quotes.get("IBM")) is not None and q.ask is not None)
        assert session.desk is not None
        session.desk.submit(OrderRequest("IBM", Side.BUY, Decimal(1)), source="cli", confirmed=True)
        session.feed.set_speed(100000)  # type: ignore[union-attr]
        await wait_until(lambda: session.feed_status.state is FeedState.ENDED, timeout=60)
        assert "not looping back" in session.feed_status.reason
        assert "paper reset" in session.feed_status.reason
        assert [d.day for d in tape.days] == [date(2013, 3, 1)]
