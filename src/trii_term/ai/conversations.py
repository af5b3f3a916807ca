"""Conversations with the AI desk, kept in the store (tables from migration 4).

A message is stored as the API's content blocks (text, tool_use, tool_result), so a conversation
can be resumed exactly — in the pane or by `trii-term ask --conversation` — and exported with its
tool calls. All methods take and return plain data; the connection belongs to the loop thread.
"""

from __future__ import annotations

import builtins
import json
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from trii_term.domain import from_ns
from trii_term.store.sql import one, transaction

TITLE_CHARS = 60


@dataclass
class ChatMessage:
    role: str  # "user" | "assistant"
    blocks: list[dict[str, Any]]
    created_ns: int
    usage: dict[str, Any] | None = None
    partial: bool = False  # a reply cancelled or cut off: what arrived is kept, marked

    @property
    def text(self) -> str:
        return "".join(b.get("text", "") for b in self.blocks if b.get("type") == "text")


@dataclass
class ConversationInfo:
    id: str
    title: str
    persona: str
    model: str
    created_ns: int
    updated_ns: int
    messages: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


def _now_ns() -> int:
    return time.time_ns()


class Conversations:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    # -- conversations ---------------------------------------------------------------------------

    def create(self, *, persona: str, model: str, title: str = "") -> str:
        cid = secrets.token_hex(4)
        while self.info(cid) is not None:  # 4 bytes: a clash is rare, but possible
            cid = secrets.token_hex(4)
        now = _now_ns()
        self._con.execute(
            "INSERT INTO ai_conversations (id, title, persona, model, created_ns, updated_ns) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [cid, title.strip(), persona, model, now, now],
        )
        return cid

    _INFO = """
        SELECT c.id, c.title, c.persona, c.model, c.created_ns, c.updated_ns,
               count(m.seq), coalesce(sum(m.input_tokens), 0), coalesce(sum(m.output_tokens), 0),
               coalesce(sum(m.cost_usd), 0)
        FROM ai_conversations c LEFT JOIN ai_messages m ON m.conversation_id = c.id
    """

    def list(self) -> list[ConversationInfo]:
        """Newest (last used) first."""
        rows = self._con.execute(self._INFO + " GROUP BY ALL ORDER BY c.updated_ns DESC, c.id").fetchall()
        return [self._info(r) for r in rows]

    def info(self, cid: str) -> ConversationInfo | None:
        row = one(self._con, self._INFO + " WHERE c.id = ? GROUP BY ALL", [cid])
        return self._info(row) if row else None

    @staticmethod
    def _info(r: tuple[Any, ...]) -> ConversationInfo:
        return ConversationInfo(
            r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), int(r[6]), int(r[7]), int(r[8]), Decimal(r[9])
        )

    def rename(self, cid: str, title: str) -> None:
        self._require(cid)
        self._con.execute("UPDATE ai_conversations SET title = ? WHERE id = ?", [title.strip(), cid])

    def delete(self, cid: str) -> None:
        self._require(cid)
        with transaction(self._con):
            self._con.execute("DELETE FROM ai_messages WHERE conversation_id = ?", [cid])
            self._con.execute("DELETE FROM ai_conversations WHERE id = ?", [cid])

    def set_persona(self, cid: str, persona: str) -> None:
        self._require(cid)
        self._con.execute("UPDATE ai_conversations SET persona = ? WHERE id = ?", [persona, cid])

    def _require(self, cid: str) -> ConversationInfo:
        info = self.info(cid)
        if info is None:
            raise ValueError(f"no conversation {cid!r}")
        return info

    def resolve(self, text: str) -> str:
        """An id, an id prefix or a title (case-insensitive) -> the id. Ambiguous or unknown:
        ValueError listing the choices."""
        text = text.strip()
        if not text:
            raise ValueError("which conversation? give its id or title")
        items = self.list()
        for c in items:
            if c.id == text:
                return c.id
        hits = [c for c in items if c.id.startswith(text.lower())]
        if not hits:
            hits = [c for c in items if c.title.lower() == text.lower()]
        if not hits:
            hits = [c for c in items if text.lower() in c.title.lower()]
        if len(hits) == 1:
            return hits[0].id
        shown = hits or items
        choices = "; ".join(f"{c.id} {c.title or '(untitled)'}" for c in shown[:10]) or "none yet"
        what = "matches several conversations" if hits else "matches no conversation"
        raise ValueError(f"{text!r} {what}. Choose one by id: {choices}")

    # -- messages ------------------------------------------------------------------------------

    def messages(self, cid: str) -> builtins.list[ChatMessage]:
        rows = self._con.execute(
            "SELECT role, blocks, created_ns, usage, partial FROM ai_messages "
            "WHERE conversation_id = ? ORDER BY seq",
            [cid],
        ).fetchall()
        return [
            ChatMessage(r[0], json.loads(r[1]), int(r[2]), json.loads(r[3]) if r[3] else None, bool(r[4]))
            for r in rows
        ]

    def append(self, cid: str, message: ChatMessage) -> None:
        info = self._require(cid)
        if message.role not in ("user", "assistant"):
            raise ValueError(f"a message's role is user or assistant, not {message.role!r}")
        usage = message.usage or {}
        with transaction(self._con):
            row = one(
                self._con,
                "SELECT coalesce(max(seq), 0) + 1 FROM ai_messages WHERE conversation_id = ?",
                [cid],
            )
            seq = int(row[0]) if row else 1
            self._con.execute(
                "INSERT INTO ai_messages (conversation_id, seq, role, blocks, created_ns, usage, "
                "input_tokens, output_tokens, cost_usd, partial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    cid,
                    seq,
                    message.role,
                    json.dumps(message.blocks),
                    message.created_ns,
                    json.dumps(usage) if message.usage is not None else None,
                    int(usage.get("input_tokens", 0))
                    + int(usage.get("cache_read_tokens", 0))
                    + int(usage.get("cache_write_tokens", 0)),
                    int(usage.get("output_tokens", 0)),
                    Decimal(str(usage.get("cost_usd", "0"))),
                    message.partial,
                ],
            )
            title = info.title
            if not title and message.role == "user" and message.text.strip():
                title = _title(message.text)
            self._con.execute(
                "UPDATE ai_conversations SET updated_ns = ?, title = ? WHERE id = ?",
                [max(message.created_ns, info.updated_ns), title, cid],
            )

    # -- export --------------------------------------------------------------------------------

    def export_markdown(self, cid: str) -> str:
        """The whole conversation as Markdown, tool calls and their results included."""
        info = self._require(cid)
        out = [
            f"# {info.title or 'Conversation ' + info.id}",
            "",
            f"- id: {info.id} · persona: {info.persona} · model: {info.model}",
            f"- started {_when(info.created_ns)}, last message {_when(info.updated_ns)}",
            f"- tokens: {info.input_tokens:,} in, {info.output_tokens:,} out · "
            f"estimated cost ${info.cost_usd.quantize(Decimal('0.0001'))}",
            "",
        ]
        for m in self.messages(cid):
            if m.role == "user" and all(b.get("type") == "tool_result" for b in m.blocks):
                for b in m.blocks:
                    flag = " (error)" if b.get("is_error") else ""
                    out += [
                        f"**Tool result{flag}** `{b.get('tool_use_id', '')}`",
                        "",
                        "```",
                        _content(b),
                        "```",
                        "",
                    ]
                continue
            who = "You" if m.role == "user" else "Claude"
            out += [
                f"## {who} · {_when(m.created_ns)}" + (" · *(partial: cut off)*" if m.partial else ""),
                "",
            ]
            for b in m.blocks:
                kind = b.get("type")
                if kind == "text":
                    out += [b.get("text", ""), ""]
                elif kind == "tool_use":
                    out += [
                        f"**Tool call** `{b.get('name')}` `{b.get('id', '')}`",
                        "",
                        "```json",
                        json.dumps(b.get("input", {}), indent=2, sort_keys=True),
                        "```",
                        "",
                    ]
                elif kind == "tool_result":
                    out += [
                        f"**Tool result** `{b.get('tool_use_id', '')}`",
                        "",
                        "```",
                        _content(b),
                        "```",
                        "",
                    ]
            if m.usage:
                u = m.usage
                out += [
                    f"*{u.get('input_tokens', 0)} in · {u.get('output_tokens', 0)} out · "
                    f"cache {u.get('cache_read_tokens', 0)} read/{u.get('cache_write_tokens', 0)} written · "
                    f"${u.get('cost_usd', '0')}*",
                    "",
                ]
        return "\n".join(out).rstrip() + "\n"


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def _when(ns: int) -> str:
    return from_ns(ns).strftime("%Y-%m-%d %H:%M UTC")


def _content(block: dict[str, Any]) -> str:
    content = block.get("content", "")
    if isinstance(content, list):
        return "\n".join(c.get("text", "") for c in content if isinstance(c, dict))
    return str(content)
