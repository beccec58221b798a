"""The OpenAPI 3.1 document of the API (X2), made from the route table itself.

Each route in server/routes.py names who may call it, the permission it needs and
the model of the body it reads; :func:`server.http.parse_json` refuses to validate a
body with any other model than the one its route names, so the document and the
validation cannot drift apart. Why not FastAPI: the server is Starlette, its guards
run before a body is read (a caller without a token learns nothing of what a route
expects), and the pydantic models exist already; a generator over the routes adds
the document without moving sixty endpoints to another framework.
"""

from __future__ import annotations

import inspect
import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel

from server.access import Access, GuardedRoute

REF = "#/components/schemas/{model}"
ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "what is wrong"},
        "field": {"type": "string", "description": "the field at fault, when one is"},
    },
    "required": ["error"],
}
SECURITY: dict[Access, list[dict[str, list[str]]]] = {
    Access.API: [{"person": []}],
    Access.RUNNER: [{"runner": []}],
    Access.WEBHOOK: [{"webhook": []}],
    Access.PUBLIC: [],
}
ANSWERS = {
    "400": "the body or a parameter is not acceptable (names the field)",
    "401": "no token, or a wrong, expired or revoked one",
    "403": "the caller's roles do not allow it",
    "404": "what the path names does not exist",
    "409": "the current state forbids it",
    "413": "the body is too large",
}


def _version() -> str:
    try:
        return version("shipway")
    except PackageNotFoundError:
        return "0"


def _path_and_parameters(path: str) -> tuple[str, list[dict[str, Any]]]:
    """Starlette's ``/api/jobs/{job_id:int}`` as OpenAPI's path and its parameters."""
    parameters = []
    for name, convertor in re.findall(r"\{(\w+)(?::(\w+))?\}", path):
        schema = {"type": "integer", "minimum": 0} if convertor == "int" else {"type": "string"}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path), parameters


def _operation(route: GuardedRoute, schemas: dict[str, Any]) -> dict[str, Any]:
    endpoint = inspect.unwrap(route.endpoint)
    doc = inspect.getdoc(endpoint) or ""
    _, parameters = _path_and_parameters(route.path)
    ok = "201" if route.method == "POST" and endpoint.__name__.startswith("create") else "200"
    operation: dict[str, Any] = {
        "operationId": f"{endpoint.__module__.rsplit('.', 1)[-1]}.{endpoint.__name__}",
        "summary": doc.split("\n\n")[0].replace("\n", " ") or endpoint.__name__.replace("_", " "),
        "tags": [endpoint.__module__.rsplit(".", 1)[-1]],
        "security": SECURITY[route.access],
        "x-shipway-access": route.access.value,
        "responses": {ok: {"description": "done"}}
        | {
            code: {
                "description": text,
                "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
            }
            for code, text in ANSWERS.items()
            if route.access is not Access.PUBLIC
        },
    }
    if route.permission is not None:
        operation["x-shipway-permission"] = route.permission.value
    if parameters:
        operation["parameters"] = parameters
    if isinstance(route.body, type) and issubclass(route.body, BaseModel):
        schema = route.body.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[route.body.__name__] = schema
        body = {"application/json": {"schema": {"$ref": REF.format(model=route.body.__name__)}}}
        operation["requestBody"] = {"required": False, "content": body}
    elif isinstance(route.body, str):
        raw = {route.body: {"schema": {"type": "string"}}}
        operation["requestBody"] = {"required": True, "content": raw}
    return operation


def document(routes: list[Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every guarded route."""
    schemas: dict[str, Any] = {"Error": ERROR}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, GuardedRoute):
            continue
        path, _ = _path_and_parameters(route.path)
        paths.setdefault(path, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Shipway",
            "version": _version(),
            "description": "A self-hosted CI/CD server: from a push to a release.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "person": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a person's token (shipway token create), or the "
                    "bootstrap administrator's SHIPWAY_API_TOKEN",
                },
                "runner": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a runner's own token, or the shared SHIPWAY_RUNNER_TOKEN",
                },
                "webhook": {"type": "apiKey", "in": "header", "name": "X-Gitlab-Token"},
            },
        },
    }
