"""GitLab's Push Hook, Tag Push Hook and Merge Request Hook payloads, read into a
:class:`PushEvent` or a :class:`MergeRequestEvent`.

Only the fields Shipway acts on are required; everything else GitLab sends is
accepted and kept in the stored payload. A missing or mistyped field raises
:class:`PayloadError` naming it, as ``project.path_with_namespace``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from pipelines.errors import PayloadError
from pipelines.model import GitRef, PushEvent, RefKind
from pipelines.refs import ref_problem

# X-Gitlab-Event header -> the object_kind its payload carries.
PUSH_EVENTS = {"Push Hook": "push", "Tag Push Hook": "tag_push"}
MERGE_REQUEST_EVENT = "Merge Request Hook"
MERGE_REQUEST = "merge_request"
# A merge request builds when it opens or reopens, and when an update brings new
# commits (GitLab then sends ``oldrev``); edits of its title or labels do not.
_BUILDING_ACTIONS = frozenset({"open", "reopen"})
# GitLab's system hooks send the same payloads under another header.
SYSTEM_HOOK = "System Hook"

_SHA = r"^[0-9a-f]{40}$"
# Fields Shipway stores on their own (not only inside the kept payload) are bounded
# by their database columns.
_NAME_LENGTH = 255
_MAX_INT = 2**31 - 1


def _git_ref(value: str) -> str:
    problem = ref_problem(GitRef.parse(value))
    if problem is not None:
        raise ValueError(problem)
    return value


def _git_branch(value: str) -> str:
    problem = ref_problem(GitRef(RefKind.BRANCH, value))
    if problem is not None:
        raise ValueError(problem)
    return value


# A ref (refs/heads/x, refs/tags/v1) or a branch name that git itself accepts.
GitRefText = Annotated[str, Field(pattern=r"^refs/(heads|tags)/.+"), AfterValidator(_git_ref)]
BranchName = Annotated[str, AfterValidator(_git_branch)]


class _Project(BaseModel):
    model_config = ConfigDict(extra="allow")
    path_with_namespace: str = Field(min_length=1, max_length=_NAME_LENGTH)


class _Commit(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    message: str = ""


class _PushPayload(BaseModel):
    model_config = ConfigDict(extra="allow")
    object_kind: Literal["push", "tag_push"]
    ref: GitRefText
    before: str = Field(pattern=_SHA)
    after: str = Field(pattern=_SHA)
    checkout_sha: str | None = Field(default=None, pattern=_SHA)
    project: _Project
    user_username: str = Field(default="", max_length=_NAME_LENGTH)
    user_name: str = Field(default="", max_length=_NAME_LENGTH)
    commits: list[_Commit] = Field(default_factory=list)
    total_commits_count: int = 0


class _LastCommit(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(pattern=_SHA)
    message: str = ""


class _MergeRequestAttributes(BaseModel):
    model_config = ConfigDict(extra="allow")
    iid: int = Field(ge=1, le=_MAX_INT)
    source_branch: BranchName
    target_branch: BranchName
    source_project_id: int
    target_project_id: int
    action: str = Field(default="", max_length=50)
    oldrev: str | None = Field(default=None, max_length=64)
    last_commit: _LastCommit


class _User(BaseModel):
    model_config = ConfigDict(extra="allow")
    username: str = Field(default="", max_length=_NAME_LENGTH)


class _MergeRequestPayload(BaseModel):
    model_config = ConfigDict(extra="allow")
    object_kind: Literal["merge_request"]
    project: _Project
    user: _User = Field(default_factory=_User)
    object_attributes: _MergeRequestAttributes


@dataclass(frozen=True)
class MergeRequestEvent:
    """A merge request opened, reopened or updated, as GitLab reports it."""

    project_path: str
    iid: int
    source_branch: str
    target_branch: str
    sha: str  # the merge request's last commit
    user: str
    action: str
    from_fork: bool
    new_commits: bool

    @property
    def builds(self) -> bool:
        return self.action in _BUILDING_ACTIONS or (self.action == "update" and self.new_commits)


def event_kind(header: str | None, payload: dict[str, Any]) -> str | None:
    """The event kind Shipway acts on for this delivery, or None to ignore it."""
    if header in PUSH_EVENTS:
        return PUSH_EVENTS[header]
    if header == MERGE_REQUEST_EVENT:
        return MERGE_REQUEST
    if header == SYSTEM_HOOK and payload.get("object_kind") in ("push", "tag_push"):
        return str(payload["object_kind"])
    return None


def parse_merge_request(payload: dict[str, Any]) -> MergeRequestEvent:
    """Validate a Merge Request Hook payload; raise PayloadError naming the field."""
    try:
        event = _MergeRequestPayload.model_validate(payload)
    except ValidationError as exc:
        raise _payload_error(exc) from exc
    attributes = event.object_attributes
    return MergeRequestEvent(
        project_path=event.project.path_with_namespace,
        iid=attributes.iid,
        source_branch=attributes.source_branch,
        target_branch=attributes.target_branch,
        sha=attributes.last_commit.id,
        user=event.user.username,
        action=attributes.action,
        from_fork=attributes.source_project_id != attributes.target_project_id,
        new_commits=bool(attributes.oldrev),
    )


def _payload_error(exc: ValidationError) -> PayloadError:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    reason = "is missing" if error["type"] == "missing" else f"is invalid: {message}"
    return PayloadError(f"payload field {field} {reason}", field=field)


def parse_push(kind: str, payload: dict[str, Any]) -> PushEvent:
    """Validate a push or tag push payload; raise PayloadError naming the field."""
    try:
        push = _PushPayload.model_validate(payload)
    except ValidationError as exc:
        raise _payload_error(exc) from exc
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
