"""Jobs, and the one place where a job's status changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pipelines.errors import Conflict, NotFound
from pipelines.model import GitRef, Job, JobTask, RefKind
from pipelines.status import Status, transition
from server.store.database import read_only
from server.store.pipelines import mark_due, mark_project_due
from server.store.tables import environment_locks, jobs, pipelines, projects, utcnow

# What a new attempt copies from the one it retries.
_DECLARED = (
    "pipeline_id",
    "name",
    "stage",
    "stage_index",
    "image",
    "script",
    "variables",
    "timeout_seconds",
    "queue",
    "kind",
    "needs",
    "when",
    "allow_failure",
    "retry_max",
    "retry_on",
    "environment",
    "secrets",
    "settings",
)


def row_to_job(row: sa.Row[Any]) -> Job:
    values = row._mapping
    needs = values["needs"]
    return Job(
        id=values["id"],
        pipeline_id=values["pipeline_id"],
        name=values["name"],
        stage=values["stage"],
        stage_index=values["stage_index"],
        image=values["image"],
        script=tuple(values["script"]),
        variables=dict(values["variables"]),
        timeout_seconds=values["timeout_seconds"],
        queue=values["queue"],
        status=Status(values["status"]),
        created_at=values["created_at"],
        kind=values["kind"],
        needs=tuple(needs) if needs is not None else None,
        when=values["when"],
        allow_failure=values["allow_failure"],
        retry_max=values["retry_max"],
        retry_on=tuple(values["retry_on"]),
        environment=values["environment"],
        secrets=tuple(values["secrets"]),
        settings=values["settings"],
        attempt=values["attempt"],
        retried=values["retried"],
        played_by=values["played_by"],
        exit_code=values["exit_code"],
        failure_kind=values["failure_kind"],
        failure_reason=values["failure_reason"],
        runner=values["runner"],
        queued_at=values["queued_at"],
        started_at=values["started_at"],
        finished_at=values["finished_at"],
    )


def _locked_row(conn: sa.Connection, job_id: int) -> sa.Row[Any]:
    # FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers.
    row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"job {job_id} does not exist")
    return row


class JobRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.reads = read_only(engine)

    def get(self, job_id: int) -> Job:
        with self.reads.begin() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"job {job_id} does not exist")
        return row_to_job(row)

    def of_pipeline(self, pipeline_id: int) -> list[Job]:
        """Every attempt of every job, oldest first."""
        query = sa.select(jobs).where(jobs.c.pipeline_id == pipeline_id).order_by(jobs.c.id)
        with self.reads.begin() as conn:
            return [row_to_job(row) for row in conn.execute(query)]

    def with_status(self, status: Status) -> list[Job]:
        query = sa.select(jobs).where(jobs.c.status == status.value).order_by(jobs.c.id)
        with self.reads.begin() as conn:
            return [row_to_job(row) for row in conn.execute(query)]

    def change_status(
        self,
        job_id: int,
        target: Status,
        *,
        expect: Status | None = None,
        exit_code: int | None = None,
        failure_kind: str | None = None,
        failure_reason: str | None = None,
        runner: str | None = None,
        played_by: str | None = None,
    ) -> Job:
        """Move a job to ``target`` through the transition table; the only writer of
        a job's status. ``expect`` makes the change conditional on the current
        status. A job that deploys to an environment takes the environment's lock
        as it becomes pending. Raises IllegalTransition, or Conflict when ``expect``
        does not hold or the environment is held by another job."""
        with self.engine.begin() as conn:
            row = _locked_row(conn, job_id)
            current = Status(row.status)
            if expect is not None and current is not expect:
                raise Conflict(f"job {job_id} is {current}, not {expect}")
            transition(current, target)
            if target is Status.PENDING and row.environment is not None:
                _take_environment(conn, row)
            now = utcnow()
            changes: dict[str, Any] = {"status": target.value}
            if target is Status.PENDING:
                changes["queued_at"] = now
            if target is Status.RUNNING:
                changes.update(started_at=now, runner=runner)
            if target.is_finished:
                changes.update(
                    finished_at=now,
                    exit_code=exit_code,
                    failure_kind=failure_kind,
                    failure_reason=failure_reason,
                )
            if played_by is not None:
                changes["played_by"] = played_by
            updated = conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.status == current.value)
                .values(changes)
            )
            if updated.rowcount != 1:
                raise Conflict(f"job {job_id} changed status concurrently")
            mark_due(conn, row.pipeline_id)
            if target.is_finished and row.environment is not None:
                mark_project_due(conn, row.pipeline_id)  # its environment is free again
            return row_to_job(conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one())

    def new_attempt(self, job_id: int, played_by: str | None = None) -> Job:
        """A new attempt of a finished job, created; the old one is kept, marked
        retried, with its log. Conflict when it is not the latest attempt or has not
        finished."""
        with self.engine.begin() as conn:
            row = _locked_row(conn, job_id)
            if row.retried:
                raise Conflict(f"job {job_id} was retried already: retry its latest attempt")
            if not Status(row.status).is_finished:
                raise Conflict(f"job {job_id} is {row.status}: only a finished job is retried")
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(retried=True))
            mark_due(conn, row.pipeline_id)
            values = {name: row._mapping[name] for name in _DECLARED}
            result = conn.execute(
                jobs.insert().values(
                    **values,
                    status=Status.CREATED.value,
                    attempt=row.attempt + 1,
                    retried=False,
                    played_by=played_by if row.when == "manual" else None,
                    log_length=0,
                    created_at=utcnow(),
                )
            )
            assert result.inserted_primary_key is not None
            new_id = int(result.inserted_primary_key[0])
            return row_to_job(conn.execute(sa.select(jobs).where(jobs.c.id == new_id)).one())

    def task(self, job_id: int) -> JobTask:
        """What a runner needs to execute the job."""
        query = (
            sa.select(
                jobs,
                pipelines.c.sha,
                pipelines.c.ref_kind,
                pipelines.c.ref_name,
                pipelines.c.merge_request_iid,
                projects.c.name.label("project"),
                projects.c.clone_url,
            )
            .join(pipelines, pipelines.c.id == jobs.c.pipeline_id)
            .join(projects, projects.c.id == pipelines.c.project_id)
            .where(jobs.c.id == job_id)
        )
        with self.reads.begin() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"job {job_id} does not exist")
        return JobTask(
            job_id=row.id,
            pipeline_id=row.pipeline_id,
            project=row.project,
            clone_url=row.clone_url,
            sha=row.sha,
            ref=GitRef(RefKind(row.ref_kind), row.ref_name),
            name=row.name,
            image=row.image,
            script=tuple(row.script),
            variables=dict(row.variables),
            timeout_seconds=row.timeout_seconds,
            attempt=row.attempt,
            environment_name=row.environment,
            merge_request_iid=row.merge_request_iid,
            kind=row.kind,
            settings=row.settings,
        )

    def project_of(self, job_id: int) -> int:
        query = (
            sa.select(pipelines.c.project_id)
            .join(jobs, jobs.c.pipeline_id == pipelines.c.id)
            .where(jobs.c.id == job_id)
        )
        with self.reads.begin() as conn:
            project_id = conn.execute(query).scalar_one_or_none()
        if project_id is None:
            raise NotFound(f"job {job_id} does not exist")
        return int(project_id)


def _take_environment(conn: sa.Connection, job: sa.Row[Any]) -> None:
    """Hold the job's environment, or raise Conflict naming the job that holds it.

    A lock whose job has finished (or whose job is this one) is free: nothing has
    to release it, so a crash can never leave an environment locked."""
    project_id = conn.execute(
        sa.select(pipelines.c.project_id).where(pipelines.c.id == job.pipeline_id)
    ).scalar_one()
    key = (environment_locks.c.project_id == project_id) & (
        environment_locks.c.environment == job.environment
    )
    holder = conn.execute(
        sa.select(environment_locks.c.job_id, jobs.c.status)
        .join(jobs, jobs.c.id == environment_locks.c.job_id)
        .where(key)
        .with_for_update()
    ).first()
    if holder is not None and holder.job_id != job.id and Status(holder.status).is_active:
        raise Conflict(f"environment {job.environment} is held by job {holder.job_id}")
    now = utcnow()
    if holder is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    environment_locks.insert().values(
                        project_id=project_id,
                        environment=job.environment,
                        job_id=job.id,
                        acquired_at=now,
                    )
                )
        except sa.exc.IntegrityError:
            raise Conflict(f"environment {job.environment} was taken meanwhile") from None
    else:
        conn.execute(environment_locks.update().where(key).values(job_id=job.id, acquired_at=now))


def elapsed(job: Job, now: datetime | None = None) -> float | None:
    if job.started_at is None:
        return None
    end = job.finished_at or now or utcnow()
    return (end - job.started_at).total_seconds()
