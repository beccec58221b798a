"""The pipeline file, ``.shipway.yml``: its schema and its parser.

    image: shipway/busybox:1          # default image of every job
    stages: [build, test]             # order of the stages (default: build, test, deploy)
    variables: {GREETING: hello}      # variables of every job
    jobs:
      unit:
        stage: test
        image: shipway/busybox:1
        script:
          - echo "$GREETING"
        timeout: 10m
        queue: build                   # the runner queue that takes the job

Every problem is reported with the line and the key it is about; unknown keys are
errors, so a typo never passes silently. Top-level keys that start with a dot hold
YAML anchors for reuse and are otherwise ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipelines.errors import SpecError, SpecIssue
from pipelines.yaml_lines import Path, YamlProblem, format_path, line_of, load_with_lines

FILE_NAME = ".shipway.yml"
DEFAULT_STAGES = ("build", "test", "deploy")
DEFAULT_TIMEOUT_SECONDS = 3600
MAX_TIMEOUT_SECONDS = 24 * 3600

_DURATION = re.compile(r"^(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_duration(value: Any) -> int:
    """Seconds from ``90``, ``"90s"``, ``"10m"``, ``"1h30m"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like 10m or 1h30m")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and value.strip() and (match := _DURATION.match(value.strip())):
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
Script = Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_script)]


def _check_variables(variables: dict[str, str]) -> dict[str, str]:
    for name in variables:
        if not _VARIABLE.match(name):
            raise ValueError(f"variable name {name!r} is not letters, digits and underscores")
    return variables


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)

    stage: str = "test"
    image: str | None = None
    script: Script = Field(min_length=1)
    variables: dict[str, VariableValue] = Field(default_factory=dict)
    timeout: Duration | None = None
    queue: str = "build"

    _variables = field_validator("variables")(_check_variables)


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str | None = None
    stages: list[str] = Field(default_factory=lambda: list(DEFAULT_STAGES), min_length=1)
    variables: dict[str, VariableValue] = Field(default_factory=dict)
    timeout: Duration = DEFAULT_TIMEOUT_SECONDS
    jobs: dict[str, JobSpec] = Field(min_length=1)

    _variables = field_validator("variables")(_check_variables)

    @field_validator("stages")
    @classmethod
    def _unique_stages(cls, stages: list[str]) -> list[str]:
        duplicates = sorted({stage for stage in stages if stages.count(stage) > 1})
        if duplicates:
            raise ValueError(f"stage listed twice: {', '.join(duplicates)}")
        return stages

    @model_validator(mode="after")
    def _jobs_fit(self) -> PipelineSpec:
        # Errors that need the whole file are raised with their path attached,
        # see _CrossCheck, so they still name a line.
        problems: list[tuple[Path, str]] = []
        for name, job in self.jobs.items():
            if not _NAME.match(name):
                problems.append(
                    (("jobs", name), "a job name is 1-63 letters, digits, '.', '_' or '-'")
                )
            if job.stage not in self.stages:
                problems.append(
                    (
                        ("jobs", name, "stage"),
                        f"stage {job.stage!r} is not one of: {', '.join(self.stages)}",
                    )
                )
            if job.image is None and self.image is None:
                problems.append((("jobs", name), "no image: set image on the job or the file"))
        if problems:
            raise _CrossCheck(problems)
        return self


class _CrossCheck(ValueError):
    def __init__(self, problems: list[tuple[Path, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}


def parse_spec(text: str) -> PipelineSpec:
    """Parse and validate a pipeline file; raise :class:`SpecError` naming lines."""
    try:
        data, lines = load_with_lines(text)
    except YamlProblem as problem:
        raise SpecError([problem.issue]) from problem
    if data is None:
        raise SpecError([SpecIssue(1, "", "the file is empty: it needs at least one job")])
    if not isinstance(data, dict):
        raise SpecError([SpecIssue(lines.get(()), "", "the file must be a mapping of keys")])
    data = {key: value for key, value in data.items() if not key.startswith(".")}
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_issues(exc, lines)) from exc


def _issues(exc: ValidationError, lines: dict[Path, int]) -> list[SpecIssue]:
    issues: list[SpecIssue] = []
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _CrossCheck):
            for where, message in cause.problems:
                issues.append(SpecIssue(line_of(where, lines), format_path(where), message))
            continue
        path: Path = tuple(part for part in error["loc"] if not _is_validator_tag(part))
        text = _MESSAGES.get(error["type"], error["msg"]).removeprefix("Value error, ")
        issues.append(SpecIssue(line_of(path, lines), format_path(path), text))
    issues.sort(key=lambda issue: (issue.line or 0, issue.key))
    return issues


def _is_validator_tag(part: str | int) -> bool:
    # pydantic adds pseudo-locations such as "function-before[...]" for wrapped types
    return isinstance(part, str) and ("[" in part and part.endswith("]"))
