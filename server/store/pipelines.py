"""Pipelines, and the webhook deliveries that started them.

A delivery and the pipeline it starts are written in one transaction, so a crash
never leaves one without the other, and a redelivery (same ``delivery_key``) finds
the pipeline the first delivery made instead of making a second.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from pipelines.errors import NotFound
from pipelines.model import GitRef, Pipeline, RefKind
from pipelines.plan import JobDraft
from pipelines.status import Status, merge
from server.store.database import read_only
from server.store.tables import jobs, pipelines, utcnow, webhook_deliveries

OPEN_STATUSES = (Status.CREATED, Status.PENDING, Status.RUNNING, Status.MANUAL)
_OPEN = [status.value for status in OPEN_STATUSES]
# The most pipelines one engine pass takes from those due; the rest wait a pass.
DUE_PER_PASS = 500


def mark_due(conn: sa.Connection, pipeline_id: int) -> None:
    """In the transaction that changed one of its jobs: the engine must look at it."""
    conn.execute(pipelines.update().where(pipelines.c.id == pipeline_id).values(advance_due=True))


def mark_project_due(conn: sa.Connection, pipeline_id: int) -> None:
    """An environment of the project was freed: any open pipeline of the project may
    have a job waiting for it."""
    project_id = (
        sa.select(pipelines.c.project_id).where(pipelines.c.id == pipeline_id).scalar_subquery()
    )
    conn.execute(
        pipelines.update()
        .where(pipelines.c.project_id == project_id, pipelines.c.status.in_(_OPEN))
        .values(advance_due=True)
    )


@dataclass(frozen=True)
class NewPipeline:
    project_id: int
    ref: GitRef
    sha: str
    source: str
    triggered_by: str | None
    merge_request_iid: int | None = None


@dataclass(frozen=True)
class Delivery:
    id: int
    pipeline_id: int | None
    outcome: str
    duplicate: bool


def row_to_pipeline(row: sa.Row[Any]) -> Pipeline:
    values = row._mapping
    return Pipeline(
        id=values["id"],
        project_id=values["project_id"],
        ref=GitRef(RefKind(values["ref_kind"]), values["ref_name"]),
        sha=values["sha"],
        source=values["source"],
        status=Status(values["status"]),
        created_at=values["created_at"],
        error=values["error"],
        started_at=values["started_at"],
        finished_at=values["finished_at"],
        triggered_by=values["triggered_by"],
        merge_request_iid=values["merge_request_iid"],
    )


def _insert_pipeline(conn: sa.Connection, new: NewPipeline) -> int:
    result = conn.execute(
        pipelines.insert().values(
            project_id=new.project_id,
            ref_kind=new.ref.kind.value,
            ref_name=new.ref.name,
            sha=new.sha,
            source=new.source,
            status=Status.CREATED.value,
            planned=False,
            triggered_by=new.triggered_by,
            merge_request_iid=new.merge_request_iid,
            created_at=utcnow(),
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


class PipelineRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.reads = read_only(engine)

    def record_delivery(
        self,
        project_id: int,
        delivery_key: str | None,
        event: str,
        headers: dict[str, str],
        payload: dict[str, Any],
        new_pipeline: NewPipeline | None,
        outcome: str,
    ) -> Delivery:
        """Store a webhook delivery and, in the same transaction, its pipeline."""
        try:
            with self.engine.begin() as conn:
                if delivery_key is not None:
                    seen = self._delivery(conn, project_id, delivery_key)
                    if seen is not None:
                        return seen
                pipeline_id = _insert_pipeline(conn, new_pipeline) if new_pipeline else None
                result = conn.execute(
                    webhook_deliveries.insert().values(
                        project_id=project_id,
                        delivery_key=delivery_key,
                        event=event,
                        headers=headers,
                        payload=payload,
                        outcome=outcome,
                        pipeline_id=pipeline_id,
                        received_at=utcnow(),
                    )
                )
                assert result.inserted_primary_key is not None
                return Delivery(int(result.inserted_primary_key[0]), pipeline_id, outcome, False)
        except sa.exc.IntegrityError:
            # A concurrent redelivery won the race on the unique key: answer with its work.
            if delivery_key is None:
                raise
            with self.engine.begin() as conn:
                seen = self._delivery(conn, project_id, delivery_key)
            if seen is None:
                raise
            return seen

    def _delivery(self, conn: sa.Connection, project_id: int, key: str) -> Delivery | None:
        row = conn.execute(
            sa.select(webhook_deliveries).where(
                webhook_deliveries.c.project_id == project_id,
                webhook_deliveries.c.delivery_key == key,
            )
        ).first()
        if row is None:
            return None
        return Delivery(row.id, row.pipeline_id, row.outcome, True)

    def deliveries(self, project_id: int) -> int:
        with self.reads.begin() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).where(webhook_deliveries.c.project_id == project_id)
            ).scalar_one()
            return int(count)

    def create(self, new: NewPipeline) -> Pipeline:
        with self.engine.begin() as conn:
            pipeline_id = _insert_pipeline(conn, new)
            return row_to_pipeline(
                conn.execute(sa.select(pipelines).where(pipelines.c.id == pipeline_id)).one()
            )

    def get(self, pipeline_id: int) -> Pipeline:
        with self.reads.begin() as conn:
            row = conn.execute(sa.select(pipelines).where(pipelines.c.id == pipeline_id)).first()
        if row is None:
            raise NotFound(f"pipeline {pipeline_id} does not exist")
        return row_to_pipeline(row)

    def recent(
        self,
        project_id: int | None = None,
        status: Status | None = None,
        limit: int = 50,
        among: Collection[int] | None = None,
    ) -> list[Pipeline]:
        """The newest pipelines, of one project or of those ``among`` (None: all)."""
        query = sa.select(pipelines).order_by(pipelines.c.id.desc()).limit(limit)
        if project_id is not None:
            query = query.where(pipelines.c.project_id == project_id)
        if among is not None:
            query = query.where(pipelines.c.project_id.in_(among))
        if status is not None:
            query = query.where(pipelines.c.status == status.value)
        with self.reads.begin() as conn:
            return [row_to_pipeline(row) for row in conn.execute(query)]

    def count(self) -> int:
        with self.reads.begin() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(pipelines)).scalar_one())

    def to_plan(self) -> list[Pipeline]:
        """Pipelines whose jobs are not yet read from their pipeline file."""
        # "= false", not "NOT planned": SQLite uses the index only for a comparison.
        query = (
            sa.select(pipelines).where(pipelines.c.planned == sa.false()).order_by(pipelines.c.id)
        )
        with self.reads.begin() as conn:
            return [row_to_pipeline(row) for row in conn.execute(query)]

    def open_ids(self) -> list[int]:
        """Planned pipelines that have not finished, by id."""
        query = (
            sa.select(pipelines.c.id)
            .where(pipelines.c.planned, pipelines.c.status.in_(_OPEN))
            .order_by(pipelines.c.id)
        )
        with self.reads.begin() as conn:
            return [int(pipeline_id) for pipeline_id in conn.execute(query).scalars()]

    def due_ids(self) -> list[int]:
        """Pipelines due to be advanced (one of their jobs changed), the oldest first,
        at most ``DUE_PER_PASS``."""
        query = (
            sa.select(pipelines.c.id)
            .where(pipelines.c.advance_due == sa.true())
            .order_by(pipelines.c.id)
            .limit(DUE_PER_PASS)
        )
        with self.reads.begin() as conn:
            return [int(pipeline_id) for pipeline_id in conn.execute(query).scalars()]

    def clear_due(self, pipeline_id: int) -> None:
        """No longer due: said just before the engine advances it, so a change made
        meanwhile makes it due again, and one that was never advanced stays due."""
        with self.engine.begin() as conn:
            conn.execute(
                pipelines.update()
                .where(pipelines.c.id == pipeline_id, pipelines.c.advance_due == sa.true())
                .values(advance_due=False)
            )

    def add_jobs(self, pipeline_id: int, drafts: Sequence[JobDraft]) -> None:
        """Store the jobs the pipeline file declares, once; later calls do nothing."""
        now = utcnow()
        with self.engine.begin() as conn:
            planned = conn.execute(
                sa.select(pipelines.c.planned).where(pipelines.c.id == pipeline_id)
            ).scalar_one()
            if planned:
                return
            conn.execute(
                jobs.insert(),
                [
                    {
                        "pipeline_id": pipeline_id,
                        "name": draft.name,
                        "stage": draft.stage,
                        "stage_index": draft.stage_index,
                        "image": draft.image,
                        "script": list(draft.script),
                        "variables": draft.variables,
                        "timeout_seconds": draft.timeout_seconds,
                        "queue": draft.queue,
                        "kind": draft.kind,
                        "needs": list(draft.needs) if draft.needs is not None else None,
                        "when": draft.when,
                        "allow_failure": draft.allow_failure,
                        "retry_max": draft.retry_max,
                        "retry_on": list(draft.retry_on),
                        "environment": draft.environment,
                        "secrets": list(draft.secrets),
                        "settings": draft.settings,
                        "status": Status.CREATED.value,
                        "attempt": 1,
                        "retried": False,
                        "log_length": 0,
                        "created_at": now,
                    }
                    for draft in drafts
                ],
            )
            conn.execute(
                pipelines.update()
                .where(pipelines.c.id == pipeline_id)
                .values(planned=True, advance_due=True)
            )

    def end_unplanned(self, pipeline_id: int, status: Status, error: str) -> None:
        """End a pipeline before it has jobs: its file is missing or invalid (failed),
        no job's rules match (skipped), or a newer pipeline replaced it (canceled)."""
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                pipelines.update()
                .where(pipelines.c.id == pipeline_id, ~pipelines.c.planned)
                .values(planned=True, status=status.value, error=error, finished_at=now)
            )

    def note(self, pipeline_id: int, error: str) -> None:
        """Say why a planned pipeline ended as it did (superseded, canceled by whom)."""
        with self.engine.begin() as conn:
            conn.execute(
                pipelines.update().where(pipelines.c.id == pipeline_id).values(error=error)
            )

    def older_open(self, pipeline: Pipeline) -> list[Pipeline]:
        """Open pipelines of the same project and ref made before ``pipeline``."""
        query = (
            sa.select(pipelines)
            .where(
                pipelines.c.project_id == pipeline.project_id,
                pipelines.c.ref_kind == pipeline.ref.kind.value,
                pipelines.c.ref_name == pipeline.ref.name,
                pipelines.c.id < pipeline.id,
                pipelines.c.status.in_(_OPEN),
            )
            .order_by(pipelines.c.id)
        )
        with self.reads.begin() as conn:
            return [row_to_pipeline(row) for row in conn.execute(query)]

    def settle(self, pipeline_id: int) -> Status:
        """Set a pipeline's status to the merge of its jobs' statuses."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(jobs.c.status, jobs.c.allow_failure, jobs.c.retried).where(
                    jobs.c.pipeline_id == pipeline_id
                )
            ).all()
            statuses = [(Status(r.status), r.allow_failure) for r in rows if not r.retried]
            ran_before = any(r.retried for r in rows)
            row = conn.execute(sa.select(pipelines).where(pipelines.c.id == pipeline_id)).one()
            status = merge(statuses, started=ran_before)
            changes: dict[str, Any] = {"status": status.value}
            if status is not Status.CREATED and row.started_at is None:
                changes["started_at"] = utcnow()
            if status.is_finished:
                changes["finished_at"] = row.finished_at or utcnow()
            else:
                changes["finished_at"] = None
            if any(row._mapping[column] != value for column, value in changes.items()):
                # Written only when it changed: most passes over a waiting pipeline
                # change nothing, and a write takes the database's write lock.
                conn.execute(
                    pipelines.update().where(pipelines.c.id == pipeline_id).values(changes)
                )
            return status
