"""Webhook intake (server/intake.py): deliveries that wait share a transaction, are
answered only once it committed, and fail or succeed each on their own."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from pipelines.errors import PayloadError, Unauthorized
from server.intake import WebhookIntake
from server.store import Store
from server.store.tables import utcnow, webhook_deliveries
from server.usecases.receive_webhook import WebhookOutcome, receive_gitlab_webhooks
from tests.support.services import wait_until
from tests.unit.test_events import push_payload

SECRET = "webhook-secret-0123456789"
BODY = json.dumps(push_payload()).encode()  # a push to main of mike/diaspora


@pytest.fixture
def intake(store: Store) -> Iterator[WebhookIntake]:
    store.projects.create("diaspora", "/srv/d.git", "mike/diaspora", SECRET, ("main",), ())
    started = WebhookIntake(store)
    started.start()
    yield started
    started.stop()


def headers(key: str | None = None, token: str = SECRET) -> dict[str, str]:
    return {
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Token": token,
        "Idempotency-Key": key or str(uuid.uuid4()),
    }


@contextmanager
def deliveries_held(store: Store) -> Iterator[None]:
    """Another transaction holds what storing a delivery needs until the block ends:
    on SQLite the write lock, on PostgreSQL the deliveries' table."""
    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE webhook_deliveries IN EXCLUSIVE MODE")
        yield


def test_deliveries_that_wait_are_stored_together_and_answered_after_the_commit(
    store: Store, intake: WebhookIntake
) -> None:
    project_id = store.projects.by_name("diaspora").id

    async def scenario() -> list[WebhookOutcome]:
        with deliveries_held(store):
            first = asyncio.ensure_future(intake.receive(headers(), BODY))
            await asyncio.to_thread(wait_until, lambda: intake.taken == 1, 30, "the first taken")
            others = [asyncio.ensure_future(intake.receive(headers(), BODY)) for _ in range(19)]
            await asyncio.to_thread(wait_until, lambda: intake.waiting == 19, 30, "all queued")
            assert not first.done()  # its transaction cannot commit yet
            assert not any(other.done() for other in others)
            assert store.deliveries.count(project_id) == 0
        return await asyncio.gather(first, *others)

    outcomes = asyncio.run(scenario())
    assert [outcome.status for outcome in outcomes] == ["created"] * 20
    assert len({outcome.pipeline_id for outcome in outcomes}) == 20
    assert (intake.batches, intake.taken) == (2, 20)  # the first alone, then 19 at once
    assert store.deliveries.count(project_id) == 20
    assert store.pipelines.count() == 20


def test_each_delivery_of_a_batch_is_refused_or_stored_on_its_own(store: Store) -> None:
    project = store.projects.create(
        "diaspora", "/srv/d.git", "mike/diaspora", SECRET, ("main",), ()
    )
    outcomes = receive_gitlab_webhooks(
        store,
        [
            (headers("a"), BODY),
            (headers("b", token="not-the-secret-0123"), BODY),
            (headers("c"), b"{not json"),
            (headers("a"), BODY),  # a redelivery of the first, in the same batch
            (headers("d"), json.dumps(push_payload(ref="refs/heads/other")).encode()),
        ],
    )
    first, wrong_token, not_json, again, not_built = outcomes
    assert isinstance(first, WebhookOutcome)
    assert first.status == "created"
    assert isinstance(wrong_token, Unauthorized)
    assert isinstance(not_json, PayloadError)
    assert isinstance(again, WebhookOutcome)
    assert again.status == "duplicate"
    assert again.pipeline_id == first.pipeline_id
    assert isinstance(not_built, WebhookOutcome)
    assert not_built.status == "skipped"
    assert store.deliveries.count(project.id) == 2  # the first, and the branch not built
    assert store.pipelines.count() == 1


def test_two_servers_racing_on_one_key_make_one_pipeline_and_store_the_rest(
    store: Store, database_url: str
) -> None:
    """Another server stores a delivery while this one's batch holds the same key:
    on PostgreSQL this batch's insert waits for the other and then fails on the
    unique key, so each delivery of the batch is stored again on its own."""
    project = store.projects.create("diaspora", "/srv/d.git", "mike/diaspora", SECRET, ("*",), ())
    other = Store.open(database_url, migrate=False)
    results: list[WebhookOutcome | Exception] = []
    try:
        theirs = other.engine.connect()
        transaction = theirs.begin()
        theirs.execute(
            webhook_deliveries.insert().values(
                project_id=project.id,
                delivery_key="shared",
                event="Push Hook",
                headers={},
                payload={},
                outcome="stored by the other server",
                received_at=utcnow(),
            )
        )
        batch = threading.Thread(
            target=lambda: results.extend(
                receive_gitlab_webhooks(
                    store,
                    [(headers("a"), BODY), (headers("shared"), BODY), (headers("b"), BODY)],
                )
            )
        )
        batch.start()
        if store.engine.dialect.name == "postgresql":
            wait_until(lambda: _waits_on_a_lock(store), 30, "the batch's insert waiting")
        transaction.commit()
        theirs.close()
        batch.join(60)
    finally:
        other.close()
    first, shared, last = results
    assert isinstance(first, WebhookOutcome)
    assert first.status == "created"
    assert isinstance(shared, WebhookOutcome)
    assert shared.status == "duplicate"
    assert isinstance(last, WebhookOutcome)
    assert last.status == "created"
    assert store.deliveries.count(project.id) == 3
    assert store.pipelines.count() == 2


def _waits_on_a_lock(store: Store) -> bool:
    with store.engine.connect() as conn:
        waiting = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        ).scalar_one()
    return bool(waiting)
