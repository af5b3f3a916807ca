"""What the subcommands share: exit codes, the --config/--data-dir options, the start every
command that uses the config makes (config, private data dir, log file), printing, and the
trading session a shell command runs on.

Imports stay lazy: `trii-term --help` builds every subcommand's parser and must not pay for the
session, the store or the config's validators.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    import asyncio

    from trii_term.config import Config, ConfigError
    from trii_term.paths import Paths

EXIT_OK = 0
EXIT_FAILED = 1  # could not run: the store in use or damaged, the API or the network failed
EXIT_USAGE = 2  # invalid input or config
EXIT_CONFIRM = 3  # an order action not confirmed
EXIT_REFUSED = 4  # refused by a risk rule or the broker
QUOTE_WAIT_SECONDS = 15.0

Handler = Callable[[argparse.Namespace, "Paths"], int]
ConfiguredHandler = Callable[[argparse.Namespace, "Config", "Paths"], int]


class Subcommands(Protocol):
    """What a subcommand module is given to add its parser to (argparse's subparsers action)."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def shared_options() -> argparse.ArgumentParser:
    """--config and --data-dir, accepted before or after the subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="config file (default: $TRII_TERM_CONFIG or the user config dir)",
    )
    common.add_argument(
        "--data-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="folder for the store, logs and caches (default: $TRII_TERM_DATA_DIR or the user data dir)",
    )
    return common


def broker_option() -> argparse.ArgumentParser:
    """--broker, for the commands that list or change an account's orders and positions."""
    from trii_term import brokers

    broker_arg = argparse.ArgumentParser(add_help=False)
    broker_arg.add_argument(
        "--broker", choices=brokers.names(), help="which broker (default: brokers.default)"
    )
    return broker_arg


# -- the start of every command that uses the config ---------------------------------------------


def config_error_line(exc: ConfigError) -> str:
    """How a broken config is reported, by the workstation and every command: file, line, key."""
    return f"trii-term: config error: {exc}"


def config_refused(args: argparse.Namespace, exc: ConfigError) -> int:
    print(config_error_line(exc), file=sys.stderr)
    return EXIT_USAGE


def with_config(
    handler: ConfiguredHandler,
    refused: Callable[[argparse.Namespace, ConfigError], int] = config_refused,
) -> Handler:
    """`handler` after the config is loaded (a broken one is `refused`: exit 2 with its key and
    line), the data dir and its files are made private and the log file is set up."""

    def run(args: argparse.Namespace, paths: Paths) -> int:
        from trii_term.config import ConfigError, load_config

        try:
            config = load_config(paths.config_file)
        except ConfigError as exc:
            return refused(args, exc)
        _prepare_data_dir(config, paths)
        return handler(args, config, paths)

    return run


def _prepare_data_dir(config: Config, paths: Paths) -> None:
    from trii_term.logs import setup_logging
    from trii_term.paths import make_private

    tightened = make_private(paths, config.store.path)  # data dir 0700; store, WAL, logs 0600
    log_problem = setup_logging(paths)
    if log_problem:
        print(f"trii-term: {log_problem}", file=sys.stderr)
    if tightened:
        import logging

        logging.getLogger("trii_term.cli").info("made private (others could read them): %s", tightened)


# -- printing ------------------------------------------------------------------------------------


def say(text: str) -> None:
    """One line on stderr, if there still is one (the terminal may have gone)."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr)


def say_failed(args: argparse.Namespace, text: str) -> int:
    """An error no command handled, as one sentence: `trii-term COMMAND: …`, exit 1."""
    say(f"trii-term {args.command or 'run'}: {text}")
    return EXIT_FAILED


def print_json(payload: Any, out: TextIO, *, indent: int | None = None) -> None:
    json.dump(payload, out, indent=indent)
    out.write("\n")
    out.flush()


def store_holder(exc: Any) -> str:
    """Who holds the store, from a `StoreLocked`: "PID 1234" or "another process"."""
    return f"PID {exc.pid}" if exc.pid else "another process"


# -- the trading session of one shell command --------------------------------------------------


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def run_async(coro: Coroutine[Any, Any, int], what: str) -> int:
    """Run a command's coroutine; a `CliError` is one sentence `trii-term WHAT: …` and its code."""
    import asyncio

    try:
        return asyncio.run(coro)
    except CliError as exc:
        print(f"trii-term {what}: {exc}", file=sys.stderr)
        return exc.code


@contextlib.asynccontextmanager
async def cli_session(
    config: Config, paths: Paths, *, broker: str | None, stream: list[str] | None = None
) -> AsyncIterator[Any]:
    """The session's broker and desk for one shell command. `stream`: the symbols whose quotes
    the command needs (then the feed runs and the first quote is waited for); None: the store
    alone, positions marked at the last recorded trades."""
    from trii_term.config import ConfigError
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
            raise CliError(
                f"the store is in use by {store_holder(exc)} (a running workstation?): trade there, "
                "or close it first",
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
    import asyncio

    while session.desk is None:  # a live broker connects and reconciles first
        task = session._broker_task
        if task is None or task.done():
            raise CliError(session.broker_note or "the broker did not start", EXIT_FAILED)
        await asyncio.sleep(0.02)


async def _wait_for_prices(session: Any, symbols: set[str], seconds: float = 5.0) -> None:
    """Best effort: a symbol without a price by then is reported by the daily loss rule."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline and any(
        (q := session.quotes.get(s)) is None or q.last is None or q.prev_close is None for s in symbols
    ):
        await asyncio.sleep(0.02)


async def _wait_for_quote(session: Any, symbol: str) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + QUOTE_WAIT_SECONDS
    while (q := session.quotes.get(symbol)) is None or q.ask is None or q.bid is None:
        inst = session.instruments.get(symbol)
        if inst is not None and not inst.tradable:
            return  # an index: the desk says it cannot be traded
        if loop.time() > deadline:
            raise CliError(f"no quote for {symbol} from the {session.provider_name} feed yet", EXIT_FAILED)
        await asyncio.sleep(0.02)


# -- running an order command line, as the palette does --------------------------------------------


async def run_line(session: Any, line: str, *, yes: bool, out: TextIO) -> Any:
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
    import asyncio

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


def report(result: Any, as_json: bool) -> None:
    """What an order command did: its message, or with --json the order(s) as JSON."""
    from trii_term.trading.as_json import order_json

    data = result.data if isinstance(result.data, dict) else {}
    if as_json:
        if "order" in data:
            print_json(order_json(data["order"]), sys.stdout)
        else:
            orders = data.get("orders", [])
            print_json([order_json(o) for o in orders], sys.stdout)
        return
    print(result.message)
