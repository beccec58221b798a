"""Release orders (L1, L2, L4 close, L8): create, advance batch by batch, pause,
resume, switch the pause mode, close; history and current version per environment.

Batches run on a runner serving the queue named after the environment (R1: each
runner belongs to its environments), one batch at a time; the engine hands out the
next batch when the previous one is done and no pause is wanted.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pipelines.deploy_config import DeployConfig
from pipelines.errors import Conflict, ExternalError, InvalidInput
from pipelines.liveness import lost_batch, needs_requeue
from pipelines.ports import JobQueue
from pipelines.release import InstanceStatus, Release, ReleaseKind, ReleaseStatus
from pipelines.rollout import Grouping, PauseMode, Plan, plan, rollback_target
from server.compose import instance_name, service_name
from server.store import Store
from server.store.releases import NewRelease
from server.store.tables import utcnow
from server.usecases.deploy_config import compose_for
from server.usecases.verdicts import verdict_refusal

log = logging.getLogger(__name__)


def create_release(
    store: Store,
    project_name: str,
    environment: str,
    image: str,
    *,
    batches: int | None,
    grouping: Grouping | None,
    pause_mode: PauseMode,
    beta: bool,
    actor: str,
    reason: str | None = None,
    config_version: int | None = None,
    rollback_of: int | None = None,
    job_id: int | None = None,
    kind: ReleaseKind = ReleaseKind.RELEASE,
) -> Release:
    if not image or any(character.isspace() for character in image):
        raise InvalidInput("image is the image reference to release", "image")
    project = store.projects.by_name(project_name)
    stored, rendered = compose_for(store, project_name, environment, image, config_version)
    config = DeployConfig.model_validate(stored.config)
    names = [instance_name(project.name, environment, i) for i in range(1, config.instances + 1)]
    release_plan = plan(
        names, batches=batches, grouping=grouping, beta=beta, stateful=config.type == "stateful"
    )
    protection = store.protections.of(project.id, environment)
    if protection is not None and (why := verdict_refusal(store, project.id, protection, image)):
        raise Conflict(why)
    status = ReleaseStatus.RUNNING if protection is None else ReleaseStatus.AWAITING_APPROVAL
    release = store.releases.create(
        NewRelease(
            project_id=project.id,
            environment=environment,
            image=image,
            config_version=stored.version,
            compose=rendered.compose,
            files=rendered.files,
            batches=release_plan.batches,
            beta=release_plan.beta,
            pause_mode=pause_mode,
            created_by=actor,
            reason=reason,
            rollback_of=rollback_of,
            job_id=job_id,
            kind=kind,
            status=status,
        )
    )
    store.audit.record(
        actor,
        "release.create",
        status.value,
        f"release {release.id}",
        {"project": project.name, "environment": environment, "image": image},
    )
    return release


def advance_releases(store: Store, queue: JobQueue, hand_out: bool = True) -> None:
    """Hand out the next batch of every running release that has none in flight, and
    finish those whose batches all ran. ``hand_out`` False: the queue is known to be
    away, only finish."""
    for release in store.releases.running():
        if release.batch_in_flight:
            continue
        if release.next_batch >= len(release.batches):
            store.releases.update(
                release.id, status=ReleaseStatus.SUCCESS, expect=ReleaseStatus.RUNNING
            )
            continue
        if not hand_out:
            continue
        try:
            release = store.releases.update(
                release.id,
                expect=ReleaseStatus.RUNNING,
                batch_in_flight=True,
                handouts=release.handouts + 1,
                batch_runner=None,
                batch_claimed_at=None,
                batch_handed_out_at=utcnow(),
            )
        except Conflict:
            continue
        try:
            queue.enqueue_release_batch(
                release.environment, release.batch_task_id, batch_payload(store, release)
            )
        except ExternalError as exc:
            log.warning("release %s: batch not handed out yet: %s", release.id, exc)
            store.releases.update(release.id, batch_in_flight=False)


def batch_payload(store: Store, release: Release) -> dict[str, Any]:
    project = store.projects.get(release.project_id)
    compose, files = store.releases.compose(release.id)
    # A retried batch replaces only the instances that are not healthy yet.
    healthy = {
        instance.name
        for instance in store.releases.instances(release.id)
        if instance.status is InstanceStatus.HEALTHY
    }
    config = store.deployments.config(
        release.project_id, release.environment, release.config_version
    )
    return {
        "discovery": discovery_payload(store, project.name, release, config.config),
        "release_id": release.id,
        "batch": release.next_batch,
        "handout": release.handouts,
        "project": project.name,
        "environment": release.environment,
        "instances": [n for n in release.batches[release.next_batch] if n not in healthy],
        "compose": compose,
        "files": files,
        "config": config.config,
    }


def discovery_payload(
    store: Store, project_name: str, release: Release, raw_config: dict[str, Any]
) -> dict[str, Any] | None:
    """What the runner's traffic steps need (L3): the service's name in etcd, the host
    port each instance registers, its route and drain; None without discovery."""
    config = DeployConfig.model_validate(raw_config)
    if config.discovery is None or config.discovery_port is None:
        return None
    ports = store.deployments.ports(release.project_id, release.environment)
    return {
        "service": service_name(project_name, release.environment),
        "ports": {
            instance_name(project_name, release.environment, index): ports[
                (index, config.discovery_port)
            ]
            for index in range(1, config.instances + 1)
        },
        "hosts": config.discovery.hosts,
        "path": config.discovery.path,
        "drain": config.discovery.drain,
    }


def claim_batch(store: Store, release_id: int, batch: int, handout: int, runner: str) -> Release:
    """A runner is about to run a batch: Conflict when the release no longer wants it
    (closed, already past it, handed out again), so a late or duplicate task changes
    nothing; the runner that claimed it is watched while it runs."""
    return store.releases.claim_batch(release_id, batch, handout, runner)


def recover_lost_batches(
    store: Store, queue: JobQueue, now: datetime, heard_since: datetime | None = None
) -> None:
    """Batches in flight that will never be reported. A claimed batch whose runner
    died fails the release (its instances may be half replaced: a person retries it
    once a runner serves the environment again). A batch no runner claimed, whose
    task the queue lost or a runner took and died with, is handed out again."""
    runners = {runner.name: runner for runner in store.runners.all()}
    for release in store.releases.running():
        if not release.batch_in_flight:
            continue
        state, taken_at = queue.release_task_state(release.batch_task_id)
        current = store.releases.get(release.id)
        if current.handouts != release.handouts or not current.batch_in_flight:
            continue  # reported or handed out meanwhile
        if current.batch_runner is None:
            if needs_requeue(state, taken_at, now):
                log.warning("release %s: batch task lost before a runner claimed it", release.id)
                store.releases.update(release.id, batch_in_flight=False)
            continue
        reason = lost_batch(current, runners, state, now, heard_since)
        if reason is None:
            continue
        store.releases.mark_deploying_failed(release.id, reason)
        try:
            store.releases.update(
                release.id,
                status=ReleaseStatus.FAILED,
                expect=ReleaseStatus.RUNNING,
                batch_in_flight=False,
                batch_runner=None,
                reason=reason,
            )
        except Conflict:
            continue
        store.audit.record(
            "engine", "release.lost", "failed", f"release {release.id}", {"reason": reason}
        )


def report_instance(
    store: Store, release_id: int, name: str, status: InstanceStatus, log_text: str
) -> None:
    release = store.releases.get(release_id)
    if not release.status.is_active:
        raise Conflict(f"release {release_id} is {release.status}: it takes no report")
    store.releases.report_instance(release_id, name, status, log_text)


def batch_done(store: Store, release_id: int, batch: int, failure: str | None) -> Release:
    """A runner finished a batch. A failure stops the release at this batch; otherwise
    the next batch goes, unless the pause mode (read now: it may have changed) asks a
    person first."""
    release = store.releases.get(release_id)
    if not release.status.is_active:
        return release  # closed meanwhile: the report changes nothing
    if batch != release.next_batch:
        raise Conflict(f"release {release_id} is at batch {release.next_batch}, not {batch}")
    if failure is not None:
        return store.releases.update(
            release_id,
            status=ReleaseStatus.FAILED,
            batch_in_flight=False,
            batch_runner=None,
            reason=failure,
        )
    pause = Plan(release.batches, release.beta).pauses_after(batch, release.pause_mode)
    last = batch + 1 >= len(release.batches)
    status = ReleaseStatus.SUCCESS if last else (ReleaseStatus.PAUSED if pause else None)
    return store.releases.update(
        release_id, status=status, next_batch=batch + 1, batch_in_flight=False, batch_runner=None
    )


def pause(store: Store, release_id: int, actor: str) -> Release:
    """Takes effect between batches: a batch in flight finishes first."""
    release = store.releases.update(
        release_id, status=ReleaseStatus.PAUSED, expect=ReleaseStatus.RUNNING
    )
    store.audit.record(actor, "release.pause", "paused", f"release {release_id}")
    return release


def resume(store: Store, release_id: int, actor: str) -> Release:
    release = store.releases.update(
        release_id, status=ReleaseStatus.RUNNING, expect=ReleaseStatus.PAUSED
    )
    store.audit.record(actor, "release.resume", "running", f"release {release_id}")
    return release


def switch_mode(store: Store, release_id: int, mode: PauseMode, actor: str) -> Release:
    release = store.releases.get(release_id)
    if not release.status.is_active:
        raise Conflict(f"release {release_id} is {release.status}: its mode no longer matters")
    updated = store.releases.update(release_id, pause_mode=mode.value)
    store.audit.record(actor, "release.mode", mode.value, f"release {release_id}")
    return updated


def close(store: Store, release_id: int, actor: str) -> Release:
    """End a release as failed (L4); instances already released keep running."""
    release = store.releases.get(release_id)
    if not release.status.is_active:
        raise Conflict(f"release {release_id} is {release.status}: there is nothing to close")
    closed = store.releases.update(
        release_id, status=ReleaseStatus.FAILED, reason=f"closed by {actor}", closed=True
    )
    store.audit.record(actor, "release.close", "failed", f"release {release_id}")
    return closed


def retry_failed(store: Store, release_id: int, actor: str) -> Release:
    """Run again the instances that failed (and those of their batch not reached),
    and go on from there (L4)."""
    release = store.releases.get(release_id)
    if release.status is not ReleaseStatus.FAILED or release.closed:
        why = "was closed" if release.closed else f"is {release.status}"
        raise Conflict(f"release {release_id} {why}: only a failed release is retried")
    names = store.releases.reset_instances(release_id, release.next_batch)
    retried = store.releases.update(
        release_id,
        status=ReleaseStatus.RUNNING,
        expect=ReleaseStatus.FAILED,
        reason=None,
        finished_at=None,
        retries=release.retries + 1,
    )
    store.audit.record(
        actor, "release.retry", "running", f"release {release_id}", {"instances": names}
    )
    return retried


def rollback(
    store: Store,
    project_name: str,
    environment: str,
    image: str,
    reason: str,
    *,
    batches: int | None,
    grouping: Grouping | None,
    pause_mode: PauseMode,
    actor: str,
) -> Release:
    """A new release of a version once released successfully to this environment,
    with the configuration it ran with (L4); refused before a first success."""
    if not reason.strip():
        raise InvalidInput("a rollback says why", "reason")
    project = store.projects.by_name(project_name)
    history = store.releases.of_environment(project.id, environment)
    successes = [r for r in history if r.status is ReleaseStatus.SUCCESS]
    rollback_target([r.image for r in successes], image)
    source = next(r for r in successes if r.image == image)
    return create_release(
        store,
        project_name,
        environment,
        image,
        batches=batches,
        grouping=grouping,
        pause_mode=pause_mode,
        beta=False,
        actor=actor,
        reason=f"rollback to release {source.id}: {reason.strip()}",
        config_version=source.config_version,
        rollback_of=source.id,
        kind=ReleaseKind.ROLLBACK,
    )


def current_version(releases: list[Release]) -> str | None:
    """The image of the newest successful release, newest first in ``releases``."""
    return next((r.image for r in releases if r.status is ReleaseStatus.SUCCESS), None)
