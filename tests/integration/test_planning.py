"""Planning pipelines together (server/usecases/plan.py) on the real store (SQLite and
PostgreSQL), real git mirrors and a real Redis queue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from pipelines.model import GitRef, Project, RefKind
from pipelines.status import Status
from runners.git_mirror import GitMirrors
from server.queue import RqJobQueue
from server.store import Store
from server.store.pipelines import NewPipeline
from server.usecases.plan import ParsedFiles, plan_pipelines
from tests.support.git import Repository, fast_import_commits

ONE_JOB = "image: img\njobs:\n  build: {script: [make]}\n"


@pytest.fixture
def queue(redis_url: str) -> Iterator[RqJobQueue]:
    connection = redis.Redis.from_url(redis_url)
    yield RqJobQueue(connection)
    connection.close()


@pytest.fixture
def mirrors(tmp_path: Path) -> GitMirrors:
    return GitMirrors(tmp_path / "mirrors")


def project_of(
    store: Store, repository: Repository, supersede: bool = False, url: str | None = None
) -> Project:
    """``url``: the clone URL; by default the repository's path, read in place."""
    clone_url = url or str(repository.bare)
    return store.projects.create(
        "app", clone_url, "g/app", "s" * 20, ("*",), (), supersede=supersede
    )


def pipelines_of(store: Store, project: Project, shas: list[str], branch: str = "main") -> None:
    for sha in shas:
        store.pipelines.create(
            NewPipeline(project.id, GitRef(RefKind.BRANCH, branch), sha, "push", "dev")
        )


def plan_waiting(store: Store, mirrors: GitMirrors, queue: RqJobQueue, parsed: ParsedFiles) -> int:
    return plan_pipelines(store, mirrors, queue, store.pipelines.to_plan(), parsed)


def test_a_burst_of_pipelines_is_planned_with_one_fetch_and_one_parse(
    store: Store, repository: Repository, mirrors: GitMirrors, queue: RqJobQueue
) -> None:
    shas = fast_import_commits(repository.bare, 120, ONE_JOB)
    project = project_of(store, repository, url=f"file://{repository.bare}")  # a mirror
    pipelines_of(store, project, shas)
    parsed = ParsedFiles()
    assert plan_waiting(store, mirrors, queue, parsed) == 120
    assert store.pipelines.to_plan() == []
    assert mirrors.fetches == 1  # the mirror made once, for all of them
    assert parsed.parses == 1  # one file (one blob) in every commit
    pipelines = store.pipelines.recent(project.id, limit=200)
    assert [len(store.jobs.of_pipeline(p.id)) for p in pipelines] == [1] * 120
    # Commits the mirror holds now are planned without a fetch, the repository gone.
    pipelines_of(store, project, shas[:5], branch="again")
    repository.bare.rename(repository.bare.with_name("gone.git"))
    assert plan_waiting(store, mirrors, queue, parsed) == 5
    assert (mirrors.fetches, parsed.parses) == (1, 1)


def test_each_pipeline_of_a_pass_ends_as_its_own_file_says(
    store: Store, repository: Repository, mirrors: GitMirrors, queue: RqJobQueue
) -> None:
    planned = repository.commit({".shipway.yml": ONE_JOB})
    invalid = repository.commit({".shipway.yml": "jobs: {build: {scrip: [x]}}\n"})
    no_job = repository.commit(
        {".shipway.yml": "image: img\njobs:\n  b: {script: [x], rules: [{branch: nope}]}\n"}
    )
    not_utf8 = repository.commit({".shipway.yml": "jobs: {}\n"})
    (repository.work / ".shipway.yml").write_bytes(b"image: \xff\n")
    not_utf8 = repository.commit({})
    without_file = repository.commit({"README": "x\n"})
    (repository.work / ".shipway.yml").unlink()
    without_file = repository.commit({})
    repository.push()
    project = project_of(store, repository)
    shas = [planned, invalid, no_job, not_utf8, without_file, "e" * 40]
    pipelines_of(store, project, shas)
    assert plan_waiting(store, mirrors, queue, ParsedFiles()) == 6
    ended = {p.sha: p for p in store.pipelines.recent(project.id)}
    assert ended[planned].status is Status.CREATED  # planned: its engine pass advances it
    assert len(store.jobs.of_pipeline(ended[planned].id)) == 1
    assert ended[invalid].status is Status.FAILED
    assert (ended[invalid].error or "").startswith(".shipway.yml: line 1: jobs.build")
    assert ended[no_job].status is Status.SKIPPED
    assert ended[not_utf8].error == ".shipway.yml: file: the file is not UTF-8 text (byte 7)"
    assert ended[without_file].error == f".shipway.yml not found at {without_file}"
    assert ended["e" * 40].error == f"commit {'e' * 40} is not in {repository.bare}"
    assert store.pipelines.to_plan() == []


def test_the_newest_pipeline_with_jobs_supersedes_older_ones_before_they_are_read(
    store: Store, repository: Repository, mirrors: GitMirrors, queue: RqJobQueue
) -> None:
    shas = fast_import_commits(repository.bare, 4, ONE_JOB)
    broken = repository.commit({".shipway.yml": "jobs: [\n"})  # the newest: invalid
    repository.push("HEAD:refs/heads/other")
    project = project_of(store, repository, supersede=True)
    earlier = store.pipelines.create(
        NewPipeline(project.id, GitRef(RefKind.BRANCH, "main"), shas[0], "push", "dev")
    )
    plan_waiting(store, mirrors, queue, ParsedFiles())  # an earlier pass planned it
    pipelines_of(store, project, [*shas[1:], broken])
    plan_waiting(store, mirrors, queue, ParsedFiles())
    first, second, third, fourth, newest = store.pipelines.recent(project.id)[::-1]
    assert first.id == earlier.id
    assert newest.status is Status.FAILED  # its file is invalid: it supersedes nothing
    assert fourth.status is Status.CREATED  # the newest with jobs
    assert len(store.jobs.of_pipeline(fourth.id)) == 1
    for older in (first, second, third):
        assert older.status is Status.CANCELED
        assert older.error == f"superseded by pipeline {fourth.id}"
    assert store.jobs.of_pipeline(second.id) == []  # canceled before it was read
    assert store.jobs.of_pipeline(third.id) == []
    assert [job.status for job in store.jobs.of_pipeline(first.id)] == [Status.CANCELED]
