from __future__ import annotations

import pytest

from pipelines.errors import IllegalTransition
from pipelines.status import TRANSITIONS, Status, can_transition, merge, transition


def test_every_status_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(Status)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Status.CREATED, Status.PENDING),
        (Status.PENDING, Status.RUNNING),
        (Status.RUNNING, Status.SUCCESS),
        (Status.RUNNING, Status.FAILED),
        (Status.PENDING, Status.CANCELED),
        (Status.CREATED, Status.SKIPPED),
        (Status.MANUAL, Status.CREATED),
        (Status.MANUAL, Status.CANCELED),
    ],
)
def test_allowed_transitions(current: Status, target: Status) -> None:
    assert transition(current, target) is target


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Status.SUCCESS, Status.RUNNING),
        (Status.FAILED, Status.SUCCESS),
        (Status.CREATED, Status.RUNNING),
        (Status.CREATED, Status.SUCCESS),
        (Status.CANCELED, Status.PENDING),
        (Status.RUNNING, Status.PENDING),
    ],
)
def test_illegal_transitions_are_refused(current: Status, target: Status) -> None:
    assert not can_transition(current, target)
    with pytest.raises(IllegalTransition, match=f"{current} job cannot become {target}"):
        transition(current, target)


def test_finished_statuses_are_final() -> None:
    for status in (Status.SUCCESS, Status.FAILED, Status.CANCELED, Status.SKIPPED):
        assert status.is_finished
        assert TRANSITIONS[status] == frozenset()


def jobs(*statuses: Status) -> list[tuple[Status, bool]]:
    return [(status, False) for status in statuses]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], Status.CREATED),
        ([Status.CREATED, Status.CREATED], Status.CREATED),
        ([Status.PENDING, Status.CREATED], Status.PENDING),
        ([Status.SUCCESS, Status.PENDING], Status.RUNNING),
        ([Status.SUCCESS, Status.CREATED], Status.RUNNING),
        ([Status.FAILED, Status.RUNNING], Status.RUNNING),
        ([Status.SUCCESS, Status.SUCCESS], Status.SUCCESS),
        ([Status.SUCCESS, Status.SKIPPED], Status.SUCCESS),
        ([Status.FAILED, Status.SKIPPED], Status.FAILED),
        ([Status.FAILED, Status.CANCELED], Status.FAILED),
        ([Status.SUCCESS, Status.CANCELED], Status.CANCELED),
        ([Status.SKIPPED, Status.SKIPPED], Status.SKIPPED),
        ([Status.SUCCESS, Status.MANUAL], Status.MANUAL),
        ([Status.MANUAL], Status.MANUAL),
        ([Status.SUCCESS, Status.MANUAL, Status.CREATED], Status.MANUAL),
        ([Status.RUNNING, Status.MANUAL], Status.RUNNING),
    ],
)
def test_merge(statuses: list[Status], expected: Status) -> None:
    assert merge(jobs(*statuses)) is expected


def test_an_allowed_failure_counts_as_success() -> None:
    assert merge([(Status.FAILED, True), (Status.SUCCESS, False)]) is Status.SUCCESS
    assert merge([(Status.FAILED, True), (Status.FAILED, False)]) is Status.FAILED


def test_a_pipeline_that_ran_before_is_running_while_work_remains() -> None:
    assert merge(jobs(Status.CREATED), started=True) is Status.RUNNING
    assert merge(jobs(Status.PENDING), started=True) is Status.RUNNING
    assert merge(jobs(Status.SUCCESS), started=True) is Status.SUCCESS


def test_an_optional_manual_job_does_not_hold_a_pipeline_open() -> None:
    assert merge([(Status.SUCCESS, False), (Status.MANUAL, True)]) is Status.SUCCESS
    assert merge([(Status.FAILED, False), (Status.MANUAL, True)]) is Status.FAILED
    assert merge([(Status.SUCCESS, False), (Status.MANUAL, False)]) is Status.MANUAL
