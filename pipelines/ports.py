"""The seams between the pure core and the world. Adapters implement these."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pipelines.model import GitRef, JobTask


class TaskState(StrEnum):
    """Where a job's task is in the queue."""

    QUEUED = "queued"  # waits for a runner
    STARTED = "started"  # a runner took it
    ENDED = "ended"  # a runner is done with it (or its process died)
    MISSING = "missing"  # the queue does not have it


class JobQueue(Protocol):
    """Hands jobs to runners. Enqueuing the same job twice queues it once."""

    def enqueue(self, queue: str, task: JobTask) -> None: ...

    def task_state(self, job_id: int) -> tuple[TaskState, datetime | None]:
        """The task's state and, once a runner took it, when."""
        ...

    def enqueue_release_batch(self, queue: str, task_id: str, payload: dict[str, Any]) -> None:
        """Hand one batch of a release to a runner serving ``queue``; a task id
        already queued is not queued again."""
        ...

    def drop(self, job_id: int) -> None:
        """Forget the job's task, wherever it is; a runner that holds it already
        finds out from the server that the job is no longer pending."""
        ...


class SourceRepository(Protocol):
    """Read access to the repositories Shipway builds."""

    def resolve(self, clone_url: str, ref: GitRef) -> str:
        """The full commit id of a branch, tag or commit; NotFound if there is none."""
        ...

    def read_file(self, clone_url: str, sha: str, file_path: str) -> str | None:
        """A file's text at a commit; None when the commit has no such file."""
        ...
