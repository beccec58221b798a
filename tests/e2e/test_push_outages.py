"""A ``git push`` while the Shipway server, or its PostgreSQL, is away: the real
post-receive hook waits for it, saying so on the pusher's terminal, for at most its
patience. Back within it: exactly one pipeline (every attempt carries the same
Idempotency-Key, also when an attempt was stored and only its answer was lost). Not
back: the push still succeeds and the hook says that no pipeline was created and how
to start one, and that command works."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_push_to_pipeline import SECRET, pushed_pipeline
from tests.support.git import Repository
from tests.support.outages import PostgresOutage
from tests.support.services import (
    Deployment,
    PostgresServer,
    ShipwayProcess,
    free_port,
    wait_until,
)

# Bounds only a hang exceeds: the outages here last as long as a restart takes.
PATIENCE = 300
PUSH_ENDS_WITHIN = PATIENCE + 60


class BackgroundPush:
    """``git push`` running on its own, its output (the hook's lines among it,
    relayed by git as ``remote: ...``) collected as it comes."""

    def __init__(self, repository: Repository) -> None:
        self.process = subprocess.Popen(
            ["git", "push", "origin", "HEAD:refs/heads/main"],
            cwd=repository.work,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # the hook with it: stop() ends them together
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, *texts: str, timeout: float = 60) -> None:
        """Until the output says each of ``texts``; AssertionError with what it said."""
        try:
            wait_until(
                lambda: all(text in self.output for text in texts),
                timeout,
                f"the push saying {texts}",
                pause=0.1,
            )
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; it said:\n{self.output}") from exc

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        self.reader.join(timeout)
        return code

    def stop(self) -> None:
        """Kill what is left of the push, its hook included: a hook outliving a failed
        test would deliver to the next test's server on the same port."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def postgres(deployment: Deployment) -> Iterator[PostgresServer]:
    """A PostgreSQL of the test's own under the deployment: the test stops it."""
    server = PostgresServer.start()
    deployment.extra_env["SHIPWAY_DATABASE_URL"] = server.url
    yield server
    server.stop()


@pytest.fixture
def servers(deployment: Deployment, postgres: PostgresServer) -> Iterator[list[ShipwayProcess]]:
    """The server processes the test started (a restart adds one); all stopped after."""
    started = [deployment.start_server()]
    yield started
    for process in started:
        process.stop()


def pipelines_of(deployment: Deployment, project: str) -> list[dict[str, Any]]:
    with deployment.api() as api:
        answer = api.get("/api/pipelines", params={"project": project})
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()
        return found


@pytest.mark.parametrize("away", ["server", "postgresql"])
def test_a_push_waits_for_the_server_and_starts_exactly_one_pipeline(
    deployment: Deployment,
    postgres: PostgresServer,
    servers: list[ShipwayProcess],
    repository: Repository,
    away: str,
) -> None:
    deployment.add_project(
        "app", repository.bare, "team/app", SECRET, hook_options=("--patience", str(PATIENCE))
    )
    repository.commit({"README": "pushed while the server is away\n"})
    outage = PostgresOutage(postgres)
    if away == "server":
        servers[0].kill()
    else:
        outage.begin("kill")
    push = BackgroundPush(repository)
    try:
        # What the pusher reads while the hook waits.
        if away == "postgresql":
            said = "waiting for the server: the server answered 503: the database is unavailable"
        else:
            said = f"waiting for the server: the server at 127.0.0.1:{deployment.port} does not"
        push.wait_for(said, "next attempt in")
        if away == "server":
            servers.append(deployment.start_server())
        else:
            outage.end()
        back = time.monotonic()
        assert push.wait(PUSH_ENDS_WITHIN) == 0, push.output
    finally:
        push.stop()
    pipeline_id = pushed_pipeline(push.output)
    assert [pipeline["id"] for pipeline in pipelines_of(deployment, "app")] == [pipeline_id]
    assert "gave up" not in push.output
    waits = push.output.count("waiting for the server: ")
    print(f"{away} away: {waits} waits said; the push ended {time.monotonic() - back:.1f}s after")


def test_a_push_whose_server_never_comes_back_says_no_pipeline_was_created(
    deployment: Deployment,
    postgres: PostgresServer,
    servers: list[ShipwayProcess],
    repository: Repository,
) -> None:
    deployment.add_project(
        "app", repository.bare, "team/app", SECRET, hook_options=("--patience", "3")
    )
    sha = repository.commit({"README": "pushed while the server is down\n"})
    servers[0].kill()
    output = repository.push()  # raises unless git says the push succeeded
    assert "waiting for the server: the server at 127.0.0.1:" in output, output
    assert "gave up: no answer within the push's 3s" in output, output
    assert "NO PIPELINE WAS CREATED for this push" in output, output
    assert "shipway trigger app --branch main" in output, output
    assert "created pipeline" not in output

    # The command the hook printed starts the pipeline once the server is back.
    servers.append(deployment.start_server())
    assert pipelines_of(deployment, "app") == []
    triggered = deployment.cli("trigger", "app", "--branch", "main")
    assert triggered.returncode == 0, triggered.stderr
    (pipeline,) = pipelines_of(deployment, "app")
    assert pipeline["sha"] == sha


class AnswerLosingRelay:
    """A TCP relay in front of the server that loses the first answer: the first
    connection is cut as soon as the server starts answering (so the delivery is
    stored, and the hook never learns it); later connections pass untouched."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", free_port()))
        self.port: int = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # closed by close()
            while True:
                client, _ = self.listener.accept()
                self.connections += 1
                lose = self.connections == 1
                threading.Thread(target=self._relay, args=(client, lose), daemon=True).start()

    def _relay(self, client: socket.socket, lose_answer: bool) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        asking = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
        asking.start()
        try:
            if lose_answer:
                upstream.recv(1)  # the server answers: its transaction is committed
            else:
                self._pump(upstream, client)
        finally:
            for end in (client, upstream):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            asking.join(10)
            client.close()
            upstream.close()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        """Until either end closes; the other direction then ends too."""
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


def test_an_attempt_stored_whose_answer_was_lost_starts_no_second_pipeline(
    deployment: Deployment,
    postgres: PostgresServer,
    servers: list[ShipwayProcess],
    repository: Repository,
) -> None:
    relay = AnswerLosingRelay(deployment.port)
    try:
        through_relay = f"http://127.0.0.1:{relay.port}/webhooks/gitlab"
        options = ("--webhook-url", through_relay)
        deployment.add_project("app", repository.bare, "team/app", SECRET, hook_options=options)
        repository.commit({"README": "the first answer is lost\n"})
        output = repository.push()
    finally:
        relay.close()
    assert relay.connections == 2, output
    assert f"waiting for the server: the server at 127.0.0.1:{relay.port} does not answer" in output
    # The second attempt, with the same Idempotency-Key, found the first one's pipeline.
    assert "(delivered by an earlier attempt)" in output, output
    pipeline_id = pushed_pipeline(output)
    assert [pipeline["id"] for pipeline in pipelines_of(deployment, "app")] == [pipeline_id]
