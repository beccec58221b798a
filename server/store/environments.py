"""Environments a project deploys to, and which job holds each one now."""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.status import ACTIVE
from server.store.database import read_only
from server.store.tables import environment_locks, jobs


class EnvironmentRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.reads = read_only(engine)

    def held(self, project_id: int) -> dict[str, int]:
        """Environment -> the pending or running job that holds it."""
        query = (
            sa.select(environment_locks.c.environment, environment_locks.c.job_id)
            .join(jobs, jobs.c.id == environment_locks.c.job_id)
            .where(
                environment_locks.c.project_id == project_id,
                jobs.c.status.in_([status.value for status in ACTIVE]),
            )
        )
        with self.reads.begin() as conn:
            return {row.environment: row.job_id for row in conn.execute(query)}
