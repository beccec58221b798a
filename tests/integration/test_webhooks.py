"""POST /webhooks/gitlab against the real app, real Redis and real SQLite.

Every rejected delivery must leave nothing behind but one audit line."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from server.state import AppState
from tests.unit.test_events import push_payload

SECRET = "webhook-secret-0123456789"
API_TOKEN = "api-token-0123456789"
API = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def client(tmp_path: Path, redis_url: str) -> Iterator[TestClient]:
    settings = Settings(
        state_dir=tmp_path / "state",
        database_url=f"sqlite:///{tmp_path / 'shipway.db'}",
        redis_url=redis_url,
        api_token=API_TOKEN,
        runner_token="runner-token-0123456789",
        secret_key_file=tmp_path / "secret.key",
        webhook_max_bytes=64 * 1024,
    )
    with TestClient(create_app(settings)) as test_client:
        response = test_client.post(
            "/api/projects",
            json={
                "name": "diaspora",
                "clone_url": str(tmp_path / "absent.git"),
                "gitlab_path": "mike/diaspora",
                "webhook_secret": SECRET,
                "branches": ["main", "release/*"],
            },
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
        assert response.status_code == 201, response.text
        yield test_client


def state(client: TestClient) -> AppState:
    value = client.app.state.shipway  # type: ignore[attr-defined]
    assert isinstance(value, AppState)
    return value


def headers(event: str = "Push Hook", token: str | None = SECRET, **extra: str) -> dict[str, str]:
    values = {
        "Content-Type": "application/json",
        "X-Gitlab-Event": event,
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "X-Gitlab-Webhook-UUID": "2c4e8b2a-0000-4000-8000-000000000001",
        "Idempotency-Key": str(uuid.uuid4()),
        "User-Agent": "GitLab/18.0.0",
    }
    if token is not None:
        values["X-Gitlab-Token"] = token
    values.update(extra)
    return values


def send(client: TestClient, body: bytes | dict[str, Any], **header_args: Any) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/webhooks/gitlab", content=content, headers=headers(**header_args))


def assert_nothing_stored_but_one_audit_line(client: TestClient, status: int) -> None:
    store = state(client).store
    assert store.pipelines.count() == 0
    assert store.deliveries.count(store.projects.by_name("diaspora").id) == 0
    (line,) = store.audit.recent(action="webhook.rejected")
    assert line.outcome == str(status)


def test_a_push_creates_one_pipeline(client: TestClient) -> None:
    response = send(client, push_payload())
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "created"
    pipeline = state(client).store.pipelines.get(body["pipeline_id"])
    assert (pipeline.ref.name, pipeline.sha, pipeline.source) == ("main", "b" * 40, "push")
    assert pipeline.triggered_by == "jsmith"


def test_a_tag_push_creates_a_pipeline_for_the_tag(client: TestClient) -> None:
    payload = push_payload(object_kind="tag_push", event_name="tag_push", ref="refs/tags/v1.0")
    response = send(client, payload, event="Tag Push Hook")
    assert response.status_code == 201
    pipeline = state(client).store.pipelines.get(response.json()["pipeline_id"])
    assert (pipeline.ref.kind.value, pipeline.ref.name) == ("tag", "v1.0")


def test_a_replayed_delivery_creates_nothing_new(client: TestClient) -> None:
    replay = headers()
    first = client.post("/webhooks/gitlab", json=push_payload(), headers=replay)
    second = client.post("/webhooks/gitlab", json=push_payload(), headers=replay)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert second.json()["pipeline_id"] == first.json()["pipeline_id"]
    assert state(client).store.pipelines.count() == 1


def test_event_uuid_identifies_a_redelivery_without_idempotency_key(client: TestClient) -> None:
    fixed = headers()
    del fixed["Idempotency-Key"]
    client.post("/webhooks/gitlab", json=push_payload(), headers=fixed)
    again = client.post("/webhooks/gitlab", json=push_payload(), headers=fixed)
    assert again.json()["status"] == "duplicate"
    assert state(client).store.pipelines.count() == 1


def test_a_branch_outside_the_rules_is_recorded_without_a_pipeline(client: TestClient) -> None:
    response = send(client, push_payload(ref="refs/heads/feature/x"))
    assert response.status_code == 200
    assert response.json()["status"] == "skipped"
    assert "does not build" in response.json()["reason"]
    assert state(client).store.pipelines.count() == 0


def test_a_deleted_branch_starts_nothing(client: TestClient) -> None:
    response = send(client, push_payload(after="0" * 40, checkout_sha=None))
    assert response.json()["status"] == "skipped"
    assert state(client).store.pipelines.count() == 0


def test_events_shipway_does_not_act_on_are_acknowledged(client: TestClient) -> None:
    note = {"object_kind": "note", "project": {"path_with_namespace": "mike/diaspora"}}
    response = send(client, note, event="Note Hook")
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert state(client).store.pipelines.count() == 0


def test_missing_token(client: TestClient) -> None:
    response = send(client, push_payload(), token=None)
    assert response.status_code == 401
    assert "X-Gitlab-Token" in response.json()["error"]
    assert_nothing_stored_but_one_audit_line(client, 401)


def test_wrong_token(client: TestClient) -> None:
    response = send(client, push_payload(), token="not-the-secret")
    assert response.status_code == 401
    assert "no project's webhook secret" in response.json()["error"]
    assert_nothing_stored_but_one_audit_line(client, 401)


def test_the_token_of_another_project(client: TestClient, tmp_path: Path) -> None:
    other = {
        "name": "other",
        "clone_url": str(tmp_path / "other.git"),
        "gitlab_path": "mike/other",
        "webhook_secret": "other-secret-0123456789",
    }
    assert client.post("/api/projects", json=other, headers=API).status_code == 201
    response = send(client, push_payload(), token="other-secret-0123456789")
    assert response.status_code == 401
    assert "does not match" in response.json()["error"]
    assert_nothing_stored_but_one_audit_line(client, 401)


def test_a_token_of_another_length(client: TestClient) -> None:
    response = send(client, push_payload(), token=SECRET + "x")
    assert response.status_code == 401
    assert_nothing_stored_but_one_audit_line(client, 401)


def test_unknown_project(client: TestClient) -> None:
    payload = push_payload(project={"path_with_namespace": "someone/else"})
    response = send(client, payload)
    assert response.status_code == 404
    assert "someone/else" in response.json()["error"]
    assert_nothing_stored_but_one_audit_line(client, 404)


def test_malformed_json(client: TestClient) -> None:
    response = send(client, b'{"object_kind": "push",')
    assert response.status_code == 400
    assert response.json()["field"] == "body"
    assert "not valid JSON" in response.json()["error"]
    assert_nothing_stored_but_one_audit_line(client, 400)


def test_json_that_is_not_an_object(client: TestClient) -> None:
    response = send(client, b"[1, 2]")
    assert response.status_code == 400
    assert_nothing_stored_but_one_audit_line(client, 400)


@pytest.mark.parametrize("field", ["ref", "after", "before"])
def test_a_missing_field_is_named(client: TestClient, field: str) -> None:
    payload = push_payload()
    del payload[field]
    response = send(client, payload)
    assert response.status_code == 400
    assert response.json() == {"error": f"payload field {field} is missing", "field": field}
    assert_nothing_stored_but_one_audit_line(client, 400)


def test_a_missing_project_path_is_named(client: TestClient) -> None:
    response = send(client, push_payload(project={"name": "x"}))
    assert response.status_code == 400
    assert response.json()["field"] == "project.path_with_namespace"
    assert_nothing_stored_but_one_audit_line(client, 400)


def test_an_oversized_body(client: TestClient) -> None:
    payload = push_payload(padding="x" * (64 * 1024))
    response = send(client, payload)
    assert response.status_code == 413
    assert response.json()["field"] == "body"
    assert_nothing_stored_but_one_audit_line(client, 413)


def test_an_oversized_body_without_content_length(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 1024
        yield json.dumps(push_payload()).encode()

    response = client.post("/webhooks/gitlab", content=chunks(), headers=headers())
    assert response.status_code == 413
    assert_nothing_stored_but_one_audit_line(client, 413)


def merge_request_payload(**attributes: Any) -> dict[str, Any]:
    """GitLab's documented Merge Request Hook payload, trimmed to representative fields."""
    values: dict[str, Any] = {
        "id": 99,
        "iid": 7,
        "target_branch": "main",
        "source_branch": "feature/login",
        "source_project_id": 15,
        "target_project_id": 15,
        "state": "opened",
        "action": "open",
        "title": "Login page",
        "last_commit": {"id": "c" * 40, "message": "add login", "title": "add login"},
        "url": "http://example.com/mike/diaspora/-/merge_requests/7",
    }
    values.update(attributes)
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": {"id": 1, "name": "Administrator", "username": "root"},
        "project": {"id": 15, "name": "Diaspora", "path_with_namespace": "mike/diaspora"},
        "object_attributes": values,
    }


