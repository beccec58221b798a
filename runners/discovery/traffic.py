"""The traffic steps of a release (L3) through etcd: implements
``pipelines.ports.Traffic`` for instances that register themselves (S1).

Out of traffic, before PreStop and stop:

1. delete the instance's key (the revision of that delete is what nginx must reach),
   then stop its registrar sidecar so it does not register again;
2. wait until every live confd agent reports (``/shipway/agents/<name>``) that the
   configuration nginx runs reflects that revision: nginx no longer sends the
   instance new requests;
3. wait ``drain`` seconds for the requests in flight to finish.

Back in traffic, after the health check: the new instance's registrar registers it
once its own check passes; wait for the key, then for every live agent to reach its
revision. An instance that does not register in time fails the step.

etcd away (it does not answer at all) is waited out, for at most ``patience``
seconds (the runner's SHIPWAY_OUTAGE_PATIENCE): the step says so once in the
instance's log (``etcd at URL unreachable since ..., waiting``), tries again every
0.1 s doubling to 2 s, says when etcd answers again and goes on where it was; the
time etcd was away counts neither against an instance's registration nor against
the agents' reports, since no agent can report meanwhile. An instance taken out of
traffic whose step then fails gets its registrar back, so that it registers again
instead of running unrouted.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import docker
import docker.errors

from pipelines.errors import ExternalError
from runners.discovery.etcd_gateway import (
    EtcdGateway,
    EtcdUnreachable,
    b64,
    prefix_range,
    text,
)
from runners.discovery.registrar import instance_key
from runners.outages import DEFAULT_OUTAGE_PATIENCE_SECONDS

log = logging.getLogger(__name__)

AGENTS_PREFIX = "/shipway/agents/"
ROUTES_PREFIX = "/shipway/routes/"
AGENT_ALIVE_SECONDS = 30.0  # agents report every 10 s
AGENTS_TIMEOUT = 10.0
REGISTER_TIMEOUT = 20.0
RETRY_FIRST = 0.1
RETRY_CAP = 2.0


def bridge_gateway(client: docker.DockerClient) -> str:
    """The host's address on Docker's default bridge, as containers reach it: the
    network's gateway, or the first address of its subnet when none is named."""
    config = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    if config.get("Gateway"):
        return str(config["Gateway"])
    return str(ipaddress.ip_network(config["Subnet"])[1])


def silence(since: float, now: float, outages: list[tuple[float, float]]) -> float:
    """Seconds from ``since`` to ``now`` outside the ``(began, ended)`` outages: how
    long an agent that last reported at ``since`` kept quiet while it could speak."""
    away = sum(max(0.0, min(ended, now) - max(began, since)) for began, ended in outages)
    return now - since - away


