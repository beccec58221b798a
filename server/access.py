"""Who may call each route, checked by the routing layer before the endpoint runs.

Every route in server/routes.py is a :class:`GuardedRoute` naming its
:class:`Access` and, for the API, the :class:`Permission` it needs. The guard runs
before the endpoint is called, so before a byte of the body is read: a caller
without a valid token learns nothing about what a route expects, only 401; a caller
whose roles do not give the permission for the route's project gets 403 (and, when
the route would change something, the refusal is audited). Endpoints do not check
tokens themselves; they read who called with :func:`caller_of`.

Fail closed: an API route that declares no permission is refused for everyone.

Who a caller is: the holder of a personal API token (server/store/users.py), or,
with ``SHIPWAY_API_TOKEN``, the bootstrap administrator, named ``admin``.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipelines.errors import Forbidden, NotFound, Unauthorized
from pipelines.roles import Grant, Permission, Role, allows
from server.http import BODY_SCOPE, INTEGER_MAX, bearer_token
from server.state import state_of
from server.store import Store

BOOTSTRAP_ADMIN = "admin"  # who SHIPWAY_API_TOKEN is, in the audit log and elsewhere
RUNNER_SCOPE = "shipway.runner"  # the runner a runner's own token speaks for

Endpoint = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Request], Awaitable[None]]
# What a route reads: a JSON body of a model, a body of a media type, or nothing.
Body = type[BaseModel] | str | None


class Access(StrEnum):
    PUBLIC = "public"  # no token: health and metrics, which say nothing about the data
    API = "api"  # Authorization: Bearer <a person's token> (people and the CLI)
    RUNNER = "runner"  # Authorization: Bearer $SHIPWAY_RUNNER_TOKEN (runners report)
    WEBHOOK = "webhook"  # X-Gitlab-Token: the webhook secret of a registered project


async def _nobody_checked(request: Request) -> None:
    return None


@dataclass(frozen=True)
class Caller:
    """Who called: a user's name and the roles they hold."""

    name: str
    grants: tuple[Grant, ...]

    def may(self, permission: Permission, project_id: int | None) -> bool:
        return allows(self.grants, permission, project_id)

    def readable(self) -> frozenset[int] | None:
        """The projects whose data lists may show this caller; None: every project."""
        if any(grant.project_id is None for grant in self.grants):
            return None
        return frozenset(grant.project_id for grant in self.grants if grant.project_id)


def caller_of(request: Request) -> Caller:
    """Who called this API route (set by its guard)."""
    caller = request.scope.get("shipway.caller")
    assert isinstance(caller, Caller), "caller_of() on a route without an API guard"
    return caller


def identify(store: Store, bootstrap_token: str, token: str) -> Caller:
    """The caller a bearer token stands for; Unauthorized for any other string."""
    if hmac.compare_digest(token.encode(), bootstrap_token.encode()):
        return Caller(BOOTSTRAP_ADMIN, (Grant(Role.ADMIN),))
    user = store.users.holder_of(token)
    if user is None:
        raise Unauthorized("API token is wrong, expired or revoked (or its user disabled)")
    return Caller(user.name, user.grants)


def project_of(store: Store, params: Mapping[str, Any]) -> int | None:
    """The project a route's path names, by whatever it names (None: no project).
    NotFound when it names something that does not exist."""
    if "name" in params:
        return store.projects.by_name(str(params["name"])).id
    if "pipeline_id" in params:
        return store.pipelines.get(_id(params, "pipeline_id")).project_id
    if "job_id" in params:
        return store.jobs.project_of(_id(params, "job_id"))
    if "release_id" in params:
        return store.releases.get(_id(params, "release_id")).project_id
    if "artifact_id" in params:
        return store.artifacts.project_of(_id(params, "artifact_id"))
    return None


def _id(params: Mapping[str, Any], name: str) -> int:
    raw = int(params[name])
    if raw > INTEGER_MAX:  # beyond any column: nothing has it
        raise NotFound(f"{name} {raw} does not exist")
    return raw


def permission_guard(permission: Permission | None) -> Guard:
    """The guard of an API route that needs ``permission`` (None: nobody may call it)."""

    async def check(request: Request) -> None:
        state = state_of(request)
        token = bearer_token(request, "API")
        caller = await run_in_threadpool(identify, state.store, state.settings.api_token, token)
        request.scope["shipway.caller"] = caller
        if permission is None:
            raise Forbidden("no permission is declared for this route: it is refused to all")
        project_id = await run_in_threadpool(project_of, state.store, request.path_params)
        if caller.may(permission, project_id):
            return
        where = ""
        if project_id is not None:
            project = await run_in_threadpool(state.store.projects.get, project_id)
            where = f" in project {project.name}"
        raise Forbidden(
            f"{caller.name} may not {permission.value}{where}: none of their roles allows it"
        )

    return check


