from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipelines.liveness import CLAIM_WITHIN, needs_requeue
from pipelines.ports import TaskState
from pipelines.retry import retries_automatically
from pipelines.status import Status
from tests.unit.test_schedule import job

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempt", "retry_on", "failure", "expected"),
    [
        (1, ("any",), "script_failure", True),
        (2, ("any",), "script_failure", True),
        (3, ("any",), "script_failure", False),  # 1 + 2 retries used up
        (1, ("runner_lost",), "runner_lost", True),
        (1, ("runner_lost",), "script_failure", False),
        (1, ("any",), "config_error", False),  # retrying cannot help
        (1, ("any", "stuck"), "stuck", False),  # it would wait as long again
    ],
)
def test_automatic_retries(
    attempt: int, retry_on: tuple[str, ...], failure: str, expected: bool
) -> None:
    failed = job(
        1, 0, Status.FAILED, attempt=attempt, retry_max=2, retry_on=retry_on, failure_kind=failure
    )
    assert retries_automatically(failed) is expected


def test_no_retry_setting_no_retry() -> None:
    assert not retries_automatically(job(1, 0, Status.FAILED, failure_kind="runner_lost"))
    assert not retries_automatically(job(1, 0, Status.SUCCESS, retry_max=2, retry_on=("any",)))


def test_tasks_queued_again() -> None:
    assert needs_requeue(TaskState.MISSING, None, NOW)
    assert needs_requeue(TaskState.ENDED, None, NOW)
    assert not needs_requeue(TaskState.QUEUED, None, NOW)
    assert not needs_requeue(TaskState.STARTED, NOW - timedelta(seconds=2), NOW)
    assert needs_requeue(TaskState.STARTED, NOW - CLAIM_WITHIN - timedelta(seconds=1), NOW)
