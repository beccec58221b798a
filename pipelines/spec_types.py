"""The value types of the pipeline file: durations, variables, scripts, globs, and
the settings ``when``, ``kind``, ``retry`` and ``rules`` take. :mod:`pipelines.spec`
builds the file's schema from them."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from pipelines.retry import RETRY_ANY
from pipelines.scan import GATE_METRICS
from pipelines.status import FailureKind

MAX_TIMEOUT_SECONDS = 24 * 3600

_DURATION = re.compile(r"^(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_duration(value: Any) -> int:
    """Seconds from ``90``, ``"90s"``, ``"10m"``, ``"1h30m"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like 10m or 1h30m")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and value.strip() and (match := _DURATION.fullmatch(value.strip())):
        hours, minutes, secs = (int(group or 0) for group in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise ValueError("a duration is a number of seconds or text like 10m or 1h30m")
    if not 1 <= seconds <= MAX_TIMEOUT_SECONDS:
        raise ValueError(f"a duration is between 1 second and {MAX_TIMEOUT_SECONDS // 3600} hours")
    return seconds


def _variable_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _script(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Duration = Annotated[int, BeforeValidator(parse_duration)]
VariableValue = Annotated[str, BeforeValidator(_variable_value)]
Script = Annotated[
    list[Annotated[str, Field(min_length=1)]], Field(min_length=1), BeforeValidator(_script)
]


def check_variables(variables: dict[str, str]) -> dict[str, str]:
    for name in variables:
        if not VARIABLE.fullmatch(name):
            raise ValueError(f"variable name {name!r} is not letters, digits and underscores")
    return variables


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Globs = Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_one_or_many)]


class When(StrEnum):
    """When a job runs, given how the jobs it waits for ended."""

    ON_SUCCESS = "on_success"  # they all succeeded (an allowed failure counts)
    ON_FAILURE = "on_failure"  # one of them failed
    ALWAYS = "always"  # whatever happened
    MANUAL = "manual"  # as on_success, once a person plays it


class RuleWhen(StrEnum):
    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    ALWAYS = "always"
    MANUAL = "manual"
    NEVER = "never"  # leave the job out of the pipeline


class JobKind(StrEnum):
    """What a job does. Only scripts run today; the others are Shipway's built-in
    jobs, reserved so that pipeline files keep their shape when they arrive."""

    SCRIPT = "script"
    IMAGE = "image"  # build and push the three-layer image
    SCAN = "scan"  # static analysis and its quality gate
    DEPLOY = "deploy"  # release to an environment in batches
    PROMOTE = "promote"  # release the digest another environment runs (P2)


RESERVED_KINDS: dict[JobKind, str] = {}

RETRY_ON = (RETRY_ANY, *(kind.value for kind in FailureKind))
MAX_RETRIES = 5


class RetrySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max: int = Field(ge=0, le=MAX_RETRIES)
    when: list[str] = Field(default_factory=lambda: [RETRY_ANY], min_length=1)

    @field_validator("when")
    @classmethod
    def _known_failures(cls, when: list[str]) -> list[str]:
        for failure in when:
            if failure not in RETRY_ON:
                raise ValueError(f"{failure!r} is not one of: {', '.join(RETRY_ON)}")
        return when


def retry_setting(value: Any) -> Any:
    return {"max": value} if isinstance(value, int) and not isinstance(value, bool) else value


class RuleSpec(BaseModel):
    """A rule matches when each condition it names holds; one with none always does."""

    model_config = ConfigDict(extra="forbid")

    branch: Globs | None = None
    tag: Globs | None = None
    merge_request: bool | None = None
    when: RuleWhen | None = None


class ReportsSpec(BaseModel):
    """Files a script job leaves in its workspace for Shipway to read."""

    model_config = ConfigDict(extra="forbid")

    junit: Globs = Field(min_length=1)  # JUnit XML test reports: paths or globs


def check_gate(gate: dict[str, int] | None) -> dict[str, int] | None:
    if gate is None:
        return None
    for metric, maximum in gate.items():
        if metric not in GATE_METRICS:
            raise ValueError(f"{metric!r} is not one of: {', '.join(GATE_METRICS)}")
        if maximum < 0:
            raise ValueError(f"{metric}: a maximum is 0 or more")
    return gate


class ReleaseSpec(BaseModel):
    """How a deploy job releases: a batch count or a grouping, and a pause mode."""

    model_config = ConfigDict(extra="forbid")

    batches: int | None = Field(default=None, ge=1, le=100)
    grouping: Literal["two_groups", "all_at_once", "one_by_one"] | None = None
    pause_mode: Literal["after_first", "after_every", "never"] = "never"
    beta: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> ReleaseSpec:
        if self.batches is not None and self.grouping is not None:
            raise ValueError("give batches or grouping, not both")
        return self
