"""The domain model: projects, refs, pipelines, jobs and the task a runner receives.

These are plain data. The store turns rows into them; the usecases change them
only through ``pipelines.status.transition``.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pipelines.status import Status

ZERO_SHA = "0" * 40
_QUEUE_ID = re.compile(r"^shipway-job-(\d+)$")


def queue_id(job_id: int) -> str:
    """The id of a job's task in the queue: one per job, so enqueuing twice is harmless."""
    return f"shipway-job-{job_id}"


def job_id_of(queue_task_id: str | None) -> int | None:
    match = _QUEUE_ID.match(queue_task_id or "")
    return int(match.group(1)) if match else None


class RefKind(StrEnum):
    BRANCH = "branch"
    TAG = "tag"
    COMMIT = "commit"  # a bare commit, triggered by hand


@dataclass(frozen=True)
class GitRef:
    """What a pipeline was started for: a branch, a tag or a bare commit."""

    kind: RefKind
    name: str

    @classmethod
    def parse(cls, full_ref: str) -> GitRef:
        """``refs/heads/x`` -> branch x, ``refs/tags/v1`` -> tag v1."""
        for prefix, kind in (("refs/heads/", RefKind.BRANCH), ("refs/tags/", RefKind.TAG)):
            if full_ref.startswith(prefix) and len(full_ref) > len(prefix):
                return cls(kind, full_ref[len(prefix) :])
        raise ValueError(f"not a branch or tag ref: {full_ref!r}")

    @property
    def full(self) -> str:
        if self.kind is RefKind.BRANCH:
            return f"refs/heads/{self.name}"
        if self.kind is RefKind.TAG:
            return f"refs/tags/{self.name}"
        return self.name


@dataclass(frozen=True)
class Project:
    """An application whose repository Shipway builds."""

    id: int
    name: str
    clone_url: str
    gitlab_path: str
    branches: tuple[str, ...]  # glob patterns of the branches that build
    tags: tuple[str, ...]  # glob patterns of the tags that build
    created_at: datetime
    # A new pipeline on a branch cancels that branch's older pipelines that have
    # not started any job yet.
    supersede: bool = False

    def builds(self, ref: GitRef) -> bool:
        """Whether a push to ``ref`` starts a pipeline. A bare commit always builds."""
        if ref.kind is RefKind.COMMIT:
            return True
        patterns = self.branches if ref.kind is RefKind.BRANCH else self.tags
        return any(fnmatch.fnmatchcase(ref.name, pattern) for pattern in patterns)


@dataclass(frozen=True)
class PushEvent:
    """A push of a branch or a tag, as GitLab (or Shipway's own git hook) reports it."""

    kind: str  # "push" or "tag_push"
    project_path: str
    ref: GitRef
    before: str
    after: str
    checkout_sha: str | None  # the commit to build; for an annotated tag, not ``after``
    user: str
    message: str | None
    commit_count: int

    @property
    def deletes_ref(self) -> bool:
        return self.after == ZERO_SHA

    @property
    def commit(self) -> str:
        return self.checkout_sha or self.after


@dataclass
class Pipeline:
    """One numbered run of a project's pipeline file for one commit."""

    id: int
    project_id: int
    ref: GitRef
    sha: str
    source: str  # push, tag_push, merge_request or api
    status: Status
    created_at: datetime
    error: str | None = None  # why it ended without its jobs (invalid file, superseded)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    triggered_by: str | None = None
    merge_request_iid: int | None = None


@dataclass
class Job:
    """One job of a pipeline: a script run in a container image by one runner."""

    id: int
    pipeline_id: int
    name: str
    stage: str
    stage_index: int
    image: str
    script: tuple[str, ...]
    variables: dict[str, str]
    timeout_seconds: int
    queue: str
    status: Status
    created_at: datetime
    kind: str = "script"
    needs: tuple[str, ...] | None = None  # None: the jobs of every earlier stage
    when: str = "on_success"  # on_success, on_failure, always or manual
    allow_failure: bool = False
    retry_max: int = 0  # automatic retries allowed after the first attempt
    retry_on: tuple[str, ...] = ()  # failure kinds that are retried ("any": all)
    environment: str | None = None
    secrets: tuple[str, ...] = ()  # names; the server keeps the values
    settings: dict[str, Any] | None = None  # what a built-in kind of job needs
    attempt: int = 1
    retried: bool = False  # a newer attempt of the same job exists
    played_by: str | None = None  # who played it, for a manual job
    exit_code: int | None = None
    failure_kind: str | None = None  # a pipelines.status.FailureKind value
    failure_reason: str | None = None
    runner: str | None = None
    queued_at: datetime | None = None  # when it became pending: it waits for a runner since
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def is_manual(self) -> bool:
        return self.when == "manual"


