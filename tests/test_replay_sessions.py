"""The replay on the exchange's real calendar: early closes, and where the history runs out for a
watchlist that mixes stocks (to 2013-03-01) with indices (to 2018)."""

from __future__ import annotations

from datetime import date

import pytest

from trii_term.domain import US, FeedState, SessionPhase
from trii_term.feeds import replay as replay_module
from trii_term.feeds.replay_path import CLOSE_TRADE_NS
from trii_term.paths import Paths

from .conftest import wait_until
from .test_replay_feed import replaying

ET = US.tz


@pytest.fixture(autouse=True)
def _short_close_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_module, "CLOSE_PAUSE_SECONDS", 0.05)


async def test_an_early_close_day_ends_at_13_00(paths: Paths) -> None:
    """2013-07-03, the eve of Independence Day: NYSE closed at 13:00 ET. The replayed day ends
    there, with the real close 1 µs before it, and the real volume; the next day is 07-05."""
    text = '[feed]\nsymbols = ["SPX"]\n[providers.replay]\ndate = "2013-07-03"\nspeed = 100000\n'
    async with replaying(paths, text) as (session, tape):
        await wait_until(lambda: len(tape.days) >= 2, timeout=60)
        first, second = tape.days[:2]
        assert (first.day, second.day) == (date(2013, 7, 3), date(2013, 7, 5))
        assert US.local(first.open_ns).time().isoformat() == "09:30:00"
        assert US.local(first.close_ns).time().isoformat() == "13:00:00"
        day = [t for t in tape.trades if t.symbol == "SPX" and first.open_ns <= t.ts < second.open_ns]
        assert session.store is not None
        o, h, lo, c, v = session.store.con.execute(
            "SELECT open, high, low, close, volume FROM bars "
            "WHERE interval = '1d' AND symbol = 'SPX' AND ts = '2013-07-03'"
        ).fetchone()  # type: ignore[misc]
        assert day[0].ts == first.open_ns and day[0].price == o
        assert day[-1].ts == first.close_ns - CLOSE_TRADE_NS and day[-1].price == c
        assert max(t.price for t in day) == h and min(t.price for t in day) == lo
        assert sum(t.size for t in day) == v
        # the session clock agrees: open until 13:00, then closed
        clock = session.clock
        assert clock.phase(US, first.close_ns - CLOSE_TRADE_NS) is SessionPhase.OPEN
        assert clock.phase(US, first.close_ns) is SessionPhase.CLOSED  # replay: no extended hours
        assert clock.session_bounds(US, date(2013, 7, 3)) == (first.open_ns, first.close_ns)
        assert clock.session_bounds(US, date(2013, 7, 4)) is None  # Independence Day


async def test_a_watchlist_with_indices_still_loops_the_stocks(paths: Paths) -> None:
    """The README's example: SPX and COMP added to the default watchlist. The stocks' history ends
    on 2013-03-01 and the indices' in 2018; the replay must loop at the stocks' end (to the first
    day every watched symbol has, GOOG's first), not play five years of index-only days with the
    stocks stale."""
    async with replaying(paths, "[providers.replay]\nspeed = 100000\n") as (session, tape):
        assert session.watchlists is not None
        session.watchlists.add(["SPX", "COMP"])
        await wait_until(lambda: len(tape.days) >= 2, timeout=60)
        assert [d.day for d in tape.days[:2]] == [date(2013, 3, 1), date(2004, 8, 19)]
        looped = [s for s in tape.status if "replaying again" in s.reason]
        assert looped[0].reason == "the history ends on 2013-03-01; replaying again from 2004-08-19"
        assert looped[0].state is FeedState.LIVE
        # the stocks trade on the day after the loop
        start = tape.days[1].open_ns
        await wait_until(
            lambda: {"AAPL", "GOOG", "SPX"} <= {t.symbol for t in tape.trades if t.ts >= start}, timeout=60
        )


async def test_an_index_alone_plays_its_own_longer_history(paths: Paths) -> None:
    text = '[feed]\nsymbols = ["SPX"]\n[providers.replay]\ndate = "2013-03-01"\nspeed = 100000\n'
    async with replaying(paths, text) as (_, tape):
        await wait_until(lambda: len(tape.days) >= 2, timeout=60)
        assert [d.day for d in tape.days[:2]] == [date(2013, 3, 1), date(2013, 3, 4)]


async def test_at_end_stop_says_where_the_watched_history_ends(paths: Paths) -> None:
    text = (
        '[feed]\nsymbols = ["IBM", "SPX"]\n[providers.replay]\ndate = "2013-02-28"\n'
        'speed = 100000\nat_end = "stop"\n'
    )
    async with replaying(paths, text) as (session, tape):
        await wait_until(lambda: session.feed_status.state is FeedState.ENDED, timeout=60)
        assert [d.day for d in tape.days] == [date(2013, 2, 28), date(2013, 3, 1)]
        assert session.feed_status.reason == "the history ends on 2013-03-01; replay goto DATE to go on"
