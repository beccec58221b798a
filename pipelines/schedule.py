"""Which jobs of a pipeline can start now, which wait for a person, which never run.

A job waits for the jobs it ``needs``, or, when it names none, for every job of the
earlier stages (a stage is a barrier). Once those have finished, its ``when``
decides: ``on_success`` runs when none of them failed (an allowed failure does not
count) or was canceled, ``on_failure`` only when one did, ``always`` in any case,
and ``manual`` as on_success but only after a person plays it. A job that will not
run is skipped. A manual job nobody played blocks the jobs after it only when it
is not allowed to fail, or when they name it in ``needs``.

A job that deploys to an environment starts only while no other job holds that
environment; the caller passes the environments held elsewhere.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from pipelines.model import Job
from pipelines.status import Status


@dataclass
class Decision:
    start: list[int] = field(default_factory=list)  # created -> pending
    manual: list[int] = field(default_factory=list)  # created -> manual: waits to be played
    skip: list[int] = field(default_factory=list)  # created -> skipped: will never run


class Upstream(Enum):
    WAITING = "waiting"  # some job it waits for has not finished
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def current_attempts(jobs: Sequence[Job]) -> list[Job]:
    """The latest attempt of each job: the ones that count."""
    return [job for job in jobs if not job.retried]


def upstream_of(job: Job, jobs: Sequence[Job]) -> list[Job]:
    """The jobs ``job`` waits for, among the current attempts ``jobs``."""
    if job.needs is None:
        return [other for other in jobs if other.stage_index < job.stage_index]
    named = set(job.needs)
    return [other for other in jobs if other.name in named]


def holding(job: Job, upstream: Sequence[Job]) -> list[Job]:
    """The jobs of ``upstream`` that keep ``job`` from being decided: those not
    finished, and manual jobs nobody played (an optional one only when named in
    ``needs``)."""
    explicit = job.needs is not None
    return [other for other in upstream if _holds(other, explicit)]


def _holds(other: Job, needed_by_name: bool) -> bool:
    if other.status is Status.MANUAL:
        return needed_by_name or not other.allow_failure
    return not other.status.is_finished


def upstream_state(job: Job, upstream: Sequence[Job]) -> Upstream:
    if holding(job, upstream):
        return Upstream.WAITING
    explicit = job.needs is not None
    # What is left is finished, or an optional manual job that blocks nothing.
    failed = any(_counts_as_failure(other, explicit) for other in upstream)
    return Upstream.FAILED if failed else Upstream.SUCCEEDED


def _counts_as_failure(job: Job, needed_by_name: bool) -> bool:
    if job.status is Status.FAILED:
        return not job.allow_failure
    # A skipped job in an earlier stage is usually an on_failure job that had
    # nothing to do; a skipped job named in needs did not produce what is needed.
    return job.status is Status.CANCELED or (needed_by_name and job.status is Status.SKIPPED)


def next_steps(jobs: Sequence[Job], busy_environments: Collection[str] = ()) -> Decision:
    """Decide on the ``created`` jobs of one pipeline, given all its jobs.

    Jobs are decided in stage order, each seeing the decisions made before it, so
    one call skips a whole chain of jobs behind a failure."""
    decision = Decision()
    current = {job.id: job for job in current_attempts(jobs)}
    claimed = set(busy_environments)
    claimed.update(
        job.environment for job in current.values() if job.environment and job.status.is_active
    )
    for job in sorted(current.values(), key=lambda job: (job.stage_index, job.id)):
        if job.status is not Status.CREATED:
            continue
        state = upstream_state(job, upstream_of(job, list(current.values())))
        if state is Upstream.WAITING:
            continue
        if not _runs(job.when, state):
            decision.skip.append(job.id)
            current[job.id] = replace(job, status=Status.SKIPPED)
        elif job.is_manual and job.played_by is None:
            decision.manual.append(job.id)
            current[job.id] = replace(job, status=Status.MANUAL)
        elif job.environment is not None and job.environment in claimed:
            continue  # another job holds the environment: wait for it to end
        else:
            decision.start.append(job.id)
            current[job.id] = replace(job, status=Status.PENDING)
            if job.environment is not None:
                claimed.add(job.environment)
    return decision


def _runs(when: str, state: Upstream) -> bool:
    if when == "always":
        return True
    if when == "on_failure":
        return state is Upstream.FAILED
    return state is Upstream.SUCCEEDED  # on_success and manual
