"""What a runner reports about the job it executes: started, output, finished."""

from __future__ import annotations

from dataclasses import replace

from pipelines.errors import Conflict
from pipelines.model import BuiltImage, Job
from pipelines.status import FailureKind, Status
from server.secret_box import SecretBox
from server.store import Store
from server.usecases.junit_reports import failed_tests
from server.usecases.scan_reports import has_findings, judge_scan
from server.usecases.secrets import MissingSecret, secrets_for


def start_job(store: Store, box: SecretBox, job_id: int, runner: str) -> tuple[Job, dict[str, str]]:
    """A runner took the job: the job and the values of its secrets.

    Conflict if the job is no longer pending (canceled, or taken by another
    runner): the runner must then not execute it. A job whose secrets have no
    value fails here, before any runner executes it, and the runner gets Conflict."""
    pending = store.jobs.get(job_id)
    try:
        secrets = secrets_for(store, box, pending)
    except MissingSecret as exc:
        store.jobs.change_status(
            job_id,
            Status.FAILED,
            expect=Status.PENDING,
            failure_kind=FailureKind.CONFIG_ERROR.value,
            failure_reason=str(exc),
        )
        raise Conflict(f"job {job_id} cannot run: {exc}") from exc
    job = store.jobs.change_status(job_id, Status.RUNNING, expect=Status.PENDING, runner=runner)
    return job, secrets


def record_image(store: Store, job_id: int, image: BuiltImage) -> BuiltImage:
    """The image an image job pushed, recorded on its pipeline."""
    job = store.jobs.get(job_id)
    if job.kind != "image":
        raise Conflict(f"job {job_id} is a {job.kind} job: it builds no image")
    if job.status is not Status.RUNNING:
        raise Conflict(f"job {job_id} is {job.status}: it reports no image now")
    return store.images.record(replace(image, pipeline_id=job.pipeline_id, job_id=job_id))


def append_log(store: Store, job_id: int, offset: int, text: str) -> int:
    job = store.jobs.get(job_id)
    if job.status is not Status.RUNNING:
        raise Conflict(f"job {job_id} is {job.status}: its log is closed")
    return store.logs.append(job_id, offset, text)


def finish_job(
    store: Store,
    job_id: int,
    succeeded: bool,
    exit_code: int | None,
    failure_kind: FailureKind | None,
    reason: str | None,
) -> Job:
    job = store.jobs.get(job_id)
    if job.status.is_finished and job.exit_code == exit_code:
        return job  # a resend of a report the server already took
    if succeeded and (tests := failed_tests(store, job_id)) is not None:
        succeeded, failure_kind, reason = False, FailureKind.TEST_FAILURE, tests
    if (
        succeeded
        and has_findings(store, job_id)
        and not (verdict := judge_scan(store, job_id)).passed
    ):
        reason = "quality gate: " + "; ".join(verdict.broken)
        succeeded, failure_kind = False, FailureKind.QUALITY_GATE
    target = Status.SUCCESS if succeeded else Status.FAILED
    if not succeeded and failure_kind is None:
        failure_kind = FailureKind.SCRIPT_FAILURE if exit_code else FailureKind.SYSTEM_FAILURE
    return store.jobs.change_status(
        job_id,
        target,
        expect=Status.RUNNING,
        exit_code=exit_code,
        failure_kind=failure_kind.value if failure_kind else None,
        failure_reason=reason,
    )
