"""Trading from the shell: `order`, `replace`, `cancel`, `flatten`, `reverse`, `orders`,
`positions`, `account`, `journal`.

Every order action runs the same command as the palette (`buy …`, `order replace …`, `order cancel
…`, `flatten …`) with source `cli`, on the session's own broker — one path, one wiring. `order`
takes the palette's grammar after the side (`trii-term order buy 100 AAPL lmt 430 tp 450 sl 420
gtc`) as well as the flags. Nothing is sent unconfirmed: on a terminal it asks y/N after the
preview; with no terminal only `--yes` sends.

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
from collections.abc import AsyncIterator
from typing import Any, TextIO

from trii_term.config import Config, ConfigError
from trii_term.paths import Paths
from trii_term.trading.as_json import account_json, order_json, position_json

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFIRM, EXIT_REFUSED = 0, 1, 2, 3, 4
QUOTE_WAIT_SECONDS = 15.0
log = logging.getLogger(__name__)

__all__ = ["account_json", "order_json", "position_json", "run_action", "run_listing", "run_order"]


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# -- the session, with or without the feed -------------------------------------------------------


@contextlib.asynccontextmanager
async def cli_session(
    config: Config, paths: Paths, *, broker: str | None, stream: list[str] | None = None
) -> AsyncIterator[Any]:
    """The session's broker and desk for one shell command. `stream`: the symbols whose quotes
    the command needs (then the feed runs and the first quote is waited for); None: the store
    alone, positions marked at the last recorded trades."""
    from trii_term.session import Session
    from trii_term.store.db import StoreError, StoreLocked

    try:
        session = Session(config, paths, symbols=stream or None, broker=broker)
    except ConfigError as exc:
        raise CliError(f"config error: {exc}", EXIT_USAGE) from None
    try:
        try:
            if stream is None:
                await session.start_trading_only()
            else:
                await session.start()
        except ConfigError as exc:
            if exc.key == "--symbols":  # the symbol the command names, not a --symbols flag
                raise CliError(exc.message, EXIT_USAGE) from None
            raise CliError(str(exc), EXIT_USAGE) from None
        except StoreLocked as exc:
            who = f"PID {exc.pid}" if exc.pid else "another process"
            raise CliError(
                f"the store is in use by {who} (a running workstation?): trade there, or close it first",
                EXIT_FAILED,
            ) from None
        except StoreError as exc:
            raise CliError(str(exc), EXIT_FAILED) from None
        await _wait_for_broker(session)
        for symbol in stream or []:
            await _wait_for_quote(session, symbol)
        if stream is not None:  # the account's other symbols: their prices value today's P&L
            await _wait_for_prices(session, session.trading_symbols() - set(stream))
        yield session
    finally:
        if session.started:
            await session.stop()


async def _wait_for_broker(session: Any) -> None:
    while session.desk is None:  # a live broker connects and reconciles first
        task = session._broker_task
        if task is None or task.done():
            raise CliError(session.broker_note or "the broker did not start", EXIT_FAILED)
        await asyncio.sleep(0.02)


async def _wait_for_prices(session: Any, symbols: set[str], seconds: float = 5.0) -> None:
    """Best effort: a symbol without a price by then is reported by the daily loss rule."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline and any(
        (q := session.quotes.get(s)) is None or q.last is None or q.prev_close is None for s in symbols
    ):
        await asyncio.sleep(0.02)


