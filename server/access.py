"""Who may call each route, checked by the routing layer before the endpoint runs.

Every route in server/routes.py is a :class:`GuardedRoute` naming its
:class:`Access`. The guard runs before the endpoint is called, so before a byte of
the body is read: a caller without the right token learns nothing about what a
route expects, only 401. Endpoints do not check tokens themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from enum import StrEnum

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.http import check_bearer
from server.state import state_of

Endpoint = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Request], Awaitable[None]]


class Access(StrEnum):
    PUBLIC = "public"  # no token: health and metrics, which say nothing about the data
    API = "api"  # Authorization: Bearer $SHIPWAY_API_TOKEN (people and the CLI)
    RUNNER = "runner"  # Authorization: Bearer $SHIPWAY_RUNNER_TOKEN (runners report)
    WEBHOOK = "webhook"  # X-Gitlab-Token: the webhook secret of a registered project


async def _nobody_checked(request: Request) -> None:
    return None


async def _api_token(request: Request) -> None:
    check_bearer(request, state_of(request).settings.api_token, "API")


async def _runner_token(request: Request) -> None:
    check_bearer(request, state_of(request).settings.runner_token, "runner")


BEARER_GUARDS: dict[Access, Guard] = {
    Access.PUBLIC: _nobody_checked,
    Access.API: _api_token,
    Access.RUNNER: _runner_token,
}


def guarded(endpoint: Endpoint, guard: Guard) -> Endpoint:
    """``endpoint``, called only once ``guard`` let the request through."""

    @functools.wraps(endpoint)
    async def checked(request: Request) -> Response:
        await guard(request)
        return await endpoint(request)

    return checked


class GuardedRoute(Route):
    """A route of one method whose caller is checked before its endpoint runs.

    ``guard`` is needed only for :attr:`Access.WEBHOOK`, whose secret belongs to a
    project (the endpoint's module knows how to check it); the bearer-token kinds
    have theirs here."""

    def __init__(
        self,
        path: str,
        endpoint: Endpoint,
        method: str,
        access: Access,
        guard: Guard | None = None,
    ) -> None:
        check = guard if guard is not None else BEARER_GUARDS[access]
        super().__init__(path, guarded(endpoint, check), methods=[method])
        self.access = access


def public(path: str, endpoint: Endpoint) -> GuardedRoute:
    return GuardedRoute(path, endpoint, "GET", Access.PUBLIC)


def api(path: str, endpoint: Endpoint, method: str = "GET") -> GuardedRoute:
    return GuardedRoute(path, endpoint, method, Access.API)


def runner(path: str, endpoint: Endpoint) -> GuardedRoute:
    return GuardedRoute(path, endpoint, "POST", Access.RUNNER)
