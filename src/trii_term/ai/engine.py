"""The chat engine: one trader message in, a streamed Claude reply out, tool calls run in between.

    reply(cid, text, focus) ──▶ user message saved
        ├─ system = persona (cached) + context (rebuilt now), tools (cached)
        ├─ messages.stream ──▶ TextDelta … ──▶ assistant turn saved (with usage and cost)
        ├─ stop_reason tool_use ──▶ ToolStarted/ToolFinished (Drafted) ──▶ tool results saved ──▶ again
        ├─ 429 / 529 / 5xx before any text ──▶ Retrying(wait, attempt) ──▶ wait ──▶ again (bounded)
        └─ ReplyDone(usage) | ReplyFailed(kind, message, partial, retry_after, attempts)

Nothing here raises at the trader: a refused key, a 429, a 529, a dropped stream are events that
say what happened and what to do, and the conversation keeps everything that arrived (a cut-off
reply is saved marked partial).

Retries are ours, not the SDK's (`max_retries=0`), so the trader sees them: a rate limit (429),
an overload (529, or an `overloaded_error` event in the stream) or a server error (500/502/503/
504, `api_error`) that arrives before any text of the turn is retried after the server's
retry-after, else after 2 s, 4 s, 8 s — at most `RetryPolicy.attempts` requests (4) and
`RetryPolicy.budget` seconds of waiting in all (60), no single wait over `RetryPolicy.longest`
(30 s): the trader is watching a countdown, and past a minute it is better to say so and let
them decide. A wait the server asks for beyond those bounds is not waited: the reply fails at
once with the time to try again. Each wait is announced (`Retrying`) and is cancelled like the
rest of the reply (Esc). Once text has streamed, a failure is not retried (the text would repeat):
what arrived is kept, marked partial.

The anthropic SDK is imported only inside the functions that talk to the API (≈1.5 s import).
Consumers should close the event stream when they stop early:
`async with contextlib.aclosing(engine.reply(...)) as events: async for ev in events: ...`;
cancelling the consuming task stops the HTTP stream and saves the partial reply.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from trii_term.ai import pricing
from trii_term.ai.context import build_context
from trii_term.ai.conversations import ChatMessage, Conversations
from trii_term.ai.failures import ReplyFailed, Retrying, RetryPolicy, given_up, retry_reason, status_failure
from trii_term.ai.personas import PERSONAS
from trii_term.ai.tools import Toolbox, definitions
from trii_term.config import AiConfig

if TYPE_CHECKING:
    from trii_term.trading.order_line import Draft

log = logging.getLogger(__name__)

MAX_ROUNDS = 6  # API calls per trader message (tool loops end here)
REQUEST_TIMEOUT = 90.0  # seconds without progress before a request fails
NO_KEY = (
    "No Anthropic API key. Add one with `trii-term login anthropic` (stored in the OS keyring), "
    "or set ANTHROPIC_API_KEY for one process. The rest of the workstation works without it."
)


def find_key() -> str | None:
    """The Anthropic API key: ANTHROPIC_API_KEY, else the keyring (`trii-term login anthropic`)."""
    from trii_term import credentials

    try:
        creds = credentials.load("anthropic")
    except credentials.CredentialError as exc:  # no keyring and no env var
        log.info("no Anthropic key: %s", exc)
        return None
    return creds.get("api_key") if creds is not None else None


@dataclass(frozen=True)
class Focus:
    symbol: str | None
    interval: str = "1D"
    studies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cost_usd + other.cost_usd,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cost_usd": str(self.cost_usd),
        }


# -- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolStarted:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class ToolFinished:
    id: str
    name: str
    output: str
    is_error: bool


@dataclass(frozen=True)
class Drafted:
    draft: Draft  # for the order ticket


@dataclass(frozen=True)
class ReplyDone:
    usage: Usage
    stop_reason: str


Event = TextDelta | ToolStarted | ToolFinished | Drafted | ReplyDone | ReplyFailed | Retrying


# -- one streamed assistant turn -----------------------------------------------------------------


@dataclass
class _Turn:
    """What has arrived of one assistant turn, kept as it streams (so a cut keeps it)."""

    blocks: dict[int, dict[str, Any]] = field(default_factory=dict)
    stop_reason: str | None = None
    finished: bool = False  # message_stop arrived
    shown: bool = False  # text of it was handed on (a retry would repeat it)
    current: int = 0  # the content block streaming now
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def content(self, *, complete_only: bool = False) -> list[dict[str, Any]]:
        out = []
        for _, b in sorted(self.blocks.items()):
            if b["type"] == "text" and not b["text"]:
                continue
            if b["type"] == "tool_use" and (complete_only and not b.get("_done")):
                continue
            out.append({k: v for k, v in b.items() if not k.startswith("_")})
        return out

    @property
    def received(self) -> bool:
        return bool(self.content(complete_only=True))

    def usage(self, model: str) -> Usage:
        cost = pricing.cost_usd(
            model,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read=self.cache_read,
            cache_write=self.cache_write,
        )
        return Usage(self.input_tokens, self.output_tokens, self.cache_read, self.cache_write, cost)


class _Failed(Exception):
    def __init__(self, failure: ReplyFailed, reason: str = "") -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.reason = reason  # what to tell while waiting to retry; "" when not worth a retry


# -- the engine ----------------------------------------------------------------------------------


class ChatEngine:
    def __init__(
        self,
        session: Any,
        *,
        conversations: Conversations,
        settings: AiConfig | None = None,
        api_key: str | None = None,
        client_factory: Callable[..., Any] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.session = session
        self.conversations = conversations
        self.settings = settings or session.config.ai
        self.tools = Toolbox(session)
        self.session_cost_usd = Decimal(0)
        self.max_rounds = MAX_ROUNDS
        self.retry = retry or RetryPolicy()
        self._api_key = api_key
        self._client_factory = client_factory
        self._client: Any = None
        self._client_key: str | None = None

    # -- the key ---------------------------------------------------------------------------------

    def _key(self) -> str | None:
        return self._api_key or find_key()

    async def aclose(self) -> None:
        """Close the HTTP client (before the event loop ends: its pool would otherwise be closed
        by the garbage collector on a dead loop, printing a traceback at exit)."""
        client, self._client = self._client, None
        if client is not None and hasattr(client, "close"):
            try:
                await client.close()
            except Exception:
                log.debug("closing the Anthropic client failed", exc_info=True)

    @property
    def ready(self) -> str:
        """ "" when a key is available, else exactly how to add one."""
        return "" if self._key() else NO_KEY

    def _get_client(self, key: str) -> Any:
        if self._client is not None and self._client_key == key:
            return self._client
        base_url = self.settings.base_url or None
        if self._client_factory is not None:
            client = self._client_factory(api_key=key, base_url=base_url)
        else:
            import anthropic  # lazily: it takes ~1.5 s

            client = anthropic.AsyncAnthropic(
                api_key=key, base_url=base_url, max_retries=0, timeout=REQUEST_TIMEOUT
            )
        self._client, self._client_key = client, key
        return client

    # -- a reply ---------------------------------------------------------------------------------

    async def reply(
        self, cid: str, text: str, *, focus: Focus, persona: str | None = None
    ) -> AsyncGenerator[Event, None]:
        key = self._key()
        if not key:
            yield ReplyFailed(NO_KEY, False, None, "no_key")
            return
        info = self.conversations.info(cid)
        if info is None:
            yield ReplyFailed(f"No conversation {cid!r}: start a new one.", False, None, "bad_request")
            return
        name = persona or info.persona or self.settings.persona
        chosen = PERSONAS.get(name)
        if chosen is None:
            yield ReplyFailed(
                f"Unknown persona {name!r}; choose one of {', '.join(PERSONAS)}.", False, None, "bad_request"
            )
            return
        if persona and persona != info.persona:
            self.conversations.set_persona(cid, persona)
        self.conversations.append(cid, ChatMessage("user", [{"type": "text", "text": text}], time.time_ns()))

        model = self.settings.model
        total = Usage()
        try:
            client = self._get_client(key)
        except Exception as exc:
            log.exception("could not create the Anthropic client")
            yield ReplyFailed(
                f"The Anthropic client did not start: {type(exc).__name__}.", False, None, "network"
            )
            return
        tools = definitions()
        for round_no in range(self.max_rounds):
            context = await build_context(self.session, focus)
            request: dict[str, Any] = {
                "model": model,
                "max_tokens": self.settings.max_tokens,
                "system": [
                    {"type": "text", "text": chosen.system, "cache_control": {"type": "ephemeral"}},
                    {
                        "type": "text",
                        "text": "Current market context (rebuilt for this message):\n" + context,
                    },
                ],
                "messages": api_messages(self.conversations.messages(cid)),
                "tools": tools,
            }
            if self.settings.temperature is not None:
                # anthropic 2.x has no `temperature` parameter any more: sent as a raw body field
                request["extra_body"] = {"temperature": self.settings.temperature}
            if round_no == self.max_rounds - 1:
                request["tool_choice"] = {"type": "none"}  # the last round answers in words
            attempt, waited = 1, 0.0
            while True:
                turn = _Turn()
                try:
                    async for event in self._stream(client, request, turn):
                        if isinstance(event, TextDelta):
                            turn.shown = True
                        yield event
                    break
                except _Failed as failed:
                    failure, reason = failed.failure, failed.reason
                    wait = self.retry.wait(failure, attempt, waited) if reason and not turn.shown else None
                    if wait is None:
                        self._save_turn(cid, turn, model, partial=True)
                        yield given_up(failure, reason, attempt, waited) if attempt > 1 else failure
                        return
                except (asyncio.CancelledError, GeneratorExit):
                    self._save_turn(cid, turn, model, partial=True)
                    raise
                attempt += 1
                log.info("%s: attempt %d of %d in %.1f s", reason, attempt, self.retry.attempts, wait)
                yield Retrying(reason, wait, attempt, self.retry.attempts)
                await self.retry.sleep(wait)  # Esc cancels it: the question stays saved
                waited += wait
            usage = turn.usage(model)
            total = total + usage
            self.session_cost_usd += usage.cost_usd
            self._save_turn(cid, turn, model, partial=False, usage=usage)
            if turn.stop_reason != "tool_use":
                yield ReplyDone(total, turn.stop_reason or "end_turn")
                return
            results: list[dict[str, Any]] = []
            try:
                last = round_no == self.max_rounds - 1
                for block in turn.content():
                    if block["type"] != "tool_use":
                        continue
                    yield ToolStarted(block["id"], block["name"], dict(block.get("input") or {}))
                    if last:
                        output = f"Not run: this reply reached its limit of {self.max_rounds} rounds."
                        outcome_error, draft = True, None
                    else:
                        outcome = await self.tools.run(block["name"], block.get("input"), conversation=cid)
                        output, outcome_error, draft = outcome.output, outcome.is_error, outcome.draft
                    results.append(
                        {
                            "type": "tool_result",
                            "tool_use_id": block["id"],
                            "content": output,
                            "is_error": outcome_error,
                        }
                    )
                    yield ToolFinished(block["id"], block["name"], output, outcome_error)
                    if draft is not None:
                        yield Drafted(draft)
            finally:
                if results:  # cancelled between tools: what ran is kept (the rest is dropped on resend)
                    self.conversations.append(cid, ChatMessage("user", results, time.time_ns()))
            if last:
                yield ReplyDone(total, "tool_use")
                return

    async def _stream(self, client: Any, request: dict[str, Any], turn: _Turn) -> AsyncIterator[Event]:
        import anthropic

        try:
            async with client.messages.stream(**request) as stream:
                async for ev in stream:
                    kind = ev.type
                    if kind == "text":
                        block = turn.blocks.setdefault(turn.current, {"type": "text", "text": ""})
                        block["text"] += ev.text
                        yield TextDelta(ev.text)
                    elif kind == "content_block_start":
                        cb = ev.content_block
                        if cb.type == "text":
                            turn.blocks[ev.index] = {"type": "text", "text": cb.text or ""}
                        elif cb.type == "tool_use":
                            turn.blocks[ev.index] = {
                                "type": "tool_use",
                                "id": cb.id,
                                "name": cb.name,
                                "input": {},
                            }
                        turn.current = ev.index
                    elif kind == "content_block_stop":
                        cb = ev.content_block
                        ended = turn.blocks.get(ev.index)
                        if ended is not None and cb.type == "tool_use":
                            ended["input"] = dict(cb.input or {})
                            ended["_done"] = True
                    elif kind == "message_start":
                        u = ev.message.usage
                        turn.input_tokens = u.input_tokens or 0
                        turn.output_tokens = u.output_tokens or 0
                        turn.cache_read = u.cache_read_input_tokens or 0
                        turn.cache_write = u.cache_creation_input_tokens or 0
                    elif kind == "message_delta":
                        turn.stop_reason = ev.delta.stop_reason or turn.stop_reason
                        u = ev.usage
                        turn.output_tokens = u.output_tokens or turn.output_tokens
                        if getattr(u, "input_tokens", None):
                            turn.input_tokens = u.input_tokens
                        if getattr(u, "cache_read_input_tokens", None):
                            turn.cache_read = u.cache_read_input_tokens
                        if getattr(u, "cache_creation_input_tokens", None):
                            turn.cache_write = u.cache_creation_input_tokens
                    elif kind == "message_stop":
                        turn.finished = True
        except anthropic.APIStatusError as exc:
            raise _Failed(status_failure(exc, turn.received), retry_reason(exc)) from None
        except anthropic.APIConnectionError as exc:
            log.warning("Anthropic API connection failed: %s", exc)
            raise _Failed(self._network_failure(turn.received)) from None
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:  # the stream broke under the SDK (a cut connection, garbage)
            log.warning("the Anthropic stream broke: %s: %s", type(exc).__name__, exc)
            raise _Failed(self._network_failure(turn.received)) from None
        if not turn.finished:
            log.warning("the Anthropic stream ended without message_stop")
            raise _Failed(self._network_failure(turn.received))

    def _network_failure(self, received: bool) -> ReplyFailed:
        if received:
            return ReplyFailed(
                "The reply was cut off: the connection to Anthropic broke mid-stream. What arrived is kept "
                "(marked partial); ask again to continue.",
                True,
                None,
                "dropped",
            )
        where = self.settings.base_url or "the Anthropic API"
        return ReplyFailed(
            f"Could not reach {where}: check the network (or ai.base_url in the config) and ask again.",
            False,
            None,
            "network",
        )

    def _save_turn(
        self, cid: str, turn: _Turn, model: str, *, partial: bool, usage: Usage | None = None
    ) -> None:
        blocks = turn.content(complete_only=partial)
        if not blocks and partial:
            return
        data = None
        if usage is not None:
            data = usage.as_dict() | {"model": model, "stop_reason": turn.stop_reason}
        try:
            self.conversations.append(cid, ChatMessage("assistant", blocks, time.time_ns(), data, partial))
        except Exception:
            log.exception("saving the assistant turn of conversation %s failed", cid)


# -- the conversation as the API wants it ----------------------------------------------------------


def api_messages(history: list[ChatMessage]) -> list[dict[str, Any]]:
    """The stored conversation as Messages API turns: a tool call without its result (a reply
    cancelled between the two) is dropped with its orphan results, empty text is dropped, and
    consecutive turns of one role are merged (the API wants them alternating, starting with the
    user)."""
    answered: set[str] = set()
    for i, m in enumerate(history):
        if m.role != "assistant":
            continue
        nxt = history[i + 1] if i + 1 < len(history) else None
        results = (
            {b.get("tool_use_id") for b in nxt.blocks if b.get("type") == "tool_result"}
            if nxt is not None and nxt.role == "user"
            else set()
        )
        for b in m.blocks:
            if b.get("type") == "tool_use" and b.get("id") in results:
                answered.add(b["id"])
    out: list[dict[str, Any]] = []
    for m in history:
        blocks = []
        for b in m.blocks:
            kind = b.get("type")
            if kind == "text" and not str(b.get("text", "")).strip():
                continue
            if kind == "tool_use" and b.get("id") not in answered:
                continue
            if kind == "tool_result" and b.get("tool_use_id") not in answered:
                continue
            blocks.append(b)
        if not blocks:
            continue
        if out and out[-1]["role"] == m.role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": m.role, "content": list(blocks)})
    while out and out[0]["role"] != "user":
        out.pop(0)
    return out
