"""Testers' verdicts on a release (U4), and what a failed or missing one holds back:
a release to an environment whose protection asks for a passing verdict first."""

from __future__ import annotations

from pipelines.errors import Conflict
from pipelines.protection import Protection, Verdict
from pipelines.release import Release, ReleaseStatus
from server.store import Store


def last_success(store: Store, project_id: int, environment: str) -> Release | None:
    history = store.releases.of_environment(project_id, environment)  # newest first
    return next((r for r in history if r.status is ReleaseStatus.SUCCESS), None)


def give_verdict(
    store: Store, project_name: str, environment: str, user: str, passed: bool, comment: str
) -> tuple[Release, Verdict]:
    """A verdict on the environment's last successful release (what testers see)."""
    project = store.projects.by_name(project_name)
    release = last_success(store, project.id, environment)
    if release is None:
        raise Conflict(f"{environment} has no successful release to give a verdict on")
    verdict = store.protections.add_verdict(release.id, user, passed, comment)
    store.audit.record(
        user,
        "release.verdict",
        "passed" if passed else "failed",
        f"release {release.id}",
        {"environment": environment, "comment": comment},
    )
    return release, verdict


def verdict_refusal(
    store: Store, project_id: int, protection: Protection, image: str
) -> str | None:
    """Why ``image`` may not go to an environment so protected yet; None if it may."""
    source = protection.verdict_from
    if source is None:
        return None
    history = store.releases.of_environment(project_id, source)
    tested = next(
        (r for r in history if r.status is ReleaseStatus.SUCCESS and r.image == image), None
    )
    if tested is None:
        return f"{image} was never released to {source}: its testers must pass it first"
    verdicts = store.protections.verdicts(tested.id)
    if not verdicts:
        return f"release {tested.id} of {source} waits for its testers' verdict"
    last = verdicts[-1]
    if not last.passed:
        return f"{last.user} failed release {tested.id} of {source}: {last.comment}"
    return None
