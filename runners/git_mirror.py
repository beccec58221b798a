"""A cache of bare mirrors of the repositories Shipway builds.

Both the server (to read a commit's pipeline file and resolve refs) and the runners
(to export a commit's tree) use it. Every git call takes an argument list, never a
shell, and refs and commits are validated before they reach git, so no text from a
webhook is ever interpreted as a command or an option.

Concurrency: one mirror may be shared by several processes; clone and fetch hold an
exclusive ``flock`` on ``<mirror>.lock``. Reads need no lock: git's object store is
safe to read while a fetch adds to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pipelines.errors import ExternalError, NotFound
from pipelines.model import GitRef, RefKind
from pipelines.ports import FileAtCommit

log = logging.getLogger(__name__)

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_SHORT_SHA = re.compile(r"^[0-9a-f]{7,40}$")
GIT_TIMEOUT_SECONDS = 600


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"})
    return env


def _in_place(clone_url: str) -> Path | None:
    """The repository a clone URL names when it is a directory of this host (an
    absolute path; a ``file://`` URL goes through a mirror, as any other URL)."""
    if not clone_url.startswith("/"):
        return None
    path = Path(clone_url)
    return path if path.is_dir() else None


def _batch_answers(output: bytes) -> Iterator[tuple[str, str, bytes] | None]:
    """``git cat-file --batch``'s answers, in order: (object id, type, content), or
    None for a name it does not find ("<name> missing")."""
    position = 0
    while position < len(output):
        end = output.index(b"\n", position)
        header = output[position:end].decode(errors="replace")
        position = end + 1
        if header.endswith((" missing", " ambiguous")):
            yield None
            continue
        object_id, kind, size = header.split()
        yield object_id, kind, output[position : position + int(size)]
        position += int(size) + 1  # the content and its newline


class GitMirrors:
    """Bare mirrors under ``root``, one per clone URL."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.fetches = 0  # clones and fetches this object made: what a commit known saves

    def path_for(self, clone_url: str) -> Path:
        digest = hashlib.sha256(clone_url.encode()).hexdigest()[:20]
        return self.root / f"{digest}.git"

    def fetch(self, clone_url: str) -> Path:
        """Create the mirror or bring it up to date with the remote."""
        path = self.path_for(clone_url)
        started = time.monotonic()
        with self._locked(path):
            self.fetches += 1
            if (path / "HEAD").exists():
                self._git(path, "fetch", "--prune", "--quiet", "origin")
            else:
                self._clone(clone_url, path)
        log.info("mirror fetched: %s in %.0f ms", clone_url, (time.monotonic() - started) * 1000)
        return path

    def ensure_commit(self, clone_url: str, sha: str) -> Path:
        """A mirror that holds ``sha``, fetching only when it does not yet."""
        if not _FULL_SHA.fullmatch(sha):
            raise NotFound(f"{sha!r} is not a full commit id")
        path = self.path_for(clone_url)
        if (path / "HEAD").exists() and self._has_commit(path, sha):
            return path
        self.fetch(clone_url)
        if not self._has_commit(path, sha):
            raise NotFound(f"commit {sha} is not in {clone_url}")
        return path

    def resolve(self, clone_url: str, ref: GitRef) -> str:
        """The full commit id a branch, tag or (short) commit id names, after a fetch."""
        path = self.fetch(clone_url)
        if ref.kind is RefKind.COMMIT:
            if not _SHORT_SHA.fullmatch(ref.name):
                raise NotFound(f"{ref.name!r} is not a commit id (7 to 40 hex digits)")
            target = f"{ref.name}^{{commit}}"
        else:
            target = f"{ref.full}^{{commit}}"
        result = self._run(path, "rev-parse", "--verify", "--quiet", "--end-of-options", target)
        if result.returncode != 0:
            raise NotFound(f"{ref.kind} {ref.name!r} does not exist in {clone_url}")
        return result.stdout.strip()

    def read_file(self, clone_url: str, sha: str, file_path: str) -> str | None:
        """A file's text at a commit, or None when the commit has no such file."""
        if not _FULL_SHA.fullmatch(sha):
            raise NotFound(f"{sha!r} is not a full commit id")
        files = self.read_files(clone_url, [sha], file_path)
        if sha not in files:
            raise NotFound(f"commit {sha} is not in {clone_url}")
        found = files[sha]
        return None if found is None else found.content.decode()

    def read_files(
        self, clone_url: str, shas: Sequence[str], file_path: str
    ) -> dict[str, FileAtCommit | None]:
        """The file at each commit (None: the commit has no such file), read by one
        ``git cat-file --batch`` for all of them; commits the repository does not
        hold, even after a fetch, are left out.

        A clone URL that is a path on this host (a plain git repository beside the
        server) is read in place: a commit pushed there is known at once, and no
        fetch is needed. Otherwise the mirror fetches only when one of the commits
        is not in it yet, and then once for all of them, so planning a commit
        already known costs one git process and no fetch."""
        if "\n" in file_path:
            raise NotFound(f"{file_path!r} is not a file path git can be asked for")
        wanted = sorted({sha for sha in shas if _FULL_SHA.fullmatch(sha)})
        files: dict[str, FileAtCommit | None] = {}
        in_place = _in_place(clone_url)
        if in_place is not None and wanted:
            with contextlib.suppress(ExternalError):  # not readable here: the mirror's turn
                files = self._cat_files(in_place, wanted, file_path)
        unknown = [sha for sha in wanted if sha not in files]
        if unknown:
            files.update(self._read_mirror(clone_url, unknown, file_path))
        return files

    def _read_mirror(
        self, clone_url: str, shas: list[str], file_path: str
    ) -> dict[str, FileAtCommit | None]:
        path = self.path_for(clone_url)
        cloned = not (path / "HEAD").exists()
        if cloned:
            self.fetch(clone_url)
        files = self._cat_files(path, shas, file_path)
        unknown = [sha for sha in shas if sha not in files]
        if unknown and not cloned:
            self.fetch(clone_url)  # one of them is new: one fetch brings it (and the rest)
            files.update(self._cat_files(path, unknown, file_path))
        return files

    def _cat_files(
        self, path: Path, shas: list[str], file_path: str
    ) -> dict[str, FileAtCommit | None]:
        """``<sha>:<file_path>`` of those of ``shas`` that are commits of the mirror
        (None where the commit has no such file), asked of one git process: for each,
        ``<sha>^{commit}`` (is it a commit here?) and then the file."""
        asked = "".join(f"{sha}^{{commit}}\n{sha}:{file_path}\n" for sha in shas)
        output = self._checked(["git", "-C", str(path), "cat-file", "--batch"], asked.encode())
        answers = _batch_answers(output)
        files: dict[str, FileAtCommit | None] = {}
        for sha in shas:  # two answers each, in order
            commit, file = next(answers), next(answers)
            if commit is None or commit[0] != sha or commit[1] != "commit":
                continue  # not a commit of the mirror (yet)
            files[sha] = FileAtCommit(file[0], file[2]) if file and file[1] == "blob" else None
        return files

    def archive(self, clone_url: str, sha: str, prefix: str, folder: str | None = None) -> bytes:
        """The commit's tree (or one ``folder`` of it) as a tar stream, every path
        under ``prefix``."""
        path = self.ensure_commit(clone_url, sha)
        tree = f"{sha}:{folder.strip('/')}" if folder and folder.strip("/.") else sha
        return self._checked(
            ["git", "-C", str(path), "archive", "--format=tar", f"--prefix={prefix}", tree]
        )

    def _has_commit(self, path: Path, sha: str) -> bool:
        return self._run(path, "cat-file", "-e", f"{sha}^{{commit}}").returncode == 0

    def _clone(self, clone_url: str, path: Path) -> None:
        # Clone beside the final place and rename, so a half-made mirror never shows.
        staging = Path(tempfile.mkdtemp(prefix=".clone-", dir=self.root))
        try:
            self._checked(
                ["git", "clone", "--mirror", "--quiet", "--", clone_url, str(staging / "m.git")]
            )
            (staging / "m.git").rename(path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _git(self, path: Path, *args: str) -> None:
        self._checked(["git", "-C", str(path), *args])

    def _checked(self, argv: list[str], stdin: bytes | None = None) -> bytes:
        """Run git; its output, or ExternalError with what git said."""
        command = argv[3] if argv[1] == "-C" else argv[1]
        try:
            result = subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                timeout=GIT_TIMEOUT_SECONDS,
                env=_git_env(),
                check=True,
            )
        except subprocess.CalledProcessError as exc:
            stderr = exc.stderr.decode(errors="replace").strip()
            raise ExternalError(f"git {command} failed: {stderr}") from exc
        except subprocess.TimeoutExpired as exc:
            raise ExternalError(f"git {command} timed out after {GIT_TIMEOUT_SECONDS}s") from exc
        return result.stdout

    def _run(self, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(path), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            env=_git_env(),
            check=False,
        )

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        with open(f"{path}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
