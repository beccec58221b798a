"""GitLab's Push Hook and Tag Push Hook payloads, read into a :class:`PushEvent`.

Only the fields Shipway acts on are required; everything else GitLab sends is
accepted and kept in the stored payload. A missing or mistyped field raises
:class:`PayloadError` naming it, as ``project.path_with_namespace``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines.errors import PayloadError
from pipelines.model import GitRef, PushEvent, RefKind

# X-Gitlab-Event header -> the object_kind its payload carries.
PUSH_EVENTS = {"Push Hook": "push", "Tag Push Hook": "tag_push"}
# GitLab's system hooks send the same payloads under another header.
SYSTEM_HOOK = "System Hook"

_SHA = r"^[0-9a-f]{40}$"


class _Project(BaseModel):
    model_config = ConfigDict(extra="allow")
    path_with_namespace: str = Field(min_length=1)


class _Commit(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    message: str = ""


class _PushPayload(BaseModel):
    model_config = ConfigDict(extra="allow")
    object_kind: Literal["push", "tag_push"]
    ref: str = Field(pattern=r"^refs/(heads|tags)/.+")
    before: str = Field(pattern=_SHA)
    after: str = Field(pattern=_SHA)
    checkout_sha: str | None = Field(default=None, pattern=_SHA)
    project: _Project
    user_username: str = ""
    user_name: str = ""
    commits: list[_Commit] = Field(default_factory=list)
    total_commits_count: int = 0


def event_kind(header: str | None, payload: dict[str, Any]) -> str | None:
    """The push kind Shipway acts on for this delivery, or None to ignore it."""
    if header in PUSH_EVENTS:
        return PUSH_EVENTS[header]
    if header == SYSTEM_HOOK and payload.get("object_kind") in ("push", "tag_push"):
        return str(payload["object_kind"])
    return None


def parse_push(kind: str, payload: dict[str, Any]) -> PushEvent:
    """Validate a push or tag push payload; raise PayloadError naming the field."""
    try:
        push = _PushPayload.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        reason = "is missing" if error["type"] == "missing" else f"is invalid: {error['msg']}"
        raise PayloadError(f"payload field {field} {reason}", field=field) from exc
    if push.object_kind != kind:
        raise PayloadError(
            f"payload field object_kind is {push.object_kind!r}, but the event is {kind!r}",
            field="object_kind",
        )
    ref = GitRef.parse(push.ref)
    expected = RefKind.TAG if kind == "tag_push" else RefKind.BRANCH
    if ref.kind is not expected:
        raise PayloadError(f"payload field ref {push.ref!r} is not a {expected}", field="ref")
    head = next((c for c in push.commits if c.id in (push.checkout_sha, push.after)), None)
    return PushEvent(
        kind=kind,
        project_path=push.project.path_with_namespace,
        ref=ref,
        before=push.before,
        after=push.after,
        checkout_sha=push.checkout_sha,
        user=push.user_username or push.user_name,
        message=head.message if head else None,
        commit_count=push.total_commits_count,
    )


def looks_like_sha(text: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{7,40}", text) is not None
