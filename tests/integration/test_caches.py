"""Dependency caches saved from and restored into real job containers: the executor
and the runner's cache store, driven in-process against the Docker Engine."""

from __future__ import annotations

import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import pytest

from pipelines.model import GitRef, JobTask, RefKind
from runners.cache_store import CacheStore
from runners.caches import JobCaches
from runners.executor import DockerExecutor, ExecutionResult
from runners.job_containers import ContainerOwner
from tests.integration.test_executor import leftovers, workspace

pytestmark = pytest.mark.docker

LONG = "a-folder-name-long-enough/" * 5 + "so-that-tar-needs-a-pax-header.txt"


def cache(paths: list[str], key: Any = "deps-$SHIPWAY_COMMIT_REF_NAME", **more: str) -> Any:
    return {"key": key, "paths": paths, "policy": "pull-push", "when": "on_success", **more}


def task(image: str, caches: list[Any], *script: str, branch: str = "feature/x") -> JobTask:
    return JobTask(
        job_id=43,
        pipeline_id=8,
        project="app",
        clone_url="/unused",
        sha="d" * 40,
        ref=GitRef(RefKind.BRANCH, branch),
        name="deps",
        image=image,
        script=script,
        settings={"caches": caches},
        timeout_seconds=60,
    )


def run_with_caches(
    client: docker.DockerClient,
    owner: ContainerOwner,
    store: CacheStore,
    job: JobTask,
    files: dict[str, str] | None = None,
) -> tuple[ExecutionResult, str]:
    output: list[bytes] = []
    caches = JobCaches.of_task(store, job, lambda text: output.append(text.encode()))
    assert caches is not None
    tree = workspace(files or {"README": "read me\n"})
    with DockerExecutor(client, owner, caches.save) as executor:
        result = executor.run(
            job, lambda: caches.restore(tree), output.append, threading.Event(), ()
        )
    return result, b"".join(output).decode()


def names_in(path: Path) -> set[str]:
    with tarfile.open(path) as archive:
        return {member.name for member in archive}


def test_a_cache_saved_by_one_job_is_in_the_next_ones_workspace(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner, tmp_path: Path
) -> None:
    store = CacheStore(tmp_path / "caches")
    caches = [cache(["vendor", "build/*.o"])]
    made, log = run_with_caches(
        docker_client,
        owner,
        store,
        task(
            busybox,
            caches,
            "mkdir -p vendor/lib vendor/empty build/sub",
            "echo cached > vendor/lib/a.txt",
            "ln -s lib/a.txt vendor/link",
            "ln vendor/lib/a.txt vendor/hard",
            f"mkdir -p $(dirname vendor/{LONG}) && echo long > vendor/{LONG}",
            "echo object > build/sub/x.o; echo not-kept > build/notes.txt",
            "chmod 750 vendor/lib",
        ),
    )
    assert made.succeeded, log
    assert "no cache deps-feature/x yet" in log
    assert "Saving cache deps-feature/x" in log
    stored = store.path("app", "deps-feature/x")
    assert stored.name == "deps-feature%2Fx.tar"
    assert "workspace/build/notes.txt" not in names_in(stored)

    used, log = run_with_caches(
        docker_client,
        owner,
        store,
        task(
            busybox,
            caches,
            "cat vendor/lib/a.txt vendor/link vendor/hard",
            "readlink vendor/link",
            f"cat vendor/{LONG}",
            "cat build/sub/x.o",
            "test -d vendor/empty && test ! -e build/notes.txt",
            "stat -c %a vendor/lib",
            "echo changed > vendor/lib/a.txt",
        ),
    )
    assert used.succeeded, log
    assert "Restoring cache deps-feature/x" in log
    assert log.split("$ cat vendor/lib/a.txt vendor/link vendor/hard\n")[1].startswith(
        "cached\ncached\ncached\n$ readlink vendor/link\nlib/a.txt\n"
    )
    assert "\nlong\n" in log
    assert "\nobject\n" in log
    assert "$ stat -c %a vendor/lib\n750\n" in log
    assert "Saved cache deps-feature/x" in log
    # Saved again (pull-push), so the next job sees what this one left.
    _, log = run_with_caches(
        docker_client, owner, store, task(busybox, caches, "cat vendor/lib/a.txt")
    )
    assert "$ cat vendor/lib/a.txt\nchanged\n" in log
    # That job changed nothing: the cache is not written again.
    assert "Cache deps-feature/x is unchanged: not saved again" in log
    assert sorted(path.name for path in stored.parent.iterdir()) == [stored.name]
    # Another branch has a cache of its own.
    _, log = run_with_caches(
        docker_client, owner, store, task(busybox, caches, "test ! -e vendor", branch="main")
    )
    assert "no cache deps-main yet" in log
    assert not leftovers(docker_client, owner.runner)


