"""The AI desk's engine against a loopback Messages API, with the real anthropic SDK as the client
and a replay session for the market: streaming, tool round trips, drafts that are never sent,
every error kind, cancel, persistence and the no-key path."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal as D
from typing import Any

import pytest

from tests.fakes.anthropic_api import (
    AnthropicFake,
    Failure,
    cut_stream,
    error_midstream,
    held_stream,
    text_reply,
    tool_reply,
)
from trii_term.ai import pricing
from trii_term.ai.conversations import ChatMessage, Conversations
from trii_term.ai.engine import (
    NO_KEY,
    ChatEngine,
    Drafted,
    Focus,
    ReplyDone,
    ReplyFailed,
    Retrying,
    RetryPolicy,
    TextDelta,
    ToolFinished,
    ToolStarted,
    api_messages,
)
from trii_term.config import AiConfig, parse_config
from trii_term.paths import Paths
from trii_term.session import Session
from trii_term.store.db import Store

from .conftest import FAST, wait_until

FOCUS = Focus("AAPL", "1D", ("sma 20", "rsi 14"))


@pytest.fixture
def fake() -> Iterator[AnthropicFake]:
    with AnthropicFake() as f:
        yield f


@pytest.fixture
async def session(paths: Paths) -> AsyncIterator[Session]:
    s = Session(parse_config(FAST), paths, writer_flush_interval=0.05)
    await s.start()
    try:
        await wait_until(lambda: (q := s.quotes.get("AAPL")) is not None and q.ask is not None)
        yield s
    finally:
        await s.stop()


def engine_for(
    session: Session, fake: AnthropicFake, retry: RetryPolicy | None = None, **kw: Any
) -> tuple[ChatEngine, Conversations, str]:
    assert session.store is not None
    convs = Conversations(session.store.cursor())
    settings = AiConfig(model="claude-sonnet-4-6", max_tokens=800, base_url=fake.url, **kw)
    engine = ChatEngine(session, conversations=convs, settings=settings, api_key="sk-test-123", retry=retry)
    cid = convs.create(persona="analyst", model=settings.model)
    return engine, convs, cid


async def collect(engine: ChatEngine, cid: str, text: str, **kw: Any) -> list[Any]:
    return [ev async for ev in engine.reply(cid, text, focus=kw.pop("focus", FOCUS), **kw)]


async def test_a_reply_streams_text_in_order_with_usage_cost_and_cached_prompt(
    session: Session, fake: AnthropicFake
) -> None:
    engine, convs, cid = engine_for(session, fake, temperature=0.2)
    fake.push(
        text_reply(
            "AAPL ", "is ", "trading ", "higher.", input_tokens=1000, output_tokens=40, cache_read=2000
        )
    )
    events = await collect(engine, cid, "How is AAPL doing?")

    assert [type(e) for e in events] == [TextDelta] * 4 + [ReplyDone]
    assert "".join(e.text for e in events[:-1]) == "AAPL is trading higher."
    done = events[-1]
    assert done.stop_reason == "end_turn"
    assert (done.usage.input_tokens, done.usage.output_tokens, done.usage.cache_read_tokens) == (
        1000,
        40,
        2000,
    )
    expected = (D(1000) * 3 + D(40) * 15 + D(2000) * D("0.3")) / D(1_000_000)
    assert done.usage.cost_usd == expected and engine.session_cost_usd == expected

    (req,) = fake.requests
    assert (
        req.headers.get("authorization") == "Bearer sk-test-123"
        or req.headers.get("x-api-key") == "sk-test-123"
    )
    body = req.json()
    assert body["model"] == "claude-sonnet-4-6" and body["max_tokens"] == 800 and body["stream"] is True
    assert body["temperature"] == 0.2
    persona, context = body["system"]
    assert persona["cache_control"] == {"type": "ephemeral"} and "market analyst" in persona["text"].lower()
    assert "cache_control" not in context  # the volatile block sits after the breakpoint
    assert "Focus: AAPL" in context["text"] and "Quote: last" in context["text"]
    assert "Bars (1D" in context["text"] and "SMA 20" in context["text"] and "RSI 14" in context["text"]
    assert "Positions: none" in context["text"] and "Account (USD)" in context["text"]
    names = [t["name"] for t in body["tools"]]
    assert names == [
        "get_quote",
        "get_bars",
        "indicators",
        "portfolio",
        "orders",
        "draft_order",
        "add_to_watchlist",
    ]
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert all("cache_control" not in t for t in body["tools"][:-1])
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "How is AAPL doing?"}]}]

    stored = convs.messages(cid)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].blocks == [{"type": "text", "text": "AAPL is trading higher."}] and not stored[1].partial
    assert stored[1].usage is not None and stored[1].usage["cost_usd"] == str(expected)
    info = convs.info(cid)
    assert info is not None and info.title == "How is AAPL doing?" and info.cost_usd == expected


async def test_no_temperature_unless_configured(session: Session, fake: AnthropicFake) -> None:
    engine, _, cid = engine_for(session, fake)
    fake.push(text_reply("ok"))
    await collect(engine, cid, "hi", focus=Focus(None))
    body = fake.requests[0].json()
    assert "temperature" not in body and "Focus: no symbol selected" in body["system"][1]["text"]


async def test_a_tool_round_trip_sends_the_result_back_and_journals_it(
    session: Session, fake: AnthropicFake
) -> None:
    engine, convs, cid = engine_for(session, fake)
    fake.push(
        tool_reply(("toolu_1", "get_quote", {"symbol": "aapl"}), text="Let me look."),
        text_reply("AAPL last traded near the ask."),
    )
    events = await collect(engine, cid, "Quote AAPL")
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["TextDelta", "ToolStarted", "ToolFinished", "TextDelta", "ReplyDone"]
    started, finished = events[1], events[2]
    assert started == ToolStarted("toolu_1", "get_quote", {"symbol": "aapl"})
    assert isinstance(finished, ToolFinished) and not finished.is_error
    assert (
        '"symbol":"AAPL"' in finished.output
        and '"last":"' in finished.output
        and '"bid":"' in finished.output
    )

    second = fake.requests[1].json()["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"][1] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "get_quote",
        "input": {"symbol": "aapl"},
    }
    (result,) = second[2]["content"]
    assert (
        result["type"] == "tool_result" and result["tool_use_id"] == "toolu_1" and result["is_error"] is False
    )
    assert result["content"] == finished.output
    assert len(convs.messages(cid)) == 4  # question, tool call, result, answer
    assert isinstance(events[-1], ReplyDone) and events[-1].usage.input_tokens == 150 + 120

    entries = [e for e in session.broker.journal.entries() if e.event == "ai_tool"]  # type: ignore[union-attr]
    assert len(entries) == 1 and entries[0].source == "ai"
    assert entries[0].detail["tool"] == "get_quote" and entries[0].detail["conversation"] == cid


async def test_draft_order_fills_the_ticket_journals_drafted_and_sends_nothing(
    session: Session, fake: AnthropicFake
) -> None:
    engine, _, cid = engine_for(session, fake)
    order = {
        "side": "buy",
        "qty": "10",
        "symbol": "AAPL",
        "type": "limit",
        "limit_price": "400",
        "tif": "gtc",
    }
    fake.push(tool_reply(("toolu_9", "draft_order", order)), text_reply("Drafted: review it in the ticket."))
    events = await collect(engine, cid, "Buy 10 AAPL at 400 good till canceled")

    (drafted,) = [e for e in events if isinstance(e, Drafted)]
    d = drafted.draft
    assert (d.side.value, d.qty, d.symbol, d.limit, d.tif.value, d.type.value) == (
        "buy",
        "10",
        "AAPL",
        "400",
        "gtc",
        "limit",
    )
    (finished,) = [e for e in events if isinstance(e, ToolFinished)]
    assert not finished.is_error and '"sent":false' in finished.output and '"checks":[' in finished.output
    assert isinstance(events[-1], ReplyDone)
    assert session.broker.orders() == []  # type: ignore[union-attr]
    journal = session.broker.journal.entries()  # type: ignore[union-attr]
    drafts = [e for e in journal if e.event == "drafted"]
    assert len(drafts) == 1 and drafts[0].source == "ai" and drafts[0].detail["limit_price"] == "400"
    assert not [e for e in journal if e.event in ("intent", "submitted", "filled")]


async def test_a_bad_draft_is_an_error_result_not_a_draft(session: Session, fake: AnthropicFake) -> None:
    engine, _, cid = engine_for(session, fake)
    bad = {"side": "buy", "qty": "10", "symbol": "AAPL", "type": "limit"}  # no limit price
    fake.push(
        tool_reply(("t1", "draft_order", bad), ("t2", "get_quote", {"symbol": "ZZZZ"})),
        text_reply("Sorry."),
    )
    events = await collect(engine, cid, "buy AAPL")
    results = [e for e in events if isinstance(e, ToolFinished)]
    assert [r.is_error for r in results] == [True, True]
    assert "limit_price" in results[0].output and "unknown symbol ZZZZ" in results[1].output
    assert not [e for e in events if isinstance(e, Drafted)]
    assert not [e for e in session.broker.journal.entries() if e.event == "drafted"]  # type: ignore[union-attr]
    tool_results = fake.requests[1].json()["messages"][-1]["content"]
    assert [r["is_error"] for r in tool_results] == [True, True]


@pytest.mark.parametrize(
    ("reply", "kind", "partial", "retry", "words"),
    [
        (
            Failure(401, "authentication_error", "invalid x-api-key"),
            "auth",
            False,
            None,
            "trii-term login anthropic",
        ),
        (
            Failure(429, "rate_limit_error", "slow down", {"retry-after": "7"}),
            "rate_limited",
            False,
            7.0,
            "7 s",
        ),
        (Failure(529, "overloaded_error", "Overloaded"), "overloaded", False, None, "overloaded"),
        (
            Failure(400, "invalid_request_error", "max_tokens too big"),
            "bad_request",
            False,
            None,
            "max_tokens",
        ),
        (error_midstream("Half ", "an answer"), "overloaded", True, None, "kept"),
        (cut_stream("The market ", "is"), "dropped", True, None, "cut off"),
    ],
)
async def test_errors_are_events_that_keep_the_conversation(
    session: Session,
    fake: AnthropicFake,
    reply: Any,
    kind: str,
    partial: bool,
    retry: float | None,
    words: str,
) -> None:
    engine, convs, cid = engine_for(session, fake, RetryPolicy(attempts=1))  # (retries: below)
    fake.push(reply)
    events = await collect(engine, cid, "What now?")
    failed = events[-1]
    assert isinstance(failed, ReplyFailed), events
    assert (failed.kind, failed.partial, failed.retry_after) == (kind, partial, retry)
    assert words in failed.message and "sk-test" not in failed.message
    stored = convs.messages(cid)
    assert stored[0].text == "What now?"
    if partial:
        assert stored[-1].role == "assistant" and stored[-1].partial and stored[-1].text
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == stored[-1].text
    else:
        assert len(stored) == 1
    # the conversation goes on: the next question carries the earlier one (and any partial text)
    fake.push(text_reply("Now it works."))
    again = await collect(engine, cid, "Try again")
    assert isinstance(again[-1], ReplyDone)
    msgs = fake.requests[-1].json()["messages"]
    assert msgs[0]["content"][0]["text"] == "What now?" and msgs[-1]["content"][-1]["text"] == "Try again"
    assert [m["role"] for m in msgs] == (["user", "assistant", "user"] if partial else ["user"])


async def test_cancelling_mid_stream_stops_the_http_stream_and_saves_the_partial(
    session: Session, fake: AnthropicFake
) -> None:
    engine, convs, cid = engine_for(session, fake)
    hold = threading.Event()
    fake.push(held_stream("First ", "words ", "then more", hold=hold, hold_at=5))
    seen: list[str] = []
    got_text = asyncio.Event()

    async def consume() -> None:
        async with contextlib.aclosing(engine.reply(cid, "Tell me a lot", focus=FOCUS)) as events:
            async for ev in events:
                if isinstance(ev, TextDelta):
                    seen.append(ev.text)
                    got_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_text.wait(), 10)
    await wait_until(lambda: len(seen) >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.to_thread(fake.disconnected.wait, 5)
    assert fake.disconnected.is_set()  # the server saw the client go away
    hold.set()
    stored = convs.messages(cid)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].partial and stored[1].text == "".join(seen) == "First words "


async def test_no_key_says_how_to_add_one(session: Session, fake: AnthropicFake, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert session.store is not None
    convs = Conversations(session.store.cursor())
    engine = ChatEngine(session, conversations=convs, settings=AiConfig(base_url=fake.url))
    assert engine.ready == NO_KEY and "trii-term login anthropic" in NO_KEY
    cid = convs.create(persona="risk", model="claude-sonnet-4-6")
    events = await collect(engine, cid, "hello")
    assert events == [ReplyFailed(NO_KEY, False, None, "no_key")]
    assert fake.requests == []
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-env-key")
    assert engine.ready == ""
    fake.push(text_reply("hi"))
    assert isinstance((await collect(engine, cid, "hello"))[-1], ReplyDone)
    assert "risk manager" in fake.requests[0].json()["system"][0]["text"].lower()


async def test_a_tool_loop_is_bounded(session: Session, fake: AnthropicFake) -> None:
    engine, convs, cid = engine_for(session, fake)
    engine.max_rounds = 2
    fake.push(
        tool_reply(("a", "get_quote", {"symbol": "AAPL"})),
        tool_reply(("b", "get_quote", {"symbol": "MSFT"})),
    )
    events = await collect(engine, cid, "loop")
    assert len(fake.requests) == 2
    assert fake.requests[1].json()["tool_choice"] == {"type": "none"}
    assert "tool_choice" not in fake.requests[0].json()
    last = [e for e in events if isinstance(e, ToolFinished)][-1]
    assert last.is_error and "limit" in last.output
    assert events[-1] == ReplyDone(events[-1].usage, "tool_use")
    assert [m["role"] for m in api_messages(convs.messages(cid))] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]


def test_conversations_persist_across_a_reopen_and_export(paths: Paths) -> None:
    path = paths.data_dir / "ai.duckdb"
    store = Store.open(path)
    convs = Conversations(store.con)
    cid = convs.create(persona="coach", model="claude-haiku-4-5")
    other = convs.create(persona="analyst", model="claude-haiku-4-5", title="Earnings plan")
    t = time.time_ns()
    convs.append(cid, ChatMessage("user", [{"type": "text", "text": "Review my AAPL trade"}], t + 1))
    convs.append(
        cid,
        ChatMessage(
            "assistant",
            [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "orders", "input": {}},
            ],
            t + 2,
            {"input_tokens": 10, "output_tokens": 5, "cost_usd": "0.000105"},
        ),
    )
    convs.append(
        cid, ChatMessage("user", [{"type": "tool_result", "tool_use_id": "t1", "content": "[]"}], t + 3)
    )
    convs.append(cid, ChatMessage("assistant", [{"type": "text", "text": "No orders"}], t + 4, partial=True))
    store.close()

    store = Store.open(path)
    try:
        convs = Conversations(store.con)
        msgs = convs.messages(cid)
        assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant"]
        assert msgs[1].blocks[1]["name"] == "orders" and msgs[3].partial and not msgs[1].partial
        info = convs.info(cid)
        assert info is not None and info.title == "Review my AAPL trade" and info.messages == 4
        assert (info.input_tokens, info.output_tokens, info.cost_usd) == (10, 5, D("0.000105"))
        assert convs.resolve(cid) == cid and convs.resolve(cid[:7]) == cid
        assert convs.resolve("earnings plan") == other
        with pytest.raises(ValueError, match="no conversation"):
            convs.resolve("nothing like this")
        md = convs.export_markdown(cid)
        assert "# Review my AAPL trade" in md and "**Tool call** `orders`" in md and "partial" in md
        assert "**Tool result** `t1`" in md
        convs.rename(cid, "AAPL review")
        assert convs.list()[0].id == cid  # newest message first
        convs.delete(other)
        assert [c.title for c in convs.list()] == ["AAPL review"]
    finally:
        store.close()


def test_the_history_sent_drops_unanswered_tool_calls_and_merges_turns() -> None:
    history = [
        ChatMessage("user", [{"type": "text", "text": "a"}], 1),
        ChatMessage(
            "assistant",
            [{"type": "text", "text": "b"}, {"type": "tool_use", "id": "x", "name": "orders", "input": {}}],
            2,
        ),
        ChatMessage("user", [{"type": "text", "text": "c"}], 3),  # the tool never answered (cancelled)
        ChatMessage("assistant", [{"type": "text", "text": ""}], 4, partial=True),
        ChatMessage("user", [{"type": "text", "text": "d"}], 5),
    ]  # fmt: skip
    assert api_messages(history) == [
        {"role": "user", "content": [{"type": "text", "text": "a"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "b"}]},
        {"role": "user", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]},
    ]


def test_prices_by_model_family() -> None:
    assert pricing.cost_usd("claude-sonnet-4-6", input_tokens=1_000_000, output_tokens=0) == D(3)
    assert pricing.cost_usd("claude-haiku-4-5-20251001", input_tokens=0, output_tokens=1_000_000) == D(5)
    assert pricing.cost_usd("claude-opus-4-6", input_tokens=1_000_000, output_tokens=1_000_000) == D(30)
    assert pricing.cost_usd("claude-opus-4-1", input_tokens=1_000_000, output_tokens=0) == D(15)
    assert pricing.cost_usd("claude-sonnet-4-6", input_tokens=0, output_tokens=0, cache_write=1_000_000) == D(
        "3.75"
    )
    assert not pricing.price_for("some-gateway-model").known


# -- 429 / 529 / 5xx: retried with backoff, bounded, announced, cancellable ---------------------


class Waits:
    """The engine's sleep, recorded and returned at once: the waits asked for, without waiting."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def overloaded(**headers: str) -> Failure:
    return Failure(529, "overloaded_error", "Overloaded", dict(headers))


