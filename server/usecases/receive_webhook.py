"""Receive GitLab webhook deliveries: check them, store them, start pipelines.

A delivery and its pipeline are stored in one transaction before the answer (several
deliveries may share it: :func:`receive_gitlab_webhooks`); the slow part (reading the
pipeline file) happens later, in the engine. A redelivery with a key already seen
stores nothing and returns the first delivery's pipeline.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.errors import NotFound, PayloadError, ShipwayError, Unauthorized
from pipelines.events import (
    MERGE_REQUEST,
    MergeRequestEvent,
    event_kind,
    parse_merge_request,
    parse_push,
)
from pipelines.model import GitRef, Project, RefKind
from pipelines.refs import check_ref
from server.json_body import decode_json_object
from server.store import Store
from server.store.deliveries import Delivery, NewDelivery
from server.store.pipelines import NewPipeline

# Headers kept with a stored delivery; the token is never kept.
KEPT_HEADERS = (
    "X-Gitlab-Event",
    "X-Gitlab-Event-UUID",
    "X-Gitlab-Webhook-UUID",
    "X-Gitlab-Instance",
    "Idempotency-Key",
    "User-Agent",
)
# Kept headers are stored (the delivery key in a column of 255 characters).
MAX_HEADER_LENGTH = 255
# What a delivery's outcome column holds.
MAX_OUTCOME_LENGTH = 255


@dataclass(frozen=True)
class WebhookOutcome:
    status: str  # created, duplicate, skipped or ignored
    reason: str
    project: str | None = None
    pipeline_id: int | None = None
    delivery_id: int | None = None


def authenticate_webhook(store: Store, token: str) -> None:
    """Unauthorized unless ``token`` is the webhook secret of a registered project.

    Called before the body is read: which project a delivery is for is in its body,
    but a caller who holds no project's secret learns nothing about what it expects.
    :func:`receive_gitlab_webhook` checks afterwards that it is that project's."""
    check_webhook_token(token, store.projects.webhook_secrets())


def check_webhook_token(token: str, secrets: list[str]) -> None:
    """:func:`authenticate_webhook` against the secrets given (every project's)."""
    if not token:
        raise Unauthorized("the X-Gitlab-Token header is missing")
    # Every secret is compared, in constant time, so the time taken says nothing.
    matches = [hmac.compare_digest(token.encode(), secret.encode()) for secret in secrets]
    if not any(matches):
        raise Unauthorized("the X-Gitlab-Token is no project's webhook secret")


@dataclass(frozen=True)
class CheckedDelivery:
    """A delivery found acceptable, not yet stored."""

    project: Project
    new: NewDelivery


Received = tuple[dict[str, str], bytes]  # a delivery's headers and body


def receive_gitlab_webhook(store: Store, headers: dict[str, str], body: bytes) -> WebhookOutcome:
    """Raises Unauthorized, NotFound or PayloadError; stores nothing then."""
    checked = check_gitlab_webhook(store, headers, body)
    if isinstance(checked, WebhookOutcome):
        return checked
    return _outcome(checked.project, store.deliveries.record(checked.new))


def receive_gitlab_webhooks(
    store: Store, received: Sequence[Received]
) -> list[WebhookOutcome | Exception]:
    """Several deliveries, those to store in one transaction (group commit): each
    one's outcome, or the error that refused it (ShipwayError: nothing of it stored).
    None is answered before the transaction commits, so an answer still means stored.

    When the shared transaction fails although the database answers, the failure
    was one delivery's (a key two processes raced on, a value the database refused):
    each is then stored alone, so that only that one fails. When the database does
    not answer, every one to store gets the error, and nothing is tried again here."""
    checked: list[CheckedDelivery | WebhookOutcome | Exception] = []
    for headers, body in received:
        try:
            checked.append(check_gitlab_webhook(store, headers, body))
        except ShipwayError as exc:
            checked.append(exc)
    to_store = [item for item in checked if isinstance(item, CheckedDelivery)]
    try:
        stored = iter(store.deliveries.record_together([item.new for item in to_store]))
    except Exception as exc:
        if len(to_store) > 1 and store.unreachable() is None:
            return [_alone(store, headers, body) for headers, body in received]
        return [exc if isinstance(item, CheckedDelivery) else item for item in checked]
    return [
        _outcome(item.project, next(stored)) if isinstance(item, CheckedDelivery) else item
        for item in checked
    ]


def _alone(store: Store, headers: dict[str, str], body: bytes) -> WebhookOutcome | Exception:
    try:
        return receive_gitlab_webhook(store, headers, body)
    except Exception as exc:  # this delivery's alone: the others go on
        return exc


