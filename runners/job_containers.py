"""Whose a job container is, what it is called, and how it is made: the same for a
container created for its job and for one started before its job arrived
(``runners.spares``), so that a job cannot tell which it got.

Two installations of Shipway may share one engine (the demo and the tests, say) and
name a runner alike: a runner only ever touches containers that carry both of its
owner labels. A job's container is found by its name (``job_container_name``), not
by a label: a pre-started container gets its job only after it was created, when
its labels can no longer change, so it is renamed as it is taken.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import docker
from docker.models.containers import Container

from runners.job_files import UNPACK_AND_RUN, WORKSPACE

LABEL_RUNNER = "io.shipway.runner"
LABEL_INSTALLATION = "io.shipway.installation"
# On a pre-started container: the image reference (as jobs name it) it was made for.
LABEL_SPARE = "io.shipway.spare"
JOB_PREFIX = "shipway-job-"
SPARE_PREFIX = "shipway-spare-"


@dataclass(frozen=True)
class ContainerOwner:
    """Whose job containers these are: a runner of one installation."""

    runner: str
    installation: str

    def labels(self) -> dict[str, str]:
        return {LABEL_RUNNER: self.runner, LABEL_INSTALLATION: self.installation}

    def label_filters(self) -> list[str]:
        return [f"{key}={value}" for key, value in self.labels().items()]

    @property
    def key(self) -> str:
        """A short digest of both labels, for container names: unique per owner, and
        free of what a container name may not hold (a runner's name may hold anything)."""
        both = f"{self.installation}\0{self.runner}".encode()
        return hashlib.sha256(both).hexdigest()[:12]


def job_container_name(owner: ContainerOwner, job_id: int) -> str:
    """The name of the container that runs (or ran) the job, made for it or taken."""
    return f"{JOB_PREFIX}{job_id}-{owner.key}"


@dataclass(frozen=True)
class Listed:
    """One of an owner's containers as the engine lists them: one call for all of
    them, no inspection of each."""

    id: str
    name: str
    image_id: str  # the image it was made from (a tag may name another one since)
    running: bool
    created: int  # seconds since the epoch
    spare_of: str | None  # a spare's image reference; None for a job's container

    @classmethod
    def from_listing(cls, row: dict[str, Any]) -> Listed:
        name = str((row.get("Names") or ["/"])[0]).lstrip("/")
        labels = row.get("Labels") or {}
        spare_of = labels.get(LABEL_SPARE) if name.startswith(SPARE_PREFIX) else None
        return cls(
            id=str(row["Id"]),
            name=name,
            image_id=str(row.get("ImageID", "")),
            running=row.get("State") == "running",
            created=int(row.get("Created", 0)),
            spare_of=spare_of,
        )


def list_owned(
    client: docker.DockerClient, owner: ContainerOwner, name: str | None = None
) -> list[Listed]:
    """The owner's containers, running or not (those named ``name`` only, if given)."""
    filters: dict[str, Any] = {"label": owner.label_filters()}
    if name is not None:
        filters["name"] = f"^/{name}$"
    rows = client.api.containers(all=True, filters=filters)
    return [Listed.from_listing(row) for row in rows]


def create_job_container(
    client: docker.DockerClient, image: str, name: str, labels: dict[str, str]
) -> Container:
    """A container that, once started, waits for its job's tar stream on stdin, then
    unpacks it and runs the script (``runners.job_files``). Nothing of a job is in
    its configuration: all of it arrives on stdin."""
    # The low-level call, since only with detach=False does the SDK set StdinOnce:
    # the container's stdin closes when the runner's does.
    created = client.api.create_container(
        image,
        name=name,
        entrypoint=["/bin/sh", "-c", UNPACK_AND_RUN],
        working_dir=WORKSPACE,
        labels=labels,
        stdin_open=True,
        detach=False,
    )
    return container_of(client, str(created["Id"]))


def container_of(client: docker.DockerClient, container_id: str) -> Container:
    """The SDK's model of a container known by id, without asking the engine (an
    inspection costs a round trip; every call the executor makes needs the id only)."""
    model: Container = client.containers.prepare_model({"Id": container_id})
    return model
