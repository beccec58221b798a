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
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from typing import Any

import docker
import docker.errors

from pipelines.errors import ExternalError
from runners.discovery.etcd_gateway import EtcdGateway, b64, prefix_range, text
from runners.discovery.registrar import instance_key

AGENTS_PREFIX = "/shipway/agents/"
ROUTES_PREFIX = "/shipway/routes/"
AGENT_ALIVE_SECONDS = 30.0  # agents report every 10 s
AGENTS_TIMEOUT = 10.0
REGISTER_TIMEOUT = 20.0


def bridge_gateway(client: docker.DockerClient) -> str:
    """The host's address on Docker's default bridge, as containers reach it: the
    network's gateway, or the first address of its subnet when none is named."""
    config = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    if config.get("Gateway"):
        return str(config["Gateway"])
    return str(ipaddress.ip_network(config["Subnet"])[1])


class EtcdTraffic:
    def __init__(
        self,
        etcd_url: str,
        docker_client: docker.DockerClient,
        discovery: dict[str, Any],
        advertise_ip: str,
    ) -> None:
        self.etcd = EtcdGateway(etcd_url)
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
        self.etcd.post(
            "/kv/put",
            {"key": b64(ROUTES_PREFIX + self.service), "value": b64(json.dumps(self.route))},
        )

    def take_out(self, instance: str, say: Callable[[str], None]) -> None:
        key = self.key(instance)
        answer = self.etcd.post("/kv/deleterange", {"key": b64(key)})
        self._stop_registrar(instance)
        if int(answer.get("deleted", 0)) == 0:
            say(f"out of traffic: {key} was not registered")
            return
        revision = int(answer["header"]["revision"])
        say(f"out of traffic: deleted {key} (etcd revision {revision})")
        say(self._wait_for_agents(revision))
        time.sleep(self.drain)
        say(f"drained for {self.drain:g}s")

    def put_back(self, instance: str, say: Callable[[str], None]) -> None:
        key = self.key(instance)
        deadline = time.monotonic() + REGISTER_TIMEOUT
        while True:
            found = self.etcd.post("/kv/range", {"key": b64(key)}).get("kvs") or []
            if found:
                revision = int(found[0]["mod_revision"])
                break
            if time.monotonic() >= deadline:
                raise ExternalError(
                    f"{instance} did not register as {key} in etcd within {REGISTER_TIMEOUT:g}s"
                )
            time.sleep(0.1)
        say(f"registered as {key} (etcd revision {revision})")
        say(self._wait_for_agents(revision))
        say("back in traffic")

    def _stop_registrar(self, instance: str) -> None:
        try:
            self.docker.containers.get(f"{instance}-registrar").stop(timeout=5)
        except docker.errors.NotFound:
            return

    def _wait_for_agents(self, revision: int) -> str:
        """Wait until every live agent reached ``revision``; what happened, in words."""
        deadline = time.monotonic() + AGENTS_TIMEOUT
        while True:
            agents = self._agents()
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

    def _agents(self) -> dict[str, int]:
        answer = self.etcd.post("/kv/range", prefix_range(AGENTS_PREFIX))
        agents = {}
        for item in answer.get("kvs") or []:
            name = text(item["key"])[len(AGENTS_PREFIX) :]
            try:
                report = json.loads(text(item.get("value", "")))
                if time.time() - float(report["at"]) <= AGENT_ALIVE_SECONDS:
                    agents[name] = int(report["revision"])
            except (ValueError, KeyError, TypeError):
                continue
        return agents
