"""Automatic retries: which failed jobs get another attempt on their own."""

from __future__ import annotations

from pipelines.model import Job
from pipelines.status import FailureKind, Status

RETRY_ANY = "any"
# Retrying cannot help a job that cannot run as declared, nor one that found no
# runner for its queue (a new attempt would only wait as long again): a person
# retries it once a runner serves the queue.
NEVER_RETRIED = frozenset({FailureKind.CONFIG_ERROR.value, FailureKind.STUCK.value})


def retries_automatically(job: Job) -> bool:
    """A failed current attempt whose ``retry`` setting covers its failure and
    whose attempts (the first one plus ``retry_max`` more) are not used up."""
    if job.status is not Status.FAILED or job.retried or job.attempt > job.retry_max:
        return False
    if job.failure_kind in NEVER_RETRIED:
        return False
    return RETRY_ANY in job.retry_on or job.failure_kind in job.retry_on
