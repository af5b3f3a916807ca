"""`trii-term ask` end to end: the installed command, a replay session, the real anthropic SDK and
a loopback Messages API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from tests.fakes.anthropic_api import AnthropicFake, Failure, text_reply, tool_reply
from trii_term.ai.conversations import Conversations
from trii_term.config import Config
from trii_term.paths import Paths
from trii_term.store.db import Store

from .conftest import FAST, run_cli, store_held_by_another_process

KEY = {"ANTHROPIC_API_KEY": "sk-cli-test"}


@pytest.fixture
def fake(paths: Paths, write_config: Callable[[str], Config]) -> Iterator[AnthropicFake]:
    with AnthropicFake() as f:
        write_config(FAST + f'[ai]\nbase_url = "{f.url}"\nmodel = "claude-haiku-4-5"\n')
        yield f


def test_ask_json_drafts_an_order_journals_it_sends_nothing_and_saves_the_conversation(
    paths: Paths, fake: AnthropicFake
) -> None:
    draft = {"side": "sell", "qty": "5", "symbol": "AAPL", "type": "limit", "limit_price": "500"}
    fake.push(tool_reply(("toolu_a", "draft_order", draft)), text_reply("Drafted ", "a limit sell."))
    r = run_cli(
        "ask", "Sell 5 AAPL at 500", "--symbol", "aapl", "--persona", "risk", "--json", paths=paths, env=KEY
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["text"] == "Drafted a limit sell." and out["error"] is None
    assert out["drafts"] == [{"side": "sell", "qty": "5", "symbol": "AAPL", "type": "limit", "tif": "day",
                              "limit_price": "500"}]  # fmt: skip
    (call,) = out["tool_calls"]
    assert call["name"] == "draft_order" and call["is_error"] is False and '"sent":false' in call["output"]
    assert out["usage"]["input_tokens"] == 150 + 120 and out["stop_reason"] == "end_turn"
    assert Decimal(out["cost_usd"]) == (Decimal(150 + 120) * 1 + Decimal(40 + 30) * 5) / 1_000_000
    body = fake.requests[0].json()
    assert body["model"] == "claude-haiku-4-5" and "risk manager" in body["system"][0]["text"].lower()
    assert "Focus: AAPL" in body["system"][1]["text"]

    orders = run_cli("orders", "--json", paths=paths)
    assert orders.returncode == 0 and json.loads(orders.stdout) == []
    journal = json.loads(run_cli("journal", "--json", paths=paths).stdout)
    drafted = [e for e in journal if e["event"] == "drafted"]
    assert len(drafted) == 1 and drafted[0]["source"] == "ai" and drafted[0]["detail"]["limit_price"] == "500"

    store = Store.open(paths.default_store)
    try:
        convs = Conversations(store.con)
        (info,) = convs.list()
        assert info.id == out["conversation"] and info.persona == "risk" and info.messages == 4
    finally:
        store.close()

    # resumed: the next question carries the saved turns
    fake.push(text_reply("Still drafted, not sent."))
    again = run_cli("ask", "Is it sent?", "--conversation", out["conversation"], paths=paths, env=KEY)
    assert again.returncode == 0, again.stderr
    assert "Still drafted, not sent." in again.stdout
    msgs = fake.requests[-1].json()["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]


def test_ask_streams_text_to_stdout_and_usage_to_stderr(paths: Paths, fake: AnthropicFake) -> None:
    fake.push(text_reply("Markets ", "are ", "quiet."))
    r = run_cli("ask", "How", "are", "markets?", paths=paths, env=KEY)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Markets are quiet."
    assert "$0.0" in r.stderr and "conversation" in r.stderr
    assert fake.requests[0].json()["messages"][0]["content"][0]["text"] == "How are markets?"


def test_ask_without_a_key_says_how_to_add_one(paths: Paths, fake: AnthropicFake) -> None:
    r = run_cli("ask", "hello", paths=paths)
    assert r.returncode == 1
    assert "trii-term login anthropic" in r.stderr and "ANTHROPIC_API_KEY" in r.stderr
    assert fake.requests == []


def test_ask_reports_api_errors_with_exit_1(paths: Paths, fake: AnthropicFake) -> None:
    fake.push(Failure(401, "authentication_error", "invalid key"))
    r = run_cli("ask", "hello", "--json", paths=paths, env=KEY)
    assert r.returncode == 1
    assert "trii-term login anthropic" in r.stderr and "sk-cli-test" not in r.stderr + r.stdout
    assert json.loads(r.stdout)["error"]["kind"] == "auth"


def test_ask_bad_input_is_exit_2(paths: Paths, fake: AnthropicFake) -> None:
    r = run_cli("ask", "   ", paths=paths, env=KEY)
    assert r.returncode == 2 and "say what to ask" in r.stderr
    r = run_cli("ask", "hi", "--conversation", "nope", paths=paths, env=KEY)
    assert r.returncode == 2 and "matches no conversation" in r.stderr
    r = run_cli("ask", "hi", "--interval", "7x", paths=paths, env=KEY)
    assert r.returncode == 2 and "unknown interval" in r.stderr
    assert fake.requests == []


KEYS = {"conversation", "text", "tool_calls", "drafts", "usage", "cost_usd", "stop_reason", "error"}


def one_object(stdout: str) -> dict:  # type: ignore[type-arg]
    """stdout is exactly one JSON object (json.loads refuses anything before or after it)."""
    out = json.loads(stdout)
    assert isinstance(out, dict) and set(out) == KEYS, out
    return out


def test_ask_json_without_a_key_prints_one_object_with_the_error(paths: Paths, fake: AnthropicFake) -> None:
    r = run_cli("ask", "hello", "--json", paths=paths)
    assert r.returncode == 1
    out = one_object(r.stdout)
    assert out["error"]["kind"] == "no_key" and "trii-term login anthropic" in out["error"]["message"]
    assert (out["conversation"], out["text"], out["tool_calls"], out["drafts"]) == (None, "", [], [])
    assert out["usage"] is None and out["cost_usd"] is None and out["stop_reason"] is None
    assert "ANTHROPIC_API_KEY" in r.stderr and "Traceback" not in r.stderr
    assert fake.requests == []


@pytest.mark.parametrize(
    ("args", "code", "kind", "words"),
    [
        (["   "], 2, "bad_input", "say what to ask"),
        (["hi", "--conversation", "nope"], 2, "bad_input", "matches no conversation"),
        (["hi", "--interval", "7x"], 2, "bad_input", "unknown interval"),
        (["hi", "--symbol", "ZZZZ"], 2, "bad_input", "--symbol: unknown symbol ZZZZ for the replay feed"),
    ],
)
def test_ask_json_refusals_print_one_object(
    paths: Paths, fake: AnthropicFake, args: list[str], code: int, kind: str, words: str
) -> None:
    r = run_cli("ask", *args, "--json", paths=paths, env=KEY)
    assert r.returncode == code, r.stderr
    error = one_object(r.stdout)["error"]
    assert error["kind"] == kind and words in error["message"] and words in r.stderr
    assert "--symbols" not in r.stderr and "Traceback" not in r.stderr
    assert fake.requests == []


def test_ask_json_with_the_store_in_use_or_a_provider_missing(
    paths: Paths, fake: AnthropicFake, write_config: Callable[[str], Config]
) -> None:
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    with store_held_by_another_process(paths.default_store):
        r = run_cli("ask", "hi", "--json", paths=paths, env=KEY)
    assert r.returncode == 1
    error = one_object(r.stdout)["error"]
    assert error["kind"] == "store" and "the store is in use" in error["message"]

    write_config("[feed]\nprovider = 'iqfeed'\n")
    r = run_cli("ask", "hi", "--json", paths=paths, env=KEY)
    assert r.returncode == 2
    error = one_object(r.stdout)["error"]
    assert error["kind"] == "config" and "line 2" in error["message"] and "iqfeed" in error["message"]


def test_ask_retries_an_overload_and_notes_each_retry_on_stderr(paths: Paths, fake: AnthropicFake) -> None:
    fake.push(
        Failure(529, "overloaded_error", "Overloaded", {"retry-after-ms": "10"}), text_reply("Calm now.")
    )
    r = run_cli("ask", "hello", paths=paths, env=KEY)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Calm now."
    assert "Claude is overloaded (529): retrying in 1 s (attempt 2 of 4)" in r.stderr

    fake.push(*[Failure(529, "overloaded_error", "Overloaded", {"retry-after-ms": "10"})] * 4)
    r = run_cli("ask", "hello", "--json", paths=paths, env=KEY)
    assert r.returncode == 1
    assert r.stderr.count("retrying in") == 3
    out = one_object(r.stdout)
    assert out["error"]["kind"] == "overloaded" and out["error"]["attempts"] == 4
    assert "still failing after 4 attempts" in out["error"]["message"] and out["conversation"]
    assert len(fake.requests) == 2 + 4


def test_ask_json_with_a_broken_config_still_prints_one_object(paths: Paths) -> None:
    paths.config_file.write_text("[risk]\nmax_order_qty = 'lots'\n")
    out = run_cli("ask", "hello", "--json", paths=paths)
    assert out.returncode == 2
    result = json.loads(out.stdout)
    assert result["error"]["kind"] == "config" and "max_order_qty" in result["error"]["message"]
    assert result["text"] == "" and result["conversation"] is None
