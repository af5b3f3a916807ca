"""Every order action is a command here, run the same way from the ticket, the palette, keys, the
CLI, macros and the AI, each with its source — so the journal records who acted:

    buy|sell QTY SYMBOL [lmt P] [stp P] [trail P|trail% X] [tp P] [sl P] [day|gtc|ioc|fok]
    order replace ORDER_ID [qty N] [lmt P] [stp P]     an order like any other: every rule again
    order cancel ORDER_ID · order cancel all [SYMBOL]
    flatten [SYMBOL|all] · reverse SYMBOL              market orders from the position
    portfolio

Nothing is sent unconfirmed. In the workstation `buy`/`sell` typed or keyed open the ticket; the
ticket, replace, flatten and reverse ask y/n in a dialog (`NeedsConfirmation`), and the same line
runs again confirmed. Headless, `--yes` (or an armed macro) is the confirmation; without it
nothing is sent (exit 3). Every send goes through the order desk (`trading/desk.py`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from trii_term.brokers.base import BrokerError
from trii_term.commands.order_grammar import parse_draft
from trii_term.commands.order_preview import preview_lines
from trii_term.commands.registry import (
    Arg,
    Command,
    CommandError,
    Invocation,
    NeedsConfirmation,
    Refused,
    Result,
    Unavailable,
    resolve_symbol,
)
from trii_term.domain.orders import Order, OrderError, Side
from trii_term.trading.desk import ConfirmationNeeded, OrderDesk, Preview, describe
from trii_term.trading.order_line import Draft, order_number

UI_SOURCES = ("palette", "key")  # where `buy`/`sell` open the ticket rather than send


# -- shared --------------------------------------------------------------------------------------


def _desk(inv: Invocation) -> OrderDesk:
    desk = inv.session.desk
    if desk is None:
        note = getattr(inv.session, "broker_note", "")
        raise Unavailable(f"Trading unavailable: {note}" if note else "Trading is still starting: try again.")
    return desk


def _confirmed(inv: Invocation) -> bool:
    """Did the trader say yes? `trading.confirm = false` skips the dialog on the paper broker."""
    if inv.ctx.confirmed:
        return True
    s = inv.session
    skip = not s.config.trading.confirm and s.broker_name == "paper"
    return skip and inv.ctx.ui is not None


def _last(inv: Invocation, symbol: str) -> Decimal | None:
    return inv.session.reference_price(symbol) if symbol in inv.session.instruments else None


def shown_key(previews: list[Preview]) -> tuple[object, ...]:
    """What a confirmation holds for: each order as it would be sent (not its client id, not a
    market price that moves) and the working orders it replaces or cancels first."""
    return tuple(
        (p.action, replace(p.request, client_order_id=""), tuple(o.id for o in p.releasing)) for p in previews
    )


def _ask(
    inv: Invocation, title: str, previews: list[Preview], decline: Callable[[], None], data: Any = None
) -> NeedsConfirmation:
    """An unconfirmed action that would pass, put to the trader (dialog or terminal)."""
    lines: list[str] = []
    for p in previews:
        lines += [text for _kind, text in preview_lines(p, _last(inv, p.request.symbol))]
    return NeedsConfirmation(
        title,
        lines,
        where=inv.session.broker_label(),
        decline=decline,
        data={"previews": previews, **(data or {})},
        shown=shown_key(previews),
    )


def _as_shown(inv: Invocation, title: str, previews: list[Preview], decline: Callable[[], None]) -> None:
    """A yes holds for what was shown: if the order would now be something else (the position
    changed while the dialog was open, say), it is shown again rather than sent."""
    shown = inv.ctx.shown
    if shown is not None and shown_key(previews) != shown:
        raise _ask(inv, f"It changed since you looked — {title}", previews, decline)


class NotConfirmed(CommandError):
    """Headless and unconfirmed: nothing was sent."""

    exit_code = 3


def _refused(exc: OrderError, preview: Preview | None = None) -> CommandError:
    """An order error as the trader reads it, with the exit code its kind has (3 not confirmed,
    4 refused by a rule or the broker) and the preview of what it would have done."""
    if isinstance(exc, ConfirmationNeeded):
        err: CommandError = NotConfirmed(
            "Not sent: it needs confirming — confirm with --yes (y in the workstation)."
        )
    elif getattr(exc, "not_saved", False):  # the store could not save it: it could not run (exit 1)
        err = Unavailable(f"Not sent: {exc}. Nothing was changed.")
    else:
        err = Refused(f"Not sent: {exc}. Nothing was changed.")
    err.preview = preview
    return err


def order_id(inv: Invocation, text: str) -> str:
    """An order id as the broker has it, typed in any case (paper ids are P000012; a live
    broker's are its own, e.g. tt-7d7a…)."""
    broker = inv.session.broker
    if broker is not None:
        for o in broker.orders(open_only=True):
            if o.id.casefold() == text.casefold():
                return o.id
    return text.upper() if text[:1] in "pP" and text[1:].isdigit() else text


def order_summary(order: Order) -> str:
    r = order.request
    fill = f" at {order.avg_fill_price}" if order.avg_fill_price is not None else ""
    return f"{order.id} {order.status.value}: {r.side.value} {order.filled_qty}/{r.qty} {r.symbol}{fill}"


# -- place ---------------------------------------------------------------------------------------


async def _place(inv: Invocation, side: Side) -> Result:
    draft = parse_draft(side, (inv.args.get("order") or "").split(), inv.ctx)
    if not draft.symbol and inv.ctx.focused_symbol:
        draft = replace(draft, symbol=inv.ctx.focused_symbol)
    desk = _desk(inv)  # no broker (a live one refused the keys, or is still connecting): say why
    ui = inv.ctx.ui
    confirmed = _confirmed(inv)
    if ui is not None and inv.ctx.source in UI_SOURCES and not inv.ctx.confirmed:
        _check_numbers(draft)  # what is typed must be a number; what is missing the ticket asks for
        ui.open_ticket(draft, opened_by=inv.ctx.source)
        return Result("Order ticket: Tab moves between fields, Enter reviews and sends, Esc closes.")
    try:
        request = draft.request()
    except OrderError as exc:
        raise CommandError(f"{exc}. Usage: {side.value} QTY SYMBOL [lmt P] …") from None
    source = inv.ctx.source
    title = f"Send this order ({source})"
    if (not confirmed and inv.ctx.interactive) or inv.ctx.shown is not None:
        preview = await inv.session.on_broker(desk.preview, request)

        def decline() -> None:
            desk.refuse(preview.request, source=source, reason="not confirmed")

        if not confirmed and preview.ok:
            raise _ask(inv, title, [preview], decline)
        if confirmed:
            _as_shown(inv, title, [preview], decline)
    origin: dict[str, object] | None = {"opened_by": inv.ctx.opened_by} if inv.ctx.opened_by else None
    try:
        order = await inv.session.on_broker(
            desk.submit, request, source=source, confirmed=confirmed, note=origin
        )
    except OrderError as exc:
        would: Preview | None
        try:  # what it would have done, for the CLI's print-out
            would = await inv.session.on_broker(desk.preview, request)
        except OrderError:
            would = None
        raise _refused(exc, would) from None
    return Result(order_summary(order), data={"order": order})


def _check_numbers(draft: Draft) -> None:
    for what, text in (
        ("quantity", draft.qty),
        ("limit", draft.limit),
        ("stop", draft.stop),
        ("trail", draft.trail),
        ("trail %", draft.trail_pct),
        ("take-profit", draft.take_profit),
        ("stop-loss", draft.stop_loss),
    ):
        try:
            order_number(what, text)
        except OrderError as exc:
            raise CommandError(f"{exc}. Nothing was sent.") from None


async def buy(inv: Invocation) -> Result:
    return await _place(inv, Side.BUY)


async def sell(inv: Invocation) -> Result:
    return await _place(inv, Side.SELL)


def portfolio(inv: Invocation) -> None:
    inv.ui.open_portfolio()


# -- replace -------------------------------------------------------------------------------------

_CHANGE_WORDS = {
    "qty": "qty",
    "quantity": "qty",
    "lmt": "limit_price",
    "limit": "limit_price",
    "stp": "stop_price",
    "stop": "stop_price",
}
REPLACE_USAGE = "order replace ORDER_ID [qty N] [lmt P] [stp P], e.g. order replace P000012 lmt 28.15"


def parse_changes(text: str, *, order_id: str = "P000012") -> dict[str, Decimal]:
    """`qty 120 lmt 28.15` → the changes; a word without its value says what to type (the
    example names `order_id`)."""
    tokens = text.split()
    changes: dict[str, Decimal] = {}
    i = 0
    while i < len(tokens):
        key = _CHANGE_WORDS.get(tokens[i].lower())
        if key is None:
            raise CommandError(f"{tokens[i]!r} is not understood. Usage: {REPLACE_USAGE}")
        if i + 1 >= len(tokens) or tokens[i + 1].lower() in _CHANGE_WORDS:
            what, example = ("a number", "120") if key == "qty" else ("a price", "28.15")
            raise CommandError(
                f"{tokens[i]} needs {what} after it, e.g. order replace {order_id} {tokens[i]} {example}"
            )
        if key in changes:
            raise CommandError(f"{tokens[i]} is given twice: say each change once")
        try:
            value = order_number(tokens[i], tokens[i + 1])
        except OrderError as exc:
            raise CommandError(str(exc)) from None
        assert value is not None
        changes[key] = value
        i += 2
    if not changes:
        raise CommandError(f"Say what to change: qty N, lmt P or stp P. Usage: {REPLACE_USAGE}")
    return changes


async def replace_order(inv: Invocation) -> Result:
    desk = _desk(inv)
    oid = order_id(inv, inv.args["order_id"])
    changes = parse_changes(inv.args.get("changes") or "", order_id=oid)
    source = inv.ctx.source
    confirmed = _confirmed(inv)
    title = f"Replace {oid} ({source})"
    if (not confirmed and inv.ctx.interactive) or inv.ctx.shown is not None:
        try:
            preview = await inv.session.on_broker(desk.preview_replace, oid, **changes)
        except OrderError as exc:
            raise CommandError(f"{exc}. Nothing was changed.") from None

        def decline() -> None:
            desk.refuse(preview.request, source=source, reason="not confirmed", action="replace")

        if not confirmed and preview.ok:
            raise _ask(inv, title, [preview], decline)
        if confirmed:
            _as_shown(inv, title, [preview], decline)
    try:
        order = await inv.session.on_broker(desk.replace, oid, source=source, confirmed=confirmed, **changes)
    except OrderError as exc:
        would: Preview | None = None
        with contextlib.suppress(OrderError):
            would = await inv.session.on_broker(desk.preview_replace, oid, **changes)
        raise _refused(exc, would) from None
    return Result(f"Replaced {order.id}: {describe(order.request)}.", data={"order": order})


# -- cancel --------------------------------------------------------------------------------------


async def cancel(inv: Invocation) -> Result:
    desk = _desk(inv)
    oid = order_id(inv, inv.args["order_id"])
    try:
        order = await inv.session.on_broker(desk.cancel, oid, source=inv.ctx.source)
    except BrokerError as exc:  # the broker said no, or could not be reached
        raise Refused(f"{exc}. Nothing was changed.") from None
    except OrderError as exc:  # not a working order, or (a full disk) not saved
        if getattr(exc, "not_saved", False):
            raise Unavailable(f"Not canceled: {exc}. Nothing was changed.") from None
        raise CommandError(f"{exc}. Nothing was changed.") from None
    r = order.request
    return Result(
        f"Canceled {order.id} ({r.side.value} {order.remaining} {r.symbol}).", data={"orders": [order]}
    )


async def cancel_all(inv: Invocation) -> Result:
    desk = _desk(inv)
    symbol = inv.args.get("symbol") or None
    canceled, failed = await inv.session.on_broker(desk.cancel_all, source=inv.ctx.source, symbol=symbol)
    where = f" in {symbol}" if symbol else ""
    if not canceled and not failed:
        return Result(f"No working orders{where}.", data={"orders": []})
    text = f"Canceled {len(canceled)} working order{'s' if len(canceled) != 1 else ''}{where}"
    text += f": {', '.join(o.id for o in canceled)}." if canceled else "."
    if failed:
        text += f" Not canceled: {'; '.join(failed)}."
    return Result(text, "warning" if failed else "info", data={"orders": canceled, "failed": failed})


# -- flatten and reverse -------------------------------------------------------------------------


async def _close(inv: Invocation, symbols: list[str], *, reverse: bool) -> Result:
    desk = _desk(inv)
    source = inv.ctx.source
    action = "reverse" if reverse else "flatten"
    confirmed = _confirmed(inv)
    previews: list[Preview] = []
    for symbol in symbols:
        try:
            previews.append(await inv.session.on_broker(desk.preview_close, symbol, reverse=reverse))
        except OrderError as exc:
            raise CommandError(f"{exc}. Nothing was changed.") from None
    title = f"{action.capitalize()} {', '.join(symbols)} ({source})"

    def decline() -> None:
        for p in previews:
            desk.refuse(p.request, source=source, reason="not confirmed", action=action)

    if not confirmed and inv.ctx.interactive and all(p.ok for p in previews):
        raise _ask(inv, title, previews, decline)
    if confirmed:
        _as_shown(inv, title, previews, decline)
    orders: list[Order] = []
    canceled: list[Order] = []
    for symbol, preview in zip(symbols, previews, strict=True):
        try:
            gone, order = await inv.session.on_broker(
                desk.close,
                symbol,
                source=source,
                confirmed=confirmed,
                reverse=reverse,
                expect=preview.request,
            )
        except OrderError as exc:
            done = f" ({', '.join(order_summary(o) for o in orders)} done)" if orders else ""
            err = _refused(exc, preview)
            err.args = (f"{action} {symbol}: {err}{done}",)
            raise err from None
        canceled += gone
        orders.append(order)
    text = "; ".join(order_summary(o) for o in orders)
    if canceled:
        text += f" · canceled first: {', '.join(o.id for o in canceled)}"
    return Result(text + ".", data={"orders": orders, "canceled": canceled})


def _position_symbols(inv: Invocation) -> list[str]:
    broker = inv.session.broker
    return [p.symbol for p in broker.positions() if p.qty != 0] if broker is not None else []


async def flatten(inv: Invocation) -> Result:
    _desk(inv)
    text = (inv.args.get("symbol") or "").strip()
    if text.lower() == "all":
        symbols = _position_symbols(inv)
        if not symbols:
            return Result("No positions to flatten.")
    elif text:
        symbols = [resolve_symbol(inv.ctx, text)]
    elif inv.ctx.ui is not None and inv.ctx.focused_symbol:
        symbols = [inv.ctx.focused_symbol]
    else:
        raise CommandError("Say which position: flatten AAPL, or flatten all.")
    return await _close(inv, symbols, reverse=False)


async def reverse(inv: Invocation) -> Result:
    _desk(inv)
    return await _close(inv, [inv.args["symbol"]], reverse=True)


async def paper_reset(inv: Invocation) -> Result:
    """A fresh paper account (the old one is kept under another name); confirmed like an order."""
    broker = inv.session.broker
    if inv.session.broker_name != "paper" or broker is None:
        raise CommandError('paper reset works on the paper broker only (brokers.default = "paper").')
    acct = broker.account()
    working = broker.orders(open_only=True)
    if not _confirmed(inv):
        lines = [
            f"The account now: cash {acct.cash:,.2f} {acct.currency}, equity {acct.equity:,.2f}, "
            f"{len(broker.positions())} position(s), {len(working)} working order(s) (canceled).",
            f"The new one: {broker.ledger.starting_cash:,.2f} {acct.currency} of cash, nothing else.",
            "The old account's orders, fills and positions are kept under another name.",
        ]
        if inv.ctx.interactive:
            raise NeedsConfirmation("Reset the paper account", lines, where=inv.session.broker_label(),
                                    decline=lambda: None, verb="reset")  # fmt: skip
        raise NotConfirmed("Not reset: it needs confirming — confirm with --yes (y in the workstation).")
    archive = await inv.session.on_broker(broker.reset, source=inv.ctx.source)
    return Result(
        f"A fresh paper account with {broker.ledger.starting_cash:,.2f} {acct.currency}; the old one is "
        f"kept as {archive}."
    )


ORDER = Arg("ORDER", "text", optional=True, help="QTY SYMBOL [lmt P] [stp P] [trail P|trail% X] [tif]")
G = "Trading"

COMMANDS: tuple[Command, ...] = (
    Command(
        "trade.buy",
        ("buy",),
        "Buy: the order ticket, prefilled (headless: send, with --yes): buy 100 AAPL lmt 437.50 gtc",
        buy,
        (ORDER,),
        aliases=(("order", "buy"),),  # as the CLI says it: order buy 100 AAPL
        key="b,f2",
        key_label="Buy",
        group=G,
    ),
    Command(
        "trade.sell",
        ("sell",),
        "Sell: the order ticket, prefilled (headless: send, with --yes): sell 50 MSFT lmt 28.10",
        sell,
        (ORDER,),
        aliases=(("order", "sell"),),  # as the CLI says it: order sell 100 AAPL
        key="B,f3",
        key_label="Sell",
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
        aliases=(("cancel",),),
        group=G,
    ),
    Command(
        "trade.cancel_all",
        ("order", "cancel", "all"),
        "Cancel every working order (of one symbol)",
        cancel_all,
        (Arg("SYMBOL", "symbol", optional=True),),
        aliases=(("cancel", "all"),),
        group=G,
    ),
    Command(
        "trade.replace",
        ("order", "replace"),
        "Change a working order, checked and confirmed like a new one: order replace ID [qty N] [lmt P]",
        replace_order,
        (Arg("ORDER_ID", "word"), Arg("CHANGES", "text")),
        aliases=(("replace",),),
        group=G,
    ),
    Command(
        "trade.flatten",
        ("flatten",),
        "Close a position at market, canceling its working orders first: flatten AAPL | flatten all",
        flatten,
        (Arg("SYMBOL", "word", optional=True),),
        group=G,
    ),
    Command(
        "trade.paper_reset",
        ("paper", "reset"),
        "A fresh paper account with the starting cash (the old one is kept, working orders canceled)",
        paper_reset,
        group=G,
    ),
    Command(
        "trade.reverse",
        ("reverse",),
        "Turn a position the other way at market (long 100 → short 100): reverse AAPL",
        reverse,
        (Arg("SYMBOL", "symbol"),),
        group=G,
    ),
)
