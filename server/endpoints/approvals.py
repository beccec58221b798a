"""Protected environments, the approvals of releases to them (U3), and testers'
verdicts (U4)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from pipelines.errors import PayloadError
from pipelines.protection import APPROVER_ROLES, Decision, Protection, Verdict
from pipelines.roles import Role
from server.access import caller_of
from server.endpoints.releases import release_json
from server.http import parse_json, path_int
from server.state import state_of
from server.usecases import verdicts
from server.usecases.approvals import ApprovalState, approval_state, decide


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field(default="", max_length=10_000)


class RejectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field(min_length=1, max_length=10_000)  # a rejection says why


class ProtectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protected: bool = True
    approvals: int = Field(default=1, ge=1, le=10)
    approver_role: Role = Role.OPS
    self_approval: bool = False
    valid_minutes: int | None = Field(default=None, ge=1, le=60 * 24 * 30)
    verdict_from: str | None = Field(default=None, min_length=1, max_length=100)

    def protection(self) -> Protection | None:
        if not self.protected:
            return None
        return Protection(
            self.approvals,
            self.approver_role,
            self.self_approval,
            self.valid_minutes,
            self.verdict_from,
        )


class VerdictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    passed: bool
    comment: str = Field(min_length=1, max_length=10_000)  # what was tested, what broke


def protection_json(protection: Protection | None) -> dict[str, Any]:
    if protection is None:
        return {"protected": False}
    return {
        "protected": True,
        "approvals": protection.approvals,
        "approver_role": protection.approver_role.value,
        "self_approval": protection.self_approval,
        "valid_minutes": protection.valid_minutes,
        "verdict_from": protection.verdict_from,
    }


def approval_json(state: ApprovalState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "needed": state.needed,
        "approved_by": state.approved_by,
        "may_approve": state.may_approve,
        "protection": protection_json(state.protection),
        "decisions": [
            {
                "user": d.user,
                "decision": d.decision.value,
                "comment": d.comment,
                "at": d.at.isoformat(),
            }
            for d in state.decisions
        ],
    }


async def _decide(request: Request, decision: Decision, comment: str) -> JSONResponse:
    state = state_of(request)
    caller = caller_of(request)
    release = await run_in_threadpool(
        decide,
        state.store,
        path_int(request, "release_id"),
        caller.name,
        caller.grants,
        decision,
        comment,
    )
    state.engine.wake()
    body = release_json(release)
    body["approval"] = approval_json(await run_in_threadpool(approval_state, state.store, release))
    return JSONResponse(body)


async def approve(request: Request) -> JSONResponse:
    """Approve a release awaiting approval; enough approvals start it."""
    body = await parse_json(request, DecisionIn)
    return await _decide(request, Decision.APPROVE, body.comment)


async def reject(request: Request) -> JSONResponse:
    """Reject a release awaiting approval: it ends, failed, for good."""
    body = await parse_json(request, RejectionIn)
    return await _decide(request, Decision.REJECT, body.comment)


async def get_protection(request: Request) -> JSONResponse:
    store = state_of(request).store
    project = await run_in_threadpool(store.projects.by_name, request.path_params["name"])
    found = await run_in_threadpool(
        store.protections.of, project.id, request.path_params["environment"]
    )
    return JSONResponse(protection_json(found))


async def put_protection(request: Request) -> JSONResponse:
    """Protect an environment (or, with ``protected: false``, leave it unprotected,
    production included)."""
    store = state_of(request).store
    body = await parse_json(request, ProtectionIn)
    if body.approver_role not in APPROVER_ROLES:
        roles = " or ".join(role.value for role in APPROVER_ROLES)
        raise PayloadError(f"approver_role: {roles} approve releases", "approver_role")
    project = await run_in_threadpool(store.projects.by_name, request.path_params["name"])
    environment = request.path_params["environment"]
    actor = caller_of(request).name
    protection = body.protection()
    await run_in_threadpool(store.protections.set, project.id, environment, protection, actor)
    await run_in_threadpool(
        store.audit.record,
        actor,
        "environment.protect",
        "protected" if protection else "unprotected",
        f"project {project.name}",
        {"environment": environment} | protection_json(protection),
    )
    return JSONResponse(protection_json(protection))


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    return {
        "release_id": verdict.release_id,
        "user": verdict.user,
        "passed": verdict.passed,
        "comment": verdict.comment,
        "at": verdict.at.isoformat(),
    }


async def give_verdict(request: Request) -> JSONResponse:
    """A tester's verdict on the environment's last successful release."""
    store = state_of(request).store
    body = await parse_json(request, VerdictIn)
    release, verdict = await run_in_threadpool(
        verdicts.give_verdict,
        store,
        request.path_params["name"],
        request.path_params["environment"],
        caller_of(request).name,
        body.passed,
        body.comment,
    )
    return JSONResponse(verdict_json(verdict) | {"image": release.image}, status_code=201)


async def list_verdicts(request: Request) -> JSONResponse:
    """The verdicts on the environment's last successful release, the newest last."""
    store = state_of(request).store
    project = await run_in_threadpool(store.projects.by_name, request.path_params["name"])
    release = await run_in_threadpool(
        verdicts.last_success, store, project.id, request.path_params["environment"]
    )
    found = (
        [] if release is None else await run_in_threadpool(store.protections.verdicts, release.id)
    )
    return JSONResponse(
        {
            "release_id": None if release is None else release.id,
            "verdicts": [verdict_json(verdict) for verdict in found],
        }
    )
