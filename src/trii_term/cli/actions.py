"""`trii-term cancel | replace | flatten | reverse`: act on working orders and positions.

Each runs the palette's command (`order cancel …`, `order replace …`, `flatten …`, `reverse …`)
with source `cli`, through the same desk and confirmation as `order`. A replaced order is checked
like a new one. Exit codes as for `order`: 3 not confirmed, 4 refused.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from trii_term.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Subcommands,
    broker_option,
    cli_session,
    report,
    run_async,
    run_line,
    with_config,
)

if TYPE_CHECKING:
    from trii_term.config import Config
    from trii_term.paths import Paths

# What an action runs: the palette's line, and the symbols whose quotes it needs (None: none)
Plan = Callable[["Config", "Paths", argparse.Namespace], Awaitable[tuple[str, list[str] | None]]]


def register(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    broker_arg = broker_option()
    confirm_arg = argparse.ArgumentParser(add_help=False)
    confirm_arg.add_argument("--yes", action="store_true", help="confirm: send without asking")
    confirm_arg.add_argument("--json", action="store_true")
    act = with_config(_act)

    cancel = sub.add_parser("cancel", parents=[common, broker_arg], help="cancel a working order (or --all)")
    target = cancel.add_mutually_exclusive_group(required=True)
    target.add_argument("order_id", nargs="?", metavar="ORDER_ID")
    target.add_argument("--all", action="store_true")
    cancel.add_argument("--json", action="store_true")
    cancel.set_defaults(run=act, plan=_cancel)
    repl = sub.add_parser(
        "replace",
        parents=[common, broker_arg, confirm_arg],
        help="change a working order (checked and confirmed like a new one)",
        description="Change a working order's quantity or prices. The order as it would be after the "
        "change is checked like a new one (tick and lot, every risk rule, the cash account) and needs the "
        "same confirmation. Exit 3 when not confirmed, 4 when refused.",
    )
    repl.add_argument("order_id", metavar="ORDER_ID")
    repl.add_argument("changes", nargs="+", metavar="CHANGE", help="qty N, lmt P, stp P")
    repl.set_defaults(run=act, plan=_replace)
    flat = sub.add_parser(
        "flatten",
        parents=[common, broker_arg, confirm_arg],
        help="close a position at market (its working orders canceled first)",
    )
    flat.add_argument("symbol", metavar="SYMBOL|all")
    flat.set_defaults(run=act, plan=_flatten)
    rev = sub.add_parser(
        "reverse",
        parents=[common, broker_arg, confirm_arg],
        help="turn a position the other way at market (long 100 → short 100)",
    )
    rev.add_argument("symbol", metavar="SYMBOL")
    rev.set_defaults(run=act, plan=_reverse)


def _act(args: argparse.Namespace, config: Config, paths: Paths) -> int:
    return run_async(_run_plan(config, paths, args, args.plan), args.command)


async def _run_plan(config: Config, paths: Paths, args: argparse.Namespace, plan: Plan) -> int:
    line, stream = await plan(config, paths, args)
    async with cli_session(config, paths, broker=args.broker, stream=stream) as session:
        result = await run_line(session, line, yes=getattr(args, "yes", False), out=sys.stderr)
        report(result, getattr(args, "json", False))
    return EXIT_OK


async def _cancel(config: Config, paths: Paths, args: argparse.Namespace) -> tuple[str, list[str] | None]:
    return ("order cancel all" if args.all else f"order cancel {args.order_id}"), None


async def _replace(config: Config, paths: Paths, args: argparse.Namespace) -> tuple[str, list[str] | None]:
    line = f"order replace {args.order_id} {' '.join(args.changes)}"
    _check_changes(" ".join(args.changes), args.order_id)
    return line, await _symbol_of(config, paths, args)


async def _flatten(config: Config, paths: Paths, args: argparse.Namespace) -> tuple[str, list[str] | None]:
    if args.symbol.lower() == "all":
        # no position: the store alone, and the command says there is nothing to flatten (exit 0)
        return f"flatten {args.symbol}", await _position_symbols(config, paths, args) or None
    return f"flatten {args.symbol}", [args.symbol.upper()]  # a market order needs the quote


async def _reverse(config: Config, paths: Paths, args: argparse.Namespace) -> tuple[str, list[str] | None]:
    return f"reverse {args.symbol}", [args.symbol.upper()]


def _check_changes(text: str, order_id: str) -> None:
    from trii_term.commands import CommandError
    from trii_term.commands.trade import parse_changes

    try:
        parse_changes(text, order_id=order_id)
    except CommandError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


async def _symbol_of(config: Config, paths: Paths, args: argparse.Namespace) -> list[str]:
    """The working order's symbol (its quote is needed to check the changed order)."""
    async with cli_session(config, paths, broker=args.broker) as session:
        for o in session.broker.orders(open_only=True):
            if o.id.casefold() == args.order_id.casefold():
                return [o.symbol]
    raise CliError(f"order {args.order_id} is not working (filled, canceled or unknown)", EXIT_USAGE)


async def _position_symbols(config: Config, paths: Paths, args: argparse.Namespace) -> list[str]:
    """The symbols of the account's positions (their quotes are needed to flatten them)."""
    async with cli_session(config, paths, broker=args.broker) as session:
        return [p.symbol for p in session.broker.positions() if p.qty != 0]
