"""Trading from the shell: `order`, `orders`, `positions`, `account`, `cancel`, `journal`.

Exit codes: 0 done; 1 could not run (the store is in use, no quote came); 2 invalid input;
3 confirmation needed and not given; 4 refused by a risk rule or by the broker.
`--json` output is stable (README): decimals are strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

from trii_term.config import Config, ConfigError
from trii_term.paths import Paths

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFIRM, EXIT_REFUSED = 0, 1, 2, 3, 4
QUOTE_WAIT_SECONDS = 15.0
log = logging.getLogger(__name__)


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def decimal_arg(text: str | None, what: str) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CliError(f"{what} must be a number (got {text!r})", EXIT_USAGE) from None
    if not value.is_finite() or value <= 0:
        raise CliError(f"{what} must be above 0 (got {text})", EXIT_USAGE)
    return value


# -- JSON shapes (documented in the README) ----------------------------------------------------


def _s(x: Decimal | None) -> str | None:
    return None if x is None else str(x)


def _money(x: Decimal | None) -> str | None:
    """Money as a string with its cents ("95617.50"), or every decimal it has when finer."""
    if x is None:
        return None
    cents = x.quantize(Decimal("0.01"))
    return str(cents) if cents == x else str(x)


def order_json(o: Any) -> dict[str, Any]:
    r = o.request
    return {
        "id": o.id,
        "client_order_id": r.client_order_id,
        "symbol": r.symbol,
        "side": r.side.value,
        "qty": _s(r.qty),
        "type": r.type.value,
        "limit_price": _s(r.limit_price),
        "stop_price": _s(r.stop_price),
        "trail_amount": _s(r.trail_amount),
        "trail_pct": _s(r.trail_pct),
        "take_profit": _s(r.bracket.take_profit) if r.bracket else None,
        "stop_loss": _s(r.bracket.stop_loss) if r.bracket else None,
        "tif": r.tif.value,
        "status": o.status.value,
        "filled_qty": _s(o.filled_qty),
        "avg_fill_price": _s(o.avg_fill_price),
        "reason": o.reason,
        "parent_id": o.parent_id,
        "created_at": _iso(o.created_ns),
    }


def position_json(p: Any) -> dict[str, Any]:
    return {
        "symbol": p.symbol,
        "qty": _s(p.qty),
        "avg_cost": _s(p.avg_cost),
        "last": _s(p.last),
        "market_value": _money(p.market_value),
        "unrealized_pnl": _money(p.unrealized_pnl),
        "realized_pnl": _money(p.realized_pnl),
        "currency": p.currency,
    }


def account_json(a: Any) -> dict[str, Any]:
    return {
        "cash": _money(a.cash),
        "equity": _money(a.equity),
        "buying_power": _money(a.buying_power),
        "realized_pnl": _money(a.realized),
        "unrealized_pnl": _money(a.unrealized),
        "fees": _money(a.fees),
        "currency": a.currency,
    }


def _iso(ns: int) -> str:
    from trii_term.domain import from_ns

    return from_ns(ns).isoformat().replace("+00:00", "Z")


# -- the store and the broker, without a feed --------------------------------------------------


@contextlib.contextmanager
def offline_broker(config: Config, paths: Paths, name: str | None = None) -> Iterator[Any]:
    """The configured broker without a feed: the paper broker as the store has it, marked at the
    last recorded prices; or a live broker, connected and reconciled with the account."""
    from trii_term.brokers.paper import PaperBroker
    from trii_term.store.db import Store, StoreLocked
    from trii_term.store.history import import_shipped_history, load_instruments

    path = config.store.path or paths.default_store
    try:
        store = Store.open(path)
    except StoreLocked as exc:
        who = f"PID {exc.pid}" if exc.pid else "another process"
        raise CliError(
            f"the store is in use by {who} (a running workstation?): trade there, or close it first",
            EXIT_FAILED,
        ) from None
    try:
        from trii_term.paths import shipped_data_dir

        import_shipped_history(store.con, shipped_data_dir())
        name = name or config.brokers.default
        if name != "paper":
            with _live_broker(name, store, config, load_instruments(store.con)) as live:
                yield live
            return
        paper = config.brokers.paper
        broker = PaperBroker(
            store.con,
            instruments=load_instruments(store.con),
            clock_ns=_wall_ns,
            starting_cash=paper.starting_cash,
            currency=paper.currency,
            partial_fills=paper.partial_fills,
            allow_short=paper.allow_short,
        )
        marks = store.con.execute("SELECT symbol, arg_max(price, ts) FROM ticks GROUP BY symbol").fetchall()
        broker.set_marks({s: float(p) for s, p in marks})
        yield broker
    finally:
        store.close()


@contextlib.contextmanager
def _live_broker(name: str, store: Any, config: Config, instruments: Any) -> Iterator[Any]:
    from trii_term.brokers import open_live_broker
    from trii_term.credentials import CredentialError
    from trii_term.trading.orders import OrderError

    try:
        broker, notes = open_live_broker(
            name,
            store,
            config,
            instruments=instruments,
            clock_ns=_wall_ns,
            warn=lambda text: print(f"warning: {text}", file=sys.stderr),
        )
    except (CredentialError, OrderError) as exc:
        raise CliError(f"{name}: {exc}", EXIT_FAILED) from None
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    try:
        yield broker
    finally:
        broker.stop()


def _wall_ns() -> int:
    import time

    return time.time_ns()


def _print(out: TextIO, payload: Any) -> None:
    json.dump(payload, out, indent=None)
    out.write("\n")


def run_listing(
    config: Config,
    paths: Paths,
    what: str,
    *,
    open_only: bool = False,
    as_json: bool = False,
    broker: str | None = None,
) -> int:
    out = sys.stdout
    try:
        with offline_broker(config, paths, broker) as broker:
            if what == "orders":
                orders = broker.orders(open_only=open_only)
                if as_json:
                    _print(out, [order_json(o) for o in orders])
                else:
                    _orders_table(orders, out)
            elif what == "positions":
                positions = broker.positions()
                if as_json:
                    _print(out, [position_json(p) for p in positions])
                else:
                    _positions_table(positions, out)
            elif what == "account":
                acct = broker.account()
                if as_json:
                    _print(out, account_json(acct))
                else:
                    for k, v in account_json(acct).items():
                        print(f"{k:<15} {v}", file=out)
            elif what == "journal":
                entries = broker.journal.entries()
                if as_json:
                    _print(out, [e.as_json() for e in entries])
                else:
                    for e in entries:
                        detail = json.dumps(e.detail, sort_keys=True)
                        print(
                            f"{e.ts:%Y-%m-%d %H:%M:%S}  {e.event:<16} {e.source:<7} "
                            f"{e.order_id or '-':<8} {detail}",
                            file=out,
                        )
    except CliError as exc:
        print(f"trii-term {what}: {exc}", file=sys.stderr)
        return exc.code
    return EXIT_OK


def run_cancel(
    config: Config, paths: Paths, order_id: str | None, *, cancel_all: bool, broker: str | None = None
) -> int:
    from trii_term.trading.orders import OrderError

    try:
        with offline_broker(config, paths, broker) as broker:
            ids = [o.id for o in broker.orders(open_only=True)] if cancel_all else [order_id]
            if cancel_all and not ids:
                print("No working orders.")
            for oid in ids:
                try:
                    order = broker.cancel(str(oid), source="cli")
                except OrderError as exc:
                    print(f"trii-term cancel: {exc}", file=sys.stderr)
                    return EXIT_USAGE
                print(f"Canceled {order.id}: {order.request.side.value} {order.request.qty} {order.symbol}")
    except CliError as exc:
        print(f"trii-term cancel: {exc}", file=sys.stderr)
        return exc.code
    return EXIT_OK


# -- placing an order (needs the feed for a quote) ---------------------------------------------


def run_order(config: Config, paths: Paths, args: Any) -> int:
    try:
        return asyncio.run(_order(config, paths, args))
    except CliError as exc:
        print(f"trii-term order: {exc}", file=sys.stderr)
        return exc.code


async def _order(config: Config, paths: Paths, args: Any) -> int:
    from trii_term.domain import normalize_symbol
    from trii_term.session import Session
    from trii_term.store.db import StoreError, StoreLocked
    from trii_term.trading.desk import ConfirmationNeeded, RiskRefused
    from trii_term.trading.orders import TIF, OrderError, OrderRequest, OrderType, Side

    qty = decimal_arg(args.qty, "QTY")
    limit = decimal_arg(args.limit, "--limit")
    stop = decimal_arg(args.stop, "--stop")
    trail = decimal_arg(args.trail, "--trail")
    trail_pct = decimal_arg(args.trail_pct, "--trail-pct")
    symbol = normalize_symbol(args.symbol)
    if trail is not None or trail_pct is not None:
        kind = OrderType.TRAILING_STOP
    elif limit is not None and stop is not None:
        kind = OrderType.STOP_LIMIT
    elif limit is not None:
        kind = OrderType.LIMIT
    elif stop is not None:
        kind = OrderType.STOP
    else:
        kind = OrderType.MARKET
    request = OrderRequest(
        symbol,
        Side(args.side),
        qty,
        kind,
        TIF(args.tif),
        limit,
        stop,
        trail,
        trail_pct,  # type: ignore[arg-type]
    )
    try:
        request.check()
    except OrderError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None

    try:
        session = Session(config, paths, symbols=[symbol], broker=args.broker)
    except ConfigError as exc:
        raise CliError(f"config error: {exc}", EXIT_USAGE) from None
    try:
        try:
            await session.start()
        except ConfigError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        except StoreLocked as exc:
            who = f"PID {exc.pid}" if exc.pid else "another process"
            raise CliError(
                f"the store is in use by {who}: place the order in that workstation", EXIT_FAILED
            ) from None
        except StoreError as exc:
            raise CliError(str(exc), EXIT_FAILED) from None
        loop = asyncio.get_running_loop()
        while session.desk is None:  # a live broker connects and reconciles first
            task = session._broker_task
            if task is None or task.done():
                raise CliError(session.broker_note or "the broker did not start", EXIT_FAILED)
            await asyncio.sleep(0.02)
        desk = session.desk
        deadline = loop.time() + QUOTE_WAIT_SECONDS
        while (q := session.quotes.get(symbol)) is None or q.ask is None or q.bid is None:
            if loop.time() > deadline:
                raise CliError(
                    f"no quote for {symbol} from the {session.provider_name} feed yet", EXIT_FAILED
                )
            await asyncio.sleep(0.02)
        preview = desk.preview(request)
        _print_preview(preview, sys.stderr)
        if preview.problems:
            desk.refuse(preview.request, source="cli", reason=preview.problems[0])
            raise CliError(preview.problems[0], EXIT_REFUSED)
        confirmed = bool(args.yes)
        if not preview.ok:  # a risk rule refuses it: the desk journals that, nothing is asked
            confirmed = False
        elif not confirmed and sys.stdin.isatty():
            answer = await asyncio.to_thread(input, "Send this order? [y/N] ")
            confirmed = answer.strip().lower() in ("y", "yes")
            if not confirmed:
                desk.refuse(preview.request, source="cli", reason="not confirmed")
                print("Not sent.", file=sys.stderr)
                return EXIT_CONFIRM
        from trii_term.commands.trade import on_broker

        try:
            order = await on_broker(session, desk.submit, request, source="cli", confirmed=confirmed)
        except ConfirmationNeeded:
            raise CliError("not sent: confirm with --yes (no terminal to ask on)", EXIT_CONFIRM) from None
        except RiskRefused as exc:
            raise CliError(str(exc), EXIT_REFUSED) from None
        except OrderError as exc:
            raise CliError(str(exc), EXIT_REFUSED) from None
        if args.json:
            _print(sys.stdout, order_json(order))
        else:
            fill = f" at {order.avg_fill_price}" if order.avg_fill_price is not None else ""
            print(
                f"{order.id} {order.status.value}: {order.request.side.value} {order.filled_qty}/"
                f"{order.request.qty} {symbol}{fill}"
            )
        return EXIT_OK
    finally:
        if session.started:
            await session.stop()


def _print_preview(p: Any, out: TextIO) -> None:
    r = p.request
    price = f"{p.price}" if p.price is not None else "unknown"
    print(
        f"{r.side.value} {r.qty} {r.symbol} {r.type.value} {r.tif.value} · "
        f"expected price {price} {p.currency}",
        file=out,
    )
    if p.notional is not None:
        print(
            f"  notional {p.notional:,.2f}  commission {p.commission:,.2f}  "
            f"cash change {p.cash_change:+,.2f}  buying power after {p.buying_power_after:,.2f}",
            file=out,
        )
    print(f"  position {p.position_before} → {p.position_after}", file=out)
    for c in p.checks:
        print(f"  {'ok ' if c.ok else 'NO '} {c.rule}: {c.reason}", file=out)
    for problem in p.problems:
        print(f"  NO  broker: {problem}", file=out)


def _orders_table(orders: list[Any], out: TextIO) -> None:
    if not orders:
        print("No orders.", file=out)
        return
    for o in orders:
        r = o.request
        price = r.limit_price or r.stop_price or ""
        filled = f"{o.filled_qty}/{r.qty}"
        avg = f"@{o.avg_fill_price:.2f}" if o.avg_fill_price is not None else ""
        print(
            f"{o.id:<8} {r.symbol:<6} {r.side.value:<4} {filled:>9} {r.type.value:<13} {price!s:>9} "
            f"{r.tif.value:<3} {o.status.value:<16} {avg}",
            file=out,
        )


def _positions_table(positions: list[Any], out: TextIO) -> None:
    if not positions:
        print("No positions.", file=out)
        return
    for p in positions:
        last = f"{p.last}" if p.last is not None else "—"
        print(
            f"{p.symbol:<6} {p.qty:>8} avg {p.avg_cost:>10,.2f} last {last:>10} "
            f"value {p.market_value:>12,.2f} P&L {p.unrealized_pnl:>+10,.2f} {p.currency}",
            file=out,
        )
