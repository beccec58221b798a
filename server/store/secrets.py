"""Secret variables of a project, per environment, stored sealed.

The repository sees only ciphertext; :mod:`server.usecases.secrets` seals and
opens values. ``ANY_ENVIRONMENT`` ("*") holds the value every job gets unless its
environment has its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from pipelines.errors import NotFound
from server.store.tables import secrets, utcnow

ANY_ENVIRONMENT = "*"


@dataclass(frozen=True)
class SecretEntry:
    """A secret's name and where it applies, never its value."""

    name: str
    environment: str
    updated_by: str
    updated_at: datetime


class SecretRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def put(
        self, project_id: int, environment: str, name: str, ciphertext: str, actor: str
    ) -> bool:
        """Store a sealed value; True when it is new, False when it replaced one."""
        key = (
            (secrets.c.project_id == project_id)
            & (secrets.c.environment == environment)
            & (secrets.c.name == name)
        )
        values = {"ciphertext": ciphertext, "updated_by": actor, "updated_at": utcnow()}
        with self.engine.begin() as conn:
            updated = conn.execute(secrets.update().where(key).values(values))
            if updated.rowcount:
                return False
            conn.execute(
                secrets.insert().values(
                    project_id=project_id, environment=environment, name=name, **values
                )
            )
            return True

    def delete(self, project_id: int, environment: str, name: str) -> None:
        with self.engine.begin() as conn:
            deleted = conn.execute(
                secrets.delete().where(
                    secrets.c.project_id == project_id,
                    secrets.c.environment == environment,
                    secrets.c.name == name,
                )
            )
        if deleted.rowcount == 0:
            raise NotFound(f"secret {name} ({environment}) does not exist")

    def entries(self, project_id: int) -> list[SecretEntry]:
        query = (
            sa.select(
                secrets.c.name, secrets.c.environment, secrets.c.updated_by, secrets.c.updated_at
            )
            .where(secrets.c.project_id == project_id)
            .order_by(secrets.c.name, secrets.c.environment)
        )
        with self.engine.begin() as conn:
            return [
                SecretEntry(row.name, row.environment, row.updated_by, row.updated_at)
                for row in conn.execute(query)
            ]

    def sealed_for(
        self, project_id: int, environment: str | None, names: tuple[str, ...]
    ) -> dict[str, str]:
        """Name -> ciphertext for the names asked; an environment's own value wins
        over the one for every environment. Names without a value are absent."""
        if not names:
            return {}
        scopes = [ANY_ENVIRONMENT] if environment is None else [ANY_ENVIRONMENT, environment]
        query = sa.select(secrets.c.name, secrets.c.environment, secrets.c.ciphertext).where(
            secrets.c.project_id == project_id,
            secrets.c.name.in_(names),
            secrets.c.environment.in_(scopes),
        )
        found: dict[str, str] = {}
        with self.engine.begin() as conn:
            for row in conn.execute(query):
                if row.name not in found or row.environment != ANY_ENVIRONMENT:
                    found[row.name] = row.ciphertext
        return found
