"""Day-to-day operations on an environment's instances (L9) and the traffic they get
(L6): a rolling restart, an instance's container logs, a release's traffic share."""

from __future__ import annotations

import logging

from pipelines.errors import Conflict, ExternalError, InvalidInput, NotFound
from pipelines.ports import JobQueue, TrafficWeights
from pipelines.release import InstanceStatus, Release, ReleaseKind, ReleaseStatus
from pipelines.rollout import Grouping, PauseMode, traffic_weights
from server.compose import instance_name, service_name
from server.store import Store
from server.usecases.releases import create_release

log = logging.getLogger(__name__)

LOGS_TIMEOUT_SECONDS = 10.0


def restart(
    store: Store,
    project_name: str,
    environment: str,
    *,
    batches: int | None,
    grouping: Grouping | None,
    pause_mode: PauseMode,
    actor: str,
) -> Release:
    """A rolling restart (L9): every instance replaced again, batch by batch and step
    by step, with the version and configuration of the current release."""
    project = store.projects.by_name(project_name)
    history = store.releases.of_environment(project.id, environment)
    current = next((r for r in history if r.status is ReleaseStatus.SUCCESS), None)
    if current is None:
        raise Conflict(
            f"{project_name} has never been released to {environment}: nothing to restart"
        )
    return create_release(
        store,
        project_name,
        environment,
        current.image,
        batches=batches,
        # By default one instance at a time: the others serve meanwhile.
        grouping=grouping or (Grouping.ONE_BY_ONE if batches is None else None),
        pause_mode=pause_mode,
        beta=False,
        actor=actor,
        reason=f"rolling restart of release {current.id}",
        config_version=current.config_version,
        kind=ReleaseKind.RESTART,
    )


def instance_logs(
    store: Store, queue: JobQueue, project_name: str, environment: str, name: str, tail: int
) -> str:
    """An instance's container logs, read by a runner serving the environment."""
    if not 1 <= tail <= 10_000:
        raise InvalidInput("tail is a number of lines from 1 to 10000", "tail")
    project = store.projects.by_name(project_name)
    known = {
        instance.name
        for release in store.releases.of_environment(project.id, environment)[:20]
        for instance in store.releases.instances(release.id)
    }
    if name not in known:
        raise NotFound(f"{project_name} has no instance {name} in {environment}")
    answer = queue.ask(environment, "logs", {"name": name, "tail": tail}, LOGS_TIMEOUT_SECONDS)
    return str(answer["logs"])


def set_traffic_share(
    store: Store, weights: TrafficWeights | None, release_id: int, share: int, actor: str
) -> dict[str, int]:
    """Give the instances a release has replaced so far ``share`` percent of the
    requests (L6: 10, 50, 100); the weights last until it resumes or ends."""
    if weights is None:
        raise Conflict("traffic weights need service discovery: the server has no SHIPWAY_ETCD_URL")
    release = store.releases.get(release_id)
    if not release.status.is_active:
        raise Conflict(f"release {release_id} is {release.status}: its traffic is all its own")
    project = store.projects.get(release.project_id)
    service = service_name(project.name, release.environment)
    new_names = {
        i.name for i in store.releases.instances(release_id) if i.status is InstanceStatus.HEALTHY
    }
    by_port = {
        port: instance_name(project.name, release.environment, index)
        for (index, _), port in store.deployments.ports(
            release.project_id, release.environment
        ).items()
    }
    registered = weights.registered(service)
    if not registered:
        raise Conflict(f"no instance of {service} is registered in etcd")
    new = [a for a in registered if by_port.get(int(a.rpartition(":")[2])) in new_names]
    old = [a for a in registered if a not in new]
    chosen = traffic_weights(new, old, share)
    weights.set_weights(service, chosen)
    store.audit.record(actor, "release.traffic", f"{share}%", f"release {release_id}", chosen)
    return chosen


def clear_traffic_share(store: Store, weights: TrafficWeights | None, release: Release) -> None:
    """A release that goes on or ended: every instance back to an equal share."""
    if weights is None:
        return
    project = store.projects.get(release.project_id)
    try:
        weights.clear(service_name(project.name, release.environment))
    except ExternalError as exc:
        log.warning("release %s: traffic weights not cleared: %s", release.id, exc)
