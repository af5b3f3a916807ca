"""The `trii-term` command: the workstation, and headless commands for the shell.

Exit codes: 0 done; 1 could not run (store in use, damaged, …); 2 invalid input or config.
Imports are kept lazy so `--help`, `--version` and `doctor` start fast and the workstation
pays only for what it draws.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from trii_term import __version__

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
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

    parser = argparse.ArgumentParser(
        prog="trii-term",
        description="A keyboard-first trading workstation for the terminal. With no command it "
        "opens the workstation (offline defaults: replay feed, local DuckDB store).",
        parents=[common],
        epilog="Keys in the workstation: ctrl+p command palette, F1 help, ctrl+q quit.",
    )
    parser.add_argument("--version", action="version", version=f"trii-term {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("run", parents=[common], help="open the workstation (the default)")

    rec = sub.add_parser(
        "record",
        parents=[common],
        help="stream the configured feed into the store, headless",
        description="Stream the configured provider into the store until --seconds pass, ctrl+c, "
        "SIGTERM or SIGHUP, then print what was stored. Nothing queued is lost. Exits 1 when the "
        "provider refuses the keys, the token or the plan, or the disk is full.",
    )
    rec.add_argument("--symbols", metavar="A,B", help="symbols to record (default: every watchlist symbol)")
    rec.add_argument(
        "--seconds", type=float, metavar="N", help="stop after N seconds (default: until ctrl+c)"
    )
    rec.add_argument("--json", action="store_true", help="print the summary as JSON")

    bars = sub.add_parser(
        "bars",
        parents=[common],
        help="print a symbol's bars (the chart's data) for scripts",
        description="Print OHLCV bars from the store: ticks recorded by the feed merged with the "
        "imported daily history. Intraday times are bar starts in exchange time with its UTC "
        "offset; daily and weekly bars are trading dates.",
    )
    bars.add_argument("symbol", metavar="SYMBOL")
    bars.add_argument("--interval", default="1D", metavar="IV", help="1m, 5m, 15m, 1h, 1D (default) or 1W")
    bars.add_argument("--last", type=int, metavar="N", help="only the newest N bars")
    bars.add_argument(
        "--adjusted", action="store_true", help="split-adjusted daily/weekly prices (default: as traded)"
    )
    bars.add_argument("--source", metavar="NAME", help="only ticks from this provider (e.g. replay)")
    form = bars.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON object with the bars")
    form.add_argument("--csv", action="store_true", help="CSV with a header row")

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
        "--broker", choices=("paper", "alpaca", "kite"), help="where to send it (default: brokers.default)"
    )
    order.add_argument("--yes", action="store_true", help="confirm: send without asking")
    order.add_argument("--json", action="store_true")
    broker_arg = argparse.ArgumentParser(add_help=False)
    broker_arg.add_argument(
        "--broker", choices=("paper", "alpaca", "kite"), help="which broker (default: brokers.default)"
    )
    confirm_arg = argparse.ArgumentParser(add_help=False)
    confirm_arg.add_argument("--yes", action="store_true", help="confirm: send without asking")
    confirm_arg.add_argument("--json", action="store_true")
    orders = sub.add_parser("orders", parents=[common, broker_arg], help="list orders (--open: working only)")
    orders.add_argument("--open", action="store_true")
    orders.add_argument("--json", action="store_true")
    for name, what in (
        ("positions", "positions"),
        ("account", "the account"),
        ("journal", "the order journal"),
    ):
        p = sub.add_parser(name, parents=[common, broker_arg], help=f"show {what}")
        p.add_argument("--json", action="store_true")
    cancel = sub.add_parser("cancel", parents=[common, broker_arg], help="cancel a working order (or --all)")
    target = cancel.add_mutually_exclusive_group(required=True)
    target.add_argument("order_id", nargs="?", metavar="ORDER_ID")
    target.add_argument("--all", action="store_true")
    cancel.add_argument("--json", action="store_true")
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
    flat = sub.add_parser(
        "flatten",
        parents=[common, broker_arg, confirm_arg],
        help="close a position at market (its working orders canceled first)",
    )
    flat.add_argument("symbol", metavar="SYMBOL|all")
    rev = sub.add_parser(
        "reverse",
        parents=[common, broker_arg, confirm_arg],
        help="turn a position the other way at market (long 100 → short 100)",
    )
    rev.add_argument("symbol", metavar="SYMBOL")

    ask = sub.add_parser(
        "ask",
        parents=[common],
        help="ask the AI desk (Claude) about the market; streams the reply",
        description="Ask Claude with the workstation's context and tools: the reply streams to stdout, "
        "tool calls are noted on stderr. A drafted order is printed and journalled as drafted, never sent. "
        "The conversation is saved; resume it here with --conversation or in the workstation. Needs an "
        "Anthropic API key (trii-term login anthropic, or ANTHROPIC_API_KEY). Exit 1 when the API fails.",
    )
    ask.add_argument("text", nargs="+", metavar="QUESTION")
    ask.add_argument("--symbol", metavar="SYMBOL", help="the symbol in focus (its quote, bars and studies)")
    ask.add_argument("--interval", metavar="IV", help="bar interval for the context (default: the chart's)")
    ask.add_argument(
        "--persona", choices=("analyst", "risk", "coach"), help="who answers (default: ai.persona)"
    )
    ask.add_argument(
        "--conversation", metavar="ID", help="continue a saved conversation (id, prefix or title)"
    )
    ask.add_argument("--json", action="store_true", help="print one JSON object at the end")

    login = sub.add_parser(
        "login",
        parents=[common],
        help="store a provider's credentials in the OS keyring",
        description="Ask for a provider's credentials (hidden input; one value per line from stdin when "
        "there is no terminal), check them with the provider, and store them in the OS keyring "
        "(service trii-term). Nothing is written to the config, the store or the logs. Without a "
        "keyring, set the TRII_* environment variables for one process instead (see the README).",
    )
    login.add_argument("provider", choices=("alpaca", "kite", "anthropic"))
    login.add_argument("--live", action="store_true", help="alpaca: the live account (default: paper)")
    logout = sub.add_parser(
        "logout", parents=[common], help="remove a provider's credentials from the keyring"
    )
    logout.add_argument("provider", choices=("alpaca", "alpaca-live", "kite", "anthropic"))
    logout.add_argument("--live", action="store_true", help="alpaca: the live account's keys")

    sub.add_parser(
        "doctor",
        parents=[common],
        help="check this machine and setup; say what to fix",
        description="Check versions, config, data dir, store, terminal and keyring. Exit 0 when the "
        "workstation can run on its defaults.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Whatever a command did not handle itself ends here as one sentence on
    stderr (the traceback goes to the log file) and exit 1: a store it cannot use, a DuckDB
    error in the middle of a command (a damaged block is found only when it is read), a bug."""
    try:
        return _run_command(argv)
    except Exception as exc:
        return _failed(argv, exc)


