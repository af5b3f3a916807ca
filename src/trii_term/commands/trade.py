"""`buy …`, `sell …` (open the order ticket, prefilled), `portfolio`, `order cancel`,
`order replace`. The ticket sends through the order desk like every other source.

    buy 100 AAPL                     market, day
    sell 50 MSFT lmt 28.10 gtc       limit, good till canceled
    buy 10 IBM stp 205 lmt 205.5     stop-limit
    sell 100 AAPL trail 2.5          trailing stop by 2.50 (trail% 1.5 for a percent)
    buy 100 AAPL lmt 430 tp 450 sl 420   a bracket
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

from trii_term.commands.registry import Arg, Command, CommandError, Invocation, Result, resolve_symbol
from trii_term.trading.orders import TIF, Bracket, OrderError, OrderRequest, OrderType, Side

_PRICE_WORDS = {
    "lmt": "limit",
    "limit": "limit",
    "stp": "stop",
    "stop": "stop",
    "trail": "trail",
    "trail%": "trail_pct",
    "trailpct": "trail_pct",
    "tp": "take_profit",
    "sl": "stop_loss",
}


@dataclass(frozen=True)
class Draft:
    """An order as typed or as the ticket holds it: strings may still be incomplete."""

    side: Side = Side.BUY
    qty: str = ""
    symbol: str = ""
    limit: str = ""
    stop: str = ""
    trail: str = ""
    trail_pct: str = ""
    tif: TIF = TIF.DAY
    take_profit: str = ""
    stop_loss: str = ""

    @property
    def type(self) -> OrderType:
        if self.trail or self.trail_pct:
            return OrderType.TRAILING_STOP
        if self.limit and self.stop:
            return OrderType.STOP_LIMIT
        if self.limit:
            return OrderType.LIMIT
        if self.stop:
            return OrderType.STOP
        return OrderType.MARKET

    def request(self) -> OrderRequest:
        """The order, or OrderError naming the field to fix."""
        if not self.symbol:
            raise OrderError("symbol: type one")
        qty = _number("quantity", self.qty)
        if qty is None:
            raise OrderError("quantity: type how many")
        bracket = None
        tp, sl = _number("take-profit", self.take_profit), _number("stop-loss", self.stop_loss)
        if tp is not None or sl is not None:
            bracket = Bracket(tp, sl)
        req = OrderRequest(
            self.symbol,
            self.side,
            qty,
            self.type,
            self.tif,
            _number("limit", self.limit),
            _number("stop", self.stop),
            _number("trail", self.trail),
            _number("trail %", self.trail_pct),
            bracket,
        )
        req.check()
        return req


def _number(what: str, text: str) -> Decimal | None:
    text = text.strip().replace(",", "")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise OrderError(f"{what}: {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise OrderError(f"{what}: must be above 0 (got {text})")
    return value


def parse_draft(side: Side, tokens: list[str], inv: Invocation | None = None) -> Draft:
    """`100 AAPL lmt 28.10 gtc` → a Draft. Unknown words are an error that says what is allowed."""
    draft = Draft(side=side)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        low = tok.lower()
        if low in _PRICE_WORDS:
            if i + 1 >= len(tokens):
                raise CommandError(f"{tok} needs a price after it, e.g. {tok} 28.10")
            draft = replace(draft, **{_PRICE_WORDS[low]: tokens[i + 1]})
            i += 2
            continue
        if low in {t.value for t in TIF}:
            draft = replace(draft, tif=TIF(low))
        elif not draft.qty and _is_number(tok):
            draft = replace(draft, qty=tok)
        elif not draft.symbol:
            draft = replace(draft, symbol=resolve_symbol(inv.ctx, tok) if inv is not None else tok.upper())
        else:
            raise CommandError(
                f"{tok!r} is not understood. Usage: {side.value} QTY SYMBOL [lmt P] [stp P] "
                "[trail P | trail% X] [tp P] [sl P] [day|gtc|ioc|fok]"
            )
        i += 1
    return draft


def _is_number(text: str) -> bool:
    try:
        Decimal(text.replace(",", ""))
    except InvalidOperation:
        return False
    return True


def _ticket(inv: Invocation, side: Side) -> Result:
    draft = parse_draft(side, (inv.args.get("order") or "").split(), inv)
    if not draft.symbol and inv.ctx.focused_symbol:
        draft = replace(draft, symbol=inv.ctx.focused_symbol)
    _desk(inv)  # no broker (a live one refused the keys, or is still connecting): say why
    inv.ctx.ui.open_ticket(draft)  # type: ignore[union-attr]
    return Result("Order ticket: Tab moves between fields, Enter reviews and sends, Esc closes.")


def buy(inv: Invocation) -> Result:
    return _ticket(inv, Side.BUY)


def sell(inv: Invocation) -> Result:
    return _ticket(inv, Side.SELL)


def portfolio(inv: Invocation) -> None:
    inv.ctx.ui.open_portfolio()  # type: ignore[union-attr]


def _desk(inv: Invocation):  # type: ignore[no-untyped-def]
    desk = inv.session.desk
    if desk is None:
        note = getattr(inv.session, "broker_note", "")
        raise CommandError(
            f"Trading unavailable: {note}" if note else "Trading is still starting: try again."
        )
    return desk


async def on_broker(session, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Call a desk/broker method: a live broker's calls wait on the network, so they run on a
    worker thread and the screen keeps drawing (rate-limit retries included)."""
    if getattr(session.broker, "remote", False):
        return await asyncio.to_thread(fn, *args, **kwargs)
    return fn(*args, **kwargs)


