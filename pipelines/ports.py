"""The seams between the pure core and the world. Adapters implement these."""

from __future__ import annotations

from typing import Protocol

from pipelines.model import GitRef, JobTask


class JobQueue(Protocol):
    """Hands jobs to runners. Enqueuing the same job twice queues it once."""

    def enqueue(self, queue: str, task: JobTask) -> None: ...


class SourceRepository(Protocol):
    """Read access to the repositories Shipway builds."""

    def resolve(self, clone_url: str, ref: GitRef) -> str:
        """The full commit id of a branch, tag or commit; NotFound if there is none."""
        ...

    def read_file(self, clone_url: str, sha: str, file_path: str) -> str | None:
        """A file's text at a commit; None when the commit has no such file."""
        ...
