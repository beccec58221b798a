"""What Shipway tells GitLab (T5): a commit status per pipeline, and a note on the
merge request once its pipeline has deployed to an environment. Pure: which report
is due, and what it says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pipelines.status import Status

STATUS_NAME = "shipway"  # the status's name in GitLab's pipeline widget
# Commit statuses take pending, running, success, failed, canceled and skipped.
GITLAB_STATES: dict[Status, str] = {
    Status.CREATED: "pending",
    Status.PENDING: "pending",
    Status.MANUAL: "pending",  # waits for a person: not done, not failed
    Status.RUNNING: "running",
    Status.SUCCESS: "success",
    Status.FAILED: "failed",
    Status.CANCELED: "canceled",
    Status.SKIPPED: "skipped",
}
DESCRIPTIONS: dict[Status, str] = {
    Status.CREATED: "waiting for its first jobs",
    Status.PENDING: "waiting for a runner",
    Status.MANUAL: "waiting for a person to play a manual job",
    Status.RUNNING: "running",
    Status.SUCCESS: "passed",
    Status.FAILED: "failed",
    Status.CANCELED: "canceled",
    Status.SKIPPED: "skipped",
}
FIRST_RETRY = timedelta(seconds=2)
LAST_RETRY = timedelta(minutes=5)
GIVE_UP_AFTER = 20  # attempts: about an hour and a half of GitLab being away


@dataclass(frozen=True)
class Delivery:
    """What was sent of one report, or tried."""

    sent: str | None  # the value GitLab has (a state; "sent" for a note)
    attempts: int = 0  # failed attempts since the last success
    next_attempt_at: datetime | None = None
    error: str | None = None


def gitlab_state(status: Status) -> str:
    return GITLAB_STATES[status]


def is_due(wanted: str, delivery: Delivery | None, now: datetime) -> bool:
    """Whether ``wanted`` must be sent: GitLab does not have it yet, and the last
    failure's back-off has passed (a report that failed too often is given up)."""
    if delivery is None:
        return True
    if delivery.sent == wanted:
        return False
    if delivery.attempts >= GIVE_UP_AFTER:
        return False
    return delivery.next_attempt_at is None or now >= delivery.next_attempt_at


def after_failure(delivery: Delivery | None, error: str, now: datetime) -> Delivery:
    """The delivery after a failed attempt: back-off doubling up to LAST_RETRY."""
    attempts = (delivery.attempts if delivery else 0) + 1
    wait = min(FIRST_RETRY * 2 ** (attempts - 1), LAST_RETRY)
    return Delivery(delivery.sent if delivery else None, attempts, now + wait, error)


def deployed_note(environment: str, sha: str, release_id: int, url: str | None) -> str:
    where = f": {url}" if url else ""
    return (
        f"Shipway deployed {sha[:8]} to **{environment}**{where} "
        f"(release {release_id}). Testers, it is ready."
    )