class EtcdTraffic:
    def __init__(
        self,
        etcd_url: str,
        docker_client: docker.DockerClient,
        discovery: dict[str, Any],
        advertise_ip: str,
        patience: float = DEFAULT_OUTAGE_PATIENCE_SECONDS,
    ) -> None:
        self.etcd = EtcdGateway(etcd_url)
        self.patience = patience
        # When etcd was away, as this object found it (wall clock: began, ended).
        self.outages: list[tuple[float, float]] = []
        self.docker = docker_client
        self.service = str(discovery["service"])
        self.ports = {str(name): int(port) for name, port in discovery["ports"].items()}
        self.drain = float(discovery.get("drain", 2))
        self.route = {"hosts": discovery.get("hosts") or [], "path": discovery.get("path")}
        self.advertise_ip = advertise_ip

    def key(self, instance: str) -> str:
        return instance_key(self.service, f"{self.advertise_ip}:{self.ports[instance]}")

    def publish_route(self) -> None:
        """The service's host names and path, for the agents' nginx template."""
        if not self.route["hosts"] and not self.route["path"]:
            return
        self._post(
            "/kv/put",
            {"key": b64(ROUTES_PREFIX + self.service), "value": b64(json.dumps(self.route))},
            lambda line: log.warning("%s: %s", self.service, line),
        )

    def take_out(self, instance: str, say: Callable[[str], None]) -> None:
        key = self.key(instance)
        answer = self._post("/kv/deleterange", {"key": b64(key)}, say)
        registrar = self._stop_registrar(instance)
        if int(answer.get("deleted", 0)) == 0:
            say(f"out of traffic: {key} was not registered")
            return
        revision = int(answer["header"]["revision"])
        say(f"out of traffic: deleted {key} (etcd revision {revision})")
        try:
            say(self._wait_for_agents(revision, say))
        except ExternalError:
            if registrar is not None:  # still running: let it register the instance again
                registrar.start()
                say("its registrar started again: it registers the instance once etcd answers")
            raise
        time.sleep(self.drain)
        say(f"drained for {self.drain:g}s")

    def put_back(self, instance: str, say: Callable[[str], None]) -> None:
        key = self.key(instance)
        deadline = time.monotonic() + REGISTER_TIMEOUT
        while True:
            waited = len(self.outages)
            found = self._post("/kv/range", {"key": b64(key)}, say).get("kvs") or []
            if found:
                revision = int(found[0]["mod_revision"])
                break
            if len(self.outages) > waited:  # its registrar could not register meanwhile
                deadline = time.monotonic() + REGISTER_TIMEOUT
            if time.monotonic() >= deadline:
                raise ExternalError(
                    f"{instance} did not register as {key} in etcd within {REGISTER_TIMEOUT:g}s"
                )
            time.sleep(0.1)
        say(f"registered as {key} (etcd revision {revision})")
        say(self._wait_for_agents(revision, say))
        say("back in traffic")

    def _post(
        self, path: str, payload: dict[str, Any], say: Callable[[str], None]
    ) -> dict[str, Any]:
        """The gateway's answer, etcd's outages waited out within the patience."""
        began: float | None = None
        pause = RETRY_FIRST
        while True:
            try:
                answer = self.etcd.post(path, payload)
            except EtcdUnreachable as exc:
                if began is None:
                    began = time.time()
                    since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
                    where = f"etcd at {self.etcd.url}"
                    say(f"{where} unreachable since {since} UTC, waiting: {exc.cause}")
                if time.time() - began >= self.patience:
                    self.outages.append((began, time.time()))
                    raise EtcdUnreachable(
                        f"etcd at {self.etcd.url} stayed unreachable for {self.patience:g}s: "
                        f"{exc.cause}",
                        exc.cause,
                    ) from exc
                time.sleep(pause)
                pause = min(pause * 2, RETRY_CAP)
                continue
            if began is not None:
                self.outages.append((began, time.time()))
                say(f"etcd at {self.etcd.url} answers again after {time.time() - began:.0f}s")
            return answer

    def _stop_registrar(self, instance: str) -> Any:
        """Stop the instance's registrar; the container, None when there is none."""
        try:
            registrar = self.docker.containers.get(f"{instance}-registrar")
        except docker.errors.NotFound:
            return None
        registrar.stop(timeout=5)
        return registrar

    def _wait_for_agents(self, revision: int, say: Callable[[str], None]) -> str:
        """Wait until every live agent reached ``revision``; what happened, in words."""
        deadline = time.monotonic() + AGENTS_TIMEOUT
        while True:
            waited = len(self.outages)
            agents = self._agents(say)
            if len(self.outages) > waited:  # no agent could report meanwhile
                deadline = time.monotonic() + AGENTS_TIMEOUT
            if not agents:
                return "no nginx agent reports to etcd: nothing to wait for"
            behind = sorted(name for name, seen in agents.items() if seen < revision)
            if not behind:
                names = ", ".join(sorted(agents))
                return f"nginx has it: {names} at revision {revision} or later"
            if time.monotonic() >= deadline:
                late = ", ".join(behind)
                return f"WARNING: {late} not at revision {revision} after {AGENTS_TIMEOUT:g}s"
            time.sleep(0.02)

    def _agents(self, say: Callable[[str], None]) -> dict[str, int]:
        """The live agents and the revision each reported. An agent is live when it
        reported within AGENT_ALIVE_SECONDS, the time etcd was away not counted."""
        answer = self._post("/kv/range", prefix_range(AGENTS_PREFIX), say)
        now = time.time()
        agents = {}
        for item in answer.get("kvs") or []:
            name = text(item["key"])[len(AGENTS_PREFIX) :]
            try:
                report = json.loads(text(item.get("value", "")))
                if silence(float(report["at"]), now, self.outages) <= AGENT_ALIVE_SECONDS:
                    agents[name] = int(report["revision"])
            except (ValueError, KeyError, TypeError):
                continue
        return agents
