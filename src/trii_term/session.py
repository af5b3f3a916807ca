"""One run of trii-term: owns and wires the core, starts it and stops it.

The same Session runs behind the workstation, `trii-term record` and the tests:

    feed ──MarketBatch──▶ bus ──▶ store writer (DuckDB, batched, own thread)
                               └─▶ quote book (read by the UI on a timer)
    watchlists (store) ──▶ which symbols the feed streams
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, ParamSpec, TypeVar

from trii_term.bus import Bus
from trii_term.clock import SessionClock
from trii_term.commands import CommandContext, CommandError, CommandRegistry, core_registry
from trii_term.config import Config, ConfigError
from trii_term.domain import (
    MARKETS,
    US,
    FeedState,
    FeedStatus,
    Instrument,
    Market,
    MarketBatch,
    SessionDay,
    SessionPhase,
)
from trii_term.feeds import Feed, FeedContext, UnknownFeed, feed_class, instruments_problem
from trii_term.format import some_of
from trii_term.paths import Paths, shipped_data_dir
from trii_term.quotebook import QuoteBook
from trii_term.store.db import Store, StoreLocked
from trii_term.store.writer import StoreWriter
from trii_term.watchlists import Watchlists

if TYPE_CHECKING:
    from trii_term.ai.conversations import Conversations

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_WATCHLIST = "Default"
FEED_STALE_SECONDS = 15.0  # real seconds without market data, market open, before the feed is STALE


class LineRun(NamedTuple):
    """How a command line run for a service (the AI's tools) ended: did it run, and its message
    (when it did not: the trader's sentence why; nothing was changed)."""

    ran: bool
    message: str


class Session:
    def __init__(
        self,
        config: Config,
        paths: Paths,
        *,
        symbols: Sequence[str] | None = None,
        memory_fallback: bool = False,
        writer_flush_interval: float = 0.25,
        feed_stale_after: float = FEED_STALE_SECONDS,
        broker: str | None = None,
    ) -> None:
        self.config = config
        self.paths = paths
        self.provider_name = config.feed.provider
        try:
            classes = [feed_class(name) for name in config.feed.providers]
        except UnknownFeed as exc:
            raise config.error("feed.provider", str(exc)) from None
        if len(classes) == 1:
            self._feed_cls = classes[0]
        else:  # several live providers, one watchlist (AAPL from Alpaca, NSE:INFY from Kite)
            from functools import partial

            from trii_term.feeds.combined import CombinedFeed

            self._feed_cls = partial(CombinedFeed, feeds=classes)
        self.bus = Bus()
        self.clock = SessionClock(simulated=bool(getattr(self._feed_cls, "simulated", False)))
        self.quotes = QuoteBook()
        self.commands: CommandRegistry = core_registry()
        self.notices: list[str] = []  # things the trader should read once (shown or printed)
        self._expire_failed = ""  # why day orders could not be expired (said once)
        self.store: Store | None = None
        self.memory_only = False
        self.writer: StoreWriter | None = None
        self.feed: Feed | None = None
        self.instruments: dict[str, Instrument] = {}
        self.watchlists: Watchlists | None = None
        self.feed_status = FeedStatus(
            self.provider_name, FeedState.CONNECTING, simulated=self.clock.simulated
        )
        self._symbols_override = [s.upper() for s in symbols] if symbols else None
        self._memory_fallback = memory_fallback
        self._flush_interval = writer_flush_interval
        self._subscribed: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._feed_stale_after = feed_stale_after
        self._last_data = time.monotonic()
        self._opening: concurrent.futures.Future[Store] | None = None
        self.broker = None  # the broker, once the store is open (a live one once it has connected)
        self.desk = None  # the order desk: every order from every source goes through it
        self.broker_name = broker or config.brokers.default
        self.broker_note = ""  # why there is no broker yet (connecting, keys refused, ...)
        self._plugins: dict[str, Any] = {}  # broker name -> its plugin, once loaded
        self._broker_task: asyncio.Task[None] | None = None
        self.ai_cost_usd = Decimal(0)  # what this session's AI replies cost (estimated), for the status bar
        self._closes: dict[str, int] = {}  # day order id -> its session's close (UTC ns)
        self._unsubscribe: list = []
        self.started = False

    # -- where things are --------------------------------------------------------------------

    @property
    def store_path(self) -> Path:
        return self.config.store.path or self.paths.default_store

    def market_of(self, symbol: str | None) -> Market:
        inst = self.instruments.get(symbol or "")
        return MARKETS.get(inst.market, US) if inst else US

    # -- start / stop ------------------------------------------------------------------------

    def open_store(self) -> Store:
        """Open the store and import the shipped history (blocking: run it off the loop).

        If another process holds the store and `memory_fallback` is set, run on a temporary
        in-memory store instead and say so."""
        from trii_term.store.history import import_shipped_history

        try:
            store = Store.open(self.store_path)
        except StoreLocked as exc:
            if not self._memory_fallback:
                raise
            store = Store.open(None)
            self.memory_only = True
            who = f"PID {exc.pid}" if exc.pid else "another process"
            self.notices.append(
                f"Store in use by {who}: this window runs on a temporary in-memory store; quotes "
                f"stream, nothing it records or changes is saved. Close the other trii-term, or "
                f"start this one with --data-dir DIR."
            )
        import_shipped_history(store.con, shipped_data_dir())
        self.store = store
        return store

    def open_store_in_background(self) -> None:
        """Start opening the store on a thread now (DuckDB releases the GIL while it works), so
        it overlaps with drawing the first screen. `start()` waits for it."""
        if self._opening is None and self.store is None:
            pool = concurrent.futures.ThreadPoolExecutor(1, "trii-store-open")
            self._opening = pool.submit(self.open_store)
            pool.shutdown(wait=False)  # its thread ends once the store is open

    async def start(self) -> None:
        """Open the store, prepare the feed, load watchlists, start writing and streaming."""
        if self._opening is not None:
            opening, self._opening = self._opening, None
            await asyncio.wrap_future(opening)
        if self.store is None:
            await asyncio.to_thread(self.open_store)
        store = self.store
        assert store is not None
        feed: Feed = self._feed_cls(
            FeedContext(
                self.bus,
                self.clock,
                self.config,
                store,
                self.paths.data_dir,
                self.rewind_problem,
                self.last_activity_ns,
            )
        )
        try:
            await feed.prepare()
        except ValueError as exc:  # a replay date the history cannot play, …
            from trii_term.feeds.replay import ReplayDateError

            if isinstance(exc, ReplayDateError):
                raise self.config.error("providers.replay.date", str(exc)) from None
            raise
        self.feed = feed
        start_day = getattr(feed, "start_day", None) if feed.simulated else None
        problem = self.rewind_problem(start_day) if start_day is not None else None
        acted = self.last_activity_ns()
        if problem is not None and acted is not None:  # it acted past the whole history
            when = US.local(acted).strftime("%Y-%m-%d %H:%M %Z")
            self.notices.append(
                f"The paper account last acted at {when}, after the history's last day ({start_day}): "
                "nothing later can be replayed, so the replay shows that day as it ended. `paper reset` "
                "starts a fresh account (the old one is kept) to replay again."
            )
        known = feed.instruments()
        # a live feed may hand a large mapping backed by its instrument master: keep it as is
        self.instruments = known if not isinstance(known, dict) else dict(known)

        self.watchlists = Watchlists(store.con)
        seed = [s for s in self.config.feed.symbols if s in self.instruments]
        unknown = [s for s in self.config.feed.symbols if s not in self.instruments]
        self.watchlists.load(DEFAULT_WATCHLIST, seed)
        problem = instruments_problem(self.instruments)  # no instruments at all, and why
        if unknown:
            why = f": {problem}" if problem else f"; left out. Known: {some_of(self.instruments)}."
            self.notices.append(
                f"feed.symbols: {', '.join(unknown)} not known to the {self.provider_name} feed{why}"
            )
        if self._symbols_override is not None:
            bad = [s for s in self._symbols_override if s not in self.instruments]
            if bad and problem:
                raise ConfigError(f"{', '.join(bad)}: {problem}", key="--symbols")
            if bad:
                raise ConfigError(
                    f"unknown symbol {', '.join(bad)} for the {self.provider_name} feed; "
                    f"known: {some_of(self.instruments)}",
                    key="--symbols",
                )

        self.writer = StoreWriter(store, flush_interval=self._flush_interval)
        self.writer.start()
        self._unsubscribe += [
            self.bus.subscribe(MarketBatch, self.writer.on_batch),
            self.bus.subscribe(MarketBatch, self.quotes.on_batch),
            self.bus.subscribe(MarketBatch, self._on_market),
            self.bus.subscribe(FeedStatus, self._on_feed_status),
            self.bus.subscribe(SessionDay, self._on_session_day),
        ]
        self.watchlists.on_change(self._resubscribe)
        self._resubscribe()
        # the shipped exchange calendars: say so when the day is past their years
        self.notices += self.clock.calendar_notices(self.market_of(s) for s in self._subscribed)
        self._loop = asyncio.get_running_loop()
        self._start_trading(store)
        self._last_data = time.monotonic()
        self._task = asyncio.create_task(self._run_feed(feed), name=f"feed:{feed.name}")
        self._watchdog = asyncio.create_task(self._watch_feed(), name="feed-watchdog")
        self.started = True

    # -- trading ------------------------------------------------------------------------------

    def _start_trading(self, store: Store) -> None:
        """The broker and the order desk every order goes through. The paper broker starts at
        once (its state is in the store); a live one connects and reconciles in the background,
        so quotes paint first and a broker that cannot be reached does not stop the workstation."""
        if self._broker_plugin().live:
            self.broker_note = f"connecting to {self.broker_name}…"
            self._broker_task = asyncio.create_task(self._start_live_broker(store), name="broker-start")
            return
        broker = self._paper_broker(store)
        self._install_broker(broker)
        self._unsubscribe.append(self.bus.subscribe(MarketBatch, broker.on_batch))
        broker.on_update(self._traded)
        self._resubscribe()  # held and working symbols stream too

    def _paper_broker(self, store: Store):
        """The one wiring of the paper broker, whatever the front end (workstation, CLI, AI):
        the config's account, the fee model, the session clock."""
        from trii_term.brokers.paper import PaperBroker

        paper = self.config.brokers.paper
        return PaperBroker(
            store.con,
            instruments=self.instruments,
            clock_ns=self.clock.now_ns,
            starting_cash=paper.starting_cash,
            currency=paper.currency,
            partial_fills=paper.partial_fills,
            allow_short=paper.allow_short,
            fees=lambda symbol, qty, price: self.fee_model(symbol)(qty, price),
            simulated=self.clock.simulated,
            opened_at=self._opened_at,
        )

    def _opened_at(self, symbol: str, ts_ns: int) -> int | None:
        """When the symbol's regular session open at `ts_ns` opened (its real calendar), or None
        while its market is closed: the paper broker fills nothing then, nor on an older quote."""
        market = self.market_of(symbol)
        if self.clock.phase(market, ts_ns) is not SessionPhase.OPEN:
            return None
        bounds = self.clock.session_bounds(market, self.clock.trading_day(market, ts_ns))
        return bounds[0] if bounds is not None else None

    async def start_trading_only(self) -> None:
        """Open the store and the broker, without streaming: for the shell's `orders`,
        `positions`, `account`, `journal` and `cancel`. Positions are marked at the last
        recorded trades; a live broker connects and reconciles first."""
        from trii_term.store.history import load_instruments

        if self.store is None:
            await asyncio.to_thread(self.open_store)
        store = self.store
        assert store is not None
        self._loop = asyncio.get_running_loop()
        self.instruments = load_instruments(store.con)
        marks = store.con.execute("SELECT symbol, arg_max(price, ts) FROM ticks GROUP BY symbol").fetchall()
        self.quotes.seed_last({s: float(p) for s, p in marks})
        self._start_trading(store)
        if self._broker_task is not None:
            await asyncio.wait({self._broker_task})
        if self.broker is not None and hasattr(self.broker, "set_marks"):
            self.broker.set_marks({s: float(p) for s, p in marks})
        self.started = True

    def _install_broker(self, broker) -> None:
        from trii_term.trading.desk import OrderDesk

        self.broker = broker
        self.broker_note = ""
        self.desk = OrderDesk(
            broker,
            limits=self.config.risk,
            journal=broker.journal,
            price_of=self.reference_price,
            quote_of=self.quote_prices,
            fee_of=self.fee_model,
            day_view_of=self.day_view,
            clock_ns=self.clock.now_ns,
            day_of=lambda: US.local(self.clock.now_ns()).date(),
        )

    def _make_live_broker(self, store: Store):
        """Build and start (reconcile) a live broker. Blocking: runs on a worker thread."""
        from trii_term.brokers import open_live_broker

        loop = self._loop
        return open_live_broker(
            self.broker_name,
            store,
            self.config,
            instruments=self.instruments,
            clock_ns=self.clock.now_ns,
            dispatch=lambda fn: loop.call_soon_threadsafe(fn),  # listeners run on the loop
            warn=lambda text: self._broker_notice(text, "warning"),
        )

    def _broker_notice(self, text: str, level: str = "info", *, ready: bool = False) -> None:
        from trii_term.brokers.base import BrokerStatus

        self._loop.call_soon_threadsafe(self.bus.publish, BrokerStatus(self.broker_name, ready, text, level))

    async def _start_live_broker(self, store: Store) -> None:
        from trii_term.brokers.base import BrokerStatus
        from trii_term.credentials import CredentialError
        from trii_term.domain.orders import OrderError

        try:
            broker, notes = await asyncio.to_thread(self._make_live_broker, store)
        except asyncio.CancelledError:
            raise
        except (CredentialError, OrderError, ConfigError) as exc:
            self.broker_note = f"{self.broker_name}: {exc}"
            log.warning("broker %s did not start: %s", self.broker_name, exc)
            self.bus.publish(BrokerStatus(self.broker_name, False, f"Trading unavailable — {exc}", "error"))
            return
        except Exception as exc:
            log.exception("broker %s did not start", self.broker_name)
            self.broker_note = f"{self.broker_name}: {type(exc).__name__}: {exc}"
            self.bus.publish(
                BrokerStatus(
                    self.broker_name,
                    False,
                    f"Trading unavailable — {self.broker_name} did not start ({type(exc).__name__}); "
                    f"details in {self.paths.log_file}",
                    "error",
                )
            )
            return
        self._install_broker(broker)
        broker.mark_of = self.reference_price  # positions valued at the streamed price
        plugin = self._broker_plugin()
        self._unsubscribe += plugin.listen(broker, self.bus)  # what its venue publishes on the bus
        mode = plugin.mode(self.config)
        self.bus.publish(BrokerStatus(self.broker_name, True, f"Trading through {self.broker_name}{mode}."))
        for note in notes:
            self.bus.publish(BrokerStatus(self.broker_name, True, note, "warning"))

    def _broker_plugin(self):
        """The broker named `broker_name`, as its package registered it (`trii_term.brokers`)."""
        from trii_term.brokers import UnknownBroker, plugin

        found = self._plugins.get(self.broker_name)
        if found is None:
            try:
                found = self._plugins[self.broker_name] = plugin(self.broker_name)
            except UnknownBroker as exc:
                raise self.config.error("brokers.default", str(exc)) from None
        return found

    def broker_label(self) -> str:
        """Where orders go, in words: "the paper broker", "alpaca PAPER account", "kite"."""
        return self._broker_plugin().label(self.config)

    def broker_tag(self) -> str:
        """The account after the broker's name in the status bar (" PAPER", " LIVE"), or ""."""
        return self._broker_plugin().tag(self.config)

    def fee_model(self, symbol: str):
        from trii_term.domain.ledger import FeeModel

        if self._broker_plugin().live:
            # [fees] models commissions for the paper broker; a live broker's are its own (Alpaca
            # charges none, and Kite's equity delivery is brokerage-free)
            return FeeModel()

        inst = self.instruments.get(symbol)
        return self.config.fees.get(inst.market if inst else "US", FeeModel())

    def reference_price(self, symbol: str):
        """The last trade (else the mid) as an exact price on the instrument's tick."""
        from decimal import Decimal

        from trii_term.domain.orders import exact_price

        q = self.quotes.get(symbol)
        if q is None:
            return None
        x = q.last if q.last is not None else ((q.bid + q.ask) / 2 if q.bid and q.ask else None)
        if x is None:
            return None
        inst = self.instruments.get(symbol)
        return exact_price(x, inst.tick_size if inst else Decimal("0.01"))

    def quote_prices(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        """The streamed bid and ask as exact prices on the instrument's tick."""
        from trii_term.domain.orders import exact_price

        q = self.quotes.get(symbol)
        if q is None:
            return None, None
        inst = self.instruments.get(symbol)
        tick = inst.tick_size if inst else Decimal("0.01")
        bid = exact_price(q.bid, tick) if q.bid else None
        ask = exact_price(q.ask, tick) if q.ask else None
        return bid, ask

    def day_view(self):
        """Today's P&L per symbol, realized today and today's fees (see OrderDesk.day_view), each
        symbol on its own market's trading day (NSE's day does not begin at New York's
        midnight), rebuilt from the stored fills."""
        from datetime import time as dtime

        from trii_term.domain.orders import exact_price

        assert self.desk is not None
        now = self.clock.now_ns()
        starts = {code: m.at(self.clock.trading_day(m, now), dtime(0, 0)) for code, m in MARKETS.items()}

        def day_start_of(symbol: str) -> int:
            return starts[self.market_of(symbol).code]

        def prev_close(symbol: str):
            q = self.quotes.get(symbol)
            if q is None or q.prev_close is None:
                return None
            inst = self.instruments.get(symbol)
            return exact_price(q.prev_close, inst.tick_size if inst else Decimal("0.01"))

        return self.desk.day_view(min(starts.values()), prev_close, day_start_of)

    # -- day orders end with their own session ------------------------------------------------

    def expire_day_orders(self, new_day: SessionDay | None = None) -> list:
        """Paper day orders whose session has really closed expire — by the market's calendar
        (holidays, early closes), on the session clock. Not a restart, a second process or a
        replay starting the same day again: only the close of the order's own session, or the
        replay moving to another day (`new_day`). A live broker expires its own."""
        broker = self.broker
        if broker is None or self.broker_name != "paper" or self.feed is None:
            return []
        now = self.clock.now_ns()
        closed, moved = [], []
        for order in broker.day_orders():
            market = self.market_of(order.symbol)
            close = self._day_close(order.id, order.created_ns, market)
            if close is None:
                continue
            if now >= close:
                closed.append(order)
            elif (
                new_day is not None
                and new_day.market == market.code
                and market.local(close).date() != new_day.day
            ):
                moved.append(order)
        from trii_term.domain.orders import OrderError

        done: list = []
        for orders, why in ((closed, "its session closed"), (moved, "the replay moved to another day")):
            try:
                done += broker.expire(orders, f"day order: {why}")
            except OrderError as exc:  # not saved (a full disk): they work on; the next check tries again
                if self._expire_failed != str(exc):
                    self._expire_failed = str(exc)
                    log.warning("day orders could not be expired: %s", exc)
        if done:
            log.info("%d day order(s) expired", len(done))
        return done

    def _day_close(self, order_id: str, created_ns: int, market: Market) -> int | None:
        """The close of the session a day order belongs to: the first close after it was placed
        (an order placed after the close, or on a holiday, is for the next session)."""
        close = self._closes.get(order_id)
        if close is None:
            day = market.local(created_ns).date()
            for _ in range(15):
                bounds = self.session_bounds(market, day)
                if bounds is not None and bounds[1] > created_ns:
                    close = self._closes[order_id] = bounds[1]
                    break
                day += timedelta(days=1)
        return close

    def last_activity_ns(self) -> int | None:
        """When (market time) the paper account last acted — its latest fill, or an order placed,
        replaced, canceled or expired, whichever came last — read from the store (the broker may
        not be made yet when the replay prepares). The replay resumes no earlier: a limit placed
        after the last fill must never meet the quotes from before it was placed, nor a replaced
        order the quotes from before its new price."""
        if self.broker_name != "paper" or self.store is None:
            return None
        row = self.store.con.execute(
            "SELECT epoch_ns(greatest("
            "(SELECT max(ts) FROM fills WHERE broker = 'paper'), "
            "(SELECT max(greatest(created_at, updated_at)) FROM orders WHERE broker = 'paper')))"
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def rewind_problem(self, day: date) -> str | None:
        """Why replaying `day` would put new orders and fills before the paper account's latest
        ones, if it would (the account acted on a later day; the same day resumes after it)."""
        last_ns = self.last_activity_ns()
        if last_ns is None:
            return None
        market = US
        last_day = market.local(last_ns).date()
        if day >= last_day:
            return None
        when = market.local(last_ns).strftime("%Y-%m-%d %H:%M %Z")
        return (
            f"the paper account last traded or changed an order at {when}; replaying {day} would put "
            f"new orders and fills before it. Start a fresh paper account first (paper reset — the "
            f"old one is kept), or replay a day from {last_day} on"
        )

    def session_bounds(self, market: Market, day: date) -> tuple[int, int] | None:
        """The regular session's open and close on `day` (UTC ns; early closes included), None
        when the market does not trade — the exchange's real calendar."""
        return self.clock.session_bounds(market, day)

    async def _run_feed(self, feed: Feed) -> None:
        try:
            await feed.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("feed %s stopped with an error", feed.name)
            self.bus.publish(
                FeedStatus(
                    feed.name, FeedState.ERROR, f"{type(exc).__name__}: {exc}", simulated=feed.simulated
                )
            )

    async def stop(self) -> None:
        """Stop streaming, write everything still queued, close the store."""
        if self._broker_task is not None:
            self._broker_task.cancel()
            await asyncio.wait({self._broker_task}, timeout=5.0)
            self._broker_task = None
        stop_broker = getattr(self.broker, "stop", None)
        if stop_broker is not None:
            try:
                await asyncio.to_thread(stop_broker)
            except Exception:
                log.exception("stopping the %s broker failed", self.broker_name)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._task is not None:
            self._task.cancel()
            done, _ = await asyncio.wait({self._task}, timeout=5.0)
            if not done:
                log.error("feed %s did not stop within 5 s; closing without it", self.provider_name)
            self._task = None
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self.writer is not None:
            await asyncio.to_thread(self.writer.stop)
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
        self.started = False

    # -- listeners ---------------------------------------------------------------------------

    def _on_market(self, batch: MarketBatch) -> None:
        self._last_data = time.monotonic()

    async def _watch_feed(self) -> None:
        """A feed that says LIVE but has sent nothing for a while, with its market open, is
        STALE — whatever the provider. It turns LIVE again with the next data."""
        while True:
            await asyncio.sleep(min(1.0, self._feed_stale_after / 2))
            status = self.feed_status
            quiet = time.monotonic() - self._last_data
            if status.state is FeedState.LIVE and quiet > self._feed_stale_after and self._any_market_open():
                self.bus.publish(
                    FeedStatus(
                        status.provider,
                        FeedState.STALE,
                        f"no data for {quiet:.0f}s while the market is open",
                        simulated=status.simulated,
                    )
                )
            elif status.state is FeedState.STALE and quiet < self._feed_stale_after:
                self.bus.publish(FeedStatus(status.provider, FeedState.LIVE, simulated=status.simulated))
            # day orders end at their session's close, by the session clock (replay alike)
            self.expire_day_orders()

    def _any_market_open(self) -> bool:
        markets = {self.market_of(s) for s in self._subscribed}
        return any(self.clock.phase(m) is SessionPhase.OPEN for m in markets)

    def _on_feed_status(self, status: FeedStatus) -> None:
        self.feed_status = status
        log.info("feed %s: %s %s", status.provider, status.state, status.reason)

    def _on_session_day(self, day: SessionDay) -> None:
        # A new trading day: day orders whose session has closed end (a fast replay may skip
        # past the close between two checks of the watchdog); replaying the same day again
        # (a restart, a second process) leaves them working.
        self.expire_day_orders(new_day=day)
        if self.feed is None or not self.feed.simulated:
            return
        # A replay day is generated again from where it starts (the open, or where a resumed day
        # picks up): its figures so far are replaced, not added to, and the rows an earlier run
        # wrote from there are replaced. The day before a resume point stays as recorded — it is
        # not streamed again, so it must not be deleted.
        self.quotes.restart_day(day.day)
        if self.writer is not None:
            self.writer.purge(self.feed.name, day.stream_from_ns, day.close_ns)
        if day.stream_from_ns > day.open_ns:
            self._mark_where_resumed(self.feed.name, day)

    def _mark_where_resumed(self, source: str, day: SessionDay) -> None:
        """A resumed replay day streams no trade from before where it picks up: the paper
        account's positions are valued at the last recorded trade before that point (the day so
        far the watchlist shows), not at their cost or at a later hour's price, until the next
        trade."""
        broker = self.broker
        if broker is None or self.broker_name != "paper" or self.store is None:
            return
        rows = self.store.con.execute(
            "SELECT symbol, arg_max(price, ts) FROM ticks WHERE source = ? "
            "AND ts >= make_timestamp(?) AND ts < make_timestamp(?) GROUP BY symbol",
            [source, day.open_ns // 1000, day.stream_from_ns // 1000],
        ).fetchall()
        broker.set_marks({symbol: float(price) for symbol, price in rows})

    def subscribed(self) -> list[str]:
        return sorted(self._subscribed)

    def _resubscribe(self) -> None:
        if self.feed is None:
            return
        if self._symbols_override is not None:
            wanted = set(self._symbols_override)
        else:
            assert self.watchlists is not None
            wanted = set(self.watchlists.all_symbols())
        wanted |= self.trading_symbols()  # held or working: valued and matched, listed or not
        wanted = {s for s in wanted if s in self.instruments}  # (a live master can be large)
        new = wanted - self._subscribed
        gone = self._subscribed - wanted
        if gone:
            self.feed.unsubscribe(sorted(gone))
        if new:
            self._remember_instruments(new)
            self.feed.subscribe(sorted(new))
        self._subscribed = wanted

    def _traded(self, event) -> None:
        """A new order or a fill may bring a symbol no watchlist shows: stream it."""
        if event.kind in ("accepted", "filled") and event.order.symbol not in self._subscribed:
            self._resubscribe()

    def trading_symbols(self) -> set[str]:
        """The paper account's positions and working orders: they stream whether or not a
        watchlist shows them (a working limit needs the quotes to fill; a position its price for
        the P&L and the daily loss limit). A live broker values and fills its own."""
        broker = self.broker
        if broker is None or self.broker_name != "paper":
            return set()
        held = {p.symbol for p in broker.positions() if p.qty}
        return held | {o.symbol for o in broker.orders(open_only=True)}

    def _remember_instruments(self, symbols: set[str]) -> None:
        """A live feed's instruments go into the store's `instruments` table, so bars are built
        on the instrument's exchange calendar (NSE:INFY in IST) and `bars` knows the symbol."""
        if self.store is None or self.feed is None or self.feed.simulated:
            return
        rows = []
        for sym in sorted(symbols):
            inst = self.instruments.get(sym)
            if inst is not None:
                rows.append(
                    (inst.symbol, inst.name, inst.exchange, inst.market, inst.currency, inst.kind.value,
                     str(inst.tick_size), inst.lot_size, self.feed.name)
                )  # fmt: skip
        if not rows:
            return
        try:
            self.store.con.executemany(
                "INSERT INTO instruments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now()) "
                "ON CONFLICT (symbol) DO UPDATE SET name = excluded.name, exchange = excluded.exchange, "
                "market = excluded.market, currency = excluded.currency, tick_size = excluded.tick_size, "
                "lot_size = excluded.lot_size, updated_at = excluded.updated_at",
                rows,
            )
        except Exception:  # the watchlist still streams; bars fall back to the US calendar
            log.exception("could not record instruments %s", ", ".join(r[0] for r in rows))

    # -- services the commands and the AI share (neither imports the other) ------------------

    async def on_broker(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call a desk/broker method: a live broker's calls wait on the network, so they run on a
        worker thread and the screen keeps drawing (rate-limit retries included)."""
        if getattr(self.broker, "remote", False):
            return await asyncio.to_thread(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    async def run_line(self, line: str, *, source: str) -> LineRun:
        """Run a command line as `source` (the AI's tools run the keyboard's commands this way)."""
        try:
            result = await self.commands.run(line, CommandContext(self, source=source))
        except CommandError as exc:
            return LineRun(False, str(exc))
        return LineRun(True, result.message)

    def conversations(self) -> Conversations:
        """The AI conversations saved in the store (the store must be open)."""
        from trii_term.ai.conversations import Conversations

        if self.store is None:
            raise RuntimeError("the store is not open yet")
        return Conversations(self.store.con)
