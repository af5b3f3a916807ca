"""A replay that resumes a day the paper account acted on: where it picks up, and the day so far.

Every test runs two processes' worth of sessions on one store, as a trader restarting the
workstation (or running `trii-term order` beside it) would. The clock is stepped while paused so
the account acts at known market times; `_step_to` waits for the feed to publish up to there.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterable
from datetime import date
from decimal import Decimal as D

import pytest

from trii_term.commands import CommandContext, CommandError
from trii_term.config import parse_config
from trii_term.domain import US, MarketBatch, Trade
from trii_term.domain.orders import TIF, OrderRequest, OrderStatus, OrderType, Side
from trii_term.paths import Paths, shipped_data_dir
from trii_term.session import Session

from .conftest import wait_until
from .test_replay_feed import Tape, replaying

MINUTE = 60 * 10**9
DAY = date(2013, 3, 1)  # the default replay day of the default symbols
OPEN_NS, CLOSE_NS = US.session_bounds(DAY)


class _Batches:
    """How many market batches the bus has carried."""

    def __init__(self, session: Session) -> None:
        self.n = 0
        session.bus.subscribe(MarketBatch, self._on)

    def _on(self, _batch: MarketBatch) -> None:
        self.n += 1


async def _step_to(session: Session, batches: _Batches, when_ns: int) -> None:
    """Move the paused replay clock forward to `when_ns` and wait until the feed has published
    every event up to it (its next step drains every symbol up to the clock in one batch)."""
    assert session.clock.paused
    seen = batches.n
    session.clock.set_time(when_ns)
    await wait_until(lambda: batches.n > seen)


def _shipped_day(symbol: str, day: date) -> dict[str, float]:
    """The real day's bar, read straight from the shipped CSV."""
    with gzip.open(shipped_data_dir() / "us_stocks_daily.csv.gz", "rt", newline="") as f:
        for row in csv.DictReader(f):
            if row["Ticker"] == symbol and row["Date"] == day.isoformat():
                return {k.lower(): float(v) for k, v in row.items() if k not in ("Ticker", "Date")}
    raise AssertionError(f"{symbol} {day} is not in the shipped history")


def _ohlcv(trades: Iterable[Trade]) -> tuple[float, float, float, float, float]:
    """Open, high, low, last and volume of trades (each print once, in time order)."""
    unique = sorted({(t.ts, t.symbol): t for t in trades}.values(), key=lambda t: t.ts)
    prices = [t.price for t in unique]
    return prices[0], max(prices), min(prices), prices[-1], sum(t.size for t in unique)