@dataclass(frozen=True)
class BuiltImage:
    """An image a pipeline built and pushed: what deploys refer to."""

    pipeline_id: int
    job_id: int
    repository: str  # registry host and name, as pulled: 127.0.0.1:5000/hello
    tag: str  # the commit
    digest: str  # sha256:..., the pushed manifest's
    middleware: str | None  # the middleware image it is FROM, when built from layers
    pushed_bytes: int  # what the push sent (layers the registry already had are not sent)
    app_layer_bytes: int | None  # the application layer's size
    runtime_mounts: tuple[dict[str, Any], ...] = ()
    created_at: datetime | None = None

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


@dataclass(frozen=True)
class Runner:
    """A runner as its last heartbeat described it."""

    name: str
    queues: tuple[str, ...]
    host: str
    pid: int
    current_job_id: int | None
    first_seen: datetime
    last_seen: datetime
    # What keeps it from working, in its own words ("Redis at ... unreachable since
    # ..."); None when all it needs answers.
    problem: str | None = None


@dataclass(frozen=True)
class JobTask:
    """All a runner needs to execute a job, sent through the queue as plain JSON."""

    job_id: int
    pipeline_id: int
    project: str
    clone_url: str
    sha: str
    ref: GitRef
    name: str
    image: str
    script: tuple[str, ...]
    variables: dict[str, str] = field(default_factory=dict)
    timeout_seconds: int = 3600
    attempt: int = 1
    environment_name: str | None = None  # the environment it deploys to
    merge_request_iid: int | None = None
    kind: str = "script"
    settings: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "pipeline_id": self.pipeline_id,
            "project": self.project,
            "clone_url": self.clone_url,
            "sha": self.sha,
            "ref": {"kind": self.ref.kind.value, "name": self.ref.name},
            "name": self.name,
            "image": self.image,
            "script": list(self.script),
            "variables": dict(self.variables),
            "timeout_seconds": self.timeout_seconds,
            "attempt": self.attempt,
            "environment_name": self.environment_name,
            "merge_request_iid": self.merge_request_iid,
            "kind": self.kind,
            "settings": self.settings,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobTask:
        return cls(
            job_id=int(data["job_id"]),
            pipeline_id=int(data["pipeline_id"]),
            project=str(data["project"]),
            clone_url=str(data["clone_url"]),
            sha=str(data["sha"]),
            ref=GitRef(RefKind(data["ref"]["kind"]), str(data["ref"]["name"])),
            name=str(data["name"]),
            image=str(data["image"]),
            script=tuple(str(line) for line in data["script"]),
            variables={str(k): str(v) for k, v in data["variables"].items()},
            timeout_seconds=int(data["timeout_seconds"]),
            attempt=int(data.get("attempt", 1)),
            environment_name=data.get("environment_name"),
            merge_request_iid=data.get("merge_request_iid"),
            kind=str(data.get("kind", "script")),
            settings=data.get("settings"),
        )

    def environment(self) -> dict[str, str]:
        """Variables the job's container sees. Webhook text travels only this way,
        as environment values, never inside a command line."""
        env = dict(self.variables)
        env.update(
            {
                "CI": "true",
                "SHIPWAY": "true",
                "SHIPWAY_PROJECT_NAME": self.project,
                "SHIPWAY_PIPELINE_ID": str(self.pipeline_id),
                "SHIPWAY_JOB_ID": str(self.job_id),
                "SHIPWAY_JOB_NAME": self.name,
                "SHIPWAY_COMMIT_SHA": self.sha,
                "SHIPWAY_COMMIT_REF_NAME": self.ref.name,
                "SHIPWAY_JOB_ATTEMPT": str(self.attempt),
            }
        )
        if self.environment_name is not None:
            env["SHIPWAY_ENVIRONMENT_NAME"] = self.environment_name
        if self.merge_request_iid is not None:
            env["SHIPWAY_MERGE_REQUEST_IID"] = str(self.merge_request_iid)
        if self.ref.kind is RefKind.BRANCH:
            env["SHIPWAY_COMMIT_BRANCH"] = self.ref.name
        elif self.ref.kind is RefKind.TAG:
            env["SHIPWAY_COMMIT_TAG"] = self.ref.name
        return env
