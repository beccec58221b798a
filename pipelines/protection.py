"""Protected environments (U3): a release to one waits for people's approvals.

An environment is protected when its project says so, and ``production`` is
protected unless its project says otherwise. A release (ordered by hand, by a deploy
job, a rollback or a restart) to a protected environment starts ``awaiting_approval``
and runs only once enough people holding the approving role approved it; one
rejection ends it. Approvals are kept in the store, so they survive a restart.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pipelines.roles import Role

PROTECTED_BY_DEFAULT = frozenset({"production"})
APPROVER_ROLES = (Role.OPS, Role.ADMIN)  # who may be named to approve


@dataclass(frozen=True)
class Protection:
    """How an environment is protected."""

    approvals: int = 1  # how many distinct people must approve
    approver_role: Role = Role.OPS  # which role approves (an administrator always may)
    self_approval: bool = False  # whether who asked for the release may approve it
    valid_minutes: int | None = None  # how long an approval counts (None: until used)
    # An environment (staging) whose testers must have passed the very image first.
    verdict_from: str | None = None


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True)
class Approval:
    user: str
    decision: Decision
    comment: str
    at: datetime


@dataclass(frozen=True)
class Verdict:
    """A tester's word on a release: it passed their tests or not (U4)."""

    release_id: int
    user: str
    passed: bool
    comment: str
    at: datetime


def counting(
    protection: Protection, approvals: Iterable[Approval], now: datetime
) -> list[Approval]:
    """The approvals that count now: one per person (their latest), not expired."""
    latest: dict[str, Approval] = {}
    for approval in sorted(approvals, key=lambda a: a.at):
        latest[approval.user] = approval
    fresh = [
        approval
        for approval in latest.values()
        if approval.decision is Decision.APPROVE
        and (
            protection.valid_minutes is None
            or now - approval.at <= timedelta(minutes=protection.valid_minutes)
        )
    ]
    return sorted(fresh, key=lambda a: a.at)


def still_needed(protection: Protection, approvals: Iterable[Approval], now: datetime) -> int:
    return max(0, protection.approvals - len(counting(protection, approvals, now)))


def refusal(protection: Protection, approver: str, requesters: Collection[str]) -> str | None:
    """Why ``approver`` may not approve or reject a release these people asked for;
    None when they may (their role is checked by the caller)."""
    if not protection.self_approval and approver in requesters:
        return f"{approver} asked for this release and may not approve their own change"
    return None
