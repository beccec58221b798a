"""Webhook deliveries, each stored with the pipeline it starts.

A delivery and its pipeline are written in one transaction, so a crash never leaves
one without the other, and a redelivery (same ``delivery_key``) finds the pipeline
the first delivery made instead of making a second. Several deliveries may share a
transaction (:meth:`DeliveryRepository.record_together`): intake under load commits
a batch at once, and answers none of them before that commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from server.store.database import read_only
from server.store.pipelines import NewPipeline, insert_pipeline
from server.store.tables import utcnow, webhook_deliveries

# Built once, as intake runs them for every delivery (see server.store.pipelines).
_INSERT_DELIVERY = webhook_deliveries.insert()
_DELIVERIES_BY_KEYS = sa.select(
    webhook_deliveries.c.delivery_key,
    webhook_deliveries.c.id,
    webhook_deliveries.c.pipeline_id,
    webhook_deliveries.c.outcome,
).where(
    webhook_deliveries.c.project_id == sa.bindparam("project_id"),
    webhook_deliveries.c.delivery_key.in_(sa.bindparam("delivery_keys", expanding=True)),
)
_DELIVERY_BY_KEY = sa.select(
    webhook_deliveries.c.id, webhook_deliveries.c.pipeline_id, webhook_deliveries.c.outcome
).where(
    webhook_deliveries.c.project_id == sa.bindparam("project_id"),
    webhook_deliveries.c.delivery_key == sa.bindparam("delivery_key"),
)


@dataclass(frozen=True)
class NewDelivery:
    """A delivery checked and ready to store."""

    project_id: int
    delivery_key: str | None  # Idempotency-Key, else X-Gitlab-Event-UUID
    event: str
    headers: dict[str, str]
    payload: dict[str, Any]
    new_pipeline: NewPipeline | None  # None: stored without starting a pipeline
    outcome: str


@dataclass(frozen=True)
class Delivery:
    id: int
    pipeline_id: int | None
    outcome: str
    duplicate: bool  # a redelivery: the first delivery's row, nothing new stored


class DeliveryRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.reads = read_only(engine)

    def record(self, new: NewDelivery) -> Delivery:
        """Store a delivery and, in the same transaction, its pipeline; a redelivery
        stores nothing and answers with the first delivery, even when the two race."""
        try:
            with self.engine.begin() as conn:
                return _record(conn, new)
        except sa.exc.IntegrityError:
            # A concurrent redelivery won the race on the unique key: answer with its work.
            if new.delivery_key is None:
                raise
            with self.reads.begin() as conn:
                seen = _seen(conn, new.project_id, new.delivery_key)
            if seen is None:
                raise
            return seen

    def record_together(self, news: Sequence[NewDelivery]) -> list[Delivery]:
        """Store several deliveries in one transaction: all or none. The keys already
        stored are looked up at once; a redelivery of a delivery earlier in the same
        list is found as a duplicate. A failure (two processes racing on one key, say)
        raises; :meth:`record` each then."""
        with self.engine.begin() as conn:
            seen = _seen_among(conn, news)
            stored = []
            for new in news:
                key = (new.project_id, new.delivery_key)
                delivery = seen.get(key) if new.delivery_key is not None else None
                if delivery is None:
                    delivery = _insert(conn, new)
                    seen[key] = Delivery(delivery.id, delivery.pipeline_id, new.outcome, True)
                stored.append(delivery)
            return stored

    def count(self, project_id: int) -> int:
        with self.reads.begin() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).where(webhook_deliveries.c.project_id == project_id)
            ).scalar_one()
            return int(count)


def _record(conn: sa.Connection, new: NewDelivery) -> Delivery:
    if new.delivery_key is not None:
        seen = _seen(conn, new.project_id, new.delivery_key)
        if seen is not None:
            return seen
    return _insert(conn, new)


def _insert(conn: sa.Connection, new: NewDelivery) -> Delivery:
    pipeline_id = insert_pipeline(conn, new.new_pipeline) if new.new_pipeline else None
    result = conn.execute(
        _INSERT_DELIVERY,
        {
            "project_id": new.project_id,
            "delivery_key": new.delivery_key,
            "event": new.event,
            "headers": new.headers,
            "payload": new.payload,
            "outcome": new.outcome,
            "pipeline_id": pipeline_id,
            "received_at": utcnow(),
        },
    )
    assert result.inserted_primary_key is not None
    return Delivery(int(result.inserted_primary_key[0]), pipeline_id, new.outcome, False)


def _seen_among(
    conn: sa.Connection, news: Sequence[NewDelivery]
) -> dict[tuple[int, str | None], Delivery]:
    """The deliveries already stored under the keys of ``news``, by project and key:
    one query a project (a batch is mostly one project's)."""
    keys: dict[int, set[str]] = {}
    for new in news:
        if new.delivery_key is not None:
            keys.setdefault(new.project_id, set()).add(new.delivery_key)
    seen: dict[tuple[int, str | None], Delivery] = {}
    for project_id, project_keys in keys.items():
        rows = conn.execute(
            _DELIVERIES_BY_KEYS, {"project_id": project_id, "delivery_keys": sorted(project_keys)}
        )
        for row in rows:
            seen[(project_id, row.delivery_key)] = Delivery(
                row.id, row.pipeline_id, row.outcome, True
            )
    return seen


def _seen(conn: sa.Connection, project_id: int, key: str) -> Delivery | None:
    row = conn.execute(_DELIVERY_BY_KEY, {"project_id": project_id, "delivery_key": key}).first()
    if row is None:
        return None
    return Delivery(row.id, row.pipeline_id, row.outcome, True)
