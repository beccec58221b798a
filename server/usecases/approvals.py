"""Approving releases to protected environments (U3): who asked for a release, who
may approve it, and what an approval or a rejection does."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.errors import Conflict, Forbidden
from pipelines.protection import (
    Approval,
    Decision,
    Protection,
    counting,
    refusal,
    still_needed,
)
from pipelines.release import Release, ReleaseStatus
from pipelines.roles import Grant, Role
from server.store import Store
from server.store.tables import utcnow


@dataclass(frozen=True)
class ApprovalState:
    """Where a release awaiting approval stands, for people to read."""

    protection: Protection
    needed: int  # approvals still missing
    approved_by: list[str]
    decisions: list[Approval]
    may_approve: list[str]  # who could give the missing approvals

    def waiting(self) -> str:
        who = ", ".join(self.may_approve) or "nobody holds the role yet"
        plural = "s" if self.needed != 1 else ""
        return (
            f"waiting for {self.needed} more approval{plural} by "
            f"{self.protection.approver_role.value} ({who})"
        )


def requesters(store: Store, release: Release) -> set[str]:
    """Who asked for the release: who ordered it, or, for a deploy job's, who played
    the job and who pushed (as the webhook says: it can only keep someone from
    approving, never let anyone approve)."""
    people = {release.created_by}
    if release.job_id is not None:
        job = store.jobs.get(release.job_id)
        pipeline = store.pipelines.get(job.pipeline_id)
        people |= {name for name in (job.played_by, pipeline.triggered_by) if name}
    return people


def holds(grants: tuple[Grant, ...], role: Role, project_id: int) -> bool:
    """Whether the grants give ``role`` in the project (an administrator's always do)."""
    return any(
        grant.role in (role, Role.ADMIN) and grant.project_id in (None, project_id)
        for grant in grants
    )


def approval_state(store: Store, release: Release) -> ApprovalState | None:
    """None unless the release awaits approval."""
    if release.status is not ReleaseStatus.AWAITING_APPROVAL:
        return None
    protection = store.protections.of(release.project_id, release.environment) or Protection()
    decisions = store.protections.decisions(release.id)
    now = utcnow()
    approved = [approval.user for approval in counting(protection, decisions, now)]
    asked = requesters(store, release)
    may = [
        user.name
        for user in store.users.all()
        if not user.disabled
        and holds(user.grants, protection.approver_role, release.project_id)
        and user.name not in approved
        and refusal(protection, user.name, asked) is None
    ]
    needed = still_needed(protection, decisions, now)
    return ApprovalState(protection, needed, approved, decisions, may)


def decide(
    store: Store,
    release_id: int,
    user: str,
    grants: tuple[Grant, ...],
    decision: Decision,
    comment: str,
) -> Release:
    """Record ``user``'s approval or rejection. Enough approvals start the release;
    a rejection ends it for good. Forbidden (and audited by the route) for anyone
    without the approving role, or who asked for it when that is not allowed."""
    release = store.releases.get(release_id)
    if release.status is not ReleaseStatus.AWAITING_APPROVAL:
        raise Conflict(f"release {release_id} is {release.status}: it awaits no approval")
    protection = store.protections.of(release.project_id, release.environment) or Protection()
    role = protection.approver_role
    if not holds(grants, role, release.project_id):
        raise Forbidden(
            f"{user} does not hold the role {role.value} that approves releases to "
            f"{release.environment}"
        )
    why = refusal(protection, user, requesters(store, release))
    if why is not None:
        raise Forbidden(why)
    store.protections.add_decision(release_id, user, decision, comment)
    target = f"release {release_id}"
    if decision is Decision.REJECT:
        store.audit.record(user, "release.reject", "failed", target, {"comment": comment})
        return store.releases.update(
            release_id,
            status=ReleaseStatus.FAILED,
            expect=ReleaseStatus.AWAITING_APPROVAL,
            reason=f"rejected by {user}: {comment}",
            closed=True,
        )
    needed = still_needed(protection, store.protections.decisions(release_id), utcnow())
    outcome = "running" if needed == 0 else f"{needed} more needed"
    store.audit.record(user, "release.approve", outcome, target, {"comment": comment})
    if needed > 0:
        return store.releases.get(release_id)
    return store.releases.update(
        release_id, status=ReleaseStatus.RUNNING, expect=ReleaseStatus.AWAITING_APPROVAL
    )