def _run_command(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    from trii_term.paths import resolve_paths

    paths = resolve_paths(getattr(args, "config", None), getattr(args, "data_dir", None))
    command = args.command or "run"

    if command == "doctor":
        from trii_term.doctor import run_doctor

        return run_doctor(paths)

    from trii_term.config import ConfigError, load_config

    try:
        config = load_config(paths.config_file)
    except ConfigError as exc:
        if command == "ask" and args.json:  # ask --json prints its one object whatever happens
            from trii_term.askcli import _not_asked

            return _not_asked(f"config error: {exc}", "config", EXIT_USAGE, True, sys.stdout, sys.stderr)
        print(f"trii-term: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    from trii_term.logs import setup_logging
    from trii_term.paths import make_private

    tightened = make_private(paths, config.store.path)  # data dir 0700; store, WAL, logs 0600
    log_problem = setup_logging(paths)
    if log_problem:
        print(f"trii-term: {log_problem}", file=sys.stderr)
    if tightened:
        import logging

        logging.getLogger(__name__).info("made private (others could read them): %s", tightened)

    if command == "login":
        from trii_term.logincli import run_login

        return run_login(config, args.provider, live=args.live)
    if command == "logout":
        from trii_term.logincli import run_logout

        return run_logout(args.provider, live=args.live)

    if command == "record":
        if args.seconds is not None and args.seconds <= 0:
            print("trii-term record: --seconds must be more than 0", file=sys.stderr)
            return EXIT_USAGE
        symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()] if args.symbols else None
        if args.symbols is not None and not symbols:
            print(
                "trii-term record: --symbols needs at least one symbol, e.g. --symbols AAPL,MSFT",
                file=sys.stderr,
            )
            return EXIT_USAGE
        from trii_term.record import run_record

        return run_record(config, paths, symbols=symbols, seconds=args.seconds, as_json=args.json)

    if command == "ask":
        from trii_term.askcli import run_ask

        return run_ask(config, paths, args)

    if command == "order":
        from trii_term.tradecli import run_order

        return run_order(config, paths, args)
    if command in ("orders", "positions", "account", "journal"):
        from trii_term.tradecli import run_listing

        return run_listing(
            config,
            paths,
            command,
            open_only=getattr(args, "open", False),
            as_json=args.json,
            broker=args.broker,
        )
    if command in ("cancel", "replace", "flatten", "reverse"):
        from trii_term.tradecli import run_action

        return run_action(config, paths, args, command)

    if command == "bars":
        from trii_term.barscli import run_bars

        fmt = "json" if args.json else "csv" if args.csv else "table"
        return run_bars(
            config,
            paths,
            args.symbol,
            interval=args.interval,
            last=args.last,
            fmt=fmt,
            adjusted=args.adjusted,
            source=args.source,
        )

    return run_workstation(config, paths)


def _failed(argv: Sequence[str] | None, exc: Exception) -> int:
    """One sentence for an error no command handled: what failed and what to do."""
    import logging

    from trii_term.paths import resolve_paths
    from trii_term.store.db import StoreError, store_error

    args = _parser().parse_args(argv)  # it parsed before the command ran
    command = args.command or "run"
    paths = resolve_paths(getattr(args, "config", None), getattr(args, "data_dir", None))
    if not logging.getLogger().handlers:  # the error came before logging was set up
        from trii_term.logs import setup_logging

        setup_logging(paths)
    root = logging.getLogger()
    if any(isinstance(h, logging.FileHandler) for h in root.handlers):  # never on stderr
        logging.getLogger(__name__).error("trii-term %s failed", command, exc_info=exc)
    if isinstance(exc, StoreError) or _from_duckdb(exc):
        text = str(store_error(_store_path(paths), exc))
    else:
        text = (
            f"stopped on an unexpected error ({type(exc).__name__}: {exc}); details are in {paths.log_file}"
        )
    if command == "ask" and getattr(args, "json", False):
        from trii_term.askcli import _not_asked

        return _not_asked(text, "store" if "store" in text else "internal", EXIT_FAILED, True, sys.stdout,
                          sys.stderr)  # fmt: skip
    _say(f"trii-term {command}: {text}")
    return EXIT_FAILED


def _from_duckdb(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb")


def _store_path(paths):  # type: ignore[no-untyped-def]
    """The store the command used: store.path from the config, else the one in the data dir."""
    from trii_term.config import ConfigError, load_config

    try:
        return load_config(paths.config_file).store.path or paths.default_store
    except ConfigError:
        return paths.default_store


def run_workstation(config, paths) -> int:  # type: ignore[no-untyped-def]
    import asyncio
    import logging

    from trii_term.config import ConfigError
    from trii_term.runtime import Shutdown, TerminalModes, TerminalOutput, give_back_heap
    from trii_term.session import Session

    log = logging.getLogger(__name__)
    try:
        session = Session(config, paths, memory_fallback=True)
    except ConfigError as exc:  # an unknown or broken provider, …
        print(f"trii-term: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    terminal = TerminalModes.save()
    loop_box: list[asyncio.AbstractEventLoop] = []

    def close(reason: str) -> None:
        # on the signal thread: the app closes on its own loop, as ctrl+q does
        if loop_box:
            loop_box[0].call_soon_threadsafe(_quit_app, app)

    def force_close(until: float) -> None:
        # the deadline passed with the loop still busy: write the queue and free the store here
        _close_store_now(session, until, before_store=terminal.restore)

    # A dropped SSH session or terminal (SIGHUP, or output that fails) and a kill (SIGTERM)
    # close the workstation the way ctrl+q does, within 3 s whatever the loop is doing.
    shutdown = Shutdown(close=close, force_close=force_close)
    shutdown.install()
    session.open_store_in_background()
    from trii_term.app import TriiTermApp

    app = TriiTermApp(session)

    def terminal_gone(why: str) -> None:
        shutdown.request(why, exit_code=129)  # as for SIGHUP

    if sys.platform != "win32":
        app.driver_class = _hangup_aware_driver(terminal_gone)
    stderr = sys.stderr
    sys.stderr = TerminalOutput(stderr, terminal_gone)  # Textual's last words go there too

    async def run() -> None:
        loop_box.append(asyncio.get_running_loop())
        try:
            await app.run_async()
        finally:
            await _close_session(session)
            shutdown.closed()
            give_back_heap()  # the store's and Arrow's objects are finalized, not reported as leaks

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        log.exception("the workstation stopped with an error")
        _say(f"trii-term stopped with an error: {exc}. Details: {paths.log_file}")
        return EXIT_FAILED
    finally:
        sys.stderr = stderr
        shutdown.uninstall()
    return app.return_code or EXIT_OK


def _quit_app(app) -> None:  # type: ignore[no-untyped-def]
    """Quit as ctrl+q does (no new command runs, the session stops, then the app exits)."""
    if not app.call_later(app.action_quit):
        app.exit()


async def _close_session(session) -> None:  # type: ignore[no-untyped-def]
    """Stop the feed, write what is queued and close the store — also after a start-up that was
    cut short (a signal during start-up), so the store is never left open."""
    import logging

    log = logging.getLogger(__name__)
    try:
        await session.stop()
    except Exception:
        log.exception("stopping the session failed")
    writer = session.writer
    if writer is not None:
        s = writer.stats
        log.info(
            "store closed: %d events received, %d trades, %d quotes, %d bars stored, %d skipped, %d lost",
            s.received,
            s.trades,
            s.quotes,
            s.bars,
            s.skipped,
            s.dropped,
        )


def _close_store_now(session, until: float, before_store) -> None:  # type: ignore[no-untyped-def]
    """From any thread, when the event loop cannot: write the queue, close the store, both by
    `until` (monotonic). The writer gets most of the time: what it commits is safe even if the
    process ends during the store's checkpoint."""
    import time

    writer, store = session.writer, session.store
    if writer is not None:
        writer.stop(timeout=max(0.1, until - time.monotonic() - 0.3))
    before_store()
    if store is not None:
        store.close(reader_timeout=0.05)


def _hangup_aware_driver(on_gone):  # type: ignore[no-untyped-def]
    """Textual's terminal driver, writing through `TerminalOutput`: when the terminal has gone,
    output is dropped and the workstation closes, instead of the output thread dying and the
    event loop blocking on its queue for ever."""
    from textual.drivers.linux_driver import LinuxDriver

    from trii_term.runtime import TerminalOutput

    class HangupAwareDriver(LinuxDriver):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            self._file = TerminalOutput(self._file, on_gone)

    return HangupAwareDriver


def _say(text: str) -> None:
    """One line on stderr, if there still is one (the terminal may have gone)."""
    import contextlib

    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