def test_policies_and_when_decide_what_is_restored_and_saved(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner, tmp_path: Path
) -> None:
    store = CacheStore(tmp_path / "caches")
    pull = [cache(["out"], key="k", policy="pull")]
    result, log = run_with_caches(
        docker_client, owner, store, task(busybox, pull, "mkdir out; echo 1 > out/f")
    )
    assert result.succeeded
    assert "no cache k yet" in log
    assert "Saving" not in log
    assert not store.path("app", "k").exists()

    failing = [cache(["out"], key="k")]
    result, log = run_with_caches(
        docker_client, owner, store, task(busybox, failing, "mkdir out; echo 2 > out/f; exit 3")
    )
    assert result.exit_code == 3
    assert "Not saving cache k: the job failed (when: on_success)" in log
    assert not store.path("app", "k").exists()

    on_failure = [cache(["out"], key="k", when="on_failure")]
    result, log = run_with_caches(
        docker_client, owner, store, task(busybox, on_failure, "mkdir out; echo 3 > out/f; false")
    )
    assert "Saved cache k: 2 entries" in log
    push = [cache(["out"], key="k", policy="push")]
    result, log = run_with_caches(
        docker_client, owner, store, task(busybox, push, "test ! -e out; mkdir out; echo 4 >out/f")
    )
    assert result.succeeded, log
    assert "Restoring" not in log
    assert "Saved cache k" in log
    result, log = run_with_caches(docker_client, owner, store, task(busybox, pull, "cat out/f"))
    assert "$ cat out/f\n4\n" in log


def test_a_cache_over_the_limit_or_of_nothing_is_not_saved_and_the_old_one_stays(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner, tmp_path: Path
) -> None:
    store = CacheStore(tmp_path / "caches", max_bytes=100_000)
    caches = [cache(["big"], key="k")]
    run_with_caches(docker_client, owner, store, task(busybox, caches, "mkdir big; echo 1 >big/f"))
    before = store.path("app", "k").read_bytes()
    result, log = run_with_caches(
        docker_client,
        owner,
        store,
        task(busybox, caches, "head -c 200000 /dev/zero > big/f"),
    )
    assert result.succeeded  # a cache never fails the job
    assert "WARNING: cache k not saved: over 100.0 kB, the most a cache may hold" in log
    result, log = run_with_caches(docker_client, owner, store, task(busybox, caches, "rm -r big"))
    assert "WARNING: cache k not saved: big match no file" in log
    assert store.path("app", "k").read_bytes() == before
    assert sorted(path.name for path in store.path("app", "k").parent.iterdir()) == ["k.tar"]


def test_two_jobs_saving_one_key_at_once_leave_one_whole_cache(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner, tmp_path: Path
) -> None:
    store = CacheStore(tmp_path / "caches")
    caches = [cache(["out"], key="k")]

    # Two runners on one host, as a runner runs one job at a time: each removes what
    # it finds of its own before a job, and names a job's container after the job.
    runners = {
        letter: ContainerOwner(f"{owner.runner}-{letter}", owner.installation) for letter in "ab"
    }

    def job(letter: str) -> ExecutionResult:
        script = f"mkdir out; for i in $(seq 200); do echo {letter} > out/$i; done"
        job_task = task(busybox, caches, script)
        result, _ = run_with_caches(docker_client, runners[letter], store, job_task)
        return result

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(job, "ab"))
    finally:
        for runner in runners.values():
            DockerExecutor(docker_client, runner).reap()
    assert all(result.succeeded for result in results)
    with tarfile.open(store.path("app", "k")) as archive:
        contents = {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive
            if member.isfile()
        }
    assert len(contents) == 200
    assert set(contents.values()) in ({b"a\n"}, {b"b\n"})


def test_a_key_from_files_picks_the_cache_of_the_commits_lock_file(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner, tmp_path: Path
) -> None:
    store = CacheStore(tmp_path / "caches")
    caches = [cache(["deps"], key={"files": ["requirements.lock"], "prefix": "py"})]
    lock_v1 = {"requirements.lock": "a==1\n"}
    _, log = run_with_caches(
        docker_client, owner, store, task(busybox, caches, "mkdir deps; echo v1 > deps/f"), lock_v1
    )
    assert "Saved cache py-" in log
    _, log = run_with_caches(
        docker_client, owner, store, task(busybox, caches, "cat deps/f"), lock_v1
    )
    assert "$ cat deps/f\nv1\n" in log
    result, log = run_with_caches(
        docker_client,
        owner,
        store,
        task(busybox, caches, "test ! -e deps"),
        {"requirements.lock": "a==2\n"},
    )
    assert result.succeeded, log
    assert "no cache py-" in log
