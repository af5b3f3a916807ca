"""`trii-term ask "…" [--symbol AAPL] [--persona NAME] [--json] [--conversation ID]`: the AI desk
from the shell, for scripts and macros. Same context, tools and store as the workstation's pane:
the reply streams to stdout as it arrives, tool calls are noted on stderr, a draft_order prints
the drafted order (journalled as drafted, never sent), and the conversation is saved so the
workstation can resume it.

Exit codes: 0 done; 1 the API or the network failed, no API key, or the store is in use (stderr
says what to do); 2 invalid input. A 429/529 is retried by the engine (bounded), each retry noted
on stderr. With --json, stdout carries exactly one JSON object whatever happens — the answer, or
`error` with the other keys empty — so a script never has to parse a sentence.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import sys
from typing import TYPE_CHECKING, Any, TextIO

from trii_term.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Subcommands,
    config_refused,
    print_json,
    say_failed,
    store_holder,
    with_config,
)

if TYPE_CHECKING:
    from trii_term.config import Config, ConfigError
    from trii_term.paths import Paths

QUOTE_WAIT_SECONDS = 5.0
log = logging.getLogger(__name__)


def register(sub: Subcommands, common: argparse.ArgumentParser) -> None:
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
    ask.set_defaults(
        run=with_config(_ask_command, refused=_config_refused),
        failed=_failed,
    )


def _ask_command(args: argparse.Namespace, config: Config, paths: Paths) -> int:
    return run_ask(config, paths, args)


def _config_refused(args: argparse.Namespace, exc: ConfigError) -> int:
    """A broken config: with --json still the one object (its error of kind `config`)."""
    if args.json:
        return _not_asked(f"config error: {exc}", "config", EXIT_USAGE, True, sys.stdout, sys.stderr)
    return config_refused(args, exc)


def _failed(args: argparse.Namespace, text: str) -> int:
    """An error no one handled: with --json still the one object."""
    if args.json:
        kind = "store" if "store" in text else "internal"
        return _not_asked(text, kind, EXIT_FAILED, True, sys.stdout, sys.stderr)
    return say_failed(args, text)


class AskError(Exception):
    """The question was not asked: `kind` (bad_input, config, no_key, store) and the exit code."""

    def __init__(self, message: str, code: int, kind: str = "bad_input") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.kind = kind


def run_ask(
    config: Config, paths: Paths, args: Any, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    import asyncio

    out = out or sys.stdout
    err = err or sys.stderr
    as_json = bool(getattr(args, "json", False))
    try:
        return asyncio.run(_ask(config, paths, args, out, err))
    except AskError as exc:
        return _not_asked(exc.message, exc.kind, exc.code, as_json, out, err)
    except KeyboardInterrupt:
        return _not_asked(
            "stopped (ctrl+c); what had arrived is saved", "stopped", EXIT_FAILED, as_json, out, err
        )
    except Exception as exc:  # a bug of ours: one sentence here, the traceback in the log
        log.exception("trii-term ask failed")
        message = f"the question could not be asked ({type(exc).__name__}); details in {paths.log_file}"
        return _not_asked(message, "internal", EXIT_FAILED, as_json, out, err)


def _not_asked(message: str, kind: str, code: int, as_json: bool, out: TextIO, err: TextIO) -> int:
    """Why the question got no answer: a sentence on stderr, and with --json the one object."""
    if as_json:
        error = {"kind": kind, "message": message, "partial": False, "retry_after": None, "attempts": 0}
        print_json(_result(None, "", [], [], None, error), out, indent=2)
    print(f"trii-term ask: {message}", file=err)
    return code


def _result(
    cid: str | None,
    text: str,
    tool_calls: list[dict[str, Any]],
    drafts: list[dict[str, Any]],
    done: Any,
    error: dict[str, Any] | None,
) -> dict[str, Any]:
    """The --json object; every key always there (README: The AI desk)."""
    return {
        "conversation": cid,
        "text": text,
        "tool_calls": tool_calls,
        "drafts": drafts,
        "usage": done.usage.as_dict() if done else None,
        "cost_usd": str(done.usage.cost_usd) if done else None,
        "stop_reason": done.stop_reason if done else None,
        "error": error,
    }


async def _ask(config: Config, paths: Paths, args: Any, out: TextIO, err: TextIO) -> int:
    from trii_term.ai.personas import PERSONAS
    from trii_term.charting import SpecError
    from trii_term.charting.spec import parse_interval
    from trii_term.domain import normalize_symbol

    text = " ".join(args.text).strip() if isinstance(args.text, list) else str(args.text or "").strip()
    if not text:
        raise AskError('say what to ask, e.g. trii-term ask "How is AAPL trading?"', EXIT_USAGE)
    persona = args.persona or config.ai.persona
    if persona not in PERSONAS:
        raise AskError(f"unknown persona {persona!r}; choose one of {', '.join(PERSONAS)}", EXIT_USAGE)
    try:
        interval = parse_interval(args.interval) if getattr(args, "interval", None) else None
    except SpecError as exc:
        raise AskError(str(exc), EXIT_USAGE) from None
    symbol = normalize_symbol(args.symbol) if args.symbol else None

    from trii_term.ai.engine import NO_KEY, ChatEngine, Focus, find_key

    if not find_key():
        raise AskError(NO_KEY, EXIT_FAILED, "no_key")

    session = _session(config, paths, symbol)
    try:
        await _start(session)
        if symbol is not None:
            await _wait_for_quote(session, symbol)
        from trii_term.ai.conversations import Conversations

        assert session.store is not None
        conversations = Conversations(session.store.cursor())
        if args.conversation:
            try:
                cid = conversations.resolve(args.conversation)
            except ValueError as exc:
                raise AskError(str(exc), EXIT_USAGE) from None
        else:
            cid = conversations.create(persona=persona, model=config.ai.model)
        engine = ChatEngine(session, conversations=conversations, settings=config.ai)
        focus = Focus(symbol, interval or _chart_interval(session), _studies(session, symbol))
        return await _converse(engine, cid, text, focus, args.persona, bool(args.json), out, err)
    finally:
        if session.started:
            await session.stop()


def _session(config: Config, paths: Paths, symbol: str | None) -> Any:
    from trii_term.config import ConfigError
    from trii_term.session import Session

    try:
        return Session(config, paths, symbols=[symbol] if symbol else None)
    except ConfigError as exc:
        raise AskError(f"config error: {exc}", EXIT_USAGE, "config") from None


async def _start(session: Any) -> None:
    from trii_term.config import ConfigError
    from trii_term.store.db import StoreError, StoreLocked

    try:
        await session.start()
    except ConfigError as exc:
        if exc.key == "--symbols":  # the session's word for the symbols asked for: here --symbol
            raise AskError(f"--symbol: {exc.message}", EXIT_USAGE) from None
        raise AskError(f"config error: {exc}", EXIT_USAGE, "config") from None
    except StoreLocked as exc:
        raise AskError(
            f"the store is in use by {store_holder(exc)} (a running workstation?): ask in its AI pane, "
            "or close it first",
            EXIT_FAILED,
            "store",
        ) from None
    except StoreError as exc:
        raise AskError(str(exc), EXIT_FAILED, "store") from None


async def _wait_for_quote(session: Any, symbol: str) -> None:
    """A moment for the focused symbol's first quote, so the context has it (not required)."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + QUOTE_WAIT_SECONDS
    while (q := session.quotes.get(symbol)) is None or q.last is None:
        if loop.time() > deadline:
            log.info("ask: no quote for %s after %.0f s; asking without it", symbol, QUOTE_WAIT_SECONDS)
            return
        await asyncio.sleep(0.02)


