"""A runner's watches of its dependencies: an outage is recorded when a ping fails
and ends when one answers; a wait ends when the dependency answers or a stop is
asked for."""

from __future__ import annotations

import threading

import pytest

from pipelines.errors import ExternalError
from runners.engine import engine_address
from runners.outages import Outages, Watch


class Flaky:
    """A ping that fails ``failures`` times, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ExternalError(f"refused ({self.calls})")


def test_an_outage_is_told_while_pings_fail_and_cleared_by_an_answer() -> None:
    outages = Outages()
    watch = Watch("Docker Engine at unix:///d.sock", outages, Flaky(2), (ExternalError,))
    assert not watch.answers()
    assert not watch.answers()
    summary = outages.summary() or ""
    assert summary.startswith("Docker Engine at unix:///d.sock unreachable since ")
    assert summary.endswith(", retrying")
    assert watch.answers()
    assert outages.summary() is None


def test_a_wait_ends_when_the_dependency_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    ping = Flaky(2)
    watch = Watch("Redis at 127.0.0.1:1", Outages(), ping, (ExternalError,))
    stop = threading.Event()
    monkeypatch.setattr(stop, "wait", lambda timeout=None: False)  # no real pauses
    assert watch.wait(stop)
    assert ping.calls == 3


def test_a_wait_ends_on_a_stop_without_an_answer() -> None:
    watch = Watch("Redis at 127.0.0.1:1", Outages(), Flaky(10**9), (ExternalError,))
    stop = threading.Event()
    stop.set()
    assert not watch.wait(stop)


def test_anything_else_a_ping_raises_is_no_outage() -> None:
    def broken() -> None:
        raise ValueError("a bug")

    watch = Watch("Redis at 127.0.0.1:1", Outages(), broken, (ExternalError,))
    with pytest.raises(ValueError, match="a bug"):
        watch.answers()


def test_the_engine_is_named_by_docker_host() -> None:
    assert engine_address({}) == "Docker Engine at unix:///var/run/docker.sock"
    assert engine_address({"DOCKER_HOST": "tcp://10.0.0.2:2376"}) == (
        "Docker Engine at tcp://10.0.0.2:2376"
    )
