"""The confd agent against a real etcd and a real nginx: instances registered in
etcd become nginx upstreams, and every failure (etcd
away, a configuration nginx refuses, a service emptied) keeps nginx serving."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from confd.agent import Agent
from confd.cli import main
from confd.etcd_view import EtcdView
from confd.resources import load_resources
from confd.status import StatusBoard
from tests.support.discovery import make_confdir
from tests.support.etcd import EtcdServer
from tests.support.nginx import Backend, NginxServer, running_backends
from tests.support.services import free_port, wait_until

SERVICE = "hello_STAGING"
# Bound of every wait for nginx to serve what etcd holds: only a hang exceeds it. How
# fast it happens is bench/zero_downtime.py's figure, not a test's.
ROUTED = 30.0
ROUTE = json.dumps({"path": "/hello/"})
RAW_LINES = '{% for key, value in kv.items() if key.startswith("/raw/") %}{{ value }}\n{% endfor %}'


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    with running_backends("one", "two") as started:
        yield started


@contextmanager
def running_agent(
    confdir: Path, etcd: EtcdServer, grace: float = 10.0, status_file: Path | None = None
) -> Iterator[Agent]:
    view = EtcdView(etcd.url)
    agent = Agent(load_resources(confdir), view, empty_grace=grace, status=StatusBoard(status_file))
    failures: list[BaseException] = []

    def run() -> None:
        try:
            agent.run()
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, name="confd agent", daemon=True)
    thread.start()
    try:
        yield agent
    finally:
        agent.stop()
        thread.join(10)
        view.close()
        assert not thread.is_alive(), "the agent did not stop"
        if failures:
            raise failures[0]


def register(etcd: EtcdServer, backend: Backend, service: str = SERVICE) -> None:
    etcd.client().put(f"/{service}/{backend.instance_id}", backend.address)


def deregister(etcd: EtcdServer, backend: Backend, service: str = SERVICE) -> None:
    etcd.client().delete(f"/{service}/{backend.instance_id}")


def answers(nginx: NginxServer, count: int, path: str = "/hello/") -> list[str]:
    """What ``count`` requests got: a backend's name, a status code, or "unreachable"
    (before nginx listens on the rendered port)."""
    replies = []
    for _ in range(count):
        try:
            response = nginx.get(path)
        except httpx.TransportError:
            replies.append("unreachable")
            continue
        replies.append(response.text if response.status_code == 200 else str(response.status_code))
    return replies


def routed_to(nginx: NginxServer, names: set[str], path: str = "/hello/") -> bool:
    return set(answers(nginx, 2 * len(names), path)) == names


def status(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_instances_added_and_removed_are_routed(
    tmp_path: Path, etcd: EtcdServer, nginx: NginxServer, backends: list[Backend]
) -> None:
    one, two = backends
    etcd.client().put(f"/shipway/routes/{SERVICE}", ROUTE)
    register(etcd, one)
    with running_agent(make_confdir(tmp_path / "confd", nginx), etcd):
        wait_until(lambda: routed_to(nginx, {"one"}), ROUTED, "first instance routed")
        register(etcd, two)
        # How fast is bench/zero_downtime.py's figure; here only that it happens.
        wait_until(lambda: answers(nginx, 1) == ["two"], ROUTED, "second instance routed", 0.01)
        # Round robin alternates, once the workers of the configuration before the
        # reload have stopped taking connections (nginx reloads gracefully).
        wait_until(
            lambda: answers(nginx, 6) in (["one", "two"] * 3, ["two", "one"] * 3),
            ROUTED,
            "round robin between both instances",
            0.05,
        )
        assert nginx.include.stat().st_mode & 0o777 == 0o640

        deregister(etcd, one)
        wait_until(lambda: answers(nginx, 6) == ["two"] * 6, ROUTED, "first instance unrouted")


def test_weights_are_rendered(
    tmp_path: Path, etcd: EtcdServer, nginx: NginxServer, backends: list[Backend]
) -> None:
    one, two = backends
    client = etcd.client()
    client.put(f"/shipway/routes/{SERVICE}", ROUTE)
    register(etcd, one)
    register(etcd, two)
    with running_agent(make_confdir(tmp_path / "confd", nginx), etcd):
        wait_until(lambda: routed_to(nginx, {"one", "two"}), ROUTED, "both routed")
        client.put(f"/shipway/weights/{SERVICE}/{one.instance_id}", "3")
        wait_until(lambda: "weight=3" in nginx.include.read_text(), ROUTED, "weight 3 rendered")
        wait_until(
            lambda: Counter(answers(nginx, 8)) == {"one": 6, "two": 2}, ROUTED, "3:1 split", 0.05
        )

        client.put(f"/shipway/weights/{SERVICE}/{one.instance_id}", "0")
        wait_until(lambda: " down " in nginx.include.read_text(), ROUTED, "weight 0 rendered down")
        wait_until(lambda: answers(nginx, 6) == ["two"] * 6, ROUTED, "drained instance unused")

        # Both at 0 would drop the service: both get weight 1 instead.
        client.put(f"/shipway/weights/{SERVICE}/{two.instance_id}", "0")
        wait_until(lambda: " down " not in nginx.include.read_text(), ROUTED, "all-zero rule")
        wait_until(lambda: routed_to(nginx, {"one", "two"}), ROUTED, "both routed again")


def test_etcd_away_keeps_the_last_config_and_resyncs(
    tmp_path: Path, etcd: EtcdServer, nginx: NginxServer, backends: list[Backend]
) -> None:
    one, two = backends
    status_file = tmp_path / "status.json"
    etcd.client().put(f"/shipway/routes/{SERVICE}", ROUTE)
    register(etcd, one)
    register(etcd, two)
    confdir = make_confdir(tmp_path / "confd", nginx)
    with running_agent(confdir, etcd, status_file=status_file):
        wait_until(lambda: routed_to(nginx, {"one", "two"}), ROUTED, "both routed")
        rendered = nginx.include.read_text()
        assert status(status_file)["etcd_connected"] is True

        etcd.stop()
        wait_until(lambda: not status(status_file)["etcd_connected"], ROUTED, "status disconnected")
        assert status(status_file)["healthy"] is False
        assert "etcd" in status(status_file)["last_error"]["message"]
        assert routed_to(nginx, {"one", "two"})
        assert nginx.include.read_text() == rendered

        # A change the agent cannot see: made on the same data through another port.
        away = EtcdServer(etcd.root, client_port=free_port(), peer_port=etcd.peer_port)
        away.start()
        deregister(away, one)
        away.stop()
        etcd.start()
        wait_until(lambda: routed_to(nginx, {"two"}), ROUTED, "resync saw the deletion")
        wait_until(lambda: status(status_file)["etcd_connected"], ROUTED, "status connected")

        # And the watch is live again after the resync.
        register(etcd, one)
        wait_until(lambda: routed_to(nginx, {"one", "two"}), ROUTED, "watch after resync")
        assert status(status_file)["healthy"] is True


def test_a_config_nginx_refuses_leaves_the_previous_file(
    tmp_path: Path, etcd: EtcdServer, nginx: NginxServer, backends: list[Backend]
) -> None:
    one, two = backends
    status_file = tmp_path / "status.json"
    client = etcd.client()
    client.put(f"/shipway/routes/{SERVICE}", ROUTE)
    register(etcd, one)
    confdir = make_confdir(tmp_path / "confd", nginx, extra_template=RAW_LINES)
    with running_agent(confdir, etcd, status_file=status_file):
        wait_until(lambda: routed_to(nginx, {"one"}), ROUTED, "first instance routed")
        good = nginx.include.read_text()

        # One change that nginx -t refuses, in the same burst as a good one.
        client.put("/raw/broken", "no_such_directive on;")
        register(etcd, two)
        wait_until(lambda: status(status_file)["failing"] != {}, ROUTED, "the failure recorded")
        report = status(status_file)
        assert "check_cmd" in report["last_error"]["message"]
        assert "no_such_directive" in report["last_error"]["message"]
        assert report["healthy"] is False
        assert nginx.include.read_text() == good
        assert list(nginx.include.parent.iterdir()) == [nginx.include]  # no temp left
        assert answers(nginx, 4) == ["one"] * 4

        client.delete("/raw/broken")
        wait_until(lambda: routed_to(nginx, {"one", "two"}), ROUTED, "recovered")
        report = status(status_file)
        assert report["healthy"] is True
        assert report["failing"] == {}
        assert "no_such_directive" in report["last_error"]["message"]  # kept as history


def test_an_emptied_service_is_served_during_the_grace_then_503(
    tmp_path: Path, etcd: EtcdServer, nginx: NginxServer, backends: list[Backend]
) -> None:
    one, _ = backends
    grace = 8.0
    status_file = tmp_path / "status.json"
    etcd.client().put(f"/shipway/routes/{SERVICE}", ROUTE)
    register(etcd, one)
    confdir = make_confdir(tmp_path / "confd", nginx)
    with running_agent(confdir, etcd, grace=grace, status_file=status_file):
        wait_until(lambda: routed_to(nginx, {"one"}), ROUTED, "instance routed")
        deregister(etcd, one)
        emptied = time.monotonic()
        # The agent has seen the service emptied (its status counts no server)...
        wait_until(lambda: status(status_file)["servers"] == 0, ROUTED, "the deletion seen")
        seen = time.monotonic() - emptied
        # A bound only a hang exceeds, leaving time for the checks within the grace.
        assert seen < grace - 3, f"the agent took {seen:.1f}s to see a deletion"
        # ...and nginx still serves the last instance, until the grace ends.
        assert one.address in nginx.include.read_text()
        assert answers(nginx, 3) == ["one"] * 3
        # No etcd change from here: the agent's own timer ends the grace.
        wait_until(lambda: answers(nginx, 1) == ["503"], ROUTED, "503 after the grace")
        assert time.monotonic() - emptied >= grace
        assert "upstream" not in nginx.include.read_text()


def test_onetime(tmp_path: Path, etcd: EtcdServer, nginx: NginxServer) -> None:
    confdir = make_confdir(tmp_path / "confd", nginx)
    etcd.client().put(f"/shipway/routes/{SERVICE}", ROUTE)
    etcd.client().put(f"/{SERVICE}/127.0.0.1-9", "127.0.0.1:9")

    assert main(["--etcd", etcd.url, "--confdir", str(confdir), "--onetime"]) == 0
    assert "server 127.0.0.1:9 weight=1" in nginx.include.read_text()

    etcd.stop()
    assert main(["--etcd", etcd.url, "--confdir", str(confdir), "--onetime"]) == 3

    shutil.rmtree(confdir / "templates")
    assert main(["--etcd", etcd.url, "--confdir", str(confdir), "--onetime"]) == 2
