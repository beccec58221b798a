"""Promotion (P2): release to one environment exactly the image digest another runs.

Never a rebuild: the image is the digest of the source environment's last successful
release, checked to be still in the registry; the target's own deployment
configuration applies. A protected target (production) awaits approvals as any
release to it does.
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines.errors import Conflict, InvalidInput
from pipelines.release import Release, ReleaseKind, ReleaseStatus
from pipelines.rollout import Grouping, PauseMode
from server.store import Store
from server.usecases.releases import create_release


def promote(
    store: Store,
    holds: Callable[[str], bool],
    project_name: str,
    source: str,
    target: str,
    *,
    batches: int | None,
    grouping: Grouping | None,
    pause_mode: PauseMode,
    actor: str,
    job_id: int | None = None,
) -> Release:
    """Order the release (for a pipeline's promote job ``job_id``); ``holds`` says
    whether the registry still has an image."""
    if source == target:
        raise InvalidInput("a promotion goes from one environment to another", "to")
    project = store.projects.by_name(project_name)
    history = store.releases.of_environment(project.id, source)
    last = next((r for r in history if r.status is ReleaseStatus.SUCCESS), None)
    if last is None:
        raise Conflict(f"{source} has no successful release to promote")
    if "@sha256:" not in last.image:
        raise Conflict(
            f"{source} runs {last.image}, a tag, not a digest: promote only what is "
            "released by digest (as a pipeline's deploy job does)"
        )
    if not holds(last.image):
        raise Conflict(f"{last.image} is no longer in the registry: it cannot be promoted")
    return create_release(
        store,
        project.name,
        target,
        last.image,
        batches=batches,
        grouping=grouping,
        pause_mode=pause_mode,
        beta=False,
        actor=actor,
        reason=f"promotion of release {last.id} from {source}",
        job_id=job_id,
        kind=ReleaseKind.PROMOTION,
    )