def check_gitlab_webhook(
    store: Store, headers: dict[str, str], body: bytes
) -> CheckedDelivery | WebhookOutcome:
    """What to store for a delivery, or the outcome of one that stores nothing (an
    event Shipway ignores). Raises Unauthorized, NotFound or PayloadError."""
    token = headers.get("X-Gitlab-Token", "")
    if not token:
        raise Unauthorized("the X-Gitlab-Token header is missing")
    _check_headers(headers)
    event = headers.get("X-Gitlab-Event", "")
    payload = decode_json_object(body)
    kind = event_kind(event, payload)
    project = _project_of(store, payload, required=kind is not None)
    if project is not None:
        _check_token(store, project, token)
    if kind is None:
        return WebhookOutcome("ignored", f"Shipway does not act on {event or 'this event'}")
    assert project is not None
    if kind == MERGE_REQUEST:
        new_pipeline, outcome = _merge_request_pipeline(project, parse_merge_request(payload))
    else:
        push = parse_push(kind, payload)
        new_pipeline, outcome = _pipeline_for(
            project, push.ref, push.commit, kind, push.user, push.deletes_ref
        )
    new = NewDelivery(
        project_id=project.id,
        delivery_key=headers.get("Idempotency-Key") or headers.get("X-Gitlab-Event-UUID") or None,
        event=event,
        headers={name: headers[name] for name in KEPT_HEADERS if name in headers},
        payload=payload,
        new_pipeline=new_pipeline,
        outcome=_clipped(outcome),
    )
    return CheckedDelivery(project, new)


def _check_headers(headers: dict[str, str]) -> None:
    for name in KEPT_HEADERS:
        if len(headers.get(name, "")) > MAX_HEADER_LENGTH:
            raise PayloadError(f"the {name} header is over {MAX_HEADER_LENGTH} characters", name)


def _clipped(text: str) -> str:
    return text if len(text) <= MAX_OUTCOME_LENGTH else text[: MAX_OUTCOME_LENGTH - 1] + "…"


def _project_of(store: Store, payload: dict[str, Any], required: bool) -> Project | None:
    project = payload.get("project")
    path = project.get("path_with_namespace") if isinstance(project, dict) else None
    if not isinstance(path, str) or not path:
        if required:
            raise PayloadError(
                "payload field project.path_with_namespace is missing",
                field="project.path_with_namespace",
            )
        return None
    try:
        return store.projects.by_gitlab_path(path)
    except NotFound:
        if required:
            raise
        return None


def _check_token(store: Store, project: Project, token: str) -> None:
    secret = store.projects.webhook_secret(project.id)
    if not hmac.compare_digest(token.encode(), secret.encode()):
        raise Unauthorized("the X-Gitlab-Token does not match the project's webhook secret")


def _pipeline_for(
    project: Project, ref: GitRef, sha: str, kind: str, user: str, deletes: bool
) -> tuple[NewPipeline | None, str]:
    if deletes:
        return None, f"{ref.kind} {ref.name} was deleted"
    if not project.builds(ref):
        return None, f"{ref.kind} {ref.name} does not build (project rules)"
    check_ref(ref, "ref")
    return NewPipeline(project.id, ref, sha, kind, user or None), "pipeline created"


def _merge_request_pipeline(
    project: Project, event: MergeRequestEvent
) -> tuple[NewPipeline | None, str]:
    """Merge request events arrive only when the GitLab hook is set to send them, so
    every one that brings code builds; the project's branch rules are for pushes."""
    name = f"merge request !{event.iid}"
    if event.from_fork:
        return None, f"{name} comes from a fork, whose repository Shipway does not build"
    if not event.builds:
        return None, f"{name}: {event.action or 'this change'} brings no new commit"
    ref = check_ref(GitRef(RefKind.BRANCH, event.source_branch), "object_attributes.source_branch")
    pipeline = NewPipeline(
        project.id, ref, event.sha, MERGE_REQUEST, event.user or None, merge_request_iid=event.iid
    )
    return pipeline, "pipeline created"


def _outcome(project: Project, delivery: Delivery) -> WebhookOutcome:
    if delivery.duplicate:
        status = "duplicate"
    elif delivery.pipeline_id is None:
        status = "skipped"
    else:
        status = "created"
    return WebhookOutcome(
        status=status,
        reason=delivery.outcome,
        project=project.name,
        pipeline_id=delivery.pipeline_id,
        delivery_id=delivery.id,
    )