def _store_day(session: Session, symbol: str, until_ns: int) -> tuple[float, float, float, float, int]:
    """The day's open, high, low, volume and print count in the store's ticks before `until_ns`."""
    assert session.store is not None
    row = session.store.con.execute(
        "SELECT arg_min(price, ts), max(price), min(price), sum(size), count(*) FROM ticks "
        "WHERE symbol = ? AND ts >= make_timestamp(?) AND ts < make_timestamp(?)",
        [symbol, OPEN_NS // 1000, until_ns // 1000],
    ).fetchone()
    assert row is not None
    return row  # type: ignore[return-value]


async def test_a_restart_resumes_after_the_accounts_latest_order_not_its_last_fill(paths: Paths) -> None:
    """Found: the replay resumed at the paper account's last fill. A limit placed or replaced
    after it met, on the next start, the quotes from before: a buy limit raised at 11:30 filled
    on a quote of 10:40 at its new price."""
    text = '[feed]\nsymbols = ["AAPL"]\n[providers.replay]\nspeed = 3000\n'
    async with replaying(paths, text) as (session, tape):
        desk, broker = session.desk, session.broker
        assert desk is not None and broker is not None
        batches = _Batches(session)
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.ask is not None)
        session.clock.pause()
        await _step_to(session, batches, OPEN_NS + 30 * MINUTE)
        bought = desk.submit(OrderRequest("AAPL", Side.BUY, D(1)), source="cli", confirmed=True)
        assert bought.status is OrderStatus.FILLED  # the account's last fill: 10:00
        await _step_to(session, batches, OPEN_NS + 60 * MINUTE)
        ask = D(repr(session.quotes.get("AAPL").ask))  # type: ignore[union-attr]
        limit = desk.submit(
            OrderRequest(
                "AAPL",
                Side.BUY,
                D(1),
                OrderType.LIMIT,
                TIF.GTC,
                limit_price=(ask * D("0.93")).quantize(D("0.01")),
            ),
            source="ticket",
            confirmed=True,
        )  # 10:30, far below the market: it rests
        await _step_to(session, batches, OPEN_NS + 120 * MINUTE)
        placed, changed = limit.created_ns, session.clock.now_ns()
        between = [q.ask for q in tape.quotes if q.symbol == "AAPL" and placed < q.ts <= changed]
        cheapest = D(repr(min(between)))
        _, standing = broker.quote("AAPL")
        assert (
            standing is not None and cheapest < standing
        )  # (the data: an earlier ask crosses it, today's not)
        desk.replace(limit.id, source="ticket", confirmed=True, limit_price=cheapest)  # 11:30
        assert {o.id: o.status for o in broker.orders(open_only=True)}[limit.id] is OrderStatus.NEW

    async with replaying(paths, text) as (session, tape):
        broker = session.broker
        assert broker is not None and session.store is not None
        assert session.clock.now_ns() > changed  # just after the replace, not back at the 10:00 fill
        await wait_until(lambda: session.clock.now_ns() > changed + 20 * MINUTE)
        await wait_until(lambda: any(t.ts > changed + 10 * MINUTE for t in tape.trades))
        # nothing from before the replace was streamed again: only the quote standing then
        assert all(t.ts > changed for t in tape.trades)
        assert len([q for q in tape.quotes if q.ts <= changed]) <= 1
        fills = session.store.con.execute(
            "SELECT epoch_ns(ts) FROM fills WHERE broker = 'paper' AND order_id = ?", [limit.id]
        ).fetchall()
        assert all(ts >= changed // 1000 * 1000 for (ts,) in fills), "filled on a quote from before its price"


async def test_replay_goto_before_an_unfilled_order_is_refused(paths: Paths) -> None:
    """An order that never filled is the account's too: replaying an earlier day would put new
    orders and fills before it."""
    async with replaying(paths, "[providers.replay]\nspeed = 600\n") as (session, _tape):
        await wait_until(lambda: (q := session.quotes.get("IBM")) is not None and q.ask is not None)
        assert session.desk is not None
        session.desk.submit(
            OrderRequest("IBM", Side.BUY, D(1), OrderType.LIMIT, TIF.GTC, limit_price=D("190")),
            source="ticket",
            confirmed=True,
        )
        ctx = CommandContext(session, source="palette")
        with pytest.raises(
            CommandError, match=r"last traded or changed an order at 2013-03-01 .*paper reset"
        ):
            await session.commands.run("replay goto 2013-02-28", ctx)


async def test_a_restart_keeps_the_day_so_far_in_the_watchlist_and_the_chart(paths: Paths) -> None:
    """Found: after a restart mid-day the chart's day bar opened at the resume price with the
    volume since then: the day was deleted from the store and written again behind the chart's
    back. The day so far must read as it was, whenever the chart loads."""
    from trii_term.charting.model import ChartModel

    text = '[feed]\nsymbols = ["AAPL", "MSFT"]\n[providers.replay]\nspeed = 3000\n'
    async with replaying(paths, text) as (session, first_run):
        assert session.desk is not None
        batches = _Batches(session)
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.ask is not None)
        session.clock.pause()
        await _step_to(session, batches, OPEN_NS + 150 * MINUTE)
        bought = session.desk.submit(OrderRequest("AAPL", Side.BUY, D(1)), source="cli", confirmed=True)
        assert bought.status is OrderStatus.FILLED  # at 12:00

    # the workstation again; its store writer commits on its own schedule (here: rarely)
    session = Session(parse_config(text), paths, writer_flush_interval=30.0)
    second_run = Tape(session)
    await session.start()
    try:
        session.clock.pause()  # (before the feed's first step: nothing is streamed yet)
        assert session.clock.now_ns() > bought.created_ns  # it resumes after the fill
        resumed = bought.created_ns + 1_000  # hold the clock 1 µs after it, to compare exactly
        session.clock.set_time(resumed)
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.ask is not None)
        # the chart pane starts once the first quotes are painted, as the workstation's does
        chart = ChartModel(session)
        session.bus.subscribe(MarketBatch, chart.on_batch)
        chart.show(symbol="AAPL", interval="1D")
        job = chart.load_job()
        assert job is not None
        key, load = job
        assert chart.install(key, load())
        for sym in ("AAPL", "MSFT"):
            # what the first run streamed before the resume point, and the second after it
            trades = [t for t in first_run.trades + second_run.trades if t.symbol == sym and t.ts <= resumed]
            o, h, lo, c, v = _ohlcv(trades)
            assert o == _shipped_day(sym, DAY)["open"]  # the real open
            q = session.quotes.get(sym)
            assert q is not None and (q.open, q.high, q.low, q.last) == (o, h, lo, c)
            assert q.volume == pytest.approx(v)
            if sym == "AAPL":
                bars = chart.bars
                day_bar = (bars.open[-1], bars.high[-1], bars.low[-1], bars.close[-1])
                assert day_bar == (o, h, lo, c), "the chart's day bar"
                assert bars.volume[-1] == pytest.approx(v)
                # the position is valued at that last price, not at its cost
                assert session.broker.marks()["AAPL"] == D(repr(c))  # type: ignore[union-attr]
    finally:
        await session.stop()


