"""Pre-started containers ("spares"): each job's fresh container, started before the
job arrives.

Why: the engine takes ~200 ms to start a container, the bulk of a short job and
nearly all that separated a push's pipeline from ``git clone`` + ``docker run`` by
hand (bench/push_to_success.py). A spare is made exactly as a job's own container
(``runners.job_containers.create_job_container``) and started: its command blocks
on stdin, holding nothing of any job (no workspace, no variable, no secret) until
the job that takes it sends its tar stream.

Lifecycle, all of it on the engine: RQ forks a process per job, so the engine is the
only place where the next job's process finds what the last one left.

- made by a job's process once the job's result is reported, for that job's image:
  at most one per runner and image, for the ``keep`` images its latest jobs used (the
  first job of an image on a runner starts a container of its own);
- taken by one job (:meth:`Spares.take`), which renames it to its own container's
  name before it sends anything, so ``DockerExecutor.reap(job_id)`` finds it as it
  finds a container made for the job; from then on it is that job's container,
  removed with it, never given back or shared;
- discarded instead of taken when it no longer runs, or when its tag now names
  another image (rebuilt under the same tag): :meth:`Spares.stale`, called by the
  reaper before each job;
- removed when the runner stops, and all of them when a runner of that name starts
  (a spare of an earlier run may run an older runner's command); a job's process
  that outlived a runner killed outright makes none (``DockerExecutor.close``).
"""

from __future__ import annotations

import contextlib
import logging
import uuid

import docker
import docker.errors
from docker.models.containers import Container

from runners.job_containers import (
    LABEL_SPARE,
    SPARE_PREFIX,
    ContainerOwner,
    Listed,
    container_of,
    create_job_container,
    job_container_name,
    list_owned,
)

log = logging.getLogger(__name__)

DEFAULT_SPARE_IMAGES = 4  # images a runner keeps a spare of, by default


def stale_containers(
    listed: list[Listed], keep: int, image: str | None = None, image_id: str | None = None
) -> list[Listed]:
    """Of a runner's containers, those nothing will use: every container that is not a
    spare (asked when no job of the runner runs), spares that stopped, more than one
    of an image, spares beyond the ``keep`` images used last (the newest spares), and
    spares of ``image`` made from another image than ``image_id``."""
    kept: dict[str, Listed] = {}
    stale = []
    for container in sorted(listed, key=lambda each: each.created, reverse=True):
        spare_of = container.spare_of
        if (
            spare_of is None
            or not container.running
            or spare_of in kept
            or len(kept) >= keep
            or (spare_of == image and container.image_id != image_id)
        ):
            stale.append(container)
        else:
            kept[spare_of] = container
    return stale


class Spares:
    """The spares of one runner on the engine the client talks to. A runner runs one
    job at a time, so no two of its processes take or make spares at once."""

    def __init__(self, client: docker.DockerClient, owner: ContainerOwner, keep: int) -> None:
        self.client = client
        self.owner = owner
        self.keep = keep  # how many images have a spare; 0: no spares at all

    def stale(
        self, listed: list[Listed], image: str | None = None, image_id: str | None = None
    ) -> list[Listed]:
        return stale_containers(listed, self.keep, image, image_id)

    def take(
        self, listed: list[Listed], image: str, image_id: str, job_id: int
    ) -> Container | None:
        """The running spare of ``image`` made from ``image_id``, now the job's own
        container; None when there is none (or it vanished meanwhile). Call with
        what :meth:`stale` left, so at most one spare fits."""
        for container in listed:
            fits = container.spare_of == image and container.image_id == image_id
            if fits and container.running:
                try:
                    # Renamed before anything of the job reaches it: a spare that holds
                    # a job's data is always found under the job's name.
                    self.client.api.rename(container.id, job_container_name(self.owner, job_id))
                except docker.errors.APIError as exc:  # gone, or its name taken meanwhile
                    log.warning("spare %s could not be taken: %s", container.name, exc)
                    return None
                return container_of(self.client, container.id)
        return None

    def make(self, image: str, image_id: str) -> None:
        """Start a spare of ``image`` unless one made from ``image_id`` runs already;
        then remove the spares beyond the ``keep`` images used last. Docker errors
        propagate (the caller only logs them: a missing spare costs a start)."""
        if self.keep <= 0:
            return
        listed = [each for each in list_owned(self.client, self.owner) if each.spare_of]
        current = [
            each
            for each in listed
            if each.spare_of == image and each.image_id == image_id and each.running
        ]
        if not current:
            name = f"{SPARE_PREFIX}{self.owner.key}-{uuid.uuid4().hex[:8]}"
            labels = {**self.owner.labels(), LABEL_SPARE: image}
            spare = create_job_container(self.client, image, name, labels)
            try:
                spare.start()
            except docker.errors.APIError:
                self._remove(name)
                raise
            listed = [each for each in list_owned(self.client, self.owner) if each.spare_of]
        for stale in self.stale(listed):
            self._remove(stale.id)

    def remove_all(self) -> int:
        """Remove every spare of the runner (not the containers of jobs): it stops."""
        spares = [each for each in list_owned(self.client, self.owner) if each.spare_of]
        for container in spares:
            self._remove(container.id)
        return len(spares)

    def _remove(self, container: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_container(container, force=True, v=True)
