"""`trii-term orders | positions | account | journal`: what the account holds, for the shell.

Read from the session's broker on the store alone (no feed): positions are marked at the last
recorded trades. `--json` output is stable (README): decimals are strings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from trii_term.cli.common import (
    EXIT_OK,
    Subcommands,
    broker_option,
    cli_session,
    print_json,
    run_async,
    with_config,
)

if TYPE_CHECKING:
    from trii_term.config import Config
    from trii_term.paths import Paths

# What a listing prints: (the broker, the parsed arguments, where to)
Show = Callable[[Any, argparse.Namespace, TextIO], None]


def register(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    broker_arg = broker_option()
    show = with_config(_show)
    orders = sub.add_parser("orders", parents=[common, broker_arg], help="list orders (--open: working only)")
    orders.add_argument("--open", action="store_true")
    orders.add_argument("--json", action="store_true")
    orders.set_defaults(run=show, show=_orders)
    for name, what, listing in (
        ("positions", "positions", _positions),
        ("account", "the account", _account),
        ("journal", "the order journal", _journal),
    ):
        p = sub.add_parser(name, parents=[common, broker_arg], help=f"show {what}")
        p.add_argument("--json", action="store_true")
        p.set_defaults(run=show, show=listing)


def _show(args: argparse.Namespace, config: Config, paths: Paths) -> int:
    return run_async(_listing(config, paths, args, args.show), args.command)


async def _listing(config: Config, paths: Paths, args: argparse.Namespace, show: Show) -> int:
    async with cli_session(config, paths, broker=args.broker) as session:
        show(session.broker, args, sys.stdout)
    return EXIT_OK


def _orders(broker: Any, args: argparse.Namespace, out: TextIO) -> None:
    from trii_term.trading.as_json import order_json

    orders = broker.orders(open_only=args.open)
    print_json([order_json(o) for o in orders], out) if args.json else _orders_table(orders, out)


def _positions(broker: Any, args: argparse.Namespace, out: TextIO) -> None:
    from trii_term.trading.as_json import position_json

    positions = broker.positions()
    print_json([position_json(p) for p in positions], out) if args.json else _positions_table(positions, out)


def _account(broker: Any, args: argparse.Namespace, out: TextIO) -> None:
    from trii_term.trading.as_json import account_json

    acct = broker.account()
    if args.json:
        print_json(account_json(acct), out)
    else:
        for k, v in account_json(acct).items():
            print(f"{k:<15} {v}", file=out)


def _journal(broker: Any, args: argparse.Namespace, out: TextIO) -> None:
    entries = broker.journal.entries()
    if args.json:
        print_json([e.as_json() for e in entries], out)
    else:
        _journal_table(entries, out)


def _journal_table(entries: list[Any], out: TextIO) -> None:
    for e in entries:
        detail = json.dumps(e.detail, sort_keys=True)
        market = f" (market {e.market_ts:%Y-%m-%d %H:%M:%S} UTC)" if e.market_ts is not None else ""
        when = f"{e.ts:%Y-%m-%d %H:%M:%S} UTC{market}"
        print(f"{when}  {e.event:<16} {e.source:<7} {e.order_id or '-':<8} {detail}", file=out)


def _orders_table(orders: list[Any], out: TextIO) -> None:
    from trii_term.commands.order_preview import order_prices

    if not orders:
        print("No orders.", file=out)
        return
    wide = {
        "id": max(len(o.id) for o in orders),
        "symbol": max(len(o.symbol) for o in orders),
        "filled": max(len(f"{o.filled_qty}/{o.request.qty}") for o in orders),
        "prices": max(len(order_prices(o)) for o in orders),
    }
    for o in orders:
        r = o.request
        filled = f"{o.filled_qty}/{r.qty}"
        avg = f"@{o.avg_fill_price:.2f}" if o.avg_fill_price is not None else ""
        line = (
            f"{o.id:<{wide['id']}} {r.symbol:<{wide['symbol']}} {r.side.value:<4} {filled:>{wide['filled']}} "
            f"{r.type.value:<13} {order_prices(o):<{wide['prices']}} {r.tif.value:<3} "
            f"{o.status.value:<16} {avg}"
        )
        print(line.rstrip(), file=out)


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
