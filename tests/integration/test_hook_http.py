"""The post-receive hook's own HTTP/1.1 (it imports no HTTP library, to start fast)
against real sockets answering as servers and proxies do: a body of a given length
on a connection left open, a chunked body, an answer cut short, a proxy's 502."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HOOK = Path(__file__).parents[2] / "runners" / "hooks" / "post-receive"


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("post_receive", str(HOOK))
    spec = importlib.util.spec_from_loader("post_receive", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


class RawServer:
    """Answers each connection with the next of ``answers`` (raw bytes), after reading
    the whole request; keeps the connection open when told to."""

    def __init__(self, answers: list[bytes], close: bool = True) -> None:
        self.answers = answers
        self.close = close
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/webhooks/gitlab"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for answer in self.answers:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # stopped before the hook came for every answer
            received = b""
            while b"\r\n\r\n" not in received:
                received += connection.recv(65536)
            head, _, body = received.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += connection.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + body)
            connection.sendall(answer)
            if self.close:
                connection.shutdown(socket.SHUT_WR)  # an orderly end, never a reset
                connection.close()
            else:
                self.held.append(connection)

    def stop(self) -> None:
        for connection in self.held:
            connection.close()
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[list[RawServer]]:
    started: list[RawServer] = []
    yield started
    for server in started:
        server.stop()


CREATED = json.dumps({"status": "created", "pipeline_id": 7, "reason": "ok"}).encode()


def post(hook: ModuleType, server: RawServer, patience: float = 5) -> tuple[Any, list[str]]:
    said: list[str] = []
    outcome = hook.deliver(
        server.url,
        "secret",
        "webhook-uuid",
        "Push Hook",
        {"ref": "refs/heads/main"},
        time.monotonic() + patience,
        said.append,
    )
    return outcome, said


def test_an_answer_of_a_given_length_ends_there_on_a_connection_left_open(
    hook: ModuleType, serve: list[RawServer]
) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(CREATED)}\r\n\r\n".encode()
    server = RawServer([head + CREATED], close=False)
    serve.append(server)
    outcome, said = post(hook, server)
    assert outcome.answer == {"status": "created", "pipeline_id": 7, "reason": "ok"}
    assert said == []
    (request,) = server.requests
    assert request.startswith(b"POST /webhooks/gitlab HTTP/1.1\r\n")
    assert b"\r\nX-Gitlab-Token: secret\r\n" in request
    assert json.loads(request.partition(b"\r\n\r\n")[2]) == {"ref": "refs/heads/main"}


def test_a_chunked_answer_is_put_together(hook: ModuleType, serve: list[RawServer]) -> None:
    first, second = CREATED[:10], CREATED[10:]
    chunks = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (first, second))
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    server = RawServer([answer])
    serve.append(server)
    outcome, _ = post(hook, server)
    assert outcome.answer["pipeline_id"] == 7


def test_an_answer_cut_short_is_tried_again_with_the_same_key(
    hook: ModuleType, serve: list[RawServer]
) -> None:
    whole = f"HTTP/1.1 200 OK\r\nContent-Length: {len(CREATED)}\r\n\r\n".encode() + CREATED
    server = RawServer([whole[:-5], whole])
    serve.append(server)
    outcome, said = post(hook, server)
    assert outcome.answer["pipeline_id"] == 7
    assert len(said) == 1
    assert "does not answer (the answer was cut short)" in said[0]
    keys = [request.split(b"Idempotency-Key: ")[1].split(b"\r\n")[0] for request in server.requests]
    assert len(keys) == 2
    assert keys[0] == keys[1]


def test_a_proxy_without_its_server_is_waited_for_until_the_patience_ends(
    hook: ModuleType, serve: list[RawServer]
) -> None:
    bad = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 11\r\n\r\nbad gateway"
    server = RawServer([bad, bad, bad])
    serve.append(server)
    outcome, said = post(hook, server, patience=1.5)
    assert outcome.answer is None
    assert outcome.problem == "the server answered 502: bad gateway"
    assert outcome.maybe_delivered
    assert said[0].startswith("waiting for the server: the server answered 502")
