"""Trading inside a running replay session: the desk and the paper broker against the stream."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from trii_term.domain import US, SessionDay
from trii_term.domain.orders import TIF, OrderRequest, OrderStatus, OrderType, Side
from trii_term.paths import Paths

from .conftest import wait_until
from .test_replay_feed import replaying


async def test_a_market_order_fills_at_the_streamed_ask_and_day_orders_end_with_the_day(paths: Paths) -> None:
    async with replaying(paths, "[providers.replay]\nspeed = 600\n") as (session, _tape):
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.ask is not None)
        assert session.desk is not None and session.broker is not None
        ask = session.quotes.get("AAPL").ask  # type: ignore[union-attr]
        order = session.desk.submit(OrderRequest("AAPL", Side.BUY, D(10)), source="cli", confirmed=True)
        assert order.status is OrderStatus.FILLED
        assert abs(order.avg_fill_price - D(repr(ask))) < D("1")  # the ask of the moment, to the cent
        assert order.avg_fill_price == order.avg_fill_price.quantize(D("0.01"))
        (pos,) = session.broker.positions()
        assert pos.symbol == "AAPL" and pos.qty == 10
        day = session.desk.submit(
            OrderRequest("IBM", Side.BUY, D(1), OrderType.LIMIT, TIF.DAY, limit_price=D("190")),
            source="ticket",
            confirmed=True,
        )
        gtc = session.desk.submit(
            OrderRequest("IBM", Side.BUY, D(1), OrderType.LIMIT, TIF.GTC, limit_price=D("190")),
            source="ticket",
            confirmed=True,
        )
        # a replay publishing the same day again (a restart, a second process) ends nothing
        start = session.feed.start_day  # type: ignore[union-attr]
        session.bus.publish(SessionDay("US", start, 0, 0))
        assert {o.id: o.status for o in session.broker.orders()}[day.id] is OrderStatus.NEW
        # the replay moving on to another day does
        session.bus.publish(SessionDay("US", start + timedelta(days=3), 0, 0))
        statuses = {o.id: o.status for o in session.broker.orders()}
        assert statuses[day.id] is OrderStatus.EXPIRED and statuses[gtc.id] is OrderStatus.NEW
        (entry,) = [e for e in session.broker.journal.entries(order_id=day.id) if e.event == "expired"]
        assert entry.source == "session" and "another day" in entry.detail["reason"]


async def test_a_day_order_expires_at_its_sessions_real_close_not_before(paths: Paths) -> None:
    async with replaying(paths, "[providers.replay]\nspeed = 600\n") as (session, _tape):
        await wait_until(lambda: (q := session.quotes.get("IBM")) is not None and q.ask is not None)
        assert session.desk is not None and session.broker is not None
        day = session.desk.submit(
            OrderRequest("IBM", Side.BUY, D(1), OrderType.LIMIT, TIF.DAY, limit_price=D("190")),
            source="ticket",
            confirmed=True,
        )
        start = session.feed.start_day  # type: ignore[union-attr]
        _open, close = session.session_bounds(US, start)  # type: ignore[misc]
        session.clock.pause()
        session.clock.set_time(close - 1_000_000_000)  # a second before the close
        assert session.expire_day_orders() == []
        session.clock.set_time(close)
        # found: a store that cannot save (a full disk) ended the watchdog that expires them;
        # now they work on and the next check expires them
        other = session.store.con.cursor()  # type: ignore[union-attr]
        other.execute("BEGIN TRANSACTION")
        other.execute("UPDATE orders SET qty = qty + 1, status = status")
        assert session.expire_day_orders() == []
        other.execute("ROLLBACK")
        assert [o.id for o in session.expire_day_orders()] == [day.id]


async def test_replay_goto_before_the_accounts_last_fill_is_refused_until_a_fresh_account(
    paths: Paths,
) -> None:
    import pytest

    from trii_term.commands import CommandContext, CommandError

    async with replaying(paths, "[providers.replay]\nspeed = 600\n") as (session, _tape):
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.ask is not None)
        assert session.desk is not None
        session.desk.submit(OrderRequest("AAPL", Side.BUY, D(10)), source="cli", confirmed=True)
        start = session.feed.start_day  # type: ignore[union-attr]
        earlier = start - timedelta(days=1)
        ctx = CommandContext(session, source="palette")
        with pytest.raises(CommandError, match=r"last traded or changed an order at .*\(paper reset"):
            await session.commands.run(f"replay goto {earlier}", ctx)
        with pytest.raises(CommandError, match="needs confirming"):
            await session.commands.run("paper reset", ctx)
        done = await session.commands.run(
            "paper reset", CommandContext(session, source="cli", confirmed=True)
        )
        assert "kept as paper#1" in done.message
        assert session.rewind_problem(earlier) is None
        assert session.broker.positions() == []  # type: ignore[union-attr]


async def test_the_daily_loss_limit_remembers_the_day_across_restarts(paths: Paths) -> None:
    """Found: the day's P&L started again at 0 in every new process (a restart, every CLI
    order), so a trader could reset the daily loss limit by restarting."""
    import pytest

    from trii_term.trading.desk import RiskRefused

    text = '[providers.replay]\nspeed = 600\n[risk]\ndaily_loss_limit = "0.50"\n'
    async with replaying(paths, text) as (session, _tape):
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.ask is not None)
        assert session.desk is not None
        # one share: the day is down by the commission (1.00) give or take how far one AAPL moved
        # from its fill (the last trade can stand above the ask it bought at)
        session.desk.submit(OrderRequest("AAPL", Side.BUY, D(1)), source="cli", confirmed=True)
        lost = session.desk.day_pnl()
        assert lost <= D("-0.75")
        with pytest.raises(RiskRefused, match="daily_loss_limit"):
            session.desk.submit(OrderRequest("IBM", Side.BUY, D(1)), source="cli", confirmed=True)
    # a new process, the same day, at the pace of the market: at 600x a loaded machine's start-up
    # is many market minutes, and AAPL rising 50 cents from the fill would bring the loss under
    # the limit
    again = text.replace("speed = 600", "speed = 1")
    async with replaying(paths, again) as (session, _tape):
        assert session.desk is not None
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.prev_close is not None)
        assert session.desk.day_pnl() < D("-0.50")  # not 0 again
        with pytest.raises(RiskRefused, match="daily_loss_limit"):
            session.desk.submit(OrderRequest("IBM", Side.BUY, D(1)), source="cli", confirmed=True)
        sell = session.desk.submit(OrderRequest("AAPL", Side.SELL, D(1)), source="cli", confirmed=True)
        assert sell.filled_qty == 1  # closing is still allowed


async def test_a_restart_replays_the_day_from_the_accounts_last_trade_not_from_the_open(
    paths: Paths,
) -> None:
    """Found: every restart (and every CLI order) replayed the day from 09:30, so new orders filled
    hours before trades already on the books."""
    text = "[providers.replay]\nspeed = 3000\n"
    async with replaying(paths, text) as (session, _tape):
        start = session.feed.start_day  # type: ignore[union-attr]
        open_ns, _ = session.session_bounds(US, start)  # type: ignore[misc]
        await wait_until(lambda: session.clock.now_ns() > open_ns + 90 * 60 * 10**9)  # past 11:00
        assert session.desk is not None
        first = session.desk.submit(OrderRequest("AAPL", Side.BUY, D(1)), source="cli", confirmed=True)
    async with replaying(paths, text) as (session, _tape):
        assert session.clock.now_ns() >= first.created_ns  # not back at the open
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.ask is not None)
        assert session.desk is not None
        again = session.desk.submit(OrderRequest("AAPL", Side.BUY, D(1)), source="cli", confirmed=True)
        assert again.created_ns >= first.created_ns and again.id > first.id


async def test_replay_goto_a_day_only_the_indices_have_is_refused(paths: Paths) -> None:
    import pytest

    from trii_term.commands import CommandContext, CommandError

    async with replaying(paths, '[feed]\nsymbols = ["AAPL", "SPX"]\n[providers.replay]\nspeed = 600\n') as (
        session,
        _tape,
    ):
        ctx = CommandContext(session, source="palette")
        with pytest.raises(CommandError, match=r"history of AAPL ends on 2013-03-01"):
            await session.commands.run("replay goto 2013-03-05", ctx)


async def test_an_order_or_cancel_the_store_cannot_save_could_not_run(paths: Paths) -> None:
    """Found: an order the store could not save (a full disk) said why, but exited 4 — "refused
    by a rule or the broker". It could not run: 1. Here a second writer holds the account's
    rows, which DuckDB refuses at commit as it refuses a write on a full disk."""
    import pytest

    from trii_term.commands import CommandContext, CommandError

    async with replaying(paths, "[providers.replay]\nspeed = 600\n") as (session, _tape):
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.ask is not None)
        ctx = CommandContext(session, source="cli", confirmed=True)
        working = await session.commands.run("buy 5 AAPL lmt 400 gtc", ctx)
        order = working.data["order"]
        other = session.store.con.cursor()  # type: ignore[union-attr]
        other.execute("BEGIN TRANSACTION")
        other.execute("UPDATE paper_accounts SET cash = cash + 1, next_id = next_id + 1")
        other.execute("UPDATE orders SET qty = qty + 1, status = status")
        with pytest.raises(CommandError, match=r"^Not sent: .*Conflict.*Nothing was changed") as sent:
            await session.commands.run("buy 1 AAPL", ctx)
        assert sent.value.exit_code == 1
        with pytest.raises(CommandError, match=r"^Not canceled: .*Nothing was changed") as canceled:
            await session.commands.run(f"order cancel {order.id}", ctx)
        assert canceled.value.exit_code == 1
        other.execute("ROLLBACK")
        assert [o.id for o in session.broker.orders(open_only=True)] == [order.id]  # type: ignore[union-attr]
