"""The AI desk as a trader uses it, at 80×24, against a loopback Messages API (real anthropic
SDK): the chat pane streams a reply as Markdown with its usage; a draft_order tool call puts the
order in the ticket and nothing is sent; Esc stops a reply in flight and keeps what arrived; the
conversation survives a restart; without a key the pane says how to add one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from textual.widgets import Collapsible, Markdown, Static

from trii_term.ai.engine import RetryPolicy
from trii_term.paths import Paths
from trii_term.screens.ticket import TicketScreen
from trii_term.widgets.chat import ChatInput, ChatView

from .conftest import FAST, wait_until
from .fakes.anthropic_api import AnthropicFake, Failure, held_stream, text_reply, tool_reply
from .test_app import make_app, ready, screen_text


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[AnthropicFake]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-key-0001")
    fake = AnthropicFake().start()
    try:
        yield fake
    finally:
        fake.stop()


def _config(api: AnthropicFake) -> str:
    return FAST + f'[ai]\nbase_url = "{api.url}"\nmodel = "claude-sonnet-4-6"\n'


def _assistant_text(app) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(m.source for m in app.screen.query(ChatView).first().query(Markdown))


async def _no_wait(seconds: float) -> None:
    pass


def _countdown(app) -> str | None:  # type: ignore[no-untyped-def]
    lines = app.screen.query(".chat-retry")
    return str(lines.first().render()) if lines else None


async def _say(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    await wait_until(lambda: isinstance(pilot.app.focused, ChatInput))  # the keys go where the trader types
    for ch in text:
        await pilot.press(ch if ch != " " else "space")
    await wait_until(lambda: pilot.app.screen.query(ChatInput).first().text == text)  # all of it typed in
    await pilot.press("enter")


async def test_the_chat_pane_streams_a_reply_and_a_drafted_order_waits_in_the_ticket(
    paths: Paths, api: AnthropicFake
) -> None:
    api.push(text_reply("**AAPL** is ", "up on the day", input_tokens=900, output_tokens=12))
    api.push(
        tool_reply(
            (
                "toolu_1",
                "draft_order",
                {
                    "side": "buy",
                    "qty": 10,
                    "symbol": "AAPL",
                    "type": "limit",
                    "limit_price": "400",
                    "tif": "day",
                },
            )
        ),
        text_reply("Drafted: buy 10 AAPL at 400 — review it in the ticket."),
    )
    app = make_app(paths, _config(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("t")  # the chat pane, in the chart's place at 80×24
        await wait_until(lambda: app.workstation.chat_visible and bool(app.screen.query(ChatView)))
        await _say(pilot, "how is aapl")
        await wait_until(lambda: "AAPL is up on the day" in screen_text(app))
        assert "**AAPL** is up on the day" in _assistant_text(app)  # rendered as Markdown
        await wait_until(lambda: "tokens: 900 in · 12 out · ≈ $0.0029" in screen_text(app))
        body = api.bodies()[0]
        assert body["stream"] is True and body["model"] == "claude-sonnet-4-6"
        assert "AAPL" in str(body["system"])  # the focused symbol is in the context

        await _say(pilot, "buy 10 at 400")
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        ticket = app.screen
        assert (ticket.draft.symbol, ticket.draft.qty, ticket.draft.limit) == ("AAPL", "10", "400")
        assert app.session.broker.orders() == []  # drafted, never sent
        events = [e.event for e in app.session.broker.journal.entries()]
        assert "drafted" in events and "submitted" not in events
        await pilot.press("escape")  # the trader decides not to send it
        await wait_until(lambda: not isinstance(app.screen, TicketScreen))
        # the tool call is shown folded, marked done, and the reply after it streamed in
        await wait_until(lambda: "Drafted: buy 10 AAPL at 400" in screen_text(app))
        (tool,) = app.screen.query(Collapsible)
        assert tool.title.startswith("⚙ draft_order(side=buy") and tool.title.endswith("✓")
        assert '"drafted"' in str(tool.query_one(".chat-tool-result", Static).render())
        assert app.session.broker.orders() == []
        # the session's total in the status bar: 900 in + 12 out, then the two tool-round replies
        await wait_until(lambda: f"AI ${app.session.ai_cost_usd:.4f}" in screen_text(app))  # the bar redrawn
        cost = app.session.ai_cost_usd
        assert cost > 0 and f"AI ${cost:.4f}" in screen_text(app)
        await pilot.press("ctrl+q")


async def test_escape_stops_a_reply_and_keeps_the_partial_and_it_survives_a_restart(
    paths: Paths, api: AnthropicFake
) -> None:
    hold = threading.Event()
    api.push(held_stream("The trend ", "is up", hold=hold, hold_at=4))
    app = make_app(paths, _config(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("T")  # the full-screen chat
        await wait_until(
            lambda: bool(app.screen.query(ChatView)) and app.screen.query(ChatView).first().id == "chat-full"
        )
        await _say(pilot, "trend of aapl")
        await wait_until(lambda: "The trend" in screen_text(app))
        await pilot.press("escape")  # stop the reply in flight
        await wait_until(lambda: "stopped (Esc)" in screen_text(app) and not app.chat.busy)
        hold.set()
        cid = app.chat.cid
        await pilot.press("escape")  # nothing in flight: Esc closes the full-screen chat
        await wait_until(lambda: not app.screen.query(ChatView) or app.screen is app.workstation)
        await pilot.press("ctrl+q")

    again = make_app(paths, _config(api))
    async with again.run_test(size=(80, 24)) as pilot:
        await ready(again)
        await again.execute(f"chat resume {cid[:8]}")
        await wait_until(lambda: "trend of aapl" in screen_text(again) and "The trend" in screen_text(again))
        assert "reply cut short (partial, kept)" in screen_text(again)
        await pilot.press("ctrl+q")


async def test_the_footer_offers_to_stop_a_reply_only_while_it_comes(
    paths: Paths, api: AnthropicFake
) -> None:
    """While a reply streams Esc stops it, and the footer says so; once it has ended Esc leaves
    the chat, and the footer says that instead (it once went on offering "Stop reply")."""
    hold = threading.Event()
    api.push(held_stream("The trend ", "is up", hold=hold, hold_at=4))
    app = make_app(paths, _config(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("t")
        await wait_until(lambda: app.workstation.chat_visible and bool(app.screen.query(ChatView)))
        await wait_until(lambda: "Leave chat" in screen_text(app))
        await _say(pilot, "trend of aapl")
        await wait_until(lambda: "The trend" in screen_text(app) and "Stop reply" in screen_text(app))
        assert "Leave chat" not in screen_text(app)
        hold.set()
        await wait_until(lambda: "tokens:" in screen_text(app) and "Leave chat" in screen_text(app))
        assert "Stop reply" not in screen_text(app)
        await pilot.press("escape")  # nothing coming: Esc leaves the pane for the watchlist
        await wait_until(lambda: app.focused is app.workstation.watchlist.table)
        await pilot.press("ctrl+q")


async def test_without_a_key_the_chat_says_how_to_add_one_and_the_rest_works(paths: Paths) -> None:
    app = make_app(paths, FAST + '[ai]\nbase_url = "http://127.0.0.1:9"\n')
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("t")
        await wait_until(lambda: "trii-term login anthropic" in screen_text(app))
        assert "ANTHROPIC_API_KEY" in screen_text(app)
        await pilot.press("escape")
        await pilot.press("b")  # trading is unaffected
        await wait_until(lambda: isinstance(app.screen, TicketScreen))
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def test_history_multiline_errors_and_conversation_commands(paths: Paths, api: AnthropicFake) -> None:
    api.push(text_reply("First answer."))
    api.push(*[Failure(529, "overloaded_error", "Overloaded", {"retry-after": "7"})] * 4)
    app = make_app(paths, _config(api))
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app)
        app.chat.retry = RetryPolicy(sleep=_no_wait)  # the retries run out at once
        await pilot.press("t")
        # the keys go where the trader types (focus moves there a moment after the pane shows)
        await wait_until(lambda: app.workstation.chat_visible and isinstance(app.focused, ChatInput))
        view = app.screen.query(ChatView).first()
        for ch in "line one":
            await pilot.press(ch if ch != " " else "space")
        await pilot.press("ctrl+j")  # a second line, not sent
        for ch in "two":
            await pilot.press(ch)
        assert view.input.text == "line one\ntwo"
        await pilot.press("enter")
        await wait_until(lambda: "First answer." in screen_text(app))
        assert api.bodies()[0]["messages"][-1]["content"][0]["text"] == "line one\ntwo"
        await pilot.press("up")  # the history brings the last message back
        assert view.input.text == "line one\ntwo"
        await pilot.press("enter")  # …and sent again: Claude is overloaded, 4 times
        line = app.workstation.message_line
        await wait_until(lambda: "still failing after 4 attempts" in line.message)
        assert "try again in 7 s" in line.message and line.level == "error" and len(api.requests) == 5
        await wait_until(lambda: "still failing" in screen_text(app))

        cid = app.chat.cid
        await app.execute("chat rename My AAPL talk")
        assert app.chat.conversations.info(cid).title == "My AAPL talk"
        target = paths.data_dir / "talk.md"
        await app.execute(f"chat export {target}")
        exported = target.read_text()
        assert "My AAPL talk" in exported and "line one" in exported and "First answer." in exported
        await app.execute("chat list")
        assert "My AAPL talk" in app.workstation.message_line.message
        await app.execute(f"chat delete {cid[:8]}")
        assert app.chat.conversations.info(cid) is None and app.chat.cid is None
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def test_an_overload_counts_down_and_then_the_reply_arrives(paths: Paths, api: AnthropicFake) -> None:
    release = asyncio.Event()
    asked: list[float] = []

    async def held(seconds: float) -> None:  # the wait ends when the test says so
        asked.append(seconds)
        await release.wait()

    api.push(
        Failure(529, "overloaded_error", "Overloaded", {"retry-after": "4"}), text_reply("Back ", "again.")
    )
    app = make_app(paths, _config(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        app.chat.retry = RetryPolicy(sleep=held)
        await pilot.press("T")
        await wait_until(lambda: bool(app.screen.query(ChatView)))
        await _say(pilot, "how is aapl")
        await wait_until(lambda: _countdown(app) is not None)
        assert (
            _countdown(app) == "Claude is overloaded (529): retrying in 4 s… (attempt 2 of 4) · Esc to stop"
        )
        await wait_until(lambda: "retrying in 4 s… (attempt 2 of 4)" in screen_text(app))
        assert asked == [4.0] and len(api.requests) == 1
        release.set()
        await wait_until(lambda: "Back again." in screen_text(app))
        await wait_until(lambda: _countdown(app) is None and "retrying" not in screen_text(app))  # then gone
        assert _countdown(app) is None and "retrying" not in screen_text(app)
        assert len(api.requests) == 2 and "✖" not in screen_text(app)
        await pilot.press("ctrl+q")


async def test_escape_stops_the_countdown_and_keeps_the_question(paths: Paths, api: AnthropicFake) -> None:
    api.push(Failure(429, "rate_limit_error", "slow down", {"retry-after": "20"}))
    app = make_app(paths, _config(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("T")
        await wait_until(lambda: bool(app.screen.query(ChatView)))
        await _say(pilot, "trend of msft")
        await wait_until(
            lambda: "Rate limited by Anthropic (429): retrying in 20 s" in (_countdown(app) or "")
        )
        await wait_until(lambda: "retrying in 19 s" in (_countdown(app) or ""))  # it counts down
        await pilot.press("escape")
        await wait_until(lambda: "stopped (Esc)" in screen_text(app))
        assert _countdown(app) is None and len(api.requests) == 1
        assert "Retry stopped" in app.screen.query_one("#chat-message").message
        view = app.screen.query(ChatView).first()
        assert [m.text for m in app.chat.messages()] == ["trend of msft"]
        await pilot.press("up")  # the question comes back to ask again
        assert view.input.text == "trend of msft"
        await pilot.press("ctrl+q")
