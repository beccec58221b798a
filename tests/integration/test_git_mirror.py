"""The git mirror cache against real git repositories."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from pipelines.errors import ExternalError, NotFound
from pipelines.model import GitRef, RefKind
from pipelines.ports import FileAtCommit
from runners.git_mirror import GitMirrors
from tests.support.git import Repository, fast_import_commits, git


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


def test_a_commit_already_in_the_mirror_is_read_without_a_fetch(
    repository: Repository, tmp_path: Path
) -> None:
    sha = repository.commit({".shipway.yml": "jobs: {}\n"})
    repository.push()
    mirrors = GitMirrors(tmp_path / "mirrors")
    url = f"file://{repository.bare}"  # a URL: read through the mirror
    mirrors.fetch(url)
    repository.bare.rename(tmp_path / "gone.git")  # a fetch now fails
    files = mirrors.read_files(url, [sha], ".shipway.yml")
    found = files[sha]
    assert found is not None
    assert found.content == b"jobs: {}\n"
    assert mirrors.fetches == 1  # the clone above, no more
    with pytest.raises(ExternalError, match="git fetch failed"):
        mirrors.read_files(url, ["e" * 40], ".shipway.yml")  # unknown: it must fetch


def test_many_commits_are_read_together_with_one_fetch(
    repository: Repository, tmp_path: Path
) -> None:
    shas = fast_import_commits(repository.bare, 30, "jobs: {}\n")
    mirrors = GitMirrors(tmp_path / "mirrors")
    url = f"file://{repository.bare}"
    mirrors.fetch(url)
    newer = repository.commit({"other.yml": "x\n"})  # its own history: no .shipway.yml
    repository.push("HEAD:refs/heads/other")
    files = mirrors.read_files(url, [*shas, newer, "e" * 40, "not a sha"], ".shipway.yml")
    assert mirrors.fetches == 2  # the clone, then once for the commit it lacked
    assert set(files) == {*shas, newer}  # the unknown commit and the non-sha left out
    assert files[newer] is None  # a commit without the file
    blobs = {found.blob for sha in shas if (found := files[sha]) is not None}
    assert len(blobs) == 1  # one file, the same blob in every commit
    assert mirrors.read_files(url, shas[:3], "counter")[shas[2]] == FileAtCommit(
        git(repository.bare, "rev-parse", f"{shas[2]}:counter"), b"2\n"
    )
    assert mirrors.fetches == 2


def test_a_repository_on_this_host_is_read_in_place_without_a_mirror(
    repository: Repository, tmp_path: Path
) -> None:
    """A commit pushed to a repository beside the server is known at once."""
    mirrors = GitMirrors(tmp_path / "mirrors")
    url = str(repository.bare)
    for content in ("one", "two"):
        sha = repository.commit({".shipway.yml": f"{content}\n"})
        repository.push()
        assert mirrors.read_file(url, sha, ".shipway.yml") == f"{content}\n"
    assert mirrors.read_files(url, ["e" * 40], ".shipway.yml") == {}  # not a commit there
    assert mirrors.fetches == 1  # only for the unknown commit, which the mirror lacks too
    absent = tmp_path / "absent.git"
    with pytest.raises(ExternalError, match="git clone failed"):
        mirrors.read_files(str(absent), [sha], ".shipway.yml")  # no such directory: a URL
