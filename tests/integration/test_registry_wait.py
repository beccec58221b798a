"""Waiting out the registry (runners.registry) against a real socket on a port of the
test's own: nothing listening is an outage, a listener is a registry that answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from runners.registry import RegistryUnreachable, waiting_out_outages
from tests.support.services import free_port


class Refused(Exception):
    pass


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket bound to a free port, listening only once the test says so."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", free_port()))
    yield sock
    sock.close()


def address(sock: socket.socket) -> str:
    host, port = sock.getsockname()
    return f"{host}:{port}"


def test_an_action_is_tried_again_once_the_registry_answers(listener: socket.socket) -> None:
    said: list[str] = []
    calls: list[int] = []

    def push() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise Refused("connection refused")
        return "pushed"

    def say(line: str) -> None:
        said.append(line)
        listener.listen()  # the registry comes back as soon as the wait is announced

    registry = address(listener)
    assert waiting_out_outages(registry, push, (Refused,), say, patience=60) == "pushed"
    assert len(calls) == 2
    assert said[0].startswith(f"the registry at {registry} is unreachable since ")
    assert said[0].endswith("UTC, waiting: connection refused")
    assert said[1].startswith(f"the registry at {registry} answers again after ")


def test_a_registry_away_longer_than_the_patience_is_named(listener: socket.socket) -> None:
    def push() -> str:
        raise Refused("connection refused")

    registry = address(listener)
    with pytest.raises(RegistryUnreachable) as raised:
        waiting_out_outages(registry, push, (Refused,), lambda _: None, patience=0.5)
    expected = f"the registry at {registry} stayed unreachable for 0.5s: connection refused"
    assert str(raised.value) == expected


def test_a_refusal_by_a_registry_that_answers_stands(listener: socket.socket) -> None:
    listener.listen()
    calls: list[int] = []

    def push() -> str:
        calls.append(1)
        raise Refused("denied: requested access to the resource is denied")

    with pytest.raises(Refused):
        waiting_out_outages(address(listener), push, (Refused,), lambda _: None, patience=60)
    assert len(calls) == 1


def test_an_interruption_ends_the_wait(listener: socket.socket) -> None:
    class Canceled(Exception):
        pass

    def push() -> str:
        raise Refused("connection refused")

    def interrupt() -> None:
        raise Canceled

    with pytest.raises(Canceled):
        waiting_out_outages(address(listener), push, (Refused,), lambda _: None, 60, interrupt)
