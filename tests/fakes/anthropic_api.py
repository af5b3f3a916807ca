"""A loopback Anthropic Messages API: `POST /v1/messages` answered with server-sent events,
written event by event with real flushes and small delays (not one body), as the API streams.

Each test scripts the replies it wants in order (`fake.push(...)`); every request is recorded so
the test can check what the real SDK sent (system blocks, tools, cache_control, tool_result
turns). Faults: an `error` event mid-stream, 529 overloaded, 429 with retry-after, 401, and a
stream cut without `message_stop`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.loopback import Request

Event = tuple[str, dict[str, Any]]


@dataclass
class Stream:
    """A 200 text/event-stream reply. `cut_after`: close the connection after that many events
    (no terminating chunk, no message_stop). `hold`: before event number `hold_at`, wait until
    the event is set (or the client goes away) — for tests that cancel mid-stream."""

    events: list[Event]
    delay: float = 0.002
    cut_after: int | None = None
    hold: threading.Event | None = None
    hold_at: int = 0


@dataclass
class Failure:
    """An HTTP error reply with the API's error body."""

    status: int
    kind: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


Reply = Stream | Failure


# -- building streams --------------------------------------------------------------------------


def _start(
    usage_in: int, cache_read: int = 0, cache_write: int = 0, model: str = "claude-sonnet-4-6"
) -> Event:
    return (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": usage_in,
                    "output_tokens": 1,
                    "cache_read_input_tokens": cache_read,
                    "cache_creation_input_tokens": cache_write,
                },
            },
        },
    )


def _end(stop_reason: str, output_tokens: int) -> list[Event]:
    return [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def _text_block(index: int, chunks: list[str]) -> list[Event]:
    out: list[Event] = [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
        ),
        ("ping", {"type": "ping"}),
    ]
    for chunk in chunks:
        out.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": chunk},
                },
            )
        )
    out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return out


def _tool_block(index: int, tool_id: str, name: str, payload: dict[str, Any]) -> list[Event]:
    raw = json.dumps(payload)
    pieces = [raw[i : i + 7] for i in range(0, len(raw), 7)] or [""]
    out: list[Event] = [
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}},
            },
        )
    ]
    for piece in pieces:
        out.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": piece},
                },
            )
        )
    out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return out


def text_reply(
    *chunks: str, input_tokens: int = 120, output_tokens: int = 30, cache_read: int = 0, cache_write: int = 0
) -> Stream:
    """A plain answer streamed as the given text deltas."""
    return Stream(
        [
            _start(input_tokens, cache_read, cache_write),
            *_text_block(0, list(chunks)),
            *_end("end_turn", output_tokens),
        ]
    )


def tool_reply(
    *calls: tuple[str, str, dict[str, Any]], text: str = "", input_tokens: int = 150, output_tokens: int = 40
) -> Stream:
    """An assistant turn that calls tools: `calls` are (id, name, input)."""
    events: list[Event] = [_start(input_tokens)]
    index = 0
    if text:
        events += _text_block(0, [text])
        index = 1
    for tool_id, name, payload in calls:
        events += _tool_block(index, tool_id, name, payload)
        index += 1
    events += _end("tool_use", output_tokens)
    return Stream(events)


def error_midstream(*chunks: str, kind: str = "overloaded_error", message: str = "Overloaded") -> Stream:
    """Some text, then an `error` event (the API's way of failing after the 200)."""
    events: list[Event] = [_start(100)]
    events += _text_block(0, list(chunks))[:-1]  # the block never closes
    events.append(("error", {"type": "error", "error": {"type": kind, "message": message}}))
    return Stream(events)


def cut_stream(*chunks: str) -> Stream:
    """Some text, then the connection drops: no content_block_stop, no message_stop."""
    events: list[Event] = [_start(100), *_text_block(0, list(chunks))[:-1]]
    return Stream(events, cut_after=len(events))


def held_stream(*chunks: str, hold: threading.Event, hold_at: int = 4) -> Stream:
    """A text reply that stops after `hold_at` events until `hold` is set (or the client leaves)."""
    s = text_reply(*chunks)
    s.hold, s.hold_at = hold, hold_at
    return s


# -- the server --------------------------------------------------------------------------------


class AnthropicFake:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: deque[Reply] = deque()
        self.disconnected = threading.Event()  # a client went away mid-stream
        self.keys_seen: list[str] = []
        fake = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                req = Request("POST", parts.path, parse_qs(parts.query), headers, body)
                fake.requests.append(req)
                if not parts.path.endswith("/v1/messages"):
                    return self._error(Failure(404, "not_found_error", f"no route {parts.path}"))
                key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
                fake.keys_seen.append(key)
                if not key:
                    return self._error(Failure(401, "authentication_error", "x-api-key header is required"))
                reply = fake.script.popleft() if fake.script else None
                if reply is None:
                    return self._error(Failure(500, "api_error", "the fake has no scripted reply left"))
                if isinstance(reply, Failure):
                    return self._error(reply)
                self._stream(reply)

            def _error(self, f: Failure) -> None:
                data = json.dumps(
                    {
                        "type": "error",
                        "error": {"type": f.kind, "message": f.message},
                        "request_id": "req_fake",
                    }
                ).encode()
                self.send_response(f.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("request-id", "req_fake")
                self.send_header("x-should-retry", "false")
                for k, v in f.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _stream(self, s: Stream) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("request-id", "req_fake")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for i, (name, data) in enumerate(s.events):
                        if s.cut_after is not None and i >= s.cut_after:
                            break
                        if s.hold is not None and i == s.hold_at:
                            while not s.hold.wait(0.02):
                                self._chunk(b": keep-alive\n\n")  # a comment: finds a closed client
                        self._chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                        time.sleep(s.delay)
                    if s.cut_after is not None:
                        self.close_connection = True
                        self.connection.shutdown(2)  # mid-body: the client sees the stream break
                        return
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, OSError):
                    fake.disconnected.set()
                    self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="anthropic-fake",
            daemon=True,
        )

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def bodies(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.requests]

    def start(self) -> AnthropicFake:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> AnthropicFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