async def test_an_overload_then_success_gives_one_reply(session: Session, fake: AnthropicFake) -> None:
    engine, convs, cid = engine_for(session, fake)
    fake.push(overloaded(**{"retry-after-ms": "20"}), text_reply("Back ", "again."))
    events = await collect(engine, cid, "How is AAPL?")
    assert [type(e) for e in events] == [Retrying, TextDelta, TextDelta, ReplyDone]
    retrying = events[0]
    assert retrying == Retrying("Claude is overloaded (529)", 0.02, 2, 4)
    assert (
        retrying.countdown(3.2)
        == "Claude is overloaded (529): retrying in 4 s… (attempt 2 of 4) · Esc to stop"
    )
    assert len(fake.requests) == 2 and fake.bodies()[0] == fake.bodies()[1]  # the same request again
    stored = convs.messages(cid)
    assert [m.role for m in stored] == ["user", "assistant"] and stored[1].text == "Back again."
    assert not stored[1].partial


async def test_retry_after_is_honoured_else_the_wait_doubles(session: Session, fake: AnthropicFake) -> None:
    waits = Waits()
    engine, _, cid = engine_for(session, fake, RetryPolicy(sleep=waits))
    fake.push(Failure(429, "rate_limit_error", "slow down", {"retry-after": "7"}), text_reply("ok"))
    events = await collect(engine, cid, "one")
    assert waits.asked == [7.0] and events[0] == Retrying("Rate limited by Anthropic (429)", 7.0, 2, 4)
    assert isinstance(events[-1], ReplyDone)

    fake.push(overloaded(), overloaded(), Failure(500, "api_error", "Internal"), text_reply("ok"))
    events = await collect(engine, cid, "two")
    assert waits.asked == [7.0, 2.0, 4.0, 8.0]  # no retry-after: 2 s, 4 s, 8 s
    assert [e.reason for e in events if isinstance(e, Retrying)] == [
        "Claude is overloaded (529)",
        "Claude is overloaded (529)",
        "Anthropic's API failed (500)",
    ]
    assert isinstance(events[-1], ReplyDone) and len(fake.requests) == 6