def test_a_merge_request_opened_creates_a_merge_request_pipeline(client: TestClient) -> None:
    response = send(client, merge_request_payload(), event="Merge Request Hook")
    assert response.status_code == 201, response.text
    pipeline = state(client).store.pipelines.get(response.json()["pipeline_id"])
    assert (pipeline.source, pipeline.merge_request_iid) == ("merge_request", 7)
    assert (pipeline.ref.name, pipeline.sha, pipeline.triggered_by) == (
        "feature/login",
        "c" * 40,
        "root",
    )


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"action": "update"}, "update brings no new commit"),
        ({"action": "close"}, "close brings no new commit"),
        ({"source_project_id": 16}, "comes from a fork"),
    ],
)
def test_merge_request_events_that_bring_no_code_start_nothing(
    client: TestClient, attributes: dict[str, Any], reason: str
) -> None:
    response = send(client, merge_request_payload(**attributes), event="Merge Request Hook")
    assert response.status_code == 200
    assert response.json()["status"] == "skipped"
    assert reason in response.json()["reason"]
    assert state(client).store.pipelines.count() == 0


def test_a_merge_request_update_with_new_commits_builds(client: TestClient) -> None:
    payload = merge_request_payload(action="update", oldrev="d" * 40)
    assert send(client, payload, event="Merge Request Hook").status_code == 201


