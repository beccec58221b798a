"""Runners, as their heartbeats describe them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pipelines.model import Runner
from server.store.tables import runners, utcnow


def _runner(row: sa.Row[Any]) -> Runner:
    values = row._mapping
    return Runner(
        name=values["name"],
        queues=tuple(values["queues"]),
        host=values["host"],
        pid=values["pid"],
        current_job_id=values["current_job_id"],
        first_seen=values["first_seen"],
        last_seen=values["last_seen"],
        problem=values["problem"],
    )


class RunnerRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def heartbeat(
        self,
        name: str,
        queues: tuple[str, ...],
        host: str,
        pid: int,
        current_job_id: int | None,
        problem: str | None = None,
    ) -> Runner:
        """Record a heartbeat; the first one of a name registers the runner."""
        now = utcnow()
        values = {
            "queues": list(queues),
            "host": host,
            "pid": pid,
            "current_job_id": current_job_id,
            "last_seen": now,
            "problem": problem,
        }
        with self.engine.begin() as conn:
            updated = conn.execute(runners.update().where(runners.c.name == name).values(values))
            if updated.rowcount == 0:
                conn.execute(runners.insert().values(name=name, first_seen=now, **values))
            return _runner(conn.execute(sa.select(runners).where(runners.c.name == name)).one())

    def all(self) -> list[Runner]:
        with self.engine.begin() as conn:
            return [
                _runner(row) for row in conn.execute(sa.select(runners).order_by(runners.c.name))
            ]
