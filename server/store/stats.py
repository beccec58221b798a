"""Counts for the metrics endpoint (X4), read when Prometheus scrapes."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from server.store.tables import gitlab_reports, jobs, pipelines, projects, releases


class StatsRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def pipelines_by_status(self) -> dict[tuple[str, str], int]:
        """(project, status) -> how many pipelines."""
        query = (
            sa.select(projects.c.name, pipelines.c.status, sa.func.count())
            .select_from(pipelines.join(projects, projects.c.id == pipelines.c.project_id))
            .group_by(projects.c.name, pipelines.c.status)
        )
        with self.engine.begin() as conn:
            return {(name, status): count for name, status, count in conn.execute(query)}

    def jobs_by_status(self) -> dict[str, int]:
        query = sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status)
        with self.engine.begin() as conn:
            return {status: count for status, count in conn.execute(query)}

    def releases_by_status(self) -> dict[tuple[str, str, str], int]:
        """(project, environment, status) -> how many releases."""
        query = (
            sa.select(projects.c.name, releases.c.environment, releases.c.status, sa.func.count())
            .select_from(releases.join(projects, projects.c.id == releases.c.project_id))
            .group_by(projects.c.name, releases.c.environment, releases.c.status)
        )
        with self.engine.begin() as conn:
            return {(p, e, s): count for p, e, s, count in conn.execute(query)}

    def pipeline_durations(self, since: datetime) -> list[float]:
        """Seconds from creation to the end of pipelines that finished since ``since``."""
        query = sa.select(pipelines.c.created_at, pipelines.c.finished_at).where(
            pipelines.c.finished_at >= since
        )
        with self.engine.begin() as conn:
            return [
                (finished - created).total_seconds()
                for created, finished in conn.execute(query)
                if created is not None and finished is not None
            ]

    def gitlab_reports_failing(self) -> int:
        """Reports GitLab has not taken yet after at least one attempt."""
        query = sa.select(sa.func.count()).where(gitlab_reports.c.attempts > 0)
        with self.engine.begin() as conn:
            return int(conn.execute(query).scalar_one())
