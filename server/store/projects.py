"""Projects: the applications Shipway builds."""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.errors import Conflict, NotFound
from pipelines.model import Project
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


class ProjectRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

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
        if row is None:
            raise NotFound(f"project {name!r} does not exist")
        return _project(row)

    def get(self, project_id: int) -> Project:
        return self._one(projects.c.id == project_id, f"project {project_id}")

    def by_name(self, name: str) -> Project:
        return self._one(projects.c.name == name, f"project {name!r}")

    def by_gitlab_path(self, path: str) -> Project:
        return self._one(projects.c.gitlab_path == path, f"project {path!r}")

    def all(self) -> list[Project]:
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(projects).order_by(projects.c.name))
            return [_project(row) for row in rows]

    def webhook_secret(self, project_id: int) -> str:
        with self.engine.begin() as conn:
            secret = conn.execute(
                sa.select(projects.c.webhook_secret).where(projects.c.id == project_id)
            ).scalar_one()
            return str(secret)

    def webhook_secrets(self) -> list[str]:
        """Every project's webhook secret: a delivery's token must be one of them
        before its body is read."""
        with self.engine.begin() as conn:
            return [str(secret) for secret in conn.scalars(sa.select(projects.c.webhook_secret))]

    def _one(self, condition: sa.ColumnElement[bool], what: str) -> Project:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(projects).where(condition)).first()
        if row is None:
            raise NotFound(f"{what} does not exist")
        return _project(row)
