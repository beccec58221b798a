"""People: users and their roles (administrators only), and one's own account:
who am I, one's API tokens and password.

A token is shown once, in the answer that creates it. A role is written
``ROLE`` (for all projects) or ``ROLE:PROJECT``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from argon2 import PasswordHasher
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from pipelines.errors import Conflict, Forbidden, PayloadError
from pipelines.roles import Grant, Permission, Role
from server.access import BOOTSTRAP_ADMIN, Caller, caller_of
from server.http import parse_json, path_int
from server.state import state_of
from server.store import Store
from server.store.tables import utcnow
from server.store.users import TokenEntry, User

_NAME = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
RoleText = Annotated[str, Field(min_length=1, max_length=120)]
MAX_TOKEN_DAYS = 366
MIN_PASSWORD = 12


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME, max_length=100)
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$", max_length=255)
    roles: list[RoleText] = Field(default_factory=list, max_length=100)


class RolesChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grant: list[RoleText] = Field(default_factory=list, max_length=100)
    revoke: list[RoleText] = Field(default_factory=list, max_length=100)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    user: str | None = Field(default=None, pattern=_NAME, max_length=100)  # default: oneself
    expires_in_days: int = Field(default=90, ge=1, le=MAX_TOKEN_DAYS)


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=MIN_PASSWORD, max_length=1000)


def grants_of(store: Store, written: list[str]) -> list[Grant]:
    """``ROLE`` or ``ROLE:PROJECT`` as grants; PayloadError names the first bad one."""
    grants = []
    for text in written:
        role_name, _, project = text.partition(":")
        try:
            role = Role(role_name)
        except ValueError:
            known = ", ".join(role.value for role in Role)
            raise PayloadError(f"unknown role {role_name!r}: one of {known}", "roles") from None
        project_id = store.projects.by_name(project).id if project else None
        grants.append(Grant(role, project_id))
    return grants


def user_json(user: User, project_names: dict[int, str]) -> dict[str, Any]:
    return {
        "name": user.name,
        "email": user.email,
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
        "has_password": user.has_password,
        "roles": [
            grant.role.value
            if grant.project_id is None
            else f"{grant.role.value}:{project_names.get(grant.project_id, grant.project_id)}"
            for grant in user.grants
        ],
    }


def token_json(entry: TokenEntry) -> dict[str, Any]:
    def when(moment: Any) -> str | None:
        return None if moment is None else str(moment.isoformat())

    return {
        "id": entry.id,
        "user": entry.user,
        "name": entry.name,
        "created_at": when(entry.created_at),
        "expires_at": when(entry.expires_at),
        "revoked_at": when(entry.revoked_at),
        "last_used_at": when(entry.last_used_at),
        "usable": entry.usable(utcnow()),
    }


async def _shown(store: Store, user: User) -> dict[str, Any]:
    return user_json(user, await run_in_threadpool(store.users.project_names))


def _audit(store: Store, caller: Caller, action: str, outcome: str, target: str) -> None:
    store.audit.record(caller.name, action, outcome, target)


async def list_users(request: Request) -> JSONResponse:
    store = state_of(request).store
    found = await run_in_threadpool(store.users.all)
    names = await run_in_threadpool(store.users.project_names)
    return JSONResponse([user_json(user, names) for user in found])


async def create_user(request: Request) -> JSONResponse:
    store = state_of(request).store
    body = await parse_json(request, UserIn)
    if body.name == BOOTSTRAP_ADMIN:
        raise Conflict(f"{BOOTSTRAP_ADMIN} is the bootstrap administrator's name: choose another")
    grants = await run_in_threadpool(grants_of, store, body.roles)
    user = await run_in_threadpool(store.users.add, body.name, body.email, grants)
    await run_in_threadpool(_audit, store, caller_of(request), "user.create", "created", user.name)
    return JSONResponse(await _shown(store, user), status_code=201)


async def get_user(request: Request) -> JSONResponse:
    store = state_of(request).store
    user = await run_in_threadpool(store.users.get, request.path_params["user"])
    return JSONResponse(await _shown(store, user))


async def change_roles(request: Request) -> JSONResponse:
    store = state_of(request).store
    body = await parse_json(request, RolesChange)
    name = request.path_params["user"]
    granted = await run_in_threadpool(grants_of, store, body.grant)
    revoked = await run_in_threadpool(grants_of, store, body.revoke)
    await run_in_threadpool(store.users.grant, name, granted)
    user = await run_in_threadpool(store.users.revoke_grants, name, revoked)
    await run_in_threadpool(
        store.audit.record,
        caller_of(request).name,
        "user.roles",
        "changed",
        name,
        {"granted": body.grant, "revoked": body.revoke},
    )
    return JSONResponse(await _shown(store, user))


async def disable_user(request: Request) -> JSONResponse:
    store = state_of(request).store
    user = await run_in_threadpool(store.users.disable, request.path_params["user"])
    await run_in_threadpool(
        _audit, store, caller_of(request), "user.disable", "disabled", user.name
    )
    return JSONResponse(await _shown(store, user))


async def me(request: Request) -> JSONResponse:
    caller = caller_of(request)
    store = state_of(request).store
    names = await run_in_threadpool(store.users.project_names)
    roles = [
        grant.role.value
        if grant.project_id is None
        else f"{grant.role.value}:{names.get(grant.project_id, grant.project_id)}"
        for grant in caller.grants
    ]
    return JSONResponse({"name": caller.name, "roles": roles})


def _check_own(caller: Caller, user: str) -> None:
    """One's own account, or anyone's for who may manage users."""
    if user != caller.name and not caller.may(Permission.MANAGE_USERS, None):
        raise Forbidden(f"{caller.name} may manage only their own tokens and password")


async def set_password(request: Request) -> JSONResponse:
    caller = caller_of(request)
    store = state_of(request).store
    name = request.path_params["user"]
    _check_own(caller, name)
    body = await parse_json(request, PasswordIn)
    hashed = await run_in_threadpool(PasswordHasher().hash, body.password)
    await run_in_threadpool(store.users.set_password_hash, name, hashed)
    await run_in_threadpool(_audit, store, caller, "user.password", "set", name)
    return JSONResponse({"name": name, "has_password": True})


async def list_tokens(request: Request) -> JSONResponse:
    caller = caller_of(request)
    store = state_of(request).store
    user = request.query_params.get("user")
    if user is None and not caller.may(Permission.MANAGE_USERS, None):
        user = caller.name
    if user is not None:
        _check_own(caller, user)
    found = await run_in_threadpool(store.users.tokens, user)
    return JSONResponse([token_json(entry) for entry in found])


async def create_token(request: Request) -> JSONResponse:
    caller = caller_of(request)
    store = state_of(request).store
    body = await parse_json(request, TokenIn)
    user = body.user or caller.name
    _check_own(caller, user)
    if user == BOOTSTRAP_ADMIN:
        raise Conflict(
            "the bootstrap token has no user of its own: add a user (shipway user add) "
            "and make tokens for them"
        )
    expires_at = utcnow() + timedelta(days=body.expires_in_days)
    token, token_id = await run_in_threadpool(store.users.create_token, user, body.name, expires_at)
    await run_in_threadpool(_audit, store, caller, "token.create", "created", f"token {token_id}")
    entry = await run_in_threadpool(store.users.token, token_id)
    return JSONResponse(token_json(entry) | {"token": token}, status_code=201)


async def revoke_token(request: Request) -> JSONResponse:
    caller = caller_of(request)
    store = state_of(request).store
    token_id = path_int(request, "token_id")
    entry = await run_in_threadpool(store.users.token, token_id)
    _check_own(caller, entry.user)
    revoked = await run_in_threadpool(store.users.revoke_token, token_id)
    await run_in_threadpool(_audit, store, caller, "token.revoke", "revoked", f"token {token_id}")
    return JSONResponse(token_json(revoked))