async def test_when_the_retries_run_out_the_error_says_so_and_the_question_is_kept(
    session: Session, fake: AnthropicFake
) -> None:
    waits = Waits()
    engine, convs, cid = engine_for(session, fake, RetryPolicy(sleep=waits))
    fake.push(*[overloaded(**{"retry-after": "3"})] * 4)
    events = await collect(engine, cid, "Anything new?")
    assert [e.attempt for e in events if isinstance(e, Retrying)] == [2, 3, 4]
    failed = events[-1]
    assert isinstance(failed, ReplyFailed) and len(fake.requests) == 4 and waits.asked == [3.0] * 3
    assert (failed.kind, failed.partial, failed.retry_after, failed.attempts) == ("overloaded", False, 3.0, 4)
    assert failed.message == (
        "Claude is overloaded (529): still failing after 4 attempts over 9 s. "
        "Your question is kept: try again in 3 s (up brings it back)."
    )
    assert [m.text for m in convs.messages(cid)] == ["Anything new?"]
    fake.push(text_reply("Now it works."))
    assert isinstance((await collect(engine, cid, "Again?"))[-1], ReplyDone)


@pytest.mark.parametrize(
    ("replies", "requests", "waited"),
    [
        ([Failure(429, "rate_limit_error", "slow down", {"retry-after": "120"})], 1, []),  # over 30 s
        ([overloaded(**{"retry-after": "25"})] * 3, 3, [25.0, 25.0]),  # a third wait: over 60 s in all
    ],
)
async def test_a_wait_beyond_the_bounds_is_not_waited(
    session: Session, fake: AnthropicFake, replies: list[Failure], requests: int, waited: list[float]
) -> None:
    waits = Waits()
    engine, _, cid = engine_for(session, fake, RetryPolicy(sleep=waits))
    fake.push(*replies)
    failed = (await collect(engine, cid, "hello"))[-1]
    assert isinstance(failed, ReplyFailed) and len(fake.requests) == requests and waits.asked == waited
    assert (
        failed.attempts == requests
        and f"try again in {int(failed.retry_after or 0)} s" in failed.message.lower()
    )


