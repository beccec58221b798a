"""POST /api/lint: is this pipeline file valid, and if not, where and why.

An invalid file is a 200 answer with ``valid: false`` (the request was fine; the
file is not), as GitLab's CI lint API does. The CLI's ``shipway lint`` calls the
same function, so both always give the same answer.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from pipelines.errors import SpecError
from pipelines.plan import plan_jobs
from pipelines.spec import parse_spec
from server.http import parse_json

MAX_FILE_BYTES = 1024 * 1024


class LintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: str = Field(max_length=MAX_FILE_BYTES)


def lint(content: str) -> dict[str, Any]:
    """Rules are not applied: every job the file declares is listed."""
    try:
        drafts = plan_jobs(parse_spec(content))
    except SpecError as exc:
        return {"valid": False, "errors": [asdict(issue) for issue in exc.issues], "jobs": []}
    jobs = [
        {
            "name": draft.name,
            "stage": draft.stage,
            "image": draft.image,
            "queue": draft.queue,
            "needs": list(draft.needs) if draft.needs is not None else None,
            "when": draft.when,
            "environment": draft.environment,
        }
        for draft in drafts
    ]
    return {"valid": True, "errors": [], "jobs": jobs}


async def lint_file(request: Request) -> JSONResponse:
    body = await parse_json(request, LintIn, limit=2 * MAX_FILE_BYTES)
    return JSONResponse(lint(body.content))
