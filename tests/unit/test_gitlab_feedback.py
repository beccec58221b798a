from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipelines.gitlab_feedback import (
    GIVE_UP_AFTER,
    LAST_RETRY,
    Delivery,
    after_failure,
    deployed_note,
    gitlab_state,
    is_due,
)
from pipelines.status import Status

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_every_status_has_a_state_gitlab_accepts() -> None:
    accepted = {"pending", "running", "success", "failed", "canceled", "skipped"}
    assert {gitlab_state(status) for status in Status} <= accepted
    assert gitlab_state(Status.MANUAL) == "pending"


def test_a_report_is_due_until_sent_and_backs_off_after_failures() -> None:
    assert is_due("running", None, NOW)
    assert not is_due("running", Delivery("running"), NOW)
    first = after_failure(None, "HTTP 500", NOW)
    assert (first.sent, first.attempts, first.next_attempt_at) == (
        None,
        1,
        NOW + timedelta(seconds=2),
    )
    assert not is_due("running", first, NOW + timedelta(seconds=1))
    assert is_due("running", first, NOW + timedelta(seconds=2))
    second = after_failure(first, "HTTP 500", NOW)
    assert second.next_attempt_at == NOW + timedelta(seconds=4)
    many = Delivery("pending", 12, None, "x")
    assert after_failure(many, "x", NOW).next_attempt_at == NOW + LAST_RETRY
    assert not is_due("running", Delivery("pending", GIVE_UP_AFTER, None, "x"), NOW)


def test_the_note_names_the_environment_the_commit_and_the_address() -> None:
    note = deployed_note("staging", "0123456789abcdef", 4, "https://app.example.com/")
    assert note == (
        "Shipway deployed 01234567 to **staging**: https://app.example.com/ (release 4). "
        "Testers, it is ready."
    )
    assert "**staging** (release 4)" in deployed_note("staging", "0123456789", 4, None)