@pytest.mark.parametrize(
    "reply",
    [
        Failure(401, "authentication_error", "invalid x-api-key"),
        Failure(400, "invalid_request_error", "max_tokens too big"),
        Failure(404, "not_found_error", "model"),
        error_midstream("Half ", "an answer"),  # text already shown: retrying would repeat it
        cut_stream("The market ", "is"),
    ],
)
async def test_what_a_retry_cannot_fix_is_not_retried(
    session: Session, fake: AnthropicFake, reply: Any
) -> None:
    waits = Waits()
    engine, _, cid = engine_for(session, fake, RetryPolicy(sleep=waits))
    fake.push(reply, text_reply("never asked for"))
    events = await collect(engine, cid, "hello")
    assert isinstance(events[-1], ReplyFailed) and events[-1].attempts == 1
    assert (
        len(fake.requests) == 1 and waits.asked == [] and not [e for e in events if isinstance(e, Retrying)]
    )


async def test_an_error_event_before_any_text_is_retried(session: Session, fake: AnthropicFake) -> None:
    waits = Waits()
    engine, convs, cid = engine_for(session, fake, RetryPolicy(sleep=waits))
    fake.push(error_midstream(), error_midstream(kind="api_error", message="Internal"), text_reply("Fine."))
    events = await collect(engine, cid, "hello")
    assert [e.reason for e in events if isinstance(e, Retrying)] == [
        "Claude is overloaded (overloaded_error)",
        "Anthropic's API failed (api_error)",
    ]
    assert isinstance(events[-1], ReplyDone) and waits.asked == [2.0, 4.0]
    assert [m.text for m in convs.messages(cid)] == ["hello", "Fine."]  # nothing partial saved


