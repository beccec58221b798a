"""Deployment configurations per application and environment, and the compose file
rendered from one (D1-D4)."""

from __future__ import annotations

import socket
from typing import Any

from pipelines.deploy_config import DeployConfig, parse_deploy_config
from pipelines.errors import InvalidInput
from server.compose import RenderedCompose, check, render
from server.store import Store
from server.store.deployments import StoredConfig
from server.store.secrets import ANY_ENVIRONMENT
from server.usecases.secrets import check_environment


def set_config(
    store: Store, project_name: str, environment: str, data: Any, actor: str
) -> tuple[StoredConfig, bool]:
    """Validate and store; the stored version and whether it is a new one."""
    if check_environment(environment) == ANY_ENVIRONMENT:
        raise InvalidInput("a deployment configuration is for one named environment", "environment")
    project = store.projects.by_name(project_name)
    config = parse_deploy_config(data)
    before = store.deployments.history(project.id, environment)
    stored = store.deployments.save_config(
        project.id, environment, config.model_dump(mode="json"), actor
    )
    created = not before or before[0].version != stored.version
    if created:
        store.audit.record(
            actor,
            "config.set",
            f"version {stored.version}",
            f"project {project.name}",
            {"environment": environment},
        )
    return stored, created


def host_port_in_use(port: int) -> bool:
    """Whether something on this host listens on ``port`` already."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104 - a probe, closed at once
        except OSError:
            return True
    return False


def runtime_mounts(store: Store, image: str, environment: str) -> tuple[tuple[str, str], ...]:
    """The runtimes an image built by Shipway wants mounted from the host (I4) in
    ``environment``: those naming it, and those naming no environment."""
    built = store.images.by_reference(image)
    if built is None:
        return ()
    return tuple(
        (str(mount["host"]), str(mount["target"]))
        for mount in built.runtime_mounts
        if mount.get("environments") is None or environment in mount["environments"]
    )


def compose_for(
    store: Store, project_name: str, environment: str, image: str, version: int | None = None
) -> tuple[StoredConfig, RenderedCompose]:
    """Render (and check with docker-compose) the compose file of a configuration
    version (default: the current one) for an image; host ports are allocated once
    per instance and container port, and kept."""
    project = store.projects.by_name(project_name)
    stored = store.deployments.config(project.id, environment, version)
    config = DeployConfig.model_validate(stored.config)
    wanted = [
        (index, port.container) for index in range(1, config.instances + 1) for port in config.ports
    ]
    ports = store.deployments.allocate_ports(project.id, environment, wanted, host_port_in_use)
    rendered = render(
        project.name,
        environment,
        stored.version,
        config,
        image,
        ports,
        runtime_mounts=runtime_mounts(store, image, environment),
    )
    check(rendered)
    return stored, rendered