async def _wait_for_quote(session: Any, symbol: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + QUOTE_WAIT_SECONDS
    while (q := session.quotes.get(symbol)) is None or q.ask is None or q.bid is None:
        inst = session.instruments.get(symbol)
        if inst is not None and not inst.tradable:
            return  # an index: the desk says it cannot be traded
        if loop.time() > deadline:
            raise CliError(f"no quote for {symbol} from the {session.provider_name} feed yet", EXIT_FAILED)
        await asyncio.sleep(0.02)


# -- running a command line, as the palette does -------------------------------------------------


async def _run_line(session: Any, line: str, *, yes: bool, out: TextIO) -> Any:
    """Run an order command with source `cli`. On a terminal an unconfirmed action shows its
    preview and asks y/N; the answer runs it again confirmed, or journals that it was not sent."""
    from trii_term.commands import CommandContext, CommandError
    from trii_term.commands.registry import NeedsConfirmation

    can_ask = not yes and sys.stdin.isatty()
    ctx = CommandContext(session, source="cli", confirmed=yes, can_ask=can_ask)
    try:
        return await session.commands.run(line, ctx)
    except NeedsConfirmation as ask:
        print(f"To {ask.where}: {ask.title}", file=out)
        for text in ask.lines:
            print(f"  {text}", file=out)
        answer = await _answer("Send it? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            ask.decline()
            raise CliError("Not sent.", EXIT_CONFIRM) from None
        ctx = CommandContext(session, source="cli", confirmed=True, shown=ask.shown)
        try:
            return await session.commands.run(line, ctx)
        except CommandError as exc:
            _print_preview(exc, out)
            raise CliError(str(exc), exc.exit_code) from None
    except CommandError as exc:
        _print_preview(exc, out)
        raise CliError(str(exc), exc.exit_code) from None


async def _answer(question: str) -> str:
    """The trader's answer on the terminal; ctrl+d or ctrl+c is a no (nothing is sent)."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def ask() -> None:
        try:
            text = input(question)
        except (EOFError, KeyboardInterrupt, OSError):
            text = ""
            print(file=sys.stderr)
        loop.call_soon_threadsafe(lambda: answer.done() or answer.set_result(text))

    import threading

    threading.Thread(target=ask, name="cli-confirm", daemon=True).start()
    try:
        return await answer
    except asyncio.CancelledError:  # ctrl+c while waiting: the signal lands on the main thread
        return ""


def _print_preview(exc: Exception, out: TextIO) -> None:
    """What a refused or unconfirmed order would have done, every check (stderr)."""
    from trii_term.commands.order_preview import preview_lines

    preview = getattr(exc, "preview", None)
    if preview is not None:
        for _kind, text in preview_lines(preview):
            print(f"  {text}", file=out)


def _report(result: Any, as_json: bool) -> None:
    data = result.data if isinstance(result.data, dict) else {}
    if as_json:
        if "order" in data:
            _print(sys.stdout, order_json(data["order"]))
        else:
            orders = data.get("orders", [])
            _print(sys.stdout, [order_json(o) for o in orders])
        return
    print(result.message)


def _print(out: TextIO, payload: Any) -> None:
    json.dump(payload, out, indent=None)
    out.write("\n")


def _sync(coro: Any, what: str) -> int:
    try:
        return asyncio.run(coro)
    except CliError as exc:
        print(f"trii-term {what}: {exc}", file=sys.stderr)
        return exc.code


# -- order ------------------------------------------------------------------------------------


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


def run_order(config: Config, paths: Paths, args: Any) -> int:
    return _sync(_order(config, paths, args), "order")


async def _order(config: Config, paths: Paths, args: Any) -> int:
    line = order_line(args)
    symbol = check_line(line)
    async with cli_session(config, paths, broker=args.broker, stream=[symbol]) as session:
        result = await _run_line(session, line, yes=args.yes, out=sys.stderr)
        _report(result, args.json)
    return EXIT_OK


# -- replace, cancel, flatten, reverse --------------------------------------------------------


def run_action(config: Config, paths: Paths, args: Any, what: str) -> int:
    return _sync(_action(config, paths, args, what), what)


async def _action(config: Config, paths: Paths, args: Any, what: str) -> int:
    if what == "cancel":
        if args.all:
            line = "order cancel all" + (f" {args.symbol}" if getattr(args, "symbol", None) else "")
        else:
            line = f"order cancel {args.order_id}"
        stream = None
    elif what == "replace":
        line = f"order replace {args.order_id} {' '.join(args.changes)}"
        _check_changes(" ".join(args.changes), args.order_id)
        stream = await _symbol_of(config, paths, args)
    else:  # flatten, reverse: market orders need the quote
        target = args.symbol
        line = f"{what} {target}"
        if what == "flatten" and target.lower() == "all":
            # no position: the store alone, and the command says there is nothing to flatten (exit 0)
            stream = await _position_symbols(config, paths, args) or None
        else:
            stream = [target.upper()]
    async with cli_session(config, paths, broker=args.broker, stream=stream) as session:
        result = await _run_line(session, line, yes=getattr(args, "yes", False), out=sys.stderr)
        _report(result, getattr(args, "json", False))
    return EXIT_OK


def _check_changes(text: str, order_id: str) -> None:
    from trii_term.commands import CommandError
    from trii_term.commands.trade import parse_changes

    try:
        parse_changes(text, order_id=order_id)
    except CommandError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


async def _symbol_of(config: Config, paths: Paths, args: Any) -> list[str]:
    """The working order's symbol (its quote is needed to check the changed order)."""
    async with cli_session(config, paths, broker=args.broker) as session:
        for o in session.broker.orders(open_only=True):
            if o.id.casefold() == args.order_id.casefold():
                return [o.symbol]
    raise CliError(f"order {args.order_id} is not working (filled, canceled or unknown)", EXIT_USAGE)


async def _position_symbols(config: Config, paths: Paths, args: Any) -> list[str]:
    """The symbols of the account's positions (their quotes are needed to flatten them)."""
    async with cli_session(config, paths, broker=args.broker) as session:
        return [p.symbol for p in session.broker.positions() if p.qty != 0]


# -- listings ------------------------------------------------------------------------------------


def run_listing(
    config: Config,
    paths: Paths,
    what: str,
    *,
    open_only: bool = False,
    as_json: bool = False,
    broker: str | None = None,
) -> int:
    return _sync(_listing(config, paths, what, open_only, as_json, broker), what)


async def _listing(
    config: Config, paths: Paths, what: str, open_only: bool, as_json: bool, broker_name: str | None
) -> int:
    out = sys.stdout
    async with cli_session(config, paths, broker=broker_name) as session:
        broker = session.broker
        if what == "orders":
            orders = broker.orders(open_only=open_only)
            _print(out, [order_json(o) for o in orders]) if as_json else _orders_table(orders, out)
        elif what == "positions":
            positions = broker.positions()
            _print(out, [position_json(p) for p in positions]) if as_json else _positions_table(
                positions, out
            )
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
                _journal_table(entries, out)
    return EXIT_OK


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
