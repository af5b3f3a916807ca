"""`trii-term order buy|sell QTY SYMBOL [WORDS] [flags]`: place an order from the shell.

It runs the same command as the palette (`buy …`) with source `cli`, on the session's own broker
— one path, one wiring. It takes the palette's grammar after the side (`trii-term order buy 100
AAPL lmt 430 tp 450 sl 420 gtc`) as well as the flags. Nothing is sent unconfirmed: on a terminal
it asks y/N after the preview; with no terminal only `--yes` sends.

Exit codes: 0 done; 1 could not run (the store is in use, no quote came); 2 invalid input;
3 confirmation needed and not given; 4 refused by a risk rule or by the broker.
`--json` output is stable (README): decimals are strings.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from trii_term import brokers
from trii_term.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Subcommands,
    cli_session,
    report,
    run_async,
    run_line,
    with_config,
)

if TYPE_CHECKING:
    from trii_term.config import Config
    from trii_term.paths import Paths


def register(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    order = sub.add_parser(
        "order",
        parents=[common],
        help="place an order (paper broker by default); asks to confirm unless --yes",
        description="Place an order through the same desk and command as the ticket and the palette: "
        "checked for the instrument, by every risk rule, then confirmed. After the side it takes the "
        "palette's words (order buy 100 AAPL lmt 430 tp 450 sl 420 gtc) or the flags. A market order on "
        "the paper broker fills at the configured feed's current quote. Exit 3 when not confirmed, 4 "
        "when refused.",
    )
    order.add_argument("side", type=str.lower, choices=("buy", "sell"))  # BUY as buy, as the palette
    order.add_argument("qty", metavar="QTY")
    order.add_argument("symbol", metavar="SYMBOL")
    order.add_argument(
        "words",
        nargs="*",
        metavar="WORD",
        help="lmt P, stp P, trail P, trail%% X, tp P, sl P, day|gtc|ioc|fok",
    )
    order.add_argument("--limit", metavar="P", help="limit price (with --stop: a stop-limit)")
    order.add_argument("--stop", metavar="P", help="stop price")
    trail = order.add_mutually_exclusive_group()
    trail.add_argument("--trail", metavar="P", help="trailing stop by an amount")
    trail.add_argument("--trail-pct", metavar="X", help="trailing stop by a percent")
    order.add_argument("--take-profit", metavar="P", help="bracket: the take-profit limit")
    order.add_argument("--stop-loss", metavar="P", help="bracket: the stop-loss")
    order.add_argument(
        "--tif", type=str.lower, choices=("day", "gtc", "ioc", "fok"), help="time in force (default: day)"
    )
    order.add_argument(
        "--broker", choices=brokers.names(), help="where to send it (default: brokers.default)"
    )
    order.add_argument("--yes", action="store_true", help="confirm: send without asking")
    order.add_argument("--json", action="store_true")
    order.set_defaults(run=with_config(run_order))


def order_line(args: Any) -> str:
    """`order buy 100 AAPL lmt 430 --tif gtc` → the palette's line `buy 100 AAPL lmt 430 gtc`."""
    words = [args.side, args.qty, args.symbol, *(args.words or [])]
    for flag, word in (("limit", "lmt"), ("stop", "stp"), ("trail", "trail"), ("trail_pct", "trail%")):
        value = getattr(args, flag, None)
        if value is not None:
            words += [word, value]
    for flag, word in (("take_profit", "tp"), ("stop_loss", "sl")):
        value = getattr(args, flag, None)
        if value is not None:
            words += [word, value]
    if getattr(args, "tif", None):
        words.append(args.tif)
    return " ".join(words)


def check_line(line: str) -> str:
    """Refuse a malformed order before starting anything (exit 2); returns the symbol."""
    from trii_term.commands import CommandError
    from trii_term.commands.order_grammar import parse_draft
    from trii_term.domain import normalize_symbol
    from trii_term.domain.orders import OrderError, Side

    side, *rest = line.split()
    try:
        draft = parse_draft(Side(side), rest)
        draft.request()
    except (CommandError, OrderError) as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    return normalize_symbol(draft.symbol)


def run_order(args: argparse.Namespace, config: Config, paths: Paths) -> int:
    return run_async(_order(config, paths, args), "order")


async def _order(config: Config, paths: Paths, args: Any) -> int:
    line = order_line(args)
    symbol = check_line(line)
    async with cli_session(config, paths, broker=args.broker, stream=[symbol]) as session:
        result = await run_line(session, line, yes=args.yes, out=sys.stderr)
        report(result, args.json)
    return EXIT_OK
