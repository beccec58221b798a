"""Who may do what: the roles people hold and the permissions each role gives.

A person holds roles, each for one project or for all projects (a *grant*). Every
API route names the one permission it needs (server/routes.py); a caller may call
it when one of their grants gives that permission for the route's project, or for
all projects when the route concerns none. docs/permissions.md writes the same
table down for people, and a test holds the two together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # everything, users included
    OPS = "ops"  # releases, configurations, secrets, approvals
    TESTER = "tester"  # reads, and gives a verdict on staging
    DEVELOPER = "developer"  # triggers, cancels, retries and plays pipelines' jobs


class Permission(StrEnum):
    READ = "read"  # projects, pipelines, jobs, logs, releases, runners, configurations
    TRIGGER = "trigger"  # start a pipeline by hand
    CANCEL = "cancel"  # cancel a job or a pipeline
    RETRY = "retry"  # retry a job or a pipeline's failed jobs
    PLAY = "play"  # start a manual job
    SECRETS = "secrets"  # list secret names, set and delete secrets
    CONFIGURE = "configure"  # change an environment's deployment configuration
    RELEASE = "release"  # order, steer, roll back and restart releases
    APPROVE = "approve"  # approve or reject releases to protected environments
    VERDICT = "verdict"  # say whether a release passed one's tests
    AUDIT = "audit"  # read the audit log
    MANAGE_PROJECTS = "manage_projects"  # register projects and change their settings
    MANAGE_USERS = "manage_users"  # users, their roles and anyone's tokens
    MANAGE_RUNNERS = "manage_runners"  # runners' own tokens
    ACCOUNT = "account"  # one's own account: who am I, one's tokens and password


_EVERYONE = {Permission.READ, Permission.ACCOUNT}
_PIPELINES = {Permission.TRIGGER, Permission.CANCEL, Permission.RETRY, Permission.PLAY}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPS: frozenset(
        _EVERYONE
        | _PIPELINES
        | {
            Permission.SECRETS,
            Permission.CONFIGURE,
            Permission.RELEASE,
            Permission.APPROVE,
            Permission.AUDIT,
        }
    ),
    Role.TESTER: frozenset(_EVERYONE | {Permission.VERDICT}),
    Role.DEVELOPER: frozenset(_EVERYONE | _PIPELINES),
}


@dataclass(frozen=True)
class Grant:
    """A role held for one project (by id), or for all projects (``None``)."""

    role: Role
    project_id: int | None = None

    def gives(self, permission: Permission, project_id: int | None) -> bool:
        """Whether this grant allows ``permission`` on the project (``None``: a
        route about no one project, which needs a grant for all projects, except to
        read, which any grant allows)."""
        if permission not in ROLE_PERMISSIONS[self.role]:
            return False
        if self.project_id is None:
            return True
        if project_id is None:
            return permission in _EVERYONE
        return self.project_id == project_id


def allows(grants: Iterable[Grant], permission: Permission, project_id: int | None) -> bool:
    return any(grant.gives(permission, project_id) for grant in grants)
