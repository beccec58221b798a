"""What was reported to GitLab, so each report is sent once and retried when it
failed: a pipeline's commit status, a merge request's note per deploy job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pipelines.gitlab_feedback import Delivery
from pipelines.model import Job, Pipeline
from pipelines.status import Status
from server.store.jobs import row_to_job
from server.store.pipelines import row_to_pipeline
from server.store.tables import gitlab_reports, jobs, pipelines, utcnow

STATUS = "status"


def note_subject(job_id: int) -> str:
    return f"note:{job_id}"


@dataclass(frozen=True)
class StatusToReport:
    pipeline: Pipeline
    delivery: Delivery | None
    for_status: str | None  # the pipeline status GitLab was last told of


def _delivery(row: Any) -> Delivery | None:
    if row.r_attempts is None:
        return None
    return Delivery(row.r_sent, row.r_attempts, row.r_next_attempt_at, row.r_error)


_REPORT_COLUMNS = (
    gitlab_reports.c.sent.label("r_sent"),
    gitlab_reports.c.attempts.label("r_attempts"),
    gitlab_reports.c.next_attempt_at.label("r_next_attempt_at"),
    gitlab_reports.c.error.label("r_error"),
)


class GitLabReportRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def statuses_to_report(self, since: datetime) -> list[StatusToReport]:
        """Pipelines made since ``since`` whose status GitLab has not been told."""
        joined = pipelines.outerjoin(
            gitlab_reports,
            sa.and_(
                gitlab_reports.c.pipeline_id == pipelines.c.id,
                gitlab_reports.c.subject == STATUS,
            ),
        )
        query = (
            sa.select(pipelines, gitlab_reports.c.for_status.label("r_for"), *_REPORT_COLUMNS)
            .select_from(joined)
            .where(
                pipelines.c.created_at >= since,
                sa.or_(
                    gitlab_reports.c.for_status.is_(None),
                    gitlab_reports.c.for_status != pipelines.c.status,
                ),
            )
            .order_by(pipelines.c.id)
        )
        with self.engine.begin() as conn:
            return [
                StatusToReport(row_to_pipeline(row), _delivery(row), row.r_for)
                for row in conn.execute(query)
            ]

    def deploys_to_note(self, since: datetime) -> list[tuple[Pipeline, Job, Delivery | None]]:
        """Deploy jobs of merge-request pipelines that succeeded, with their note's
        delivery when one was tried."""
        query = (
            sa.select(pipelines.c.id, jobs.c.id.label("job_id"))
            .select_from(pipelines.join(jobs, jobs.c.pipeline_id == pipelines.c.id))
            .where(
                pipelines.c.created_at >= since,
                pipelines.c.merge_request_iid.is_not(None),
                jobs.c.kind == "deploy",
                jobs.c.status == Status.SUCCESS.value,
                ~jobs.c.retried,
            )
        )
        found = []
        with self.engine.begin() as conn:
            for pipeline_id, job_id in conn.execute(query).all():
                report = conn.execute(
                    sa.select(*_REPORT_COLUMNS).where(
                        gitlab_reports.c.pipeline_id == pipeline_id,
                        gitlab_reports.c.subject == note_subject(job_id),
                    )
                ).first()
                delivery = _delivery(report) if report is not None else None
                if delivery is not None and delivery.sent is not None:
                    continue
                pipeline = row_to_pipeline(
                    conn.execute(sa.select(pipelines).where(pipelines.c.id == pipeline_id)).one()
                )
                job = row_to_job(conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one())
                found.append((pipeline, job, delivery))
        return found

    def record(
        self, pipeline_id: int, subject: str, delivery: Delivery, for_status: str | None = None
    ) -> None:
        values = {
            "for_status": for_status,
            "sent": delivery.sent,
            "attempts": delivery.attempts,
            "next_attempt_at": delivery.next_attempt_at,
            "error": delivery.error,
            "updated_at": utcnow(),
        }
        with self.engine.begin() as conn:
            updated = conn.execute(
                gitlab_reports.update()
                .where(
                    gitlab_reports.c.pipeline_id == pipeline_id,
                    gitlab_reports.c.subject == subject,
                )
                .values(values)
            )
            if updated.rowcount == 0:
                conn.execute(
                    gitlab_reports.insert().values(
                        pipeline_id=pipeline_id, subject=subject, **values
                    )
                )

    def of_pipeline(self, pipeline_id: int) -> dict[str, Delivery]:
        query = sa.select(gitlab_reports.c.subject, *_REPORT_COLUMNS).where(
            gitlab_reports.c.pipeline_id == pipeline_id
        )
        with self.engine.begin() as conn:
            return {
                row.subject: Delivery(
                    row.r_sent, row.r_attempts, row.r_next_attempt_at, row.r_error
                )
                for row in conn.execute(query)
            }
