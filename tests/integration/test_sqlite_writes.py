"""SQLite writers of one process queue on the engine's write lock
(server/store/sqlite_writes.py), not in SQLite's sleeping busy handler."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.model import GitRef, RefKind
from server.store.database import create_engine, read_only, upgrade
from server.store.deliveries import DeliveryRepository, NewDelivery
from server.store.pipelines import NewPipeline, PipelineRepository
from server.store.projects import ProjectRepository
from server.store.tables import webhook_deliveries

THREADS = 16
WRITES = 40


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    """SQLite with no busy timeout: a writer that met another in SQLite would fail
    at once with "database is locked" instead of waiting."""
    engine = create_engine(f"sqlite:///{tmp_path / 'shipway.db'}", busy_timeout_seconds=0)
    upgrade(engine)
    yield engine
    engine.dispose()


def delivery(project_id: int, key: str | None) -> NewDelivery:
    pipeline = NewPipeline(project_id, GitRef(RefKind.BRANCH, "main"), "f" * 40, "push", "dev")
    return NewDelivery(project_id, key, "Push Hook", {}, {"n": 1}, pipeline, "pipeline created")


def test_writers_of_one_process_wait_for_each_other_without_sqlites_busy_timeout(
    engine: sa.Engine,
) -> None:
    """16 threads write at once (deliveries, their pipelines, transactions that fail
    and roll back) and read beside them: none fails and nothing is lost."""
    project = ProjectRepository(engine).create("app", "/srv/app.git", "g/app", "s" * 20, (), ())
    deliveries = DeliveryRepository(engine)
    pipelines = PipelineRepository(engine)
    start = threading.Barrier(THREADS)

    def write(thread: int) -> list[int]:
        start.wait()
        stored = []
        for index in range(WRITES):
            if index % 10 == 0:  # a transaction that fails gives the lock back
                with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
                    conn.execute(webhook_deliveries.insert().values(project_id=project.id + 1000))
            stored.append(deliveries.record(delivery(project.id, f"{thread}-{index}")).id)
            pipelines.count()  # a read, beside the writers
        return stored

    with ThreadPoolExecutor(THREADS) as pool:
        stored = [delivery_id for ids in pool.map(write, range(THREADS)) for delivery_id in ids]
    assert len(set(stored)) == THREADS * WRITES
    assert deliveries.count(project.id) == THREADS * WRITES
    assert pipelines.count() == THREADS * WRITES


def test_a_writer_of_another_process_is_still_waited_for_by_sqlite(tmp_path: Path) -> None:
    """Two engines stand for two processes (each has its own lock): the second
    writer waits in SQLite's busy timeout until the first commits."""
    url = f"sqlite:///{tmp_path / 'shipway.db'}"
    ours, theirs = create_engine(url), create_engine(url)
    upgrade(ours)
    project = ProjectRepository(ours).create("app", "/srv/app.git", "g/app", "s" * 20, (), ())
    beginning = threading.Event()

    @sa.event.listens_for(ours, "before_cursor_execute")
    def _seen(conn: sa.Connection, cursor: object, statement: str, *args: object) -> None:
        if statement == "BEGIN IMMEDIATE":
            beginning.set()

    stored: list[int] = []
    with theirs.begin() as conn:
        conn.execute(sa.text("UPDATE projects SET supersede = supersede"))  # holds the lock
        writer = threading.Thread(
            target=lambda: stored.append(
                DeliveryRepository(ours).record(delivery(project.id, "k")).id
            )
        )
        writer.start()
        assert beginning.wait(30)
        assert not stored  # it cannot have written: the other transaction is open
    writer.join(30)
    assert stored
    assert DeliveryRepository(ours).count(project.id) == 1
    with read_only(ours).begin() as conn:  # a read never takes the write lock
        assert conn.execute(sa.select(sa.func.count()).select_from(webhook_deliveries)).scalar()
    ours.dispose()
    theirs.dispose()
