"""Files a job leaves in its workspace that the runner reads back once the script
ended: test reports, scan outputs. Read from the stopped container, before it is
removed, within a size budget.
"""

from __future__ import annotations

import fnmatch
import io
import posixpath
import tarfile

import docker.errors
from docker.models.containers import Container

from runners.job_files import WORKSPACE

MAX_REPORT_BYTES = 20 * 1024 * 1024


def collect(container: Container, globs: list[str]) -> dict[str, bytes]:
    """Files of the (stopped) container's workspace that match ``globs``; ``*`` also
    crosses folders. Reads only the folders the globs start in, at most
    ``MAX_REPORT_BYTES`` in all."""
    found: dict[str, bytes] = {}
    budget = MAX_REPORT_BYTES
    for folder in sorted({_fixed_folder(glob) for glob in globs}):
        try:
            stream, _ = container.get_archive(posixpath.normpath(posixpath.join(WORKSPACE, folder)))
        except docker.errors.NotFound:
            continue
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            for member in archive:
                # Members are named from the fetched folder's own name down.
                inside = member.name.partition("/")[2]
                path = posixpath.normpath(posixpath.join(folder, inside))
                wanted = any(fnmatch.fnmatchcase(path, glob) for glob in globs)
                if not member.isfile() or not wanted or member.size > budget:
                    continue
                extracted = archive.extractfile(member)
                if extracted is not None:
                    found[path] = extracted.read()
                    budget -= member.size
    return found


def _fixed_folder(glob: str) -> str:
    """The folder a glob starts in: its part before the first wildcard, up to a '/'."""
    head = glob
    for wildcard in "*?[":
        head = head.split(wildcard, 1)[0]
    return head.rpartition("/")[0] or "."