async def test_replay_goto_the_day_resumes_after_the_accounts_act_with_the_day_so_far_once(
    paths: Paths,
) -> None:
    """`replay goto` the day being played, when the account acted on it: the day starts again
    just after that act, and the watchlist shows the day so far once (not the volume twice, nor
    the high of hours the replay has gone back over)."""
    text = '[feed]\nsymbols = ["AAPL"]\n[providers.replay]\nspeed = 3000\n'
    async with replaying(paths, text) as (session, tape):
        assert session.desk is not None and session.writer is not None
        batches = _Batches(session)
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.ask is not None)
        session.clock.pause()
        await _step_to(session, batches, OPEN_NS + 60 * MINUTE)
        bought = session.desk.submit(OrderRequest("AAPL", Side.BUY, D(1)), source="cli", confirmed=True)
        await _step_to(session, batches, OPEN_NS + 240 * MINUTE)  # the day goes on to 13:30
        played = list(tape.trades)
        days, stats = len(tape.days), len(tape.stats)
        result = await session.commands.run(f"replay goto {DAY}", CommandContext(session, source="palette"))
        await wait_until(lambda: len(tape.days) > days and len(tape.stats) > stats)
        resumed = session.clock.now_ns()  # (still paused) where the day picks up again
        assert bought.created_ns <= resumed < bought.created_ns + MINUTE
        o, h, lo, c, v = _ohlcv(t for t in played if t.ts < resumed)
        q = session.quotes.get("AAPL")
        assert q is not None and (q.open, q.high, q.low, q.last) == (o, h, lo, c)
        assert q.volume == pytest.approx(v)
        assert session.broker.marks()["AAPL"] == D(repr(c))  # type: ignore[union-attr]  # not 13:30's
        assert session.writer.flush()
        so, sh, slo, sv, _n = _store_day(session, "AAPL", CLOSE_NS)
        assert (so, sh, slo) == (o, h, lo) and sv == pytest.approx(v)  # recorded once, up to the clock
        assert "just after the paper account's latest order or fill" in result.message


async def test_a_second_process_on_other_symbols_keeps_their_day_so_far(paths: Paths) -> None:
    """Found: `trii-term order buy 1 AAPL` (a second process streaming AAPL alone) deleted the
    whole day of every symbol from the store, so MSFT's chart lost its day so far."""
    text = '[feed]\nsymbols = ["AAPL", "MSFT"]\n[providers.replay]\nspeed = 3000\n'
    async with replaying(paths, text) as (session, first_run):
        assert session.desk is not None
        batches = _Batches(session)
        await wait_until(lambda: (q := session.quotes.get("MSFT")) is not None and q.ask is not None)
        session.clock.pause()
        await _step_to(session, batches, OPEN_NS + 90 * MINUTE)
        bought = session.desk.submit(OrderRequest("AAPL", Side.BUY, D(1)), source="cli", confirmed=True)
    async with replaying(paths, text, symbols=["AAPL"]) as (session, _tape):
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.ask is not None)
        assert session.writer is not None and session.writer.flush()
        acted = bought.created_ns
        o, h, lo, _c, v = _ohlcv(t for t in first_run.trades if t.symbol == "MSFT" and t.ts < acted)
        so, sh, slo, sv, n = _store_day(session, "MSFT", acted)
        assert n and (so, sh, slo) == (o, h, lo) and sv == pytest.approx(v)


async def test_an_account_that_acted_after_the_history_never_trades_in_its_past(paths: Paths) -> None:
    """Found: the replay ended on its history's last day, its clock ran on into Saturday, and an
    order was canceled there. On the next start the replay played that day from its open, and a
    new buy filled at 11:29 — before the account's 15:47 fill. Now the day shows as it ended, nothing of
    it plays again, and the notice says why and what to do."""
    text = '[feed]\nsymbols = ["AAPL"]\n[providers.replay]\nspeed = 3000\n'
    async with replaying(paths, text) as (session, _tape):
        desk = session.desk
        assert desk is not None and session.store is not None
        batches = _Batches(session)
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.ask is not None)
        session.clock.pause()
        await _step_to(session, batches, OPEN_NS + 30 * MINUTE)
        limit = desk.submit(
            OrderRequest("AAPL", Side.BUY, D(1), OrderType.LIMIT, TIF.GTC, limit_price=D("400")),
            source="cli",
            confirmed=True,
        )
        last, last_close = DAY, CLOSE_NS  # AAPL's history ends on DAY (a Friday)
        session.clock.set_time(last_close + 20 * 3600 * 10**9)  # its Saturday: the ended clock ran on
        desk.cancel(limit.id, source="cli")

    async with replaying(paths, text) as (session, tape):
        assert session.feed.start_day == last  # type: ignore[union-attr]
        assert any("after the history's last day" in n and "paper reset" in n for n in session.notices)
        assert session.clock.now_ns() >= last_close  # the last day as it ended, not from its open
        await wait_until(lambda: (q := session.quotes.get("AAPL")) is not None and q.ask is not None)
        assert all(t.ts >= last_close for t in tape.trades)
        assert session.desk is not None
        order = session.desk.submit(OrderRequest("AAPL", Side.BUY, D(1)), source="cli", confirmed=True)
        assert order.status is OrderStatus.NEW  # no fill in the past (nor, closed, at all)
