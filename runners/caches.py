"""A job's dependency caches (``cache:`` in the pipeline file), on its runner: keys
resolved, caches restored into the workspace before the script, saved from the
container after it.

Restoring costs no call to the engine: the stored tar's members are appended to the
workspace's tar, which reaches the container on its stdin (``runners.job_files``);
a file of the cache replaces the commit's file of the same path, as in GitLab.
Saving reads the paths from the stopped container with ``get_archive`` before it is
removed (as ``runners.collect`` reads test reports) and streams them, member by
member, into the store's temporary file (``runners.cache_store``): never whole in
memory, and renamed into place only when complete.

A cache that cannot be restored or saved never fails the job: its log says why
(``WARNING: ...``) and the job goes on, as GitLab's runner does.
"""

from __future__ import annotations

import copy
import io
import posixpath
import tarfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import docker.errors
from docker.models.containers import Container

from pipelines.cache_keys import files_key, folders_to_read, in_cache, matches, text_key
from pipelines.cache_spec import CachePolicy, CacheWhen
from pipelines.model import JobTask
from runners.cache_store import BLOCK, CacheStore, CacheTooLarge, Fingerprint, scan_tar
from runners.executor import ENGINE_UNREACHABLE, ExecutionResult
from runners.job_files import WORKSPACE

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_PREFIX = WORKSPACE.lstrip("/") + "/"  # how workspace members are named in the job's tar
_KEPT_KINDS = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE)
_CACHE_ERRORS = (OSError, tarfile.TarError, docker.errors.DockerException, *ENGINE_UNREACHABLE)


@dataclass(frozen=True)
class ResolvedCache:
    key: str
    paths: tuple[str, ...]
    policy: CachePolicy
    when: CacheWhen

    def saved_after(self, result: ExecutionResult) -> bool:
        if self.policy is CachePolicy.PULL:
            return False
        if self.when is CacheWhen.ALWAYS:
            return True
        return result.succeeded == (self.when is CacheWhen.ON_SUCCESS)


class _NothingToSave(Exception):
    pass


class _Unchanged(Exception):
    pass


