"""What marks this test run's own objects on the machine's shared Docker Engine.

Another installation (the demo, a second clone's suite) may use the same engine at
the same time. Everything a test makes there carries ``RUN_ID``: as the
``io.shipway.installation`` label of its servers and runners (``SHIPWAY_INSTALLATION``),
at the start of its runner, application and image names, and in its registry's port
(:mod:`tests.support.ports`). Clean-ups filter on it and never touch anything else.
"""

from __future__ import annotations

import uuid

import docker
import docker.errors

from runners.job_containers import JOB_PREFIX, LABEL_INSTALLATION, LABEL_RUNNER

RUN_ID = f"t{uuid.uuid4().hex[:7]}"  # a letter first: it starts project names
LABEL = LABEL_INSTALLATION
RUN_LABELS = {LABEL: RUN_ID}


def unique_name(kind: str = "") -> str:
    """A name of this run's, unique within it: for runners, applications, images."""
    return f"{RUN_ID}{kind}{uuid.uuid4().hex[:6]}"


def job_containers(job_id: int) -> dict[str, str | list[str] | bool]:
    """Docker's filter for the container of one job of this run, made for it or a
    pre-started one it took (either is named after the job): job numbers start at 1
    in every installation's database, so the name alone is not enough."""
    return {"label": [f"{LABEL}={RUN_ID}"], "name": f"^/{JOB_PREFIX}{job_id}-"}


def remove_job_containers(client: docker.DockerClient) -> None:
    """Remove every job container of this run, running or not, and every runner's
    pre-started containers."""
    remove_containers(client, [LABEL_RUNNER, f"{LABEL}={RUN_ID}"])


def remove_containers(client: docker.DockerClient, labels: list[str]) -> None:
    """Remove the containers carrying all ``labels``, also when something else removes
    them at the same time: a job's process outlives a runner killed outright, and
    removes its container (or its spare) itself once the job ends."""
    for container in client.containers.list(all=True, filters={"label": labels}, sparse=True):
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc.explanation):
                raise
