"""The AI desk's tools and context against a running replay session (no API involved)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal as D

import pytest

from trii_term.ai.context import build_context
from trii_term.ai.engine import Focus
from trii_term.ai.personas import PERSONAS
from trii_term.ai.tools import DEFINITIONS, Toolbox, definitions
from trii_term.config import parse_config
from trii_term.domain.orders import TIF, OrderRequest, OrderType, Side
from trii_term.paths import Paths
from trii_term.session import Session

from .conftest import FAST, wait_until


@pytest.fixture
async def session(paths: Paths) -> AsyncIterator[Session]:
    s = Session(parse_config(FAST), paths, writer_flush_interval=0.05)
    await s.start()
    try:
        await wait_until(lambda: (q := s.quotes.get("AAPL")) is not None and q.ask is not None)
        yield s
    finally:
        await s.stop()


async def test_bars_and_indicators_are_compact_and_exact_strings(session: Session) -> None:
    tools = Toolbox(session)
    bars = await tools.run("get_bars", {"symbol": "AAPL", "interval": "1D", "n": 5})
    assert not bars.is_error, bars.output
    data = json.loads(bars.output)
    assert data["columns"] == ["time", "open", "high", "low", "close", "volume"] and len(data["bars"]) == 5
    assert all(isinstance(x, str) for row in data["bars"] for x in row)
    assert data["summary"]["bars"] == 5 and data["summary"]["trend"] in ("up", "down", "flat")
    assert data["bars"][-1][0] <= "2013-03-01"  # nothing after the replayed day

    ind = await tools.run(
        "indicators", {"symbol": "AAPL", "interval": "1D", "names": ["rsi 14", "macd", "bb 20 2"]}
    )
    assert not ind.is_error, ind.output
    readings = json.loads(ind.output)["readings"]
    assert set(readings) == {"RSI 14", "MACD 12 26 9", "BB 20 2"}
    assert 0 <= float(readings["RSI 14"]["rsi"]) <= 100
    assert float(readings["BB 20 2"]["lower"]) < float(readings["BB 20 2"]["upper"])


@pytest.mark.parametrize(
    ("name", "args", "words"),
    [
        ("get_bars", {"symbol": "AAPL", "n": 0}, "n: a whole number"),
        ("get_bars", {"symbol": "AAPL", "interval": "7x"}, "unknown interval"),
        ("indicators", {"symbol": "AAPL", "names": ["nonsense 3"]}, "unknown study"),
        ("get_quote", {"symbol": "NOPE"}, "unknown symbol NOPE"),
        ("get_quote", {}, "symbol: give a ticker"),
        ("draft_order", {"side": "hold", "qty": "1", "symbol": "AAPL"}, "side: buy or sell"),
        ("draft_order", {"side": "buy", "qty": "-3", "symbol": "AAPL"}, "quantity '-3': must be above 0"),
        (
            "draft_order",
            {"side": "buy", "qty": "1", "symbol": "AAPL", "tif": "ioc", "stop_price": "1"},
            "ioc",
        ),
        ("place_order", {"symbol": "AAPL"}, "no tool 'place_order'"),
    ],
)
async def test_bad_arguments_are_error_results_that_say_what_to_fix(
    session: Session, name: str, args: dict, words: str
) -> None:
    outcome = await Toolbox(session).run(name, args)
    assert outcome.is_error and words in outcome.output and outcome.draft is None
    (entry,) = [e for e in session.broker.journal.entries() if e.event == "ai_tool"]  # type: ignore[union-attr]
    assert entry.source == "ai" and entry.detail["is_error"] is True and entry.detail["tool"] == name


async def test_portfolio_orders_and_watchlist(session: Session) -> None:
    desk = session.desk
    assert desk is not None
    desk.submit(OrderRequest("AAPL", Side.BUY, D(10)), source="ticket", confirmed=True)
    working = desk.submit(
        OrderRequest("IBM", Side.BUY, D(2), OrderType.LIMIT, TIF.GTC, limit_price=D("190")),
        source="ticket",
        confirmed=True,
    )
    tools = Toolbox(session)
    pf = json.loads((await tools.run("portfolio", {})).output)
    (pos,) = pf["positions"]
    assert pos["symbol"] == "AAPL" and pos["qty"] == "10" and D(pf["account"]["cash"]) < D(100_000)
    orders = json.loads((await tools.run("orders", {"open_only": True})).output)["orders"]
    assert [(o["id"], o["limit_price"]) for o in orders] == [(working.id, "190.00")]
    assert "FB" not in session.watchlists.active.symbols  # type: ignore[union-attr]
    added = json.loads((await tools.run("add_to_watchlist", {"symbols": ["fb", "AAPL"]})).output)
    assert added["added"] == ["FB"] and added["already_there"] == ["AAPL"]
    assert "FB" in session.watchlists.active.symbols and "FB" in session.subscribed()  # type: ignore[union-attr]

    context = await build_context(session, Focus("AAPL", "1D", ("sma 20",)))
    assert "Positions: AAPL 10 @" in context and f"Working orders: {working.id} buy 2 IBM limit" in context
    assert "SMA 20: sma" in context and "Quote: last" in context
    assert len(context) < 2500  # a few hundred tokens


async def test_context_without_a_focus_or_with_an_unknown_symbol(session: Session) -> None:
    assert "Focus: no symbol selected" in await build_context(session, Focus(None))
    assert "not a symbol the replay feed knows" in await build_context(session, Focus("ZZZ"))


def test_definitions_and_personas() -> None:
    defs = definitions()
    assert [d["name"] for d in defs] == [d["name"] for d in DEFINITIONS]
    assert defs[-1]["cache_control"] == {"type": "ephemeral"} and "cache_control" not in DEFINITIONS[-1]
    assert all(d["input_schema"]["type"] == "object" for d in defs)
    assert "NEVER sends" in next(d for d in defs if d["name"] == "draft_order")["description"]
    assert set(PERSONAS) == {"analyst", "risk", "coach"}
    for p in PERSONAS.values():
        assert p.will in p.system and p.wont in p.system and "never send" in p.system


def test_the_chat_persona_command_offers_every_persona() -> None:
    """commands/ai.py names the personas without importing ai/ (the wall): the two lists agree."""
    from trii_term.commands.ai import PERSONA_NAMES

    assert set(PERSONA_NAMES) == set(PERSONAS)