class JobCaches:
    """The caches of one job. :meth:`restore` resolves their keys (the workspace
    holds the files a key may come from) and must run before :meth:`save`."""

    def __init__(
        self,
        store: CacheStore,
        project: str,
        caches: list[dict[str, Any]],
        variables: Mapping[str, str],
        say: Callable[[str], None],
    ) -> None:
        self.store = store
        self.project = project
        self.declared = caches
        self.variables = variables
        self.say = say
        self.resolved: list[ResolvedCache] = []
        self.restored: dict[str, str] = {}  # key -> fingerprint of what was restored

    @classmethod
    def of_task(
        cls, store: CacheStore, task: JobTask, say: Callable[[str], None]
    ) -> JobCaches | None:
        caches = (task.settings or {}).get("caches") or []
        if not caches:
            return None
        return cls(store, task.project, list(caches), task.environment(), say)

    def restore(self, workspace: bytes) -> bytes:
        """The workspace's tar with the caches that exist appended."""
        self.resolved = self._resolve(workspace)
        self.restored = {}
        pieces: list[bytes] = []
        for cache in self.resolved:
            if cache.policy is CachePolicy.PUSH:
                continue
            try:
                stored = self.store.find(self.project, cache.key)
            except OSError as exc:
                self.say(f"WARNING: cache {cache.key} not restored: {exc}\n")
                continue
            if stored is None:
                self.say(f"no cache {cache.key} yet\n")
                continue
            self.say(f"Restoring cache {cache.key} ({_size(len(stored.members))})\n")
            pieces.append(stored.members)
            self.restored[cache.key] = stored.fingerprint
        if not pieces:
            return workspace
        end, _ = scan_tar(io.BytesIO(workspace), len(workspace))
        return b"".join([workspace[:end], *pieces, bytes(2 * BLOCK)])

    def save(self, container: Container, result: ExecutionResult) -> None:
        """Save the caches whose policy and ``when`` say so, given how the script
        ended; called with the stopped container, before it is removed."""
        for cache in self.resolved:
            if cache.policy is CachePolicy.PULL:
                continue
            if not cache.saved_after(result):
                ended = "succeeded" if result.succeeded else "failed"
                self.say(f"Not saving cache {cache.key}: the job {ended} (when: {cache.when})\n")
                continue
            self.say(f"Saving cache {cache.key}\n")
            try:
                count, size = self._save(container, cache)
            except _Unchanged:
                self.say(f"Cache {cache.key} is unchanged: not saved again\n")
            except _NothingToSave:
                paths = ", ".join(cache.paths)
                self.say(f"WARNING: cache {cache.key} not saved: {paths} match no file\n")
            except CacheTooLarge as exc:
                self.say(f"WARNING: cache {cache.key} not saved: {exc}\n")
            except _CACHE_ERRORS as exc:
                self.say(f"WARNING: cache {cache.key} not saved: {exc}\n")
            else:
                self.say(f"Saved cache {cache.key}: {count} entries, {_size(size)}\n")

    def _resolve(self, workspace: bytes) -> list[ResolvedCache]:
        key_files = {
            pattern
            for cache in self.declared
            if isinstance(cache["key"], dict)
            for pattern in cache["key"]["files"]
        }
        found = _workspace_files(workspace, key_files) if key_files else {}
        resolved: list[ResolvedCache] = []
        for cache in self.declared:
            declared_key = cache["key"]
            if isinstance(declared_key, dict):
                patterns = declared_key["files"]
                files = {
                    path: content
                    for path, content in found.items()
                    if any(matches(path, pattern) for pattern in patterns)
                }
                key = files_key(declared_key.get("prefix"), self.variables, files)
                if files:
                    self.say(f"Cache key {key}, from {', '.join(sorted(files))}\n")
                else:
                    self.say(f"Cache key {key}: none of {', '.join(patterns)} is in the commit\n")
            else:
                key = text_key(str(declared_key), self.variables)
            if any(earlier.key == key for earlier in resolved):
                # Both would be saved under one name, the second over the first.
                self.say(f"WARNING: two caches resolve to the key {key}: the second is left out\n")
                continue
            resolved.append(
                ResolvedCache(
                    key,
                    tuple(cache["paths"]),
                    CachePolicy(cache["policy"]),
                    CacheWhen(cache["when"]),
                )
            )
        return resolved

    def _save(self, container: Container, cache: ResolvedCache) -> tuple[int, int]:
        """Stream the cache's paths from the container into the store; (entries,
        bytes of the stored tar)."""
        written: set[str] = set()
        fingerprint = Fingerprint()
        content = 0
        with self.store.writing(self.project, cache.key) as out:
            with tarfile.open(fileobj=out, mode="w") as archive:
                for folder in folders_to_read(cache.paths):
                    content += self._copy(
                        container, folder, cache.paths, archive, written, fingerprint, content
                    )
                if not written:
                    raise _NothingToSave
                if self.restored.get(cache.key) == fingerprint.hexdigest():
                    raise _Unchanged  # the temporary file goes, the cache stays
            size = out.tell()
        return len(written), size

    def _copy(
        self,
        container: Container,
        folder: str,
        patterns: tuple[str, ...],
        archive: tarfile.TarFile,
        written: set[str],
        fingerprint: Fingerprint,
        size_so_far: int,
    ) -> int:
        """Copy what belongs to the cache of one folder of the container's workspace
        into ``archive``; the bytes of file content copied."""
        try:
            stream, _ = container.get_archive(posixpath.normpath(posixpath.join(WORKSPACE, folder)))
        except docker.errors.NotFound:
            return 0
        copied = 0
        reader = io.BufferedReader(_ChunkReader(stream), buffer_size=1 << 20)
        with tarfile.open(fileobj=reader, mode="r|") as source:
            for member in source:
                entry = _cache_entry(member, folder, patterns, written)
                if entry is None:
                    continue
                copied += entry.size
                if size_so_far + copied > self.store.max_bytes:
                    raise CacheTooLarge(
                        f"over {_size(self.store.max_bytes)}, the most a cache may hold "
                        "on this runner (SHIPWAY_CACHE_MAX_MB)"
                    )
                content = source.extractfile(member) if entry.isreg() else None
                archive.addfile(entry, content)
                fingerprint.add(entry)
                written.add(entry.name.removeprefix(_PREFIX))
        return copied


def _cache_entry(
    member: tarfile.TarInfo, folder: str, patterns: tuple[str, ...], written: set[str]
) -> tarfile.TarInfo | None:
    """The member of an archive of ``folder`` renamed as a member of the workspace,
    or None when it is not part of the cache (or already in it)."""
    # get_archive names members from the fetched folder's own name down.
    path = posixpath.normpath(posixpath.join(folder, member.name.partition("/")[2]))
    if path == "." or path in written or member.type not in _KEPT_KINDS:
        return None
    if not in_cache(path, patterns):
        return None
    entry = copy.copy(member)
    entry.name = _PREFIX + path
    # A PAX header naming the old path would win over the new name when written.
    entry.pax_headers = {
        name: value
        for name, value in member.pax_headers.items()
        if name not in ("path", "linkpath")
    }
    if member.islnk():
        target = posixpath.normpath(posixpath.join(folder, member.linkname.partition("/")[2]))
        if target not in written:
            return None  # a hard link to a file outside the cache: nothing to link to
        entry.linkname = _PREFIX + target
    return entry


def _workspace_files(workspace: bytes, patterns: set[str]) -> dict[str, bytes]:
    """Workspace path -> content of the files of the tar that match ``patterns``
    (a symbolic link counts by its target)."""
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(workspace)) as archive:
        for member in archive:
            path = member.name.removeprefix(_PREFIX)
            if not any(matches(path, pattern) for pattern in patterns):
                continue
            if member.issym():
                found[path] = b"symlink:" + member.linkname.encode()
            elif member.isfile() and (content := archive.extractfile(member)) is not None:
                found[path] = content.read()
    return found


def _size(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


class _ChunkReader(io.RawIOBase):
    """The chunks of a streamed answer (``get_archive``) as a readable file."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._chunk = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while not self._chunk:
            try:
                self._chunk = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        target = memoryview(buffer).cast("B")
        count = min(len(target), len(self._chunk))
        target[:count] = self._chunk[:count]
        self._chunk = self._chunk[count:]
        return count
