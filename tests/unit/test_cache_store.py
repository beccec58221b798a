"""The runner's cache store on disk and a cache restored into a workspace's tar: real
files in the test's folder, no engine (saving from a container is in
tests/integration/test_caches.py)."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from pipelines.model import GitRef, JobTask, RefKind
from runners.cache_store import CacheStore, UnreadableCache, scan_tar
from runners.caches import JobCaches


def tar_of(files: dict[str, bytes], prefix: str = "workspace/") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def unpacked(archive: bytes) -> dict[str, bytes]:
    """What ``tar -x`` leaves: the last member of each name wins."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as reader:
        for member in reader:
            extracted = reader.extractfile(member)
            if extracted is not None:
                files[member.name] = extracted.read()
    return files


def store_cache(store: CacheStore, project: str, key: str, files: dict[str, bytes]) -> Path:
    with store.writing(project, key) as out:
        out.write(tar_of(files))
    return store.path(project, key)


def job(caches: list[dict[str, object]], branch: str = "main") -> JobTask:
    return JobTask(
        job_id=1,
        pipeline_id=1,
        project="app",
        clone_url="/unused",
        sha="a" * 40,
        ref=GitRef(RefKind.BRANCH, branch),
        name="unit",
        image="i",
        script=("ls",),
        settings={"caches": caches},
    )


def cache(key: object, policy: str = "pull-push") -> dict[str, object]:
    return {"key": key, "paths": ["vendor"], "policy": policy, "when": "on_success"}


def test_the_end_of_a_tars_members_is_found_and_a_truncated_tar_refused() -> None:
    archive = tar_of({"a": b"x" * 700, "b": b""})
    end, _ = scan_tar(io.BytesIO(archive), len(archive))
    assert end == 512 + 1024 + 512  # a's header and two blocks, b's header
    assert archive[end:].strip(b"\0") == b""
    with pytest.raises(UnreadableCache):
        scan_tar(io.BytesIO(archive[:1000]), 1000)


def test_a_restored_cache_is_appended_and_wins_over_the_commits_files(tmp_path: Path) -> None:
    store = CacheStore(tmp_path)
    store_cache(store, "app", "deps-main", {"vendor/lib.py": b"cached", "README": b"old"})
    said: list[str] = []
    caches = JobCaches.of_task(store, job([cache("deps-$SHIPWAY_COMMIT_BRANCH")]), said.append)
    assert caches is not None
    workspace = tar_of({"README": b"new", "src/app.py": b"code"})
    restored = caches.restore(workspace)
    assert unpacked(restored) == {
        "workspace/README": b"old",  # as in GitLab, the cache is unpacked after checkout
        "workspace/src/app.py": b"code",
        "workspace/vendor/lib.py": b"cached",
    }
    assert said == ["Restoring cache deps-main (2.0 kB)\n"]


def test_a_missing_cache_says_so_and_push_restores_nothing(tmp_path: Path) -> None:
    store = CacheStore(tmp_path)
    store_cache(store, "app", "pushed", {"vendor/x": b"x"})
    said: list[str] = []
    tasks = job([cache("first"), cache("pushed", policy="push")])
    caches = JobCaches.of_task(store, tasks, said.append)
    assert caches is not None
    workspace = tar_of({"README": b"r"})
    assert caches.restore(workspace) == workspace
    assert said == ["no cache first yet\n"]
    assert [resolved.key for resolved in caches.resolved] == ["first", "pushed"]


def test_a_key_from_files_is_computed_from_the_workspace(tmp_path: Path) -> None:
    said: list[str] = []
    declared = [cache({"files": ["*.lock"], "prefix": "deps"}), {**cache("b"), "paths": ["b"]}]
    caches = JobCaches.of_task(CacheStore(tmp_path), job(declared), said.append)
    assert caches is not None
    caches.restore(tar_of({"requirements.lock": b"a==1\n", "README": b"r"}))
    first = caches.resolved[0].key
    caches.restore(tar_of({"requirements.lock": b"a==1\n", "README": b"changed"}))
    assert caches.resolved[0].key == first
    caches.restore(tar_of({"requirements.lock": b"a==2\n"}))
    assert caches.resolved[0].key != first
    caches.restore(tar_of({"README": b"r"}))
    assert caches.resolved[0].key == "deps-default"
    assert said[0] == f"Cache key {first}, from requirements.lock\n"
    assert said[-3] == "Cache key deps-default: none of *.lock is in the commit\n"


def test_an_unreadable_cache_is_removed_and_counts_as_none(tmp_path: Path) -> None:
    store = CacheStore(tmp_path)
    path = store_cache(store, "app", "k", {"vendor/x": b"x" * 5000})
    path.write_bytes(path.read_bytes()[:2000])
    assert store.find("app", "k") is None
    assert not path.exists()


def test_a_write_that_fails_leaves_the_old_cache_and_no_temporary_file(tmp_path: Path) -> None:
    store = CacheStore(tmp_path)
    path = store_cache(store, "app", "k", {"vendor/x": b"old"})

    def write_half() -> None:
        with store.writing("app", "k") as out:
            out.write(b"half a cache")
            raise RuntimeError("the container went away")

    with pytest.raises(RuntimeError):
        write_half()
    assert unpacked(path.read_bytes()) == {"workspace/vendor/x": b"old"}
    assert os.listdir(path.parent) == [path.name]


def test_the_least_recently_used_caches_go_first_when_over_the_total(tmp_path: Path) -> None:
    # Each cache's tar is 20,480 bytes (tar pads to records of 10,240): two fit.
    store = CacheStore(tmp_path, max_bytes=45_000, total_bytes=45_000)
    old = store_cache(store, "app", "old", {"x": b"x" * 10_000})
    used = store_cache(store, "other", "used", {"x": b"x" * 10_000})
    long_ago = time.time() - 3600
    os.utime(old, (long_ago, long_ago))
    os.utime(used, (long_ago - 60, long_ago - 60))
    assert store.find("other", "used") is not None  # a restore counts as a use
    stale = tmp_path / "app" / ".dead-writer.tmp"
    stale.write_bytes(b"x")
    os.utime(stale, (long_ago - 86400, long_ago - 86400))
    newest = store_cache(store, "app", "new", {"x": b"x" * 10_000})
    assert (old.exists(), used.exists(), newest.exists(), stale.exists()) == (
        False,
        True,
        True,
        False,
    )


def test_caches_are_kept_per_project_and_key(tmp_path: Path) -> None:
    store = CacheStore(tmp_path)
    assert store.path("app", "feature/x") == tmp_path / "app" / "feature%2Fx.tar"
    assert store.path("app", "k") != store.path("other", "k")


def test_two_caches_resolving_to_one_key_keep_the_first(tmp_path: Path) -> None:
    said: list[str] = []
    declared = [cache("$UNSET_A"), {**cache("default"), "paths": ["other"]}]
    caches = JobCaches.of_task(CacheStore(tmp_path), job(declared), said.append)
    assert caches is not None
    caches.restore(tar_of({"README": b"r"}))
    assert [(resolved.key, resolved.paths) for resolved in caches.resolved] == [
        ("default", ("vendor",))
    ]
    assert said[0] == "WARNING: two caches resolve to the key default: the second is left out\n"
