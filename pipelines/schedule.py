"""Which jobs of a pipeline can start now, and which will never run.

Stages are barriers: a stage's jobs start once every job of the earlier stages
has finished, and only if none of them failed (a failure that is allowed does not
count) or was canceled; otherwise they are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby

from pipelines.model import Job
from pipelines.status import Status


@dataclass
class Decision:
    start: list[int] = field(default_factory=list)  # job ids to hand to runners
    skip: list[int] = field(default_factory=list)  # job ids that will never run


def next_steps(jobs: Sequence[Job]) -> Decision:
    """Decide on the ``created`` jobs of one pipeline, given all its jobs."""
    decision = Decision()
    blocked = False
    ordered = sorted(jobs, key=lambda job: job.stage_index)
    for _, group in groupby(ordered, key=lambda job: job.stage_index):
        stage = list(group)
        created = [job.id for job in stage if job.status is Status.CREATED]
        if blocked:
            decision.skip.extend(created)
            continue
        decision.start.extend(created)
        if created or any(not job.status.is_finished for job in stage):
            break  # the barrier: later stages wait for this one
        blocked = any(job.status in (Status.FAILED, Status.CANCELED) for job in stage)
    return decision
