"""Property tests of the paper matcher and the order desk: random sequences of place, replace,
cancel, flatten and market data never fill beyond an order's quantity or through its limit, never
reuse an id, keep `equity − start = realized + unrealized − fees` exactly, and every order the
desk sends (a replace included) passes every risk rule as finally sent."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from trii_term.brokers.paper import PaperBroker
from trii_term.config import RiskLimits
from trii_term.domain import Instrument, MarketBatch, Quote, Trade
from trii_term.domain.ledger import FeeModel
from trii_term.domain.orders import TIF, Bracket, OrderError, OrderRequest, OrderStatus, OrderType, Side
from trii_term.store.db import Store
from trii_term.trading.desk import OrderDesk
from trii_term.trading.risk import refused

T0 = 1_362_148_200_000_000_000
SYMBOLS = ("AAPL", "IBM")
INSTRUMENTS = {s: Instrument(s, s, "NYSE", "US", "USD") for s in SYMBOLS}
FEES = FeeModel(per_share=D("0.005"), minimum=D("1.00"))
START = D("100000")
LIMITS = RiskLimits(
    max_order_notional=D("40000"), max_position_pct=D(60), daily_loss_limit=D("3000"), price_band_pct=D(8)
)

prices = st.integers(min_value=9_000, max_value=11_000).map(lambda c: D(c) / 100)  # 90.00 – 110.00
qtys = st.integers(min_value=1, max_value=600).map(D)


class Desk(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = Store.open(None)
        self.ns = T0
        self.partial = False
        self.broker = PaperBroker(
            self.store.con,
            instruments=INSTRUMENTS,
            clock_ns=self.now,
            starting_cash=START,
            fees=lambda _s, q, p: FEES(q, p),
            allow_short=True,
            partial_fills=True,
        )
        self.desk = OrderDesk(
            self.broker,
            limits=LIMITS,
            journal=self.broker.journal,
            price_of=lambda s: self.broker.marks().get(s),
            quote_of=self.broker.quote,
            fee_of=lambda _s: FEES,
            clock_ns=self.now,
            day_of=lambda: "2013-03-01",
        )
        self.ids: list[str] = []
        self.loosest: dict[str, D] = {}  # the loosest limit each order has had (fills before a replace)
        for s in SYMBOLS:
            self._quote(s, D(100), D("100.02"), D(100))

    def now(self) -> int:
        self.ns += 1_000_000
        return self.ns

    def _quote(self, symbol: str, bid: D, ask: D, last: D | None = None, size: int = 300) -> None:
        ts = self.now()
        events: list[object] = [Quote(ts, symbol, float(bid), float(ask), size, size)]
        if last is not None:
            events.append(Trade(ts, symbol, float(last), 100))
        self.broker.on_batch(MarketBatch("replay", events, 0))

    # -- market data ----------------------------------------------------------------------------

    @rule(symbol=st.sampled_from(SYMBOLS), mid=prices, spread=st.integers(1, 20), size=st.integers(1, 500),
          trade=st.booleans())  # fmt: skip
    def market(self, symbol: str, mid: D, spread: int, size: int, trade: bool) -> None:
        half = D(spread) / 200
        self._quote(symbol, mid - half, mid + half, mid if trade else None, size)

    # -- order actions through the desk ---------------------------------------------------------

    @rule(
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(Side),
        qty=qtys,
        kind=st.sampled_from(OrderType),
        tif=st.sampled_from((TIF.DAY, TIF.GTC, TIF.IOC)),
        p1=prices,
        p2=prices,
        bracket=st.booleans(),
    )
    def place(
        self, symbol: str, side: Side, qty: D, kind: OrderType, tif: TIF, p1: D, p2: D, bracket: bool
    ) -> None:
        fields: dict[str, object] = {}
        if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            fields["limit_price"] = p1
        if kind in (OrderType.STOP, OrderType.STOP_LIMIT):
            fields["stop_price"] = p2
        if kind is OrderType.TRAILING_STOP:
            fields["trail_amount"] = abs(p1 - p2) + D("0.05")
        if tif is TIF.IOC and kind not in (OrderType.MARKET, OrderType.LIMIT):
            tif = TIF.DAY
        if bracket and kind is OrderType.LIMIT and tif is not TIF.IOC:
            s = side.sign
            fields["bracket"] = Bracket(p1 + s * 2, p1 - s * 2)
        request = OrderRequest(symbol, side, qty, kind, tif, **fields)  # type: ignore[arg-type]
        try:
            request.check()
        except OrderError:
            return
        preview = self.desk.preview(request)
        try:
            order = self.desk.submit(request, source="cli", confirmed=True)
        except OrderError:
            return
        assert refused(preview.checks) is None, "sent an order a rule refuses"
        self.ids.append(order.id)
        self._limit_seen(order)

    def _limit_seen(self, order) -> None:  # type: ignore[no-untyped-def]
        limit = order.request.limit_price
        if limit is not None:
            before = self.loosest.get(order.id, limit)
            self.loosest[order.id] = max(before, limit) if order.side is Side.BUY else min(before, limit)

    @precondition(lambda self: self.broker.orders(open_only=True))
    @rule(pick=st.integers(0, 50), qty=st.one_of(st.none(), qtys), price=st.one_of(st.none(), prices))
    def replace(self, pick: int, qty: D | None, price: D | None) -> None:
        working = self.broker.orders(open_only=True)
        order = working[pick % len(working)]
        changes: dict[str, D] = {}
        if qty is not None:
            changes["qty"] = qty
        if price is not None:
            if order.request.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
                changes["limit_price"] = price
            elif order.request.type is OrderType.STOP:
                changes["stop_price"] = price
        try:
            preview = self.desk.preview_replace(order.id, **changes)
        except OrderError:
            return
        try:
            after = self.desk.replace(order.id, source="palette", confirmed=True, **changes)
        except OrderError:
            return
        assert refused(preview.checks) is None and not preview.problems, "a replace skipped a rule"
        assert after.id == order.id
        self._limit_seen(after)

    @precondition(lambda self: self.broker.orders(open_only=True))
    @rule(pick=st.integers(0, 50))
    def cancel(self, pick: int) -> None:
        working = self.broker.orders(open_only=True)
        self.desk.cancel(working[pick % len(working)].id, source="key")

    @rule(symbol=st.sampled_from(SYMBOLS), reverse=st.booleans())
    def close(self, symbol: str, reverse: bool) -> None:
        try:
            preview = self.desk.preview_close(symbol, reverse=reverse)
            _, order = self.desk.close(symbol, source="key", confirmed=True, reverse=reverse)
        except OrderError:
            return
        assert refused(preview.checks) is None
        self.ids.append(order.id)

    # -- what must always hold ------------------------------------------------------------------

    @invariant()
    def accounting(self) -> None:
        a = self.broker.account()
        assert a.equity - START == a.realized + a.unrealized - a.fees

    @invariant()
    def fills_within_quantity_and_limit(self) -> None:
        for o in self.broker.orders():
            assert 0 <= o.filled_qty <= o.request.qty
            if o.status is OrderStatus.FILLED:
                assert o.filled_qty == o.request.qty
            fills = self.broker.fills_of(o.id)
            assert sum((q for q, _p, _c in fills), D(0)) == o.filled_qty
            limit = self.loosest.get(o.id, o.request.limit_price)  # (a fill before a replace: its limit)
            if limit is not None and o.request.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
                for _q, price, _c in fills:
                    assert price <= limit if o.side is Side.BUY else price >= limit, (o, price)

    @invariant()
    def ids_never_reused(self) -> None:
        assert len(self.ids) == len(set(self.ids))
        numbers = [int(i[1:]) for i in self.ids]
        assert numbers == sorted(numbers)

    def teardown(self) -> None:
        self.store.close()


TestDesk = Desk.TestCase
TestDesk.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
)
