"""Jobs, and the one place where a job's status changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pipelines.errors import Conflict, NotFound
from pipelines.model import GitRef, Job, JobTask, RefKind
from pipelines.status import Status, transition
from server.store.tables import jobs, pipelines, projects, utcnow


def _job(row: sa.Row[Any]) -> Job:
    values = row._mapping
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
        attempt=values["attempt"],
        exit_code=values["exit_code"],
        failure_reason=values["failure_reason"],
        runner=values["runner"],
        started_at=values["started_at"],
        finished_at=values["finished_at"],
    )


class JobRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, job_id: int) -> Job:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"job {job_id} does not exist")
        return _job(row)

    def of_pipeline(self, pipeline_id: int) -> list[Job]:
        query = sa.select(jobs).where(jobs.c.pipeline_id == pipeline_id).order_by(jobs.c.id)
        with self.engine.begin() as conn:
            return [_job(row) for row in conn.execute(query)]

    def with_status(self, status: Status) -> list[Job]:
        query = sa.select(jobs).where(jobs.c.status == status.value).order_by(jobs.c.id)
        with self.engine.begin() as conn:
            return [_job(row) for row in conn.execute(query)]

    def change_status(
        self,
        job_id: int,
        target: Status,
        *,
        expect: Status | None = None,
        exit_code: int | None = None,
        failure_reason: str | None = None,
        runner: str | None = None,
    ) -> Job:
        """Move a job to ``target`` through the transition table; the only writer of
        a job's status. ``expect`` makes the change conditional on the current
        status. Raises IllegalTransition, or Conflict when ``expect`` does not hold."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
            if row is None:
                raise NotFound(f"job {job_id} does not exist")
            current = Status(row.status)
            if expect is not None and current is not expect:
                raise Conflict(f"job {job_id} is {current}, not {expect}")
            transition(current, target)
            now = utcnow()
            changes: dict[str, Any] = {"status": target.value}
            if target is Status.RUNNING:
                changes.update(started_at=now, runner=runner)
            if target.is_finished:
                changes.update(finished_at=now, exit_code=exit_code, failure_reason=failure_reason)
            updated = conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.status == current.value)
                .values(changes)
            )
            if updated.rowcount != 1:
                raise Conflict(f"job {job_id} changed status concurrently")
            return _job(conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one())

    def task(self, job_id: int) -> JobTask:
        """What a runner needs to execute the job."""
        query = (
            sa.select(
                jobs,
                pipelines.c.sha,
                pipelines.c.ref_kind,
                pipelines.c.ref_name,
                projects.c.name.label("project"),
                projects.c.clone_url,
            )
            .join(pipelines, pipelines.c.id == jobs.c.pipeline_id)
            .join(projects, projects.c.id == pipelines.c.project_id)
            .where(jobs.c.id == job_id)
        )
        with self.engine.begin() as conn:
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
        )


def elapsed(job: Job, now: datetime | None = None) -> float | None:
    if job.started_at is None:
        return None
    end = job.finished_at or now or utcnow()
    return (end - job.started_at).total_seconds()
