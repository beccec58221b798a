"""Releases under load, and how fast nginx follows etcd: Shipway's watching agent
against a 5-second polling agent (seed 002's setup), in the same run.

Starts its own Redis, etcd (listening on Docker's bridge too, for the registrars),
nginx, Shipway server and runner (real processes, free ports). For each agent:

- steady load through nginx (two clients, a fresh connection per request) during a
  4-instance, 2-batch release of instances that register themselves; it prints the
  failed requests (goal: 0) and how long the release took;
- the latency from an etcd change to nginx serving it: a key moved to another
  backend, then requests until nginx answers from it; p50 and p99 (goal: p99 under
  0.5 s for the watching agent).

The polling agent reads etcd, renders, checks and reloads every 5 s, with the same
template, and reports nothing: the release cannot wait for it (as in the seed).

    .venv/bin/python -m bench.zero_downtime [--samples 40] [--poll-samples 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import httpx

from confd.agent import Agent
from confd.etcd_view import EtcdView
from confd.resources import load_resources
from runners.base_images import ensure_busybox
from runners.discovery.traffic import bridge_gateway
from runners.tool_images import ensure_registrar
from tests.e2e.conftest import remove_compose_networks
from tests.support.discovery import Load, make_confdir, registering_web
from tests.support.etcd import EtcdServer, running_etcd
from tests.support.git import Repository
from tests.support.nginx import NginxServer, running_backends, running_nginx
from tests.support.services import Deployment, RedisServer

POLL_SECONDS = 5.0
LATENCY_PATH = "/latency/"


class PollingAgent:
    """The seed's agent: everything read and rendered every ``POLL_SECONDS``."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.agent.run_once()
            except Exception as exc:  # a poller keeps polling, whatever failed
                print(f"  polling agent: {exc}")
            self._stop.wait(POLL_SECONDS)

    def stop(self) -> None:
        self._stop.set()


@contextmanager
def running_agent(kind: str, confdir: Path, etcd: EtcdServer) -> Iterator[None]:
    resources = load_resources(confdir)
    agent: Agent | PollingAgent
    if kind == "watch":
        agent = Agent(resources, EtcdView(etcd.url), name=f"bench-{uuid.uuid4().hex[:6]}")
    else:
        agent = PollingAgent(Agent(resources, EtcdView(etcd.url)))
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        agent.stop()
        thread.join(10)
        # A stopped watching agent's report must not make the next release wait.
        etcd.client().delete_prefix("/shipway/agents/")


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def release(deployment: Deployment, app: str, order: dict[str, Any]) -> tuple[float, str]:
    """The seconds a release took, and the steps of its first instance."""
    started = time.perf_counter()
    with deployment.api() as api:
        made = api.post(f"/api/projects/{app}/environments/staging/releases", json=order).json()
        while True:
            shown = api.get(f"/api/releases/{made['id']}").json()
            if shown["status"] == "success":
                return time.perf_counter() - started, shown["instances"][0]["log"]
            if shown["status"] != "running":
                raise RuntimeError(f"release {made['id']} {shown['status']}: {shown['reason']}")
            time.sleep(0.2)


def release_under_load(
    deployment: Deployment,
    etcd: EtcdServer,
    nginx: NginxServer,
    repository: Repository,
    image: str,
) -> tuple[int, int, float]:
    """Failed and answered requests during a 4-instance 2-batch release, its time."""
    app = f"zd{uuid.uuid4().hex[:6]}"
    try:
        deployment.add_project(app, repository.bare, f"b/{app}", "s" * 20)
        config = f"/api/projects/{app}/environments/staging/config"
        with deployment.api() as api:
            api.put(config, json=registering_web("one\n", instances=4))
        release(deployment, app, {"image": image, "batches": 1, "pause_mode": "never"})
        wait_for(lambda: _answer(nginx, "/") == "one\n", 15, "nginx routing to the application")
        with Load(nginx) as load:
            time.sleep(1)
            with deployment.api() as api:
                api.put(config, json=registering_web("two\n", instances=4))
            seconds, steps = release(
                deployment, app, {"image": image, "batches": 2, "pause_mode": "never"}
            )
            time.sleep(1)
        print(f"  steps of {app}-staging-1:")
        print("\n".join(f"    {line}" for line in steps.splitlines()))
    finally:
        for container in docker.from_env().containers.list(
            all=True, filters={"label": f"io.shipway.project={app}"}
        ):
            container.remove(force=True)
        remove_compose_networks(docker.from_env(), app)
        # Its registrations (gone with their lease anyway) and route: the next run's own.
        etcd.client().delete_prefix(f"/{app}_STAGING/")
        etcd.client().delete(f"/shipway/routes/{app}_STAGING")
    return len(load.failures), sum(load.answers.values()), seconds