async def _runner_token(request: Request) -> None:
    """The shared ``SHIPWAY_RUNNER_TOKEN`` speaks for any runner; a runner's own token
    (``shipway runner-token create``) only for that runner, and only about the jobs
    and release batches that runner took."""
    state = state_of(request)
    token = bearer_token(request, "runner")
    if hmac.compare_digest(token.encode(), state.settings.runner_token.encode()):
        return
    runner = await run_in_threadpool(state.store.runner_tokens.runner_of, token)
    if runner is None:
        raise Unauthorized("runner token is wrong or revoked")
    request.scope[RUNNER_SCOPE] = runner
    await run_in_threadpool(_check_taken_by, state.store, runner, request)


def _check_taken_by(store: Store, runner: str, request: Request) -> None:
    """A runner's own token reports only on what that runner took."""
    params = request.path_params
    if request.url.path.endswith("/start"):
        return  # taking it: the body names the runner (see speaks_for)
    if "job_id" in params:
        taken_by = store.jobs.get(_id(params, "job_id")).runner
        what = f"job {params['job_id']}"
    elif "release_id" in params:
        taken_by = store.releases.get(_id(params, "release_id")).batch_runner
        what = f"the batch in flight of release {params['release_id']}"
    else:
        return
    if taken_by != runner:
        raise Forbidden(f"this token is runner {runner}'s, and {what} is not theirs")


def speaks_for(request: Request, runner: str) -> None:
    """Forbidden when the request's token is another runner's own."""
    bound = request.scope.get(RUNNER_SCOPE)
    if bound is not None and bound != runner:
        raise Forbidden(f"this token is runner {bound}'s, not {runner}'s")


BEARER_GUARDS: dict[Access, Guard] = {
    Access.PUBLIC: _nobody_checked,
    Access.RUNNER: _runner_token,
}


def guarded(endpoint: Endpoint, guard: Guard, body: Body = None) -> Endpoint:
    """``endpoint``, called only once ``guard`` let the request through; ``body`` is
    what the route declares it reads (:func:`server.http.parse_json` holds the
    endpoint to it, so the OpenAPI document and the validation never part)."""

    @functools.wraps(endpoint)
    async def checked(request: Request) -> Response:
        request.scope[BODY_SCOPE] = body
        try:
            await guard(request)
            return await endpoint(request)
        except Forbidden as exc:
            await _audit_refusal(request, exc)
            raise

    return checked


async def _audit_refusal(request: Request, refusal: Forbidden) -> None:
    """A refused attempt to change something is recorded, with who tried."""
    caller = request.scope.get("shipway.caller")
    if request.method in ("GET", "HEAD") or not isinstance(caller, Caller):
        return
    params = request.path_params
    detail = {"reason": str(refusal)}
    if "environment" in params:
        detail["environment"] = str(params["environment"])
    await run_in_threadpool(
        state_of(request).store.audit.record,
        caller.name,
        f"{request.method} {request.url.path}",
        "forbidden",
        _target_of(params),
        detail,
    )


def _target_of(params: Mapping[str, Any]) -> str | None:
    """What a route acts on, written as the audit log writes targets."""
    for key, kind in (
        ("release_id", "release"),
        ("job_id", "job"),
        ("pipeline_id", "pipeline"),
        ("name", "project"),
    ):
        if key in params:
            return f"{kind} {params[key]}"
    return None


class GuardedRoute(Route):
    """A route of one method whose caller is checked before its endpoint runs.

    ``guard`` is needed only for :attr:`Access.WEBHOOK`, whose secret belongs to a
    project (the endpoint's module knows how to check it); the bearer-token kinds
    have theirs here. An :attr:`Access.API` route without ``permission`` is refused
    to everyone."""

    def __init__(
        self,
        path: str,
        endpoint: Endpoint,
        method: str,
        access: Access,
        guard: Guard | None = None,
        permission: Permission | None = None,
        body: Body = None,
    ) -> None:
        if guard is not None:
            check = guard
        elif access is Access.API:
            check = permission_guard(permission)
        else:
            check = BEARER_GUARDS[access]
        super().__init__(path, guarded(endpoint, check, body), methods=[method])
        self.access = access
        self.permission = permission
        self.body = body
        self.method = method


def public(path: str, endpoint: Endpoint) -> GuardedRoute:
    return GuardedRoute(path, endpoint, "GET", Access.PUBLIC)


def api(
    path: str, endpoint: Endpoint, permission: Permission, method: str = "GET", body: Body = None
) -> GuardedRoute:
    return GuardedRoute(path, endpoint, method, Access.API, permission=permission, body=body)


def runner(path: str, endpoint: Endpoint, body: Body = None) -> GuardedRoute:
    return GuardedRoute(path, endpoint, "POST", Access.RUNNER, body=body)