def _chart_interval(session: Any) -> str:
    """The interval the trader's chart was last on (as the pane would see it), else daily."""
    from trii_term.charting.model import KEY_INTERVAL
    from trii_term.charting.spec import INTERVALS

    with contextlib.suppress(Exception):
        iv = session.store.setting(KEY_INTERVAL)
        if iv in INTERVALS:
            return str(iv)
    return "1D"


def _studies(session: Any, symbol: str | None) -> tuple[str, ...]:
    """The studies the trader keeps on this symbol's chart (the same ones the pane would see)."""
    if not symbol or session.store is None:
        return ()
    with contextlib.suppress(Exception):
        from trii_term.charting.model import KEY_STUDIES

        row = session.store.setting(KEY_STUDIES + symbol)
        if row:
            return (row,)
    return ()


async def _converse(
    engine: Any, cid: str, text: str, focus: Any, persona: str | None, as_json: bool, out: TextIO, err: TextIO
) -> int:
    from trii_term.ai.engine import (
        Drafted,
        ReplyDone,
        ReplyFailed,
        Retrying,
        TextDelta,
        ToolFinished,
        ToolStarted,
    )
    from trii_term.ai.tools import draft_json, draft_text

    reply: list[str] = []
    calls: dict[str, dict[str, Any]] = {}
    drafts: list[dict[str, Any]] = []
    done: Any = None
    failed: Any = None
    async with contextlib.aclosing(engine.reply(cid, text, focus=focus, persona=persona)) as events:
        async for ev in events:
            if isinstance(ev, TextDelta):
                reply.append(ev.text)
                if not as_json:
                    out.write(ev.text)
                    out.flush()
            elif isinstance(ev, ToolStarted):
                calls[ev.id] = {"id": ev.id, "name": ev.name, "input": ev.input}
                if not as_json:
                    print(f"\n[tool] {ev.name} {json.dumps(ev.input, sort_keys=True)}", file=err, flush=True)
            elif isinstance(ev, ToolFinished):
                calls.setdefault(ev.id, {"id": ev.id, "name": ev.name, "input": {}})
                calls[ev.id] |= {"output": ev.output, "is_error": ev.is_error}
                if not as_json and ev.is_error:
                    print(f"[tool] {ev.name} failed: {ev.output}", file=err, flush=True)
            elif isinstance(ev, Drafted):
                drafts.append(draft_json(ev.draft))
                if not as_json:
                    out.write(
                        f"\n\nDrafted (NOT sent): {draft_text(ev.draft)}. Journalled as drafted; review and "
                        "send it from the workstation's order ticket.\n\n"
                    )
                    out.flush()
            elif isinstance(ev, Retrying):
                print(
                    f"trii-term ask: {ev.reason}: retrying in {math.ceil(ev.wait)} s "
                    f"(attempt {ev.attempt} of {ev.attempts})",
                    file=err,
                    flush=True,
                )
            elif isinstance(ev, ReplyDone):
                done = ev
            elif isinstance(ev, ReplyFailed):
                failed = ev
    if as_json:
        error = None
        if failed is not None:
            error = {"kind": failed.kind, "message": failed.message, "partial": failed.partial,
                     "retry_after": failed.retry_after, "attempts": failed.attempts}  # fmt: skip
        print_json(_result(cid, "".join(reply), list(calls.values()), drafts, done, error), out, indent=2)
    elif reply:
        out.write("\n")
    if failed is not None:
        print(f"trii-term ask: {failed.message}", file=err)
        return EXIT_FAILED
    if done is not None and not as_json:
        u = done.usage
        print(
            f"[{u.input_tokens + u.cache_read_tokens + u.cache_write_tokens} in, {u.output_tokens} out · "
            f"${u.cost_usd:.4f} · conversation {cid}]",
            file=err,
        )
    return EXIT_OK
