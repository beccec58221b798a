"""Releases on the Docker Engine the runner talks to, through Debian's docker-compose.

Implements ``pipelines.ports.Deployer``. Each release's compose file (rendered and
stored by the server) is written to a folder per application and environment, and
every instance is one service of it. Replacing an instance, each step logged with
its time (L3):

    the image present, pulled if need be -> out of traffic -> PreStop (docker exec
    into the old container) -> stop and remove the old container -> start the new
    one -> PostStart (docker exec) -> health check until healthy, or timed out ->
    back in traffic

The image is pulled before the old instance is touched: a registry that is away
(waited out for the runner's outage patience, see runners.registry) or that refuses
the image leaves the old instance serving, and the instance fails naming why.

The traffic steps are a ``pipelines.ports.Traffic``: ``NoTraffic`` until service
discovery fills them.

An instance killed over its memory limit is reported as such.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml

from pipelines.errors import ExternalError, NotFound, ShipwayError
from pipelines.ports import Traffic
from pipelines.release import InstanceOutcome
from runners.outages import DEFAULT_OUTAGE_PATIENCE_SECONDS
from runners.registry import registry_of, waiting_out_outages

COMPOSE_FILE = "docker-compose.yml"
HOOK_TIMEOUT_SECONDS = 60  # when the configuration names none


def _write(path: Path, content: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(content)
    os.replace(temporary, path)


class NoTraffic:
    """No load balancer knows the instances yet: there is no traffic to move."""

    def take_out(self, instance: str, say: Callable[[str], None]) -> None:
        say("out of traffic: nothing to do (no service discovery configured)")

    def put_back(self, instance: str, say: Callable[[str], None]) -> None:
        say("back in traffic: nothing to do (no service discovery configured)")


class PullFailed(ExternalError):
    """The engine reported an error in the middle of a pull."""


def compose_project(project: str, environment: str) -> str:
    return re.sub(r"[^a-z0-9]", "", f"shipway{project}{environment}".lower())


class DockerEngineDeployer:
    def __init__(
        self,
        client: docker.DockerClient,
        root: Path,
        traffic: Traffic | None = None,
        compose_env: dict[str, str] | None = None,
        outage_patience: float = DEFAULT_OUTAGE_PATIENCE_SECONDS,
    ) -> None:
        self.client = client
        self.root = root
        self.traffic = traffic or NoTraffic()
        # What compose interpolates into the file: the registrar's etcd and address.
        self.compose_env = compose_env or {}
        self.outage_patience = outage_patience  # how long a pull waits out the registry
        self._images: dict[str, str] = {}  # each instance's image, from the compose file

    def _folder(self, project: str, environment: str) -> Path:
        return self.root / f"{project}-{environment}"

    def prepare(self, project: str, environment: str, compose: str, files: dict[str, str]) -> None:
        folder = self._folder(project, environment)
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder / COMPOSE_FILE, compose)
        services = (yaml.safe_load(compose) or {}).get("services") or {}
        self._images = {
            str(name): str(service["image"]).replace("$$", "$")
            for name, service in services.items()
            if isinstance(service, dict) and service.get("image")
        }
        # Mounted files are named by their content: those of running instances stay
        # as they are, and a new file is renamed into place, never written over.
        for name, content in files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text() != content:
                _write(path, content)

    def logs(self, name: str, tail: int) -> str:
        container = self._container(name)
        if container is None:
            raise NotFound(f"instance {name} has no container on this host")
        output: bytes = container.logs(stdout=True, stderr=True, tail=tail, timestamps=True)
        return output.decode(errors="replace")

    def replace(
        self,
        project: str,
        environment: str,
        name: str,
        config: dict[str, Any],
        on_step: Callable[[InstanceOutcome], None],
    ) -> InstanceOutcome:
        outcome = InstanceOutcome(name, healthy=False)

        def step(text: str) -> None:
            stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
            outcome.log.append(f"{stamp} {text}")
            on_step(outcome)

        folder = self._folder(project, environment)
        hooks = config.get("hooks") or {}
        # An instance that registers itself has a registrar sidecar in its network.
        services = [name, f"{name}-registrar"] if config.get("discovery") else [name]
        image = self._images.get(name)
        try:
            if image is not None:
                self._ensure_image(image, step)
        except (ShipwayError, docker.errors.APIError) as exc:
            detail = exc.explanation if isinstance(exc, docker.errors.APIError) else exc
            outcome.reason = f"{name}: could not pull {image}: {detail}"
            step(f"FAILED: {outcome.reason}")
            return outcome
        old = self._container(name)
        try:
            if old is not None and old.status == "running":
                self.traffic.take_out(name, step)
        except ShipwayError as exc:
            outcome.reason = f"{name}: could not take it out of traffic: {exc}"
            step(f"FAILED: {outcome.reason}")
            return outcome
        if old is not None and old.status == "running" and hooks.get("pre_stop"):
            step(f"PreStop: {self._hook(old, hooks['pre_stop'], hooks)}")
        compose = [
            "docker-compose",
            "-p",
            compose_project(project, environment),
            "-f",
            COMPOSE_FILE,
        ]
        if old is not None:
            self._run(folder, [*compose, "rm", "-s", "-f", *services])
            step("stopped and removed the old container")
        orphan = None if config.get("discovery") else self._container(f"{name}-registrar")
        if orphan is not None:  # left by a release whose configuration had discovery
            orphan.remove(force=True)
            step("removed the registrar of an earlier configuration")
        else:
            step("no old container")
        self._run(folder, [*compose, "up", "-d", "--no-deps", *services])
        step("started the new container")
        new = self._container(name)
        if new is None:
            outcome.reason = "the new container did not start"
            step(f"FAILED: {outcome.reason}")
            return outcome
        if hooks.get("post_start"):
            step(f"PostStart: {self._hook(new, hooks['post_start'], hooks)}")
        healthy, detail = self._wait_healthy(name, config.get("health"))
        step(f"health check: {detail}")
        if not healthy:
            outcome.reason = f"{name}: {detail}"
            return outcome
        try:
            self.traffic.put_back(name, step)
        except ShipwayError as exc:
            outcome.reason = f"{name}: {exc}"
            step(f"FAILED: {exc}")
            return outcome
        outcome.healthy = True
        on_step(outcome)
        return outcome

    def _ensure_image(self, image: str, step: Callable[[str], None]) -> None:
        """Pull ``image`` unless the engine has it, waiting out its registry's outages."""
        try:
            self.client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        step(f"pulling {image}")
        registry = registry_of(image)
        if registry is None:
            self._pull(image)
        else:
            waiting_out_outages(
                registry,
                lambda: self._pull(image),
                (PullFailed, docker.errors.APIError),
                step,
                self.outage_patience,
            )
        step(f"pulled {image}")

    def _pull(self, image: str) -> None:
        # A digest reference (repository@sha256:...) is split by docker-py itself.
        for line in self.client.api.pull(image, stream=True, decode=True):
            if "error" in line:
                raise PullFailed(str(line["error"]))

    def _container(self, name: str) -> Any:
        try:
            return self.client.containers.get(name)
        except docker.errors.NotFound:
            return None

    def _hook(self, container: Any, command: str, hooks: dict[str, Any]) -> str:
        """Run a hook in the container for at most its timeout: a hook that never
        ends must not hold the release (the runner keeps beating, so nothing else
        would notice). Docker has no exec timeout: the call waits in a thread, and a
        hook past its time is left to the container's stop."""
        timeout = int(hooks.get("timeout", HOOK_TIMEOUT_SECONDS))
        done: list[str] = []

        def run() -> None:
            try:
                result = container.exec_run(["/bin/sh", "-c", command])
            except docker.errors.APIError as exc:
                done.append(f"could not run: {exc.explanation}")
                return
            output = (result.output or b"").decode(errors="replace").strip()[-200:]
            done.append(f"exit {result.exit_code}" + (f": {output}" if output else ""))

        waiter = threading.Thread(target=run, name=f"hook in {container.name}", daemon=True)
        waiter.start()
        waiter.join(timeout)
        return done[0] if done else f"still running after {timeout}s: going on without it"

    def _run(self, folder: Path, argv: list[str]) -> None:
        result = subprocess.run(
            argv,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, **self.compose_env},
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[4:])}: {result.stderr.strip()[-500:]}")

    def _wait_healthy(self, name: str, health: dict[str, Any] | None) -> tuple[bool, str]:
        """Healthy, or why not: unhealthy, timed out, exited, killed over its memory."""
        if health:
            budget = (
                int(health.get("start_period", 0))
                + (int(health.get("interval", 5)) + int(health.get("timeout", 3)))
                * (int(health.get("retries", 3)) + 1)
                + 5
            )
        else:
            budget = 3  # no check: running for a few seconds counts as up
        deadline = time.monotonic() + budget
        started = time.monotonic()
        while True:
            container = self._container(name)
            if container is None:
                return False, "the container is gone"
            state = container.attrs["State"]
            if state.get("OOMKilled"):
                return False, "killed: over its memory limit"
            if state.get("Status") in ("exited", "dead"):
                return False, f"exited with code {state.get('ExitCode')}"
            status = (state.get("Health") or {}).get("Status")
            if health and status == "healthy":
                return True, f"healthy after {time.monotonic() - started:.1f}s"
            if health and status == "unhealthy":
                return False, "unhealthy"
            if not health and time.monotonic() >= deadline:
                return True, "running (no health check configured)"
            if time.monotonic() >= deadline:
                return False, f"not healthy within {budget}s"
            time.sleep(0.5)
