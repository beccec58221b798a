"""A burst of 2,000 pushes' webhook deliveries against a real server process (SQLite):
each stored once, each pipeline planned, and the server's mirror fetched once for all
of them. How fast is bench/planning_burst.py's to say."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from server.store.tables import jobs, pipelines, webhook_deliveries
from tests.support.burst import send_pushes
from tests.support.git import Repository, fast_import_commits
from tests.support.services import Deployment, wait_until

PUSHES = 2000
SECRET = "burst-webhook-secret-0123456789"
PIPELINE_FILE = "image: busybox\njobs:\n  build:\n    script: [echo build]\n"


def count(database: sa.Engine, query: sa.Select[int]) -> int:
    with database.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_every_delivery_of_a_burst_is_stored_once_and_planned(
    tmp_path: Path, redis_url: str
) -> None:
    deployment = Deployment(root=tmp_path, redis_url=redis_url)
    server = deployment.start_server()
    database = sa.create_engine(f"sqlite:///{tmp_path / 'server' / 'shipway.db'}")
    try:
        repository = Repository(tmp_path / "repo")
        shas = fast_import_commits(repository.bare, PUSHES, PIPELINE_FILE)
        # A URL, as GitLab's are: read through the server's mirror, not in place.
        url = f"file://{repository.bare}"
        deployment.add_project("burst", repository.bare, "t/burst", SECRET, ["main"], clone_url=url)
        created = send_pushes(deployment.url, "t/burst", SECRET, shas, clients=8)
        assert len(created) == PUSHES
        assert len(set(created)) == PUSHES  # a pipeline each, none answered twice
        planned = sa.select(sa.func.count()).where(pipelines.c.planned == sa.true())
        wait_until(lambda: count(database, planned) == PUSHES, 120, "every pipeline planned")
        deliveries = sa.select(sa.func.count()).select_from(webhook_deliveries)
        assert count(database, deliveries) == PUSHES
        assert count(database, sa.select(sa.func.count()).select_from(jobs)) == PUSHES
        with database.connect() as conn:
            shas_planned = conn.execute(sa.select(pipelines.c.sha)).scalars().all()
        assert sorted(shas_planned) == sorted(shas)  # each commit's pipeline, once
        assert server.log().count("mirror fetched") == 1  # the clone, for every commit
    finally:
        database.dispose()
        server.stop()
