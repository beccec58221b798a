"""A pipeline's deploy jobs (``kind: deploy``): each orders a release of the image the
pipeline built to its environment, and ends as the release ends.

The server runs them itself: a deploy job goes pending (taking its environment's
lock), then running once its release is ordered; a release still running in that
environment keeps it pending until it ends. A paused release keeps the job running
until someone resumes or closes it.
"""

from __future__ import annotations

import logging

from pipelines.deploy_config import DeployConfig
from pipelines.errors import Conflict, NotFound, ShipwayError
from pipelines.model import Job
from pipelines.release import ReleaseStatus
from pipelines.rollout import Grouping, PauseMode
from pipelines.schedule import current_attempts
from pipelines.status import FailureKind, Status
from server import registry_check
from server.store import Store
from server.usecases.promotion import promote
from server.usecases.releases import create_release

log = logging.getLogger(__name__)
DEPLOY = "deploy"
PROMOTE = "promote"
RELEASING = frozenset({DEPLOY, PROMOTE})  # jobs the server runs by ordering a release
ENGINE = "shipway"


def _say(store: Store, job_id: int, text: str) -> None:
    store.logs.add(job_id, text)


def start_deploy(store: Store, job: Job) -> None:
    """Order the job's release (a deploy job's of the image its pipeline built, a
    promote job's of the digest its source environment runs); fail the job when it
    cannot be ordered, leave it pending while another release of the environment runs."""
    pipeline = store.pipelines.get(job.pipeline_id)
    project = store.projects.get(pipeline.project_id)
    settings = job.settings or {}
    release = settings.get("release") or {}
    batches = release.get("batches")
    grouping = Grouping(release["grouping"]) if release.get("grouping") else None
    pause_mode = PauseMode(release.get("pause_mode", "never"))
    actor = f"pipeline {pipeline.id}"
    try:
        if job.kind == PROMOTE:
            created = promote(
                store,
                registry_check.holds,
                project.name,
                str(settings.get("from")),
                str(job.environment),
                batches=batches,
                grouping=grouping,
                pause_mode=pause_mode,
                actor=actor,
                job_id=job.id,
            )
        else:
            images = store.images.of_pipeline(job.pipeline_id)
            wanted = settings.get("image_job")
            if wanted is not None:
                names = {j.id: j.name for j in store.jobs.of_pipeline(job.pipeline_id)}
                images = [image for image in images if names.get(image.job_id) == wanted]
            if not images:
                reason = "the pipeline built no image to release"
                _fail(store, job, reason, FailureKind.CONFIG_ERROR)
                return
            created = create_release(
                store,
                project.name,
                str(job.environment),
                images[-1].reference,
                batches=batches,
                grouping=grouping,
                pause_mode=pause_mode,
                beta=bool(release.get("beta")),
                actor=actor,
                job_id=job.id,
            )
    except Conflict as exc:
        if "one release per environment" in str(exc):
            return  # another release runs there: try again on the next pass
        _fail(store, job, str(exc), FailureKind.CONFIG_ERROR)
        return
    except (NotFound, ShipwayError) as exc:
        _fail(store, job, str(exc), FailureKind.CONFIG_ERROR)
        return
    store.jobs.change_status(job.id, Status.RUNNING, expect=Status.PENDING, runner=ENGINE)
    _say(
        store,
        job.id,
        f"Release {created.id} of {created.image} to {created.environment}: "
        f"batches {created.batches}\n",
    )


def _fail(store: Store, job: Job, reason: str, kind: FailureKind) -> None:
    current = store.jobs.get(job.id)
    if current.status is Status.PENDING:
        store.jobs.change_status(job.id, Status.RUNNING, expect=Status.PENDING, runner=ENGINE)
    _say(store, job.id, f"ERROR: {reason}\n")
    store.jobs.change_status(
        job.id, Status.FAILED, expect=Status.RUNNING, failure_kind=kind.value, failure_reason=reason
    )


def settle_deploy_jobs(store: Store) -> None:
    """Start the deploy jobs waiting for their release, and end those whose release
    ended."""
    for job in store.jobs.with_status(Status.PENDING):
        if job.kind in RELEASING:
            try:
                start_deploy(store, job)
            except Conflict:
                continue
    for job in store.jobs.with_status(Status.RUNNING):
        if job.kind not in RELEASING:
            continue
        release = store.releases.of_job(job.id)
        if release is None or release.status.is_active:
            continue
        if release.status is ReleaseStatus.SUCCESS:
            _say(store, job.id, f"Release {release.id} succeeded\nJob succeeded\n")
            store.jobs.change_status(job.id, Status.SUCCESS, expect=Status.RUNNING, exit_code=0)
        else:
            reason = f"release {release.id} failed: {release.reason}"
            _say(store, job.id, f"ERROR: Job failed: {reason}\n")
            store.jobs.change_status(
                job.id,
                Status.FAILED,
                expect=Status.RUNNING,
                failure_kind=FailureKind.DEPLOY_FAILURE.value,
                failure_reason=reason,
            )
        store.pipelines.settle(job.pipeline_id)


def deployed_variables(store: Store, job: Job) -> dict[str, str]:
    """Where the pipeline's deploy upstream of ``job`` went (P2), for tests against
    it to need no address written down: ``SHIPWAY_ENVIRONMENT``, ``SHIPWAY_IMAGE``,
    ``SHIPWAY_IMAGE_DIGEST`` and, when the environment's configuration has a ``url``
    (its address through nginx), ``SHIPWAY_ENVIRONMENT_URL``. Upstream: a deploy job
    of an earlier stage, or one the job needs, that succeeded; the last of them."""
    upstream = [
        other
        for other in current_attempts(store.jobs.of_pipeline(job.pipeline_id))
        if other.kind in RELEASING
        and other.status is Status.SUCCESS
        and (
            other.name in job.needs
            if job.needs is not None
            else other.stage_index < job.stage_index
        )
    ]
    if not upstream:
        return {}
    deploy = max(upstream, key=lambda other: (other.stage_index, other.id))
    release = store.releases.of_job(deploy.id)
    if release is None:
        return {}
    found = {"SHIPWAY_ENVIRONMENT": release.environment, "SHIPWAY_IMAGE": release.image}
    if "@" in release.image:
        found["SHIPWAY_IMAGE_DIGEST"] = release.image.rsplit("@", 1)[1]
    config = store.deployments.config(
        release.project_id, release.environment, release.config_version
    )
    url = DeployConfig.model_validate(config.config).url
    if url is not None:
        found["SHIPWAY_ENVIRONMENT_URL"] = url
    return found
