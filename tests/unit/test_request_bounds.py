"""Every field of every request body the API reads is bounded: each string has a
maximum length, each list a maximum size, each integer a range that the database's
columns hold. Found by walking the JSON schema of
each pydantic model in server/endpoints, so a new model is checked without a line
here."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import pytest
from pydantic import BaseModel

import server.endpoints

BIGINT_COLUMN = 2**63 - 1


def request_models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for module_info in pkgutil.iter_modules(server.endpoints.__path__):
        module = importlib.import_module(f"server.endpoints.{module_info.name}")
        for _, member in inspect.getmembers(module, inspect.isclass):
            if issubclass(member, BaseModel) and member.__module__ == module.__name__:
                found[f"{module.__name__}.{member.__name__}"] = member
    return [found[name] for name in sorted(found)]


def unbounded(schema: dict[str, Any], definitions: dict[str, Any], path: str) -> list[str]:
    if "$ref" in schema:
        return unbounded(definitions[schema["$ref"].rsplit("/", 1)[1]], definitions, path)
    problems = []
    for option in schema.get("anyOf", []):
        problems += unbounded(option, definitions, path)
    kind = schema.get("type")
    if kind == "string" and "enum" not in schema and "const" not in schema:
        if "maxLength" not in schema:
            problems.append(f"{path}: a string without maxLength")
    elif kind == "array":
        if "maxItems" not in schema:
            problems.append(f"{path}: a list without maxItems")
        problems += unbounded(schema.get("items", {}), definitions, f"{path}[]")
    elif kind == "integer":
        # INTEGER is 32 bits in PostgreSQL; a BIGINT column's field says so with its maximum.
        if "minimum" not in schema and "exclusiveMinimum" not in schema:
            problems.append(f"{path}: an integer without a minimum")
        if "maximum" not in schema or schema["maximum"] > BIGINT_COLUMN:
            problems.append(f"{path}: an integer without a maximum a column holds")
    elif kind == "object":
        for name, field in schema.get("properties", {}).items():
            problems += unbounded(field, definitions, f"{path}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            if "maxProperties" not in schema:
                problems.append(f"{path}: a mapping without maxProperties")
            problems += unbounded(extra, definitions, f"{path}{{}}")
    return problems


def test_the_models_are_found() -> None:
    names = {model.__name__ for model in request_models()}
    assert {"ProjectIn", "TriggerIn", "HeartbeatIn", "ModeIn", "FinishIn"} <= names


@pytest.mark.parametrize("model", request_models(), ids=lambda model: model.__name__)
def test_every_field_is_bounded(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    assert unbounded(schema, schema.get("$defs", {}), model.__name__) == []
