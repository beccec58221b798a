"""Artifacts attached to a pipeline (test reports, scan reports, compose files), and
the test cases read from its JUnit reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pipelines.errors import NotFound
from pipelines.junit import CaseResult, Outcome
from pipelines.model import Pipeline
from server.store.tables import artifacts, jobs, pipelines, test_cases, utcnow


@dataclass(frozen=True)
class Artifact:
    id: int
    pipeline_id: int
    job_id: int
    kind: str
    name: str
    media_type: str
    size: int
    created_at: datetime


@dataclass(frozen=True)
class StoredCase:
    job_id: int
    job_name: str
    case: CaseResult


def _artifact(row: sa.Row[Any]) -> Artifact:
    return Artifact(
        id=row.id,
        pipeline_id=row.pipeline_id,
        job_id=row.job_id,
        kind=row.kind,
        name=row.name,
        media_type=row.media_type,
        size=row.size,
        created_at=row.created_at,
    )


_LISTED = [column for column in artifacts.c if column.name != "content"]


class ArtifactRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def attach(
        self,
        pipeline_id: int,
        job_id: int,
        kind: str,
        name: str,
        media_type: str,
        content: bytes,
        cases: Sequence[CaseResult] = (),
    ) -> Artifact:
        """Store an artifact and the test cases read from it, in one transaction; a
        resend of the same job, kind and name replaces them."""
        with self.engine.begin() as conn:
            old = conn.execute(
                sa.select(artifacts.c.id).where(
                    artifacts.c.job_id == job_id, artifacts.c.kind == kind, artifacts.c.name == name
                )
            ).scalar_one_or_none()
            if old is not None:
                conn.execute(test_cases.delete().where(test_cases.c.artifact_id == old))
                conn.execute(artifacts.delete().where(artifacts.c.id == old))
            result = conn.execute(
                artifacts.insert().values(
                    pipeline_id=pipeline_id,
                    job_id=job_id,
                    kind=kind,
                    name=name,
                    media_type=media_type,
                    content=content,
                    size=len(content),
                    created_at=utcnow(),
                )
            )
            assert result.inserted_primary_key is not None
            artifact_id = int(result.inserted_primary_key[0])
            if cases:
                conn.execute(
                    test_cases.insert(),
                    [
                        {
                            "job_id": job_id,
                            "artifact_id": artifact_id,
                            "suite": case.suite[:500],
                            "classname": case.classname[:500],
                            "name": case.name[:500],
                            "outcome": case.outcome.value,
                            "seconds": case.seconds,
                            "message": case.message,
                        }
                        for case in cases
                    ],
                )
            row = conn.execute(sa.select(*_LISTED).where(artifacts.c.id == artifact_id)).one()
            return _artifact(row)

    def of_pipeline(self, pipeline_id: int) -> list[Artifact]:
        query = sa.select(*_LISTED).where(artifacts.c.pipeline_id == pipeline_id)
        with self.engine.begin() as conn:
            return [_artifact(row) for row in conn.execute(query.order_by(artifacts.c.id))]

    def of_job(self, job_id: int) -> list[Artifact]:
        query = sa.select(*_LISTED).where(artifacts.c.job_id == job_id)
        with self.engine.begin() as conn:
            return [_artifact(row) for row in conn.execute(query.order_by(artifacts.c.id))]

    def previous(self, pipeline: Pipeline, kind: str, name: str) -> bytes | None:
        """The newest such artifact of an earlier pipeline of the same project and
        ref: what a new scan is compared with."""
        query = (
            sa.select(artifacts.c.content)
            .join(pipelines, pipelines.c.id == artifacts.c.pipeline_id)
            .where(
                pipelines.c.project_id == pipeline.project_id,
                pipelines.c.ref_kind == pipeline.ref.kind.value,
                pipelines.c.ref_name == pipeline.ref.name,
                pipelines.c.id < pipeline.id,
                artifacts.c.kind == kind,
                artifacts.c.name == name,
            )
            .order_by(artifacts.c.id.desc())
            .limit(1)
        )
        with self.engine.begin() as conn:
            content = conn.execute(query).scalar_one_or_none()
        return bytes(content) if content is not None else None

    def content(self, artifact_id: int) -> tuple[Artifact, bytes]:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(artifacts).where(artifacts.c.id == artifact_id)).first()
        if row is None:
            raise NotFound(f"artifact {artifact_id} does not exist")
        return _artifact(row), bytes(row.content)

    def project_of(self, artifact_id: int) -> int:
        query = (
            sa.select(pipelines.c.project_id)
            .join(artifacts, artifacts.c.pipeline_id == pipelines.c.id)
            .where(artifacts.c.id == artifact_id)
        )
        with self.engine.begin() as conn:
            project_id = conn.execute(query).scalar_one_or_none()
        if project_id is None:
            raise NotFound(f"artifact {artifact_id} does not exist")
        return int(project_id)

    def cases_of_job(self, job_id: int) -> list[CaseResult]:
        query = sa.select(test_cases).where(test_cases.c.job_id == job_id)
        with self.engine.begin() as conn:
            return [_case(row) for row in conn.execute(query.order_by(test_cases.c.id))]

    def cases_of_pipeline(self, pipeline_id: int) -> list[StoredCase]:
        """Test cases of the latest attempt of every job of the pipeline."""
        query = (
            sa.select(test_cases, jobs.c.name.label("job_name"))
            .join(jobs, jobs.c.id == test_cases.c.job_id)
            .where(jobs.c.pipeline_id == pipeline_id, ~jobs.c.retried)
            .order_by(test_cases.c.id)
        )
        with self.engine.begin() as conn:
            return [StoredCase(row.job_id, row.job_name, _case(row)) for row in conn.execute(query)]


def _case(row: sa.Row[Any]) -> CaseResult:
    return CaseResult(
        suite=row.suite,
        classname=row.classname,
        name=row.name,
        outcome=Outcome(row.outcome),
        seconds=row.seconds,
        message=row.message,
    )
