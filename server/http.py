"""HTTP plumbing shared by the endpoints: errors as JSON, tokens, bodies.

Every error answer is JSON: ``{"error": "<what is wrong>", "field": "<name>"}``,
the field only where one is at fault.
"""

from __future__ import annotations

import hmac
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from pipelines.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadError,
    ShipwayError,
    Unauthorized,
)
from server.json_body import decode_json_object

Model = TypeVar("Model", bound=BaseModel)
BODY_SCOPE = "shipway.body"  # the body model a route declares (server/access.py)


class TooLarge(InvalidInput):
    """A request body is larger than the server accepts."""


def status_code_for(exc: ShipwayError) -> int:
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, InvalidInput):
        return 400
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 502  # ExternalError: a service behind Shipway failed


def _text(message: str) -> str:
    """A message that can be encoded, whatever input it quotes (a lone surrogate)."""
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(exc: ShipwayError) -> JSONResponse:
    body: dict[str, Any] = {"error": _text(str(exc))}
    if isinstance(exc, InvalidInput) and exc.field:
        body["field"] = _text(exc.field)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse(body, status_code=status_code_for(exc), headers=headers)


async def handle_shipway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ShipwayError)
    return error_response(exc)


def bearer_token(request: Request, what: str) -> str:
    """The request's bearer token; Unauthorized when there is none."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(f"{what} token missing: send 'Authorization: Bearer <token>'")
    return token.strip()


def check_bearer(request: Request, expected: str, what: str) -> None:
    if not hmac.compare_digest(bearer_token(request, what).encode(), expected.encode()):
        raise Unauthorized(f"{what} token is wrong")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with TooLarge as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is {declared} bytes; at most {limit} are accepted", "body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is over {limit} bytes", "body")
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_json(request: Request, model: type[Model], limit: int = 1024 * 1024) -> Model:
    """The body validated against ``model``; PayloadError names the first bad field.

    Every JSON body of the API goes through here: read within ``limit`` bytes, then
    decoded by :func:`server.json_body.decode_json_object` (UTF-8, depth, text,
    numbers), as webhooks are. An empty body is the empty object."""
    declared = request.scope.get(BODY_SCOPE)
    assert declared is model, f"{request.url.path} declares body {declared}, reads {model}"
    data = decode_json_object(await read_body(request, limit) or b"{}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        message = "is missing" if error["type"] == "missing" else error["msg"]
        message = message.removeprefix("Value error, ")
        raise PayloadError(f"{field}: {message}", field) from exc


# The largest numbers the database's columns hold (PostgreSQL's INTEGER is 32 bits).
# An id is an INTEGER: a larger one names nothing, and would overflow the query.
INTEGER_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1


def path_int(request: Request, name: str) -> int:
    raw = request.path_params[name]
    if not isinstance(raw, int):
        raise PayloadError(f"{name} must be a number", name)
    if raw > INTEGER_MAX:
        raise NotFound(f"{name} {raw} does not exist")
    return raw


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise PayloadError(f"{name} must be a whole number from {low} to {high}", name)
    return int(raw)
