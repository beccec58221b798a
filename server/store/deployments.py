"""Deployment configurations (a new version per change) and host ports (D4)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pipelines.errors import Conflict, NotFound
from server.store.tables import deploy_configs, port_allocations, utcnow

DEFAULT_HOST_PORTS = range(20000, 30000)  # SHIPWAY_HOST_PORTS changes it


@dataclass(frozen=True)
class StoredConfig:
    environment: str
    version: int
    config: dict[str, Any]
    created_by: str
    created_at: datetime


def _stored(row: sa.Row[Any]) -> StoredConfig:
    return StoredConfig(row.environment, row.version, row.config, row.created_by, row.created_at)


class DeploymentRepository:
    def __init__(self, engine: sa.Engine, host_ports: range = DEFAULT_HOST_PORTS) -> None:
        self.engine = engine
        self.host_ports = host_ports

    def save_config(
        self, project_id: int, environment: str, config: dict[str, Any], actor: str
    ) -> StoredConfig:
        """Store a new version; the same configuration as the current one is not a
        new version."""
        with self.engine.begin() as conn:
            current = self._current(conn, project_id, environment)
            if current is not None and current.config == config:
                return current
            version = (current.version if current else 0) + 1
            conn.execute(
                deploy_configs.insert().values(
                    project_id=project_id,
                    environment=environment,
                    version=version,
                    config=config,
                    created_by=actor,
                    created_at=utcnow(),
                )
            )
            stored = self._current(conn, project_id, environment)
            assert stored is not None
            return stored

    def config(self, project_id: int, environment: str, version: int | None = None) -> StoredConfig:
        with self.engine.begin() as conn:
            if version is None:
                found = self._current(conn, project_id, environment)
            else:
                row = conn.execute(
                    sa.select(deploy_configs).where(
                        deploy_configs.c.project_id == project_id,
                        deploy_configs.c.environment == environment,
                        deploy_configs.c.version == version,
                    )
                ).first()
                found = _stored(row) if row is not None else None
        if found is None:
            which = f"version {version}" if version is not None else "configuration"
            raise NotFound(f"environment {environment} has no deployment {which}")
        return found

    def history(self, project_id: int, environment: str) -> list[StoredConfig]:
        query = (
            sa.select(deploy_configs)
            .where(
                deploy_configs.c.project_id == project_id,
                deploy_configs.c.environment == environment,
            )
            .order_by(deploy_configs.c.version.desc())
        )
        with self.engine.begin() as conn:
            return [_stored(row) for row in conn.execute(query)]

    def _current(
        self, conn: sa.Connection, project_id: int, environment: str
    ) -> StoredConfig | None:
        row = conn.execute(
            sa.select(deploy_configs)
            .where(
                deploy_configs.c.project_id == project_id,
                deploy_configs.c.environment == environment,
            )
            .order_by(deploy_configs.c.version.desc())
            .limit(1)
        ).first()
        return _stored(row) if row is not None else None

    def ports(self, project_id: int, environment: str) -> dict[tuple[int, int], int]:
        """The host ports allocated, by (instance index, container port)."""
        query = sa.select(port_allocations).where(
            port_allocations.c.project_id == project_id,
            port_allocations.c.environment == environment,
        )
        with self.engine.begin() as conn:
            return {
                (row.instance, row.container_port): row.host_port for row in conn.execute(query)
            }

    def allocate_ports(
        self,
        project_id: int,
        environment: str,
        wanted: Iterable[tuple[int, int]],
        in_use: Callable[[int], bool] = lambda port: False,
    ) -> dict[tuple[int, int], int]:
        """A host port for each (instance, container port): the one it had, or the
        lowest free one of ``host_ports`` that ``in_use`` does not report taken on the
        host. The primary key makes two allocations of one port impossible."""
        result: dict[tuple[int, int], int] = {}
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(port_allocations).where(
                    port_allocations.c.project_id == project_id,
                    port_allocations.c.environment == environment,
                )
            )
            mine = {(row.instance, row.container_port): row.host_port for row in rows}
            taken = set(conn.execute(sa.select(port_allocations.c.host_port)).scalars())
            for key in wanted:
                if key in mine:
                    result[key] = mine[key]
                    continue
                port = next((p for p in self.host_ports if p not in taken and not in_use(p)), None)
                if port is None:
                    first, last = self.host_ports.start, self.host_ports.stop - 1
                    raise Conflict(f"no free host port left in {first}-{last}")
                conn.execute(
                    port_allocations.insert().values(
                        host_port=port,
                        project_id=project_id,
                        environment=environment,
                        instance=key[0],
                        container_port=key[1],
                        allocated_at=utcnow(),
                    )
                )
                taken.add(port)
                result[key] = port
        return result