async def cancel(inv: Invocation) -> Result:
    desk = _desk(inv)
    oid = inv.args["order_id"].upper()
    try:
        order = await on_broker(inv.session, desk.cancel, oid, source=inv.ctx.source)
    except OrderError as exc:
        raise CommandError(f"{exc}. Nothing was changed.") from None
    return Result(f"Canceled {order.id} ({order.request.side.value} {order.remaining} {order.symbol}).")


async def replace_order(inv: Invocation) -> Result:
    desk = _desk(inv)
    oid = inv.args["order_id"].upper()
    tokens = (inv.args.get("changes") or "").split()
    changes: dict[str, Decimal | None] = {}
    words = {
        "qty": "qty",
        "lmt": "limit_price",
        "limit": "limit_price",
        "stp": "stop_price",
        "stop": "stop_price",
    }
    i = 0
    while i < len(tokens):
        key = words.get(tokens[i].lower())
        if key is None or i + 1 >= len(tokens):
            raise CommandError(
                "Usage: order replace ORDER_ID [qty N] [lmt P] [stp P], e.g. order replace P000012 lmt 28.15"
            )
        try:
            changes[key] = _number(tokens[i], tokens[i + 1])
        except OrderError as exc:
            raise CommandError(str(exc)) from None
        i += 2
    if not changes:
        raise CommandError("Say what to change: qty N, lmt P or stp P.")
    try:
        order = await on_broker(inv.session, desk.replace, oid, source=inv.ctx.source, **changes)
    except OrderError as exc:
        raise CommandError(f"{exc}. Nothing was changed.") from None
    r = order.request
    price = r.limit_price or r.stop_price or ""
    return Result(
        f"Replaced {order.id}: {r.side.value} {r.qty} {r.symbol} {r.type.value} {price}".rstrip() + "."
    )


ORDER = Arg("ORDER", "text", optional=True, help="QTY SYMBOL [lmt P] [stp P] [trail P|trail% X] [tif]")
G = "Trading"

COMMANDS: tuple[Command, ...] = (
    Command(
        "trade.buy",
        ("buy",),
        "Order ticket to buy, prefilled: buy 100 AAPL lmt 437.50 gtc",
        buy,
        (ORDER,),
        key="b,f2",
        key_label="Buy",
        needs_ui=True,
        group=G,
    ),
    Command(
        "trade.sell",
        ("sell",),
        "Order ticket to sell, prefilled: sell 50 MSFT lmt 28.10",
        sell,
        (ORDER,),
        key="B,f3",
        key_label="Sell",
        needs_ui=True,
        group=G,
    ),
    Command(
        "trade.portfolio",
        ("portfolio",),
        "Positions, account and the order blotter",
        portfolio,
        aliases=(("blotter",), ("positions",)),
        key="o,f4",
        key_label="Orders",
        needs_ui=True,
        group=G,
    ),
    Command(
        "trade.cancel",
        ("order", "cancel"),
        "Cancel a working order",
        cancel,
        (Arg("ORDER_ID", "word"),),
        group=G,
    ),
    Command(
        "trade.replace",
        ("order", "replace"),
        "Change a working order's quantity or price: order replace ID [qty N] [lmt P] [stp P]",
        replace_order,
        (Arg("ORDER_ID", "word"), Arg("CHANGES", "text", optional=True)),
        group=G,
    ),
)
