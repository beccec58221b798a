"""The seams between the pure core and the world. Adapters implement these."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pipelines.model import GitRef, JobTask
from pipelines.release import InstanceOutcome


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

    def release_task_state(self, task_id: str) -> tuple[TaskState, datetime | None]:
        """Where a release batch's task is, and when a runner took it."""
        ...

    def ask(self, queue: str, function: str, payload: dict[str, Any], timeout: float) -> Any:
        """Run ``function`` on a runner serving ``queue`` and return its answer;
        ExternalError when no runner answers within ``timeout`` seconds."""
        ...

    def drop(self, job_id: int) -> None:
        """Forget the job's task, wherever it is; a runner that holds it already
        finds out from the server that the job is no longer pending."""
        ...

    def drop_release_batch(self, task_id: str) -> None:
        """Forget a release batch's task, wherever it is; a runner that holds it
        already is refused when it claims the batch."""
        ...

    def unreachable(self) -> str | None:
        """Why the queue does not answer; None when it does."""
        ...


@dataclass(frozen=True)
class FileAtCommit:
    """A file as a commit holds it."""

    blob: str  # git's id of the content: two files with the same id hold the same bytes
    content: bytes


class SourceRepository(Protocol):
    """Read access to the repositories Shipway builds."""

    def resolve(self, clone_url: str, ref: GitRef) -> str:
        """The full commit id of a branch, tag or commit; NotFound if there is none."""
        ...

    def read_files(
        self, clone_url: str, shas: Sequence[str], file_path: str
    ) -> dict[str, FileAtCommit | None]:
        """The file at each of several commits, read together: None for a commit
        without that file; a commit the repository does not hold is left out.
        Fetches only when one of the commits is not known yet, and then once.
        ExternalError when the repository cannot be reached."""
        ...


class Traffic(Protocol):
    """Takes an instance out of the traffic its load balancer sends, and puts it back
    (L3). Service discovery implements it; until then a release has nothing to do."""

    def take_out(self, instance: str, say: Callable[[str], None]) -> None:
        """Return once no new request reaches the instance and those in flight ended."""
        ...

    def put_back(self, instance: str, say: Callable[[str], None]) -> None: ...


class Deployer(Protocol):
    """Runs an application's instances on a target: the Docker Engine today, a
    Swarm later. The compose file of the release is its only input."""

    def prepare(self, project: str, environment: str, compose: str, files: dict[str, str]) -> None:
        """Make the release's compose file and mounted files the current ones."""
        ...

    def replace(
        self,
        project: str,
        environment: str,
        name: str,
        config: dict[str, Any],
        on_step: Callable[[InstanceOutcome], None],
    ) -> InstanceOutcome:
        """Replace one instance by the compose file's, step by step (L3), calling
        ``on_step`` after each step; never raises for the instance's own failure."""
        ...

    def logs(self, name: str, tail: int) -> str:
        """The last ``tail`` lines an instance's container wrote (stdout and stderr)."""
        ...


class TrafficWeights(Protocol):
    """The share of requests each registered instance of a service gets (L6)."""

    def registered(self, service: str) -> list[str]:
        """The addresses (``ip:port``) registered now."""
        ...

    def set_weights(self, service: str, weights: dict[str, int]) -> None: ...

    def clear(self, service: str) -> None:
        """Every instance back to an equal share."""
        ...


class GitLab(Protocol):
    """Where Shipway reports back to (T5)."""

    def set_status(
        self,
        project_path: str,
        sha: str,
        state: str,
        *,
        ref: str,
        name: str,
        description: str,
        target_url: str | None,
    ) -> None: ...

    def add_merge_request_note(self, project_path: str, iid: int, body: str) -> None: ...
