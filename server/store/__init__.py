"""Persistence: one :class:`Store` per process, made of a repository per concept.

Every method runs in its own transaction and is safe to call from any thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from server.store.artifacts import ArtifactRepository
from server.store.audit import AuditLog
from server.store.database import create_engine, upgrade
from server.store.deployments import DEFAULT_HOST_PORTS, DeploymentRepository
from server.store.environments import EnvironmentRepository
from server.store.gitlab_reports import GitLabReportRepository
from server.store.images import ImageRepository
from server.store.jobs import JobRepository
from server.store.logs import LogRepository
from server.store.pipelines import PipelineRepository
from server.store.projects import ProjectRepository
from server.store.protections import ProtectionRepository
from server.store.releases import ReleaseRepository
from server.store.runners import RunnerRepository
from server.store.secrets import SecretRepository
from server.store.stats import StatsRepository
from server.store.users import RunnerTokenRepository, UserRepository


@dataclass(frozen=True)
class Store:
    engine: sa.Engine
    projects: ProjectRepository
    pipelines: PipelineRepository
    jobs: JobRepository
    logs: LogRepository
    runners: RunnerRepository
    secrets: SecretRepository
    environments: EnvironmentRepository
    images: ImageRepository
    artifacts: ArtifactRepository
    deployments: DeploymentRepository
    releases: ReleaseRepository
    gitlab_reports: GitLabReportRepository
    stats: StatsRepository
    users: UserRepository
    runner_tokens: RunnerTokenRepository
    protections: ProtectionRepository
    audit: AuditLog

    @classmethod
    def open(cls, url: str, migrate: bool = True, host_ports: range = DEFAULT_HOST_PORTS) -> Store:
        engine = create_engine(url)
        if migrate:
            upgrade(engine)
        return cls(
            engine=engine,
            projects=ProjectRepository(engine),
            pipelines=PipelineRepository(engine),
            jobs=JobRepository(engine),
            logs=LogRepository(engine),
            runners=RunnerRepository(engine),
            secrets=SecretRepository(engine),
            environments=EnvironmentRepository(engine),
            images=ImageRepository(engine),
            artifacts=ArtifactRepository(engine),
            deployments=DeploymentRepository(engine, host_ports),
            releases=ReleaseRepository(engine),
            gitlab_reports=GitLabReportRepository(engine),
            stats=StatsRepository(engine),
            users=UserRepository(engine),
            runner_tokens=RunnerTokenRepository(engine),
            protections=ProtectionRepository(engine),
            audit=AuditLog(engine),
        )

    def unreachable(self) -> str | None:
        """Why the database does not answer a trivial query; None when it does."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            return str(exc).splitlines()[0]
        return None

    def close(self) -> None:
        self.engine.dispose()