def _answer(nginx: NginxServer, path: str) -> str | None:
    try:
        return nginx.get(path).text
    except httpx.HTTPError:
        return None


def latencies(etcd: EtcdServer, nginx: NginxServer, samples: int) -> list[float]:
    """Seconds from an etcd write moving a service to another backend until nginx
    answers from that backend."""
    client = etcd.client()
    client.put("/shipway/routes/latency_STAGING", '{"path": "/latency/"}')
    found = []
    with running_backends(*(f"backend-{i}" for i in range(2))) as backends:
        current = backends[0]
        client.put(f"/latency_STAGING/{current.instance_id}", current.address)
        wait_for(lambda: _answer(nginx, LATENCY_PATH) == current.name, 15, "first backend")
        for n in range(samples):
            following = backends[(n + 1) % 2]
            started = time.perf_counter()
            client.delete(f"/latency_STAGING/{current.instance_id}")
            client.put(f"/latency_STAGING/{following.instance_id}", following.address)
            wanted = following.name
            wait_for(
                lambda: _answer(nginx, LATENCY_PATH) == wanted,  # noqa: B023 - waited for here
                POLL_SECONDS * 3,
                "nginx following etcd",
            )
            found.append(time.perf_counter() - started)
            current = following
    client.delete_prefix("/latency_STAGING/")
    client.delete("/shipway/routes/latency_STAGING")
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=40, help="latency samples, watching")
    parser.add_argument("--poll-samples", type=int, default=8, help="latency samples, polling")
    args = parser.parse_args()
    client = docker.from_env()
    image = ensure_busybox(client)
    ensure_registrar(client)
    with tempfile.TemporaryDirectory(prefix="shipway-bench-") as work:
        root = Path(work)
        redis = RedisServer.start(root)
        (root / "site").mkdir()
        try:
            with (
                running_etcd(root / "etcd", also_on=bridge_gateway(client)) as etcd,
                running_nginx(root / "nginx", include=root / "site" / "upstreams.conf") as nginx,
            ):
                deployment = Deployment(root=root, redis_url=redis.url)
                deployment.extra_env["SHIPWAY_ETCD_URL"] = etcd.url
                server = deployment.start_server()
                runner = deployment.start_runner("bench-runner", "staging")
                repository = Repository(root / "repo")
                confdir = make_confdir(root / "confd", nginx)
                results = {}
                try:
                    for kind, samples in (("watch", args.samples), ("poll", args.poll_samples)):
                        with running_agent(kind, confdir, etcd):
                            print(f"{kind}:")
                            failed, total, seconds = release_under_load(
                                deployment, etcd, nginx, repository, image
                            )
                            found = latencies(etcd, nginx, samples)
                        results[kind] = (failed, total, seconds, found)
                finally:
                    runner.stop()
                    server.stop()
        finally:
            redis.stop()
    print("agent        failed/requests  release  etcd->nginx p50   p99   (samples)")
    for kind, (failed, total, seconds, found) in results.items():
        name = "watch (S2)" if kind == "watch" else "poll 5 s"
        print(
            f"{name:12} {failed:>6}/{total:<8} {seconds:6.1f}s  "
            f"{statistics.median(found):10.3f}s {percentile(found, 0.99):6.3f}s  ({len(found)})"
        )
    watch, poll = results["watch"][3], results["poll"][3]
    print(
        f"p50 ratio watch/poll: {statistics.median(watch) / statistics.median(poll):.3f}; "
        f"goals: 0 failed requests, watch p99 under 0.5 s "
        f"({'met' if percentile(watch, 0.99) < 0.5 and results['watch'][0] == 0 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
