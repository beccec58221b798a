"""One status type for jobs and pipelines, its transition table and a pure merge.

A job's status changes only through :func:`transition`, which refuses any change
the table does not list. A pipeline's status is never set by hand: it is
:func:`merge` of its jobs' statuses.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pipelines.errors import IllegalTransition


class Status(StrEnum):
    CREATED = "created"  # recorded; waits for the jobs it depends on
    PENDING = "pending"  # handed to the queue; waits for a runner
    RUNNING = "running"  # a runner executes it
    SUCCESS = "success"  # finished with exit code 0
    FAILED = "failed"  # finished non-zero, timed out, or could not start
    CANCELED = "canceled"  # stopped by a person or superseded
    SKIPPED = "skipped"  # will never run: an earlier stage failed
    MANUAL = "manual"  # waits for a person to play it

    @property
    def is_finished(self) -> bool:
        return self in FINISHED

    @property
    def is_active(self) -> bool:
        return self in ACTIVE


class FailureKind(StrEnum):
    """Why a job failed: what a retry rule matches on."""

    SCRIPT_FAILURE = "script_failure"  # the script exited non-zero
    TEST_FAILURE = "test_failure"  # the script passed, but its test report has failures
    QUALITY_GATE = "quality_gate"  # a scan's findings break the pipeline file's gate
    DEPLOY_FAILURE = "deploy_failure"  # the release a deploy job ordered failed
    TIMEOUT = "timeout"  # the job ran past its timeout and was stopped
    RUNNER_LOST = "runner_lost"  # the runner or the job's process died
    SYSTEM_FAILURE = "system_failure"  # the job could not run: image, Docker, source
    CONFIG_ERROR = "config_error"  # the job cannot run as declared (a secret has no value)
    STUCK = "stuck"  # no runner serving its queue came online within the stuck time


FINISHED = frozenset({Status.SUCCESS, Status.FAILED, Status.CANCELED, Status.SKIPPED})
ACTIVE = frozenset({Status.PENDING, Status.RUNNING})

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.CREATED: frozenset({Status.PENDING, Status.SKIPPED, Status.CANCELED, Status.MANUAL}),
    # Played: back to created, to start when its needs and its environment allow.
    Status.MANUAL: frozenset({Status.CREATED, Status.SKIPPED, Status.CANCELED}),
    Status.PENDING: frozenset({Status.RUNNING, Status.FAILED, Status.CANCELED}),
    Status.RUNNING: frozenset({Status.SUCCESS, Status.FAILED, Status.CANCELED}),
    # Finished is final: a retry is a new attempt with a status of its own.
    Status.SUCCESS: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELED: frozenset(),
    Status.SKIPPED: frozenset(),
}


def can_transition(current: Status, target: Status) -> bool:
    return target in TRANSITIONS[current]


def transition(current: Status, target: Status) -> Status:
    """Return ``target`` if ``current -> target`` is allowed; raise otherwise."""
    if not can_transition(current, target):
        raise IllegalTransition(f"a {current} job cannot become {target}")
    return target


def merge(jobs: Iterable[tuple[Status, bool]], started: bool = False) -> Status:
    """The status of a pipeline made of jobs given as ``(status, allow_failure)``.

    Active work wins over everything; once nothing is active, a failure that is not
    allowed wins over a cancel, which wins over success. A failure that is allowed
    counts as a success. A manual job that is allowed to fail does not block: while
    it waits it is left out, so a pipeline whose only open job is an optional manual
    one has the status of the rest; one that blocks makes the pipeline ``manual`` as
    soon as nothing else is active. ``started`` says the pipeline ran jobs before
    (attempts since retried): with work left it is running, not created.
    """
    given = list(jobs)
    statuses = [
        Status.SUCCESS if status is Status.FAILED and allow_failure else status
        for status, allow_failure in given
        if not (status is Status.MANUAL and allow_failure)
    ]
    if not statuses:
        return Status.MANUAL if given else Status.CREATED
    started = started or any(s.is_finished or s is Status.RUNNING for s in statuses)
    if Status.RUNNING in statuses:
        return Status.RUNNING
    if Status.PENDING in statuses:
        return Status.RUNNING if started else Status.PENDING
    if Status.MANUAL in statuses:
        # Nothing runs and a person must play a job: jobs still created wait for it.
        return Status.MANUAL
    if Status.CREATED in statuses:
        return Status.RUNNING if started else Status.CREATED
    if Status.FAILED in statuses:
        return Status.FAILED
    if Status.CANCELED in statuses:
        return Status.CANCELED
    if all(s is Status.SKIPPED for s in statuses):
        return Status.SKIPPED
    return Status.SUCCESS
