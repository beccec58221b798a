"""What an engine pass looks at, on the real store (SQLite and PostgreSQL) and a real
Redis queue: the pipelines whose jobs changed, whichever path changed them, and one
slice of the sweep; never every waiting pipeline."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
import redis

import server.engine
from pipelines.model import GitRef, Project
from pipelines.plan import plan_jobs
from pipelines.ports import FileAtCommit, JobQueue
from pipelines.spec import parse_spec
from pipelines.status import Status
from server.engine import SWEEP_SLICE, Engine
from server.queue import RqJobQueue
from server.store import Store
from server.usecases.dispatch import advance_pipeline
from server.usecases.play import play_job
from tests.integration.test_store import make_project, new_pipeline

WAITING = "image: img\njobs:\n  deploy: {script: [x], when: manual}\n"
HELD = "image: img\njobs:\n  deploy: {script: [x], environment: staging}\n"
PIPELINES = 2 * SWEEP_SLICE + 1  # the sweep needs three passes round them


class NoSources:
    """The engine plans no pipeline here: the tests store their jobs themselves."""

    def resolve(self, clone_url: str, ref: GitRef) -> str:
        raise AssertionError("nothing to plan")

    def read_files(
        self, clone_url: str, shas: Sequence[str], file_path: str
    ) -> dict[str, FileAtCommit | None]:
        raise AssertionError("nothing to plan")


@pytest.fixture
def queue(redis_url: str) -> Iterator[RqJobQueue]:
    connection = redis.Redis.from_url(redis_url)
    yield RqJobQueue(connection)
    connection.close()


@pytest.fixture
def engine(store: Store, queue: RqJobQueue) -> Engine:
    return Engine(store, queue, NoSources())


@pytest.fixture
def unswept(store: Store, queue: RqJobQueue) -> Engine:
    """An engine without the sweep: what it advances, it advances for being due."""
    return Engine(store, queue, NoSources(), sweep_slice=0)


@pytest.fixture
def advanced(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The pipelines each pass advanced, in order."""
    passes: list[list[int]] = []

    def recorded(store: Store, queue: JobQueue, pipeline_id: int) -> Status:
        passes[-1].append(pipeline_id)
        return advance_pipeline(store, queue, pipeline_id)

    monkeypatch.setattr(server.engine, "advance_pipeline", recorded)
    return passes


def planned(store: Store, project: Project, text: str) -> int:
    pipeline = store.pipelines.create(new_pipeline(project))
    store.pipelines.add_jobs(pipeline.id, plan_jobs(parse_spec(text)))
    return pipeline.id


def one_pass(engine: Engine, advanced: list[list[int]]) -> list[int]:
    advanced.append([])
    engine.run_once()
    return advanced[-1]


def test_a_pass_advances_what_changed_and_a_slice_of_the_rest(
    store: Store, engine: Engine, advanced: list[list[int]]
) -> None:
    project = make_project(store)
    ids = [planned(store, project, WAITING) for _ in range(PIPELINES)]
    # Newly planned: every one is due, and each parks at its manual job; that change
    # makes each due once more. (The sweep's round took two slices meanwhile.)
    assert one_pass(engine, advanced) == ids
    assert {store.pipelines.get(i).status for i in ids} == {Status.MANUAL}
    assert one_pass(engine, advanced) == ids

    # Nothing changed: a pass takes the next slice of the round, then a new round.
    assert one_pass(engine, advanced) == ids[2 * SWEEP_SLICE :]
    assert one_pass(engine, advanced) == ids[:SWEEP_SLICE]

    # A job played far past the round's place: its pipeline is advanced at once.
    last = store.jobs.of_pipeline(ids[-1])[0]
    play_job(store, last.id, "ops")
    assert one_pass(engine, advanced) == [*ids[SWEEP_SLICE : 2 * SWEEP_SLICE], ids[-1]]
    assert store.jobs.get(last.id).status is Status.PENDING
    assert store.pipelines.get(ids[-1]).status is Status.PENDING


def test_a_freed_environment_makes_the_pipelines_waiting_for_it_due(
    store: Store, unswept: Engine, advanced: list[list[int]]
) -> None:
    project = make_project(store)
    first, second = planned(store, project, HELD), planned(store, project, HELD)
    one_pass(unswept, advanced)
    holder, waiter = store.jobs.of_pipeline(first)[0], store.jobs.of_pipeline(second)[0]
    assert store.jobs.get(holder.id).status is Status.PENDING
    assert store.jobs.get(waiter.id).status is Status.CREATED  # staging is held

    assert one_pass(unswept, advanced) == [first]  # its job changed: once more
    assert one_pass(unswept, advanced) == []

    store.jobs.change_status(holder.id, Status.RUNNING, runner="r1")
    store.jobs.change_status(holder.id, Status.SUCCESS, exit_code=0)
    # No job of the second changed: it is due because its environment was freed.
    assert one_pass(unswept, advanced) == [first, second]
    assert store.jobs.get(waiter.id).status is Status.PENDING


def test_advancing_that_failed_is_tried_again_at_the_next_pass(
    store: Store, unswept: Engine, advanced: list[list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first of two due pipelines fails to advance: it is tried again, and the
    second, never reached, is still due (a server killed there would find it so)."""
    project = make_project(store)
    first, second = planned(store, project, WAITING), planned(store, project, WAITING)
    failing = True

    def flaky(store: Store, queue: JobQueue, pipeline_id: int) -> Status:
        if failing:
            raise RuntimeError("the database went away mid-pass")
        advanced[-1].append(pipeline_id)
        return advance_pipeline(store, queue, pipeline_id)

    monkeypatch.setattr(server.engine, "advance_pipeline", flaky)
    with pytest.raises(RuntimeError):
        one_pass(unswept, advanced)
    assert store.pipelines.due_ids() == [second]
    failing = False
    assert one_pass(unswept, advanced) == [first, second]
    assert store.pipelines.get(first).status is Status.MANUAL
    assert store.pipelines.get(second).status is Status.MANUAL
