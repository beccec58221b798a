"""Releases (L1, L2, L8): an image rolled out to an environment, batch by batch.

    awaiting_approval --approvals complete--> running     (a protected environment)
    awaiting_approval --rejected--> failed (for good)
    running --batch done, pause wanted--> paused --resume--> running
    running --last batch done--> success
    running --an instance failed--> failed --retry failed instances--> running
    paused/running/awaiting_approval --close--> failed (for good)

A release is ``running`` while a batch is in flight or ready to go; the engine hands
one batch at a time to a runner serving the environment's queue. Each instance goes
through the steps of L3 in order and reports them. The status changes only through
:func:`release_transition`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pipelines.errors import IllegalTransition
from pipelines.rollout import PauseMode


class ReleaseStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"  # to a protected environment: nothing ran yet
    RUNNING = "running"
    PAUSED = "paused"  # waits for a person to resume it
    SUCCESS = "success"  # every instance runs the new version, healthy
    FAILED = "failed"  # an instance failed, or a person closed it

    @property
    def is_active(self) -> bool:
        return self in (
            ReleaseStatus.AWAITING_APPROVAL,
            ReleaseStatus.RUNNING,
            ReleaseStatus.PAUSED,
        )


RELEASE_TRANSITIONS: dict[ReleaseStatus, frozenset[ReleaseStatus]] = {
    ReleaseStatus.AWAITING_APPROVAL: frozenset({ReleaseStatus.RUNNING, ReleaseStatus.FAILED}),
    ReleaseStatus.RUNNING: frozenset(
        {ReleaseStatus.PAUSED, ReleaseStatus.SUCCESS, ReleaseStatus.FAILED}
    ),
    ReleaseStatus.PAUSED: frozenset({ReleaseStatus.RUNNING, ReleaseStatus.FAILED}),
    ReleaseStatus.SUCCESS: frozenset(),
    # Retrying the failed instances of a release that was not closed.
    ReleaseStatus.FAILED: frozenset({ReleaseStatus.RUNNING}),
}


def release_transition(current: ReleaseStatus, target: ReleaseStatus) -> ReleaseStatus:
    if target not in RELEASE_TRANSITIONS[current]:
        raise IllegalTransition(f"a {current} release cannot become {target}")
    return target


class ReleaseKind(StrEnum):
    RELEASE = "release"  # a version ordered by a person or a deploy job
    ROLLBACK = "rollback"  # a version released successfully before, again (L4)
    RESTART = "restart"  # the current version, every instance replaced again (L9)
    PROMOTION = "promotion"  # the digest another environment runs (P2)


class InstanceStatus(StrEnum):
    WAITING = "waiting"  # its batch has not started
    DEPLOYING = "deploying"
    HEALTHY = "healthy"  # runs the new version and passed its health check
    FAILED = "failed"


@dataclass
class Release:
    id: int
    project_id: int
    environment: str
    image: str
    config_version: int
    batches: list[list[str]]
    beta: bool
    pause_mode: PauseMode
    status: ReleaseStatus
    next_batch: int  # the batch to run next (== len(batches) when all ran)
    batch_in_flight: bool
    created_by: str
    created_at: datetime
    reason: str | None = None  # why it failed or was closed; why a rollback was made
    finished_at: datetime | None = None
    closed: bool = False  # closed by a person: it cannot be retried
    retries: int = 0  # how many times its failed instances were run again
    rollback_of: int | None = None  # the successful release whose version it restores
    job_id: int | None = None  # the pipeline's deploy job that ordered it
    kind: ReleaseKind = ReleaseKind.RELEASE
    handouts: int = 0  # batches handed to runners so far: each task has its own id
    batch_runner: str | None = None  # the runner that claimed the batch in flight
    batch_claimed_at: datetime | None = None
    batch_handed_out_at: datetime | None = None  # since when the batch in flight waits

    @property
    def batch_task_id(self) -> str:
        """The queue's id of the batch handed out last."""
        return f"shipway-release-{self.id}-batch-{self.next_batch}-{self.handouts}"


@dataclass
class ReleaseInstance:
    name: str
    batch: int
    status: InstanceStatus
    log: str  # the steps, one line each, with their time


@dataclass
class InstanceOutcome:
    """What replacing one instance came to, with its steps so far."""

    name: str
    healthy: bool
    log: list[str] = field(default_factory=list)
    reason: str | None = None
