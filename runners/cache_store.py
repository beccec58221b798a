"""Where a runner keeps dependency caches: ``<state folder>/caches/<project>/<key>.tar``,
one uncompressed tar per project and key, its members named ``workspace/...`` so that
it unpacks into a job's workspace as it is.

Concurrency: a cache is written to a temporary file beside it and renamed over it
(``os.replace``), so two jobs saving the same key never mix their files: the last
rename wins, and a job restoring meanwhile reads the whole old file or the whole new
one (an open file outlives its rename). Several runners may share the folder.

A cache that a job restored and left as it was is not written again (see
:class:`Fingerprint`).

Size: a cache over ``max_bytes`` is not saved; after a save, the least recently used
caches (restoring counts as a use) are removed until all of them fit in
``total_bytes``. A file that does not read as a whole tar (a crash before the rename
cannot leave one, a full disk or a hand could) is removed when a job finds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipelines.cache_keys import file_name

log = logging.getLogger(__name__)

BLOCK = tarfile.BLOCKSIZE
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_TOTAL_BYTES = 10 * 1024 * 1024 * 1024
STALE_TEMPORARY_SECONDS = 24 * 3600  # a writer this old has died


class CacheTooLarge(Exception):
    """The files to save exceed the size a cache may have."""


class UnreadableCache(Exception):
    """A stored cache is not a whole tar."""


class Fingerprint:
    """What a cache holds, short of its content: each entry's name, kind, size, mode,
    owner, link and modification time (whole seconds, of files only: busybox's
    ``tar`` restores no folder's or link's time). Equal fingerprints mean nothing changed
    since the cache was restored, so it need not be written again: GitLab's runner
    decides the same way, by modification times."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def add(self, entry: tarfile.TarInfo) -> None:
        mtime = int(entry.mtime) if entry.isreg() else 0
        mode = entry.mode & 0o7777  # as a tar header keeps it (the engine adds the kind)
        fields = (entry.name, entry.type.decode(), entry.size, mode, entry.uid, entry.gid)
        text = "\0".join(str(field) for field in (*fields, entry.linkname, mtime))
        self._digest.update(text.encode() + b"\n")

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


@dataclass(frozen=True)
class StoredCache:
    members: bytes  # the tar without its end-of-archive blocks, to append to another
    fingerprint: str


def scan_tar(archive: BinaryIO, size: int) -> tuple[int, str]:
    """Where the members of an uncompressed tar end (appending another tar's bytes
    there gives one tar holding both), checked against its ``size``, and its
    fingerprint. Reads the headers only."""
    fingerprint = Fingerprint()
    try:
        with tarfile.open(fileobj=archive, mode="r:") as reader:
            last = None
            for member in reader:
                fingerprint.add(member)
                last = member
    except tarfile.TarError as exc:
        raise UnreadableCache(str(exc)) from exc
    if last is None:
        return 0, fingerprint.hexdigest()
    data = -(-last.size // BLOCK) * BLOCK if last.isreg() else 0
    end = last.offset_data + data
    if end > size:
        raise UnreadableCache(f"it ends {end - size} bytes short")
    return end, fingerprint.hexdigest()


class CacheStore:
    def __init__(
        self,
        root: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        total_bytes: int = DEFAULT_TOTAL_BYTES,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.total_bytes = max(total_bytes, max_bytes)

    def path(self, project: str, key: str) -> Path:
        return self.root / file_name(project) / f"{file_name(key)}.tar"

    def find(self, project: str, key: str) -> StoredCache | None:
        """The stored cache of ``key``, marked as just used; None when there is none
        (an unreadable one is removed, and logged)."""
        path = self.path(project, key)
        try:
            with path.open("rb") as stored:
                end, fingerprint = scan_tar(stored, os.fstat(stored.fileno()).st_size)
                stored.seek(0)
                members = stored.read(end)
            os.utime(path)
        except FileNotFoundError:
            return None
        except UnreadableCache as exc:
            log.warning("removing the unreadable cache %s: %s", path, exc)
            path.unlink(missing_ok=True)
            return None
        return StoredCache(members, fingerprint)

    @contextlib.contextmanager
    def writing(self, project: str, key: str) -> Iterator[BinaryIO]:
        """A file to write the cache's tar into; it becomes the cache when the block
        ends without an error, and is deleted otherwise."""
        target = self.path(project, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self.evict()

    def evict(self) -> list[Path]:
        """Remove the least recently used caches until they fit in ``total_bytes``,
        and temporary files that writers which died left."""
        caches: list[tuple[float, int, Path]] = []
        now = time.time()
        for path in self.root.glob("*/*"):
            try:
                status = path.stat()
            except FileNotFoundError:
                continue  # removed by another runner meanwhile
            if path.name.endswith(".tmp"):
                if now - status.st_mtime > STALE_TEMPORARY_SECONDS:
                    path.unlink(missing_ok=True)
            elif path.name.endswith(".tar"):
                caches.append((status.st_mtime, status.st_size, path))
        total = sum(size for _, size, _ in caches)
        removed = []
        for _, size, path in sorted(caches):
            if total <= self.total_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed.append(path)
            log.info("removed cache %s (least recently used) to stay under the total", path)
        return removed