def test_a_malformed_merge_request_names_the_field(client: TestClient) -> None:
    payload = merge_request_payload(last_commit={"id": "nope"})
    response = send(client, payload, event="Merge Request Hook")
    assert response.status_code == 400
    assert "object_attributes.last_commit.id" in response.json()["error"]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def raw_push(**changes: str) -> bytes:
    """A push payload whose fields in ``changes`` are spliced in as raw JSON text."""
    payload = push_payload(**dict.fromkeys(changes, "@@"))
    text = json.dumps(payload)
    for name, raw in changes.items():
        text = text.replace(f'"{name}": "@@"', f'"{name}": {raw}')
    return text.encode()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (raw_push(padding=nested(1000)), "nests 1001 levels deep"),
        (raw_push(padding=nested(32)), "nests 33 levels deep; at most 32 are accepted"),
        (raw_push(user_username='"\\ud83d"'), "user_username: the value holds a lone surrogate"),
        (raw_push(padding='{"\\udc00": 1}'), "padding.\\udc00: the key holds a lone surrogate"),
        (raw_push(padding='"a\\u0000b"'), "padding: the value holds a NUL character"),
        (raw_push(padding="NaN"), "NaN is not a JSON number"),
        (raw_push(padding="1" + "0" * 5000), "not acceptable JSON"),
        (raw_push(padding="1" + "0" * 30), "padding: the number does not fit in 64 bits"),
        (json.dumps(push_payload()).encode("utf-16"), "not valid UTF-8"),
        (json.dumps(push_payload()).encode("utf-32"), "not valid UTF-8"),
        (
            json.dumps(push_payload(user_name="\xe9"), ensure_ascii=False).encode("latin-1"),
            "not valid UTF-8",
        ),
    ],
)
def test_hostile_json_is_refused_at_the_boundary(
    client: TestClient, body: bytes, words: str
) -> None:
    response = send(client, body)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]
    assert_nothing_stored_but_one_audit_line(client, 400)


def test_a_deep_body_within_the_limit_is_accepted(client: TestClient) -> None:
    assert send(client, raw_push(padding=nested(31))).status_code == 201  # 32 with the payload


@pytest.mark.parametrize(
    "ref",
    [
        "refs/heads/release/a~1",
        "refs/heads/release/a..b",
        "refs/heads/release/x.lock",
        "refs/heads/release/a\x00b",
        "refs/heads/release/.hidden",
        "refs/heads/release/a b",
        "refs/heads/release/a@{1}",
        "refs/heads/release/a:b",
        "refs/heads/release/a.",
        "refs/heads/release//a",
        "refs/heads/release/" + "x" * 300,
    ],
)
def test_a_ref_git_refuses_starts_nothing(client: TestClient, ref: str) -> None:
    response = send(client, push_payload(ref=ref))
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "ref"
    assert_nothing_stored_but_one_audit_line(client, 400)


@pytest.mark.parametrize("branch", ["a..b", "x.lock", "a~1", "a^"])
def test_a_merge_request_from_a_branch_git_refuses_starts_nothing(
    client: TestClient, branch: str
) -> None:
    payload = merge_request_payload(source_branch=branch)
    response = send(client, payload, event="Merge Request Hook")
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "object_attributes.source_branch"
    assert_nothing_stored_but_one_audit_line(client, 400)


def test_a_header_over_its_bound_is_refused(client: TestClient) -> None:
    response = send(client, push_payload(), **{"Idempotency-Key": "k" * 256})
    assert response.status_code == 400
    assert response.json()["field"] == "Idempotency-Key"
    assert_nothing_stored_but_one_audit_line(client, 400)


@pytest.mark.parametrize(
    ("body", "event"),
    [
        (b'{"object_kind": "push",', "Push Hook"),
        (raw_push(padding=nested(1000)), "Push Hook"),
        (json.dumps(push_payload(ref="refs/heads/a..b")).encode(), "Push Hook"),
        (b'{"object_kind": "note"}', "Note Hook"),
    ],
)
def test_a_token_no_project_holds_is_refused_before_the_body_is_read(
    client: TestClient, body: bytes, event: str
) -> None:
    response = send(client, body, event=event, token="not-the-secret")
    assert response.status_code == 401
    assert response.json() == {"error": "the X-Gitlab-Token is no project's webhook secret"}
    assert_nothing_stored_but_one_audit_line(client, 401)