async def test_stopping_during_the_wait_stops_the_retry(session: Session, fake: AnthropicFake) -> None:
    engine, convs, cid = engine_for(session, fake)  # the real sleep: 20 s, cancelled at once
    fake.push(overloaded(**{"retry-after": "20"}), text_reply("too late"))
    seen: list[Any] = []

    async def consume() -> None:
        async with contextlib.aclosing(engine.reply(cid, "hello", focus=FOCUS)) as events:
            async for ev in events:
                seen.append(ev)

    task = asyncio.create_task(consume())
    await wait_until(lambda: any(isinstance(e, Retrying) for e in seen))
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0
    assert len(fake.requests) == 1 and seen == [Retrying("Claude is overloaded (529)", 20.0, 2, 4)]
    assert [m.text for m in convs.messages(cid)] == ["hello"]


@pytest.mark.parametrize(
    ("headers", "waited"),
    [
        ({"retry-after": "soon"}, 2.0),  # garbage: was a ValueError out of the reply
        ({"retry-after": "nan"}, 2.0),
        ({"retry-after": "1e400"}, 2.0),  # inf: not a wait
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after-ms": "abc", "retry-after": "3"}, 3.0),
        ({"retry-after-ms": "1500", "retry-after": "3"}, 1.5),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date already past
    ],
)
async def test_any_retry_after_header_is_a_wait_or_ignored(
    session: Session, fake: AnthropicFake, headers: dict[str, str], waited: float
) -> None:
    waits = Waits()
    engine, _, cid = engine_for(session, fake, RetryPolicy(sleep=waits))
    fake.push(Failure(429, "rate_limit_error", "slow down", headers), text_reply("ok"))
    events = await collect(engine, cid, "hello")
    assert waits.asked == [waited] and isinstance(events[-1], ReplyDone)
