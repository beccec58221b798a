"""A JSON HTTP server on loopback for the fakes of servers that cannot run here
(SonarQube, GitLab): each request goes to a function that answers (status, body)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass(frozen=True)
class JsonRequest:
    method: str
    path: str  # as sent: percent-encoding kept
    query: dict[str, list[str]]
    body: Any  # the JSON body, {} when none or not JSON
    headers: Message


Answer = Callable[[JsonRequest], tuple[int, Any]]


@contextmanager
def serving_json(answer: Answer, methods: tuple[str, ...] = ("GET", "POST")) -> Iterator[str]:
    """Serve ``answer`` until the block ends; yields the server's base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            if self.command not in methods:
                self.send_error(405)
                return
            parsed = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            status, reply = answer(
                JsonRequest(self.command, parsed.path, parse_qs(parsed.query), body, self.headers)
            )
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _handle
        do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
