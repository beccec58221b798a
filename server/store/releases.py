"""Releases and their instances; the one place a release's status changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from pipelines.errors import Conflict, NotFound
from pipelines.release import (
    InstanceStatus,
    Release,
    ReleaseInstance,
    ReleaseKind,
    ReleaseStatus,
    release_transition,
)
from pipelines.rollout import PauseMode
from server.store.tables import release_instances, releases, utcnow

ACTIVE = [status for status in ReleaseStatus if status.is_active]


@dataclass(frozen=True)
class NewRelease:
    project_id: int
    environment: str
    image: str
    config_version: int
    compose: str
    files: dict[str, str]
    batches: list[list[str]]
    beta: bool
    pause_mode: PauseMode
    created_by: str
    reason: str | None = None
    rollback_of: int | None = None
    job_id: int | None = None
    kind: ReleaseKind = ReleaseKind.RELEASE
    status: ReleaseStatus = ReleaseStatus.RUNNING  # AWAITING_APPROVAL: a protected one


def _release(row: sa.Row[Any]) -> Release:
    return Release(
        id=row.id,
        project_id=row.project_id,
        environment=row.environment,
        image=row.image,
        config_version=row.config_version,
        batches=[list(batch) for batch in row.batches],
        beta=row.beta,
        pause_mode=PauseMode(row.pause_mode),
        status=ReleaseStatus(row.status),
        next_batch=row.next_batch,
        batch_in_flight=row.batch_in_flight,
        created_by=row.created_by,
        created_at=row.created_at,
        reason=row.reason,
        finished_at=row.finished_at,
        closed=row.closed,
        retries=row.retries,
        rollback_of=row.rollback_of,
        job_id=row.job_id,
        kind=ReleaseKind(row.kind),
        handouts=row.handouts,
        batch_runner=row.batch_runner,
        batch_claimed_at=row.batch_claimed_at,
        batch_handed_out_at=row.batch_handed_out_at,
    )


class ReleaseRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self, new: NewRelease) -> Release:
        """Store a release (running, or awaiting approval); Conflict when the
        environment has an active one already (one release per environment at a time)."""
        with self.engine.begin() as conn:
            busy = conn.execute(
                sa.select(releases.c.id)
                .where(
                    releases.c.project_id == new.project_id,
                    releases.c.environment == new.environment,
                    releases.c.status.in_([status.value for status in ACTIVE]),
                )
                .with_for_update()
            ).first()
            if busy is not None:
                raise Conflict(
                    f"release {busy.id} of {new.environment} is not finished: "
                    "one release per environment at a time"
                )
            result = conn.execute(
                releases.insert().values(
                    project_id=new.project_id,
                    environment=new.environment,
                    image=new.image,
                    config_version=new.config_version,
                    compose=new.compose,
                    files=new.files,
                    batches=new.batches,
                    beta=new.beta,
                    pause_mode=new.pause_mode.value,
                    status=new.status.value,
                    next_batch=0,
                    batch_in_flight=False,
                    closed=False,
                    retries=0,
                    rollback_of=new.rollback_of,
                    job_id=new.job_id,
                    kind=new.kind.value,
                    handouts=0,
                    created_by=new.created_by,
                    reason=new.reason,
                    created_at=utcnow(),
                )
            )
            assert result.inserted_primary_key is not None
            release_id = int(result.inserted_primary_key[0])
            conn.execute(
                release_instances.insert(),
                [
                    {
                        "release_id": release_id,
                        "name": name,
                        "batch": index,
                        "status": InstanceStatus.WAITING.value,
                        "log": "",
                    }
                    for index, batch in enumerate(new.batches)
                    for name in batch
                ],
            )
            return _release(
                conn.execute(sa.select(releases).where(releases.c.id == release_id)).one()
            )

    def get(self, release_id: int) -> Release:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(releases).where(releases.c.id == release_id)).first()
        if row is None:
            raise NotFound(f"release {release_id} does not exist")
        return _release(row)

    def of_job(self, job_id: int) -> Release | None:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(releases).where(releases.c.job_id == job_id)).first()
        return _release(row) if row is not None else None

    def compose(self, release_id: int) -> tuple[str, dict[str, str]]:
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(releases.c.compose, releases.c.files).where(releases.c.id == release_id)
            ).first()
        if row is None:
            raise NotFound(f"release {release_id} does not exist")
        return row.compose, dict(row.files)

    def of_environment(self, project_id: int, environment: str) -> list[Release]:
        query = (
            sa.select(releases)
            .where(releases.c.project_id == project_id, releases.c.environment == environment)
            .order_by(releases.c.id.desc())
        )
        with self.engine.begin() as conn:
            return [_release(row) for row in conn.execute(query)]

    def running(self) -> list[Release]:
        query = sa.select(releases).where(releases.c.status == ReleaseStatus.RUNNING.value)
        with self.engine.begin() as conn:
            return [_release(row) for row in conn.execute(query.order_by(releases.c.id))]

    def instances(self, release_id: int) -> list[ReleaseInstance]:
        query = (
            sa.select(release_instances)
            .where(release_instances.c.release_id == release_id)
            .order_by(release_instances.c.batch, release_instances.c.name)
        )
        with self.engine.begin() as conn:
            return [
                ReleaseInstance(row.name, row.batch, InstanceStatus(row.status), row.log)
                for row in conn.execute(query)
            ]

    def update(
        self,
        release_id: int,
        *,
        status: ReleaseStatus | None = None,
        expect: ReleaseStatus | None = None,
        **changes: Any,
    ) -> Release:
        """Change a release; a status change goes through the transition table, and
        ``expect`` makes any change conditional on the current status."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(releases).where(releases.c.id == release_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"release {release_id} does not exist")
            current = ReleaseStatus(row.status)
            if expect is not None and current is not expect:
                raise Conflict(f"release {release_id} is {current}, not {expect}")
            values = dict(changes)
            if status is not None and status is not current:
                release_transition(current, status)
                values["status"] = status.value
                if not status.is_active:
                    values["finished_at"] = utcnow()
            if values:
                conn.execute(releases.update().where(releases.c.id == release_id).values(values))
            return _release(
                conn.execute(sa.select(releases).where(releases.c.id == release_id)).one()
            )

    def claim_batch(self, release_id: int, batch: int, handout: int, runner: str) -> Release:
        """Record that ``runner`` runs the batch handed out as ``handout``; Conflict
        when the release no longer wants it (closed, past it, handed out again since)
        or another runner claimed it first."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(releases).where(releases.c.id == release_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"release {release_id} does not exist")
            release = _release(row)
            if not release.status.is_active or not release.batch_in_flight:
                raise Conflict(
                    f"release {release_id} is {release.status}: batch {batch} is not wanted"
                )
            if batch != release.next_batch or handout != release.handouts:
                raise Conflict(
                    f"release {release_id} is at batch {release.next_batch} "
                    f"(hand-out {release.handouts}), not {batch} ({handout})"
                )
            if release.batch_runner is not None:
                raise Conflict(f"{release.batch_runner} runs batch {batch} already")
            conn.execute(
                releases.update()
                .where(releases.c.id == release_id)
                .values(batch_runner=runner, batch_claimed_at=utcnow())
            )
            return _release(
                conn.execute(sa.select(releases).where(releases.c.id == release_id)).one()
            )

    def give_up_batch(self, release_id: int, handout: int, reason: str) -> bool:
        """Fail a running release whose batch hand-out ``handout`` no runner claimed;
        False when a runner claimed it meanwhile, or it was reported, handed out again,
        paused or closed: nothing changes then."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(releases).where(releases.c.id == release_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"release {release_id} does not exist")
            release = _release(row)
            if (
                release.status is not ReleaseStatus.RUNNING
                or not release.batch_in_flight
                or release.batch_runner is not None
                or release.handouts != handout
            ):
                return False
            release_transition(release.status, ReleaseStatus.FAILED)
            conn.execute(
                releases.update()
                .where(releases.c.id == release_id)
                .values(
                    status=ReleaseStatus.FAILED.value,
                    batch_in_flight=False,
                    reason=reason,
                    finished_at=utcnow(),
                )
            )
            return True

    def reset_instances(self, release_id: int, batch: int) -> list[str]:
        """The instances of ``batch`` that are not healthy, made waiting again."""
        with self.engine.begin() as conn:
            names = list(
                conn.execute(
                    sa.select(release_instances.c.name).where(
                        release_instances.c.release_id == release_id,
                        release_instances.c.batch == batch,
                        release_instances.c.status != InstanceStatus.HEALTHY.value,
                    )
                ).scalars()
            )
            conn.execute(
                release_instances.update()
                .where(
                    release_instances.c.release_id == release_id,
                    release_instances.c.name.in_(names),
                )
                .values(status=InstanceStatus.WAITING.value)
            )
        return names

    def mark_deploying_failed(self, release_id: int, reason: str) -> None:
        """Instances caught mid-replacement by a lost runner: failed, and say why."""
        with self.engine.begin() as conn:
            conn.execute(
                release_instances.update()
                .where(
                    release_instances.c.release_id == release_id,
                    release_instances.c.status == InstanceStatus.DEPLOYING.value,
                )
                .values(
                    status=InstanceStatus.FAILED.value,
                    log=release_instances.c.log + f"\nFAILED: {reason}",
                )
            )

    def report_instance(self, release_id: int, name: str, status: InstanceStatus, log: str) -> None:
        with self.engine.begin() as conn:
            updated = conn.execute(
                release_instances.update()
                .where(
                    release_instances.c.release_id == release_id, release_instances.c.name == name
                )
                .values(status=status.value, log=log)
            )
        if updated.rowcount == 0:
            raise NotFound(f"release {release_id} has no instance {name}")
