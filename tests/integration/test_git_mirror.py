"""The git mirror cache against real git repositories."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from pipelines.errors import NotFound
from pipelines.model import GitRef, RefKind
from runners.git_mirror import GitMirrors
from tests.support.git import Repository


def test_resolve_read_and_archive(repository: Repository, tmp_path: Path) -> None:
    sha = repository.commit({".shipway.yml": "jobs: {}\n", "src/app.py": "print(1)\n"})
    repository.push()
    mirrors = GitMirrors(tmp_path / "mirrors")
    url = str(repository.bare)
    assert mirrors.resolve(url, GitRef(RefKind.BRANCH, "main")) == sha
    assert mirrors.resolve(url, GitRef(RefKind.COMMIT, sha[:8])) == sha
    assert mirrors.read_file(url, sha, ".shipway.yml") == "jobs: {}\n"
    assert mirrors.read_file(url, sha, "absent.yml") is None
    with tarfile.open(fileobj=io.BytesIO(mirrors.archive(url, sha, "workspace/"))) as tar:
        assert "workspace/src/app.py" in tar.getnames()


def test_new_commits_are_fetched_on_demand(repository: Repository, tmp_path: Path) -> None:
    repository.commit({"a": "1"})
    repository.push()
    mirrors = GitMirrors(tmp_path / "mirrors")
    url = str(repository.bare)
    mirrors.fetch(url)
    newer = repository.commit({"a": "2"})
    repository.push()
    assert mirrors.read_file(url, newer, "a") == "2"


def test_tags_resolve_to_their_commit(repository: Repository, tmp_path: Path) -> None:
    sha = repository.commit({"a": "1"})
    repository.tag("v1.0", annotated=True)
    repository.push("--tags")
    mirrors = GitMirrors(tmp_path / "mirrors")
    assert mirrors.resolve(str(repository.bare), GitRef(RefKind.TAG, "v1.0")) == sha


@pytest.mark.parametrize(
    "ref",
    [
        GitRef(RefKind.BRANCH, "absent"),
        GitRef(RefKind.BRANCH, "--upload-pack=touch /tmp/pwned"),
        GitRef(RefKind.COMMIT, "--all"),
        GitRef(RefKind.COMMIT, "deadbeef"),
    ],
)
def test_refs_that_do_not_exist_or_look_like_options(
    repository: Repository, tmp_path: Path, ref: GitRef
) -> None:
    repository.commit({"a": "1"})
    repository.push()
    with pytest.raises(NotFound):
        GitMirrors(tmp_path / "mirrors").resolve(str(repository.bare), ref)
    assert not Path("/tmp/pwned").exists()


def test_an_unknown_commit_is_not_found(repository: Repository, tmp_path: Path) -> None:
    repository.commit({"a": "1"})
    repository.push()
    with pytest.raises(NotFound, match="is not in"):
        GitMirrors(tmp_path / "mirrors").read_file(str(repository.bare), "e" * 40, "a")
