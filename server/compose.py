"""Compose files rendered per application and environment (D3) from the Jinja2
templates in ``templates/compose/``, and checked by a real compose parser.

A render is pure apart from the template files: the caller passes the host ports
already allocated (D4). ``check`` runs Debian's ``docker-compose config -q`` on the
result, so a file Shipway stores is one compose accepts.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from pipelines.deploy_config import AppType, DeployConfig
from pipelines.errors import ExternalError, InvalidInput

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "compose"
TEMPLATE = "app.yml.j2"
COMPOSE_FILE = "docker-compose.yml"
REGISTRAR_IMAGE = "shipway/registrar:1"  # built by runners.tool_images


@dataclass(frozen=True)
class RenderedCompose:
    """The compose file and the text files it mounts, by path relative to it."""

    compose: str
    files: dict[str, str]


def instance_name(app: str, environment: str, index: int) -> str:
    return f"{app}-{environment}-{index}"


def service_name(app: str, environment: str) -> str:
    """The instances' folder in etcd and their nginx upstream (S1): ``hello_STAGING``."""
    return f"{app}_{environment.upper()}"


def registrar_name(instance: str) -> str:
    return f"{instance}-registrar"


def registration_check(config: DeployConfig) -> str:
    """What the registrar checks from inside the instance's network: the HTTP health
    check when there is one, else that the registered port accepts connections."""
    if config.health is not None and config.health.http is not None:
        return f"http://127.0.0.1:{config.health.http.port}{config.health.http.path}"
    return f"tcp://127.0.0.1:{config.discovery_port}"


def health_test(config: DeployConfig) -> list[str] | None:
    health = config.health
    if health is None:
        return None
    if health.command is not None:
        return ["CMD-SHELL", health.command]
    assert health.http is not None
    url = f"http://127.0.0.1:{health.http.port}{health.http.path}"
    # Healthy on a 200 exactly, with whichever of wget and curl the image has.
    return [
        "CMD-SHELL",
        f"wget -S -q -O /dev/null '{url}' 2>&1 | grep -q 'HTTP/[0-9.]* 200' "
        f"|| curl -s -o /dev/null -w '%{{http_code}}' '{url}' | grep -qx 200",
    ]


def render(
    app: str,
    environment: str,
    version: int,
    config: DeployConfig,
    image: str,
    host_ports: dict[tuple[int, int], int],
    templates: Path = TEMPLATES,
    runtime_mounts: tuple[tuple[str, str], ...] = (),
) -> RenderedCompose:
    """``host_ports`` maps (instance index, container port) to the allocated host port;
    ``runtime_mounts`` are the image's (host, target) runtimes (I4), mounted read-only."""
    # Named by their content: a release writes its files beside those of the one
    # before, so instances it has not replaced yet keep reading their own.
    files = {
        f"files/{_digest(mount.content)}-{posixpath.basename(mount.path)}": mount.content
        for mount in config.files
    }
    instances: list[dict[str, Any]] = []
    for index in range(1, config.instances + 1):
        name = instance_name(app, environment, index)
        volumes = [
            f"./{source}:{mount.path}:ro" for source, mount in zip(files, config.files, strict=True)
        ]
        for directory in config.directories:
            # A stateful instance keeps its own data: a folder per instance name.
            host = directory.host
            if config.type is AppType.STATEFUL:
                host = posixpath.join(host, name)
            volumes.append(f"{host}:{directory.container}{':ro' if directory.read_only else ''}")
        volumes.extend(f"{host}:{target}:ro" for host, target in runtime_mounts)
        registrar = None
        if config.discovery is not None:
            registrar = {
                "name": registrar_name(name),
                "service": service_name(app, environment),
                "port": host_ports[(index, config.discovery_port or 0)],
                "check": registration_check(config),
                "ttl": config.discovery.ttl,
            }
        instances.append(
            {
                "name": name,
                "registrar": registrar,
                "ports": [
                    {"host": host_ports[(index, port.container)], "container": port.container}
                    for port in config.ports
                ],
                "volumes": volumes,
                "variables": {"SHIPWAY_INSTANCE": name, "SHIPWAY_ENVIRONMENT": environment},
            }
        )
    template = _environment(templates).get_template(TEMPLATE)
    compose = template.render(
        registrar_image=REGISTRAR_IMAGE,
        app=app,
        environment=environment,
        version=version,
        image=image,
        config=config,
        instances=instances,
        health_test=health_test(config),
    )
    return RenderedCompose(compose + "\n", files)


def _digest(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def compose_value(value: Any) -> str:
    """A value as compose reads it literally: JSON (which is YAML) with every ``$``
    doubled, since compose would otherwise interpolate ``$NAME`` from its own
    environment."""
    return json.dumps(value).replace("$", "$$")


def _environment(templates: Path) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - YAML, not HTML: values go through compose_value
        keep_trailing_newline=True,
    )
    environment.filters["value"] = compose_value
    return environment


def check(rendered: RenderedCompose) -> None:
    """Run ``docker-compose config -q`` on the rendered file; InvalidInput with what
    compose said when it refuses it."""
    with tempfile.TemporaryDirectory(prefix="shipway-compose-") as work:
        root = Path(work)
        (root / COMPOSE_FILE).write_text(rendered.compose)
        for name, content in rendered.files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(content)
        try:
            result = subprocess.run(
                ["docker-compose", "-f", COMPOSE_FILE, "config", "-q"],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except FileNotFoundError as exc:
            raise ExternalError(
                "docker-compose is not installed (scripts/setup installs it)"
            ) from exc
    if result.returncode != 0:
        raise InvalidInput(f"compose refused the file: {result.stderr.strip()}", "config")
