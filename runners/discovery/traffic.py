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

import base64
import ipaddress
import json
import time
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import Etcd3Exception

from pipelines.errors import ExternalError
from runners.discovery.registrar import etcd_client, instance_key

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


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class EtcdTraffic:
    def __init__(
        self,
        etcd_url: str,
        docker_client: docker.DockerClient,
        discovery: dict[str, Any],
        advertise_ip: str,
        client: Etcd3Client | None = None,
    ) -> None:
        self.etcd_url = etcd_url
        self.client = client or etcd_client(etcd_url)
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
            {"key": _b64(ROUTES_PREFIX + self.service), "value": _b64(json.dumps(self.route))},
        )

    def take_out(self, instance: str, say: Callable[[str], None]) -> None:
        key = self.key(instance)
        answer = self._post("/kv/deleterange", {"key": _b64(key)})
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
            found = self._post("/kv/range", {"key": _b64(key)}).get("kvs") or []
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
        answer = self._post(
            "/kv/range", {"key": _b64(AGENTS_PREFIX), "range_end": _b64(_prefix_end(AGENTS_PREFIX))}
        )
        agents = {}
        for item in answer.get("kvs") or []:
            name = base64.b64decode(item["key"]).decode()[len(AGENTS_PREFIX) :]
            try:
                report = json.loads(base64.b64decode(item.get("value", "")))
                if time.time() - float(report["at"]) <= AGENT_ALIVE_SECONDS:
                    agents[name] = int(report["revision"])
            except (ValueError, KeyError, TypeError):
                continue
        return agents

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = self.client.post(self.client.get_url(path), json=payload)
        except Etcd3Exception as exc:
            raise ExternalError(f"etcd at {self.etcd_url}: {exc.detail_text or exc}") from exc
        return answer
