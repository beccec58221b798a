"""The audit log: who did what, when, and how it ended. Rows are only ever added."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from server.store.tables import audit_log, utcnow


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any]


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
        row = {
            "at": utcnow(),
            "actor": actor,
            "action": action,
            "target": target,
            "outcome": outcome,
            "detail": detail or {},
        }
        if connection is not None:
            connection.execute(audit_log.insert().values(row))
            return
        with self.engine.begin() as conn:
            conn.execute(audit_log.insert().values(row))

    def recent(self, limit: int = 100, action: str | None = None) -> list[AuditEntry]:
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if action is not None:
            query = query.where(audit_log.c.action == action)
        with self.engine.begin() as conn:
            return [AuditEntry(**row._mapping) for row in conn.execute(query)]
