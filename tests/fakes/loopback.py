"""Loopback servers for the provider fakes: a threaded HTTP server with a route table, and a
websockets server on its own event loop thread. Both bind 127.0.0.1 on a free port and stop
cleanly; every request is recorded so tests can check what the real SDK sent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import websockets


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


@dataclass
class Response:
    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None  # None: application/json for non-bytes bodies

    def encoded(self) -> tuple[bytes, str | None]:
        if isinstance(self.body, bytes):
            return self.body, self.content_type
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain"
        return json.dumps(self.body).encode(), self.content_type or "application/json"


Handler = Callable[[Request], Response]


class HttpFake:
    """`route("GET", "/v2/orders/{id}", handler)`; unmatched requests get 404 JSON."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[Request] = []
        fake = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                fake.requests.append(req)
                resp = fake._dispatch(req)
                data, ctype = resp.encoded()
                self.send_response(resp.status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if data:
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="http-fake", daemon=True
        )

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        self.routes.insert(0, (method.upper(), regex, handler))  # later routes win

    def _dispatch(self, req: Request) -> Response:
        for method, regex, handler in self.routes:
            m = regex.match(req.path)
            if m and method == req.method:
                req.params = m.groupdict()
                try:
                    return handler(req)
                except Exception as exc:  # a bug in the fake: show it, as a 500
                    return Response(500, {"message": f"fake error: {type(exc).__name__}: {exc}"})
        return Response(404, {"message": f"no route {req.method} {req.path}"})

    def start(self) -> HttpFake:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HttpFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


WsHandler = Callable[[Any], Awaitable[None]]  # receives a websockets ServerConnection


class WsFake:
    """A websockets server on its own loop thread. `handler(ws)` serves one connection;
    `connections` counts accepted connections, `paths` records request paths."""

    def __init__(self, handler: WsHandler) -> None:
        self.handler = handler
        self.connections = 0
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self._run, name="ws-fake", daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = self.loop.create_future()

        async def serve(ws: Any) -> None:
            self.connections += 1
            self.paths.append(ws.request.path)
            self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.handler(ws)

        async with websockets.serve(serve, "127.0.0.1", 0, max_size=None) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> WsFake:
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        if self._stop is not None and not self._stop.done():
            self.loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(5)

    def __enter__(self) -> WsFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
