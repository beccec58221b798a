from __future__ import annotations

import copy
from typing import Any

import pytest

from pipelines.errors import PayloadError
from pipelines.events import event_kind, parse_push
from pipelines.model import GitRef, RefKind

SHA_A = "a" * 40
SHA_B = "b" * 40


def push_payload(**changes: Any) -> dict[str, Any]:
    """GitLab's documented Push Hook payload, trimmed to representative fields."""
    payload: dict[str, Any] = {
        "object_kind": "push",
        "event_name": "push",
        "before": SHA_A,
        "after": SHA_B,
        "ref": "refs/heads/main",
        "ref_protected": True,
        "checkout_sha": SHA_B,
        "user_id": 4,
        "user_name": "John Smith",
        "user_username": "jsmith",
        "user_email": "john@example.com",
        "project_id": 15,
        "project": {
            "id": 15,
            "name": "Diaspora",
            "path_with_namespace": "mike/diaspora",
            "git_http_url": "http://example.com/mike/diaspora.git",
            "default_branch": "master",
        },
        "commits": [{"id": SHA_B, "message": "fixed readme", "title": "fixed readme", "added": []}],
        "total_commits_count": 1,
        "repository": {"name": "Diaspora"},
    }
    payload.update(changes)
    return payload


def test_a_push() -> None:
    event = parse_push("push", push_payload())
    assert event.project_path == "mike/diaspora"
    assert event.ref == GitRef(RefKind.BRANCH, "main")
    assert event.commit == SHA_B
    assert event.user == "jsmith"
    assert event.message == "fixed readme"
    assert not event.deletes_ref


def test_an_annotated_tag_builds_the_commit_not_the_tag_object() -> None:
    event = parse_push(
        "tag_push", push_payload(object_kind="tag_push", ref="refs/tags/v1.0", after="c" * 40)
    )
    assert event.ref == GitRef(RefKind.TAG, "v1.0")
    assert event.commit == SHA_B


def test_a_deleted_branch() -> None:
    assert parse_push("push", push_payload(after="0" * 40, checkout_sha=None)).deletes_ref


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (["ref"], "ref"),
        (["after"], "after"),
        (["project"], "project"),
        (["project", "path_with_namespace"], "project.path_with_namespace"),
        (["object_kind"], "object_kind"),
    ],
)
def test_a_missing_field_is_named(path: list[str], field: str) -> None:
    payload = copy.deepcopy(push_payload())
    target = payload
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    with pytest.raises(PayloadError, match=f"payload field {field} is missing") as caught:
        parse_push("push", payload)
    assert caught.value.field == field


def test_a_malformed_sha_is_named() -> None:
    with pytest.raises(PayloadError, match="payload field after is invalid"):
        parse_push("push", push_payload(after="not-a-sha"))


def test_a_tag_ref_in_a_push_event_is_refused() -> None:
    with pytest.raises(PayloadError, match="ref"):
        parse_push("push", push_payload(ref="refs/tags/v1"))


def test_event_kinds() -> None:
    assert event_kind("Push Hook", {}) == "push"
    assert event_kind("Tag Push Hook", {}) == "tag_push"
    assert event_kind("System Hook", {"object_kind": "push"}) == "push"
    assert event_kind("Issue Hook", {"object_kind": "issue"}) is None
    assert event_kind(None, {}) is None
