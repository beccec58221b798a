"""The audit log: who did what, when, and how it ended. Rows are only ever added:
nothing in the store or the API changes or deletes one.

Each row also says in which project (and environment) it happened, for filtering.
Callers name their target the one way the code writes it ("job 7", "pipeline 3",
"release 2", "project shop"); the project and environment are looked up from it
when the row is written, so that every caller need not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from server.store.tables import audit_log, jobs, pipelines, projects, releases, utcnow

_TARGET = re.compile(r"^(job|pipeline|release|project) (\S+)$")


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any]
    project: str | None = None
    environment: str | None = None


@dataclass(frozen=True)
class AuditFilter:
    """What to look for; every field left None matches everything."""

    actor: str | None = None
    project: str | None = None
    environment: str | None = None
    action: str | None = None  # an action ("release.create") or its kind ("release")
    since: datetime | None = None
    until: datetime | None = None


def _scope(
    conn: sa.Connection, target: str | None, detail: dict[str, Any]
) -> tuple[str | None, str | None]:
    """The project and environment a target belongs to (None where it has none)."""
    environment = detail.get("environment")
    environment = environment if isinstance(environment, str) else None
    match = _TARGET.match(target or "")
    if match is None:
        return None, environment
    kind, key = match.groups()
    if kind == "project":
        return key, environment
    if not key.isdigit():
        return None, environment
    if kind == "release":
        query = (
            sa.select(projects.c.name, releases.c.environment)
            .join(releases, releases.c.project_id == projects.c.id)
            .where(releases.c.id == int(key))
        )
        row = conn.execute(query).first()
        return (row.name, row.environment) if row is not None else (None, environment)
    pipeline_id = (
        sa.select(jobs.c.pipeline_id).where(jobs.c.id == int(key)).scalar_subquery()
        if kind == "job"
        else sa.literal(int(key))
    )
    name = conn.execute(
        sa.select(projects.c.name)
        .join(pipelines, pipelines.c.project_id == projects.c.id)
        .where(pipelines.c.id == pipeline_id)
    ).scalar_one_or_none()
    return name, environment


class AuditLog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(
        self,
        actor: str,
        action: str,
        outcome: str,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        connection: sa.Connection | None = None,
    ) -> None:
        if connection is not None:
            self._add(connection, actor, action, outcome, target, detail or {})
            return
        with self.engine.begin() as conn:
            self._add(conn, actor, action, outcome, target, detail or {})

    @staticmethod
    def _add(
        conn: sa.Connection,
        actor: str,
        action: str,
        outcome: str,
        target: str | None,
        detail: dict[str, Any],
    ) -> None:
        project, environment = _scope(conn, target, detail)
        conn.execute(
            audit_log.insert().values(
                at=utcnow(),
                actor=actor,
                action=action,
                target=target,
                outcome=outcome,
                detail=detail,
                project=project,
                environment=environment,
            )
        )

    def recent(self, limit: int = 100, action: str | None = None) -> list[AuditEntry]:
        return self.search(AuditFilter(action=action), limit)

    def search(
        self, where: AuditFilter, limit: int = 100, before_id: int | None = None
    ) -> list[AuditEntry]:
        """The newest entries matching ``where`` (older than ``before_id``, to page)."""
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        column = audit_log.c
        if where.actor is not None:
            query = query.where(column.actor == where.actor)
        if where.project is not None:
            query = query.where(column.project == where.project)
        if where.environment is not None:
            query = query.where(column.environment == where.environment)
        if where.action is not None:
            query = query.where(
                (column.action == where.action)
                | column.action.startswith(f"{where.action}.", autoescape=True)
            )
        if where.since is not None:
            query = query.where(column.at >= where.since)
        if where.until is not None:
            query = query.where(column.at < where.until)
        if before_id is not None:
            query = query.where(column.id < before_id)
        with self.engine.begin() as conn:
            return [AuditEntry(**row._mapping) for row in conn.execute(query)]
