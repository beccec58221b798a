"""Projects: the applications Shipway builds.

What every webhook delivery asks (is the token some project's secret, which project
has this path, what is its secret) is answered from a snapshot of the projects, read
again when it is older than ``SNAPSHOT_SECONDS`` and at once after this process
changed a project: a delivery then costs one write transaction instead of three
reads and a write. Another server's change shows here within ``SNAPSHOT_SECONDS``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from pipelines.errors import Conflict, NotFound
from pipelines.model import Project
from server.store.database import read_only
from server.store.tables import projects, utcnow


def _project(row: sa.Row[tuple[object, ...]]) -> Project:
    values = row._mapping
    return Project(
        id=values["id"],
        name=values["name"],
        clone_url=values["clone_url"],
        gitlab_path=values["gitlab_path"],
        branches=tuple(values["branches"]),
        tags=tuple(values["tags"]),
        created_at=values["created_at"],
        supersede=values["supersede"],
    )


SNAPSHOT_SECONDS = 1.0


@dataclass(frozen=True)
class _Snapshot:
    taken: float  # time.monotonic()
    generation: int  # of this process's changes, when it was read
    by_path: dict[str, Project]
    secrets: dict[int, str]  # project id -> webhook secret


class ProjectRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.reads = read_only(engine)
        self._snapshot: _Snapshot | None = None
        # Counts this process's changes: a snapshot read while one was being made
        # (older than it) is never used.
        self._generation = 0

    def _changed(self) -> None:
        self._generation += 1
        self._snapshot = None

    def _fresh(self) -> _Snapshot | None:
        snapshot = self._snapshot
        if (
            snapshot is None
            or snapshot.generation != self._generation
            or time.monotonic() - snapshot.taken > SNAPSHOT_SECONDS
        ):
            return None
        return snapshot

    def _current(self) -> _Snapshot:
        snapshot = self._fresh()
        if snapshot is None:
            taken, generation = time.monotonic(), self._generation
            with self.reads.begin() as conn:
                rows = conn.execute(sa.select(projects)).all()
            snapshot = _Snapshot(
                taken,
                generation,
                {row.gitlab_path: _project(row) for row in rows},
                {row.id: str(row.webhook_secret) for row in rows},
            )
            self._snapshot = snapshot
        return snapshot

    def create(
        self,
        name: str,
        clone_url: str,
        gitlab_path: str,
        webhook_secret: str,
        branches: tuple[str, ...],
        tags: tuple[str, ...],
        supersede: bool = False,
    ) -> Project:
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.select(projects.c.name).where(
                    (projects.c.name == name) | (projects.c.gitlab_path == gitlab_path)
                )
            ).first()
            if taken is not None:
                raise Conflict(f"a project named {name!r} or with path {gitlab_path!r} exists")
            project_id = conn.execute(
                projects.insert().values(
                    name=name,
                    clone_url=clone_url,
                    gitlab_path=gitlab_path,
                    webhook_secret=webhook_secret,
                    branches=list(branches),
                    tags=list(tags),
                    supersede=supersede,
                    created_at=utcnow(),
                )
            ).inserted_primary_key
            assert project_id is not None
            row = conn.execute(sa.select(projects).where(projects.c.id == project_id[0])).one()
        self._changed()
        return _project(row)

    def update(
        self,
        name: str,
        *,
        branches: tuple[str, ...] | None = None,
        tags: tuple[str, ...] | None = None,
        supersede: bool | None = None,
    ) -> Project:
        """Change the settings given; the others stay."""
        changes: dict[str, object] = {}
        if branches is not None:
            changes["branches"] = list(branches)
        if tags is not None:
            changes["tags"] = list(tags)
        if supersede is not None:
            changes["supersede"] = supersede
        with self.engine.begin() as conn:
            if changes:
                conn.execute(projects.update().where(projects.c.name == name).values(changes))
            row = conn.execute(sa.select(projects).where(projects.c.name == name)).first()
        self._changed()
        if row is None:
            raise NotFound(f"project {name!r} does not exist")
        return _project(row)

    def get(self, project_id: int) -> Project:
        return self._one(projects.c.id == project_id, f"project {project_id}")

    def by_name(self, name: str) -> Project:
        return self._one(projects.c.name == name, f"project {name!r}")

    def by_gitlab_path(self, path: str) -> Project:
        project = self._current().by_path.get(path)
        if project is None:
            raise NotFound(f"project {path!r} does not exist")
        return project

    def all(self) -> list[Project]:
        with self.reads.begin() as conn:
            rows = conn.execute(sa.select(projects).order_by(projects.c.name))
            return [_project(row) for row in rows]

    def webhook_secret(self, project_id: int) -> str:
        secret = self._current().secrets.get(project_id)
        if secret is None:
            raise NotFound(f"project {project_id} does not exist")
        return secret

    def webhook_secrets(self) -> list[str]:
        """Every project's webhook secret: a delivery's token must be one of them
        before its body is read."""
        return list(self._current().secrets.values())

    def cached_webhook_secrets(self) -> list[str] | None:
        """:meth:`webhook_secrets` when the snapshot answers without a read, else None:
        the event loop may call it, as it never waits for the database."""
        snapshot = self._fresh()
        return None if snapshot is None else list(snapshot.secrets.values())

    def _one(self, condition: sa.ColumnElement[bool], what: str) -> Project:
        with self.reads.begin() as conn:
            row = conn.execute(sa.select(projects).where(condition)).first()
        if row is None:
            raise NotFound(f"{what} does not exist")
        return _project(row)
