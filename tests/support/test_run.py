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

from runners.executor import LABEL_INSTALLATION, LABEL_JOB

RUN_ID = f"t{uuid.uuid4().hex[:7]}"  # a letter first: it starts project names
LABEL = LABEL_INSTALLATION
RUN_LABELS = {LABEL: RUN_ID}


def unique_name(kind: str = "") -> str:
    """A name of this run's, unique within it: for runners, applications, images."""
    return f"{RUN_ID}{kind}{uuid.uuid4().hex[:6]}"


def job_containers(job_id: int) -> dict[str, str | list[str] | bool]:
    """Docker's filter for the containers of one job of this run: job numbers start
    at 1 in every installation's database, so the job label alone is not enough."""
    return {"label": [f"{LABEL_JOB}={job_id}", f"{LABEL}={RUN_ID}"]}


def remove_job_containers(client: docker.DockerClient) -> None:
    """Remove every job container of this run, running or not."""
    mine = [LABEL_JOB, f"{LABEL}={RUN_ID}"]
    for container in client.containers.list(all=True, filters={"label": mine}):
        container.remove(force=True)
