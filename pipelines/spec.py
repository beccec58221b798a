"""The pipeline file, ``.shipway.yml``: its schema and its parser.

    image: shipway/busybox:1          # default image of every job
    stages: [build, test, deploy]     # order of the stages (this is the default)
    variables: {GREETING: hello}      # variables of every job
    cache: {key: {files: [requirements.lock]}, paths: [.venv]}  # script jobs keep these
    jobs:
      compile:
        stage: build
        script: make
      unit:
        stage: test
        needs: [compile]               # starts when compile succeeded, not at the stage
        script: ["echo \"$GREETING\"", make test]
        timeout: 10m
        retry: {max: 2, when: [runner_lost]}
        allow_failure: false
      release:
        stage: deploy
        environment: staging           # one job per environment runs at a time
        secrets: [DEPLOY_TOKEN]        # values are kept by the server, never in the repo
        when: manual                   # waits for a person to play it
        rules:
          - branch: main               # only on main; other refs leave it out
        script: ./deploy.sh
        queue: staging                 # the runner queue that takes the job

Every problem is reported with the line and the key it is about; unknown keys are
errors, so a typo never passes silently. Top-level keys that start with a dot hold
YAML anchors for reuse and are otherwise ignored. docs/pipeline-file.md is the
reference of every key.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipelines.cache_spec import CacheSetting, check_cache_setting
from pipelines.errors import SpecError, SpecIssue
from pipelines.image_spec import (
    LayersSpec,
    RuntimeMountSpec,
    check_relative,
    check_repository,
)
from pipelines.spec_types import (
    NAME,
    RESERVED_KINDS,
    VARIABLE,
    Duration,
    JobKind,
    ReleaseSpec,
    ReportsSpec,
    RetrySpec,
    RuleSpec,
    Script,
    VariableValue,
    When,
    check_gate,
    check_variables,
    retry_setting,
)
from pipelines.yaml_lines import Path, YamlProblem, format_path, line_of, load_with_lines

FILE_NAME = ".shipway.yml"
DEFAULT_STAGES = ("build", "test", "deploy")
DEFAULT_TIMEOUT_SECONDS = 3600


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)

    kind: JobKind = JobKind.SCRIPT
    stage: str = "test"
    image: str | None = None
    script: Script | None = None
    reports: ReportsSpec | None = None  # kind script: test reports it writes
    cache: CacheSetting | None = None  # kind script: kept between pipelines (cache_spec)
    layers: LayersSpec | None = None  # kind image: the three layers
    dockerfile: str | None = None  # kind image: or the repository's own Dockerfile
    context: str | None = None  # kind image: the build context of that Dockerfile
    repository: str | None = None  # kind image: the image's name in the registry
    runtime_mounts: list[RuntimeMountSpec] = Field(default_factory=list)
    analysers: list[Literal["ruff", "bandit"]] | None = None  # kind scan: which to run
    paths: list[str] | None = None  # kind scan: what to scan (default: everything)
    gate: dict[str, int] | None = None  # kind scan: maximum count per metric
    release: ReleaseSpec | None = None  # kinds deploy and promote: batches, pause mode
    image_job: str | None = None  # kind deploy: the image job whose image it releases
    from_environment: str | None = None  # kind promote: whose running digest it releases
    needs: list[str] | None = None
    variables: dict[str, VariableValue] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list)
    environment: str | None = None
    timeout: Duration | None = None
    retry: Annotated[RetrySpec, BeforeValidator(retry_setting)] | None = None
    allow_failure: bool | None = None
    when: When = When.ON_SUCCESS
    rules: list[RuleSpec] | None = Field(default=None, min_length=1)
    queue: str = "build"

    _variables = field_validator("variables")(check_variables)
    _cache = field_validator("cache")(check_cache_setting)

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, secrets: list[str]) -> list[str]:
        for name in secrets:
            if not VARIABLE.fullmatch(name):
                raise ValueError(f"secret name {name!r} is not letters, digits and underscores")
        if len(set(secrets)) != len(secrets):
            raise ValueError("a secret is listed twice")
        return secrets

    _repository = field_validator("repository")(check_repository)
    _gate = field_validator("gate")(check_gate)

    @field_validator("paths")
    @classmethod
    def _relative_paths(cls, paths: list[str] | None) -> list[str] | None:
        return [path for path in paths if check_relative(path)] if paths is not None else None

    _dockerfile = field_validator("dockerfile", "context")(check_relative)

    @field_validator("environment")
    @classmethod
    def _environment_name(cls, environment: str | None) -> str | None:
        if environment is not None and not NAME.fullmatch(environment):
            raise ValueError("an environment name is 1-63 letters, digits, '.', '_' or '-'")
        return environment


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str | None = None
    stages: list[str] = Field(default_factory=lambda: list(DEFAULT_STAGES), min_length=1)
    variables: dict[str, VariableValue] = Field(default_factory=dict)
    timeout: Duration = DEFAULT_TIMEOUT_SECONDS
    cache: CacheSetting | None = None  # of every script job that sets none
    jobs: dict[str, JobSpec] = Field(min_length=1)

    _variables = field_validator("variables")(check_variables)
    _cache = field_validator("cache")(check_cache_setting)

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
            problems.extend(self._job_problems(name, job))
        problems.extend(_cycles(self.jobs))
        if problems:
            raise _CrossCheck(problems)
        return self

    def _job_problems(self, name: str, job: JobSpec) -> list[tuple[Path, str]]:
        problems: list[tuple[Path, str]] = []
        if not NAME.fullmatch(name):
            problems.append((("jobs", name), "a job name is 1-63 letters, digits, '.', '_' or '-'"))
        if job.kind in RESERVED_KINDS:
            problems.append(
                (
                    ("jobs", name, "kind"),
                    f"kind {job.kind.value!r} is reserved for {RESERVED_KINDS[job.kind]}, "
                    "which this version of Shipway does not have yet; use a script job",
                )
            )
        if job.stage not in self.stages:
            problems.append(
                (
                    ("jobs", name, "stage"),
                    f"stage {job.stage!r} is not one of: {', '.join(self.stages)}",
                )
            )
        problems.extend(_kind_problems(name, job))
        if job.kind is JobKind.SCRIPT and job.image is None and self.image is None:
            problems.append((("jobs", name), "no image: set image on the job or the file"))
        for clash in sorted(set(job.secrets) & ({**self.variables, **job.variables}.keys())):
            problems.append((("jobs", name, "secrets"), f"{clash} is both a variable and a secret"))
        for index, needed in enumerate(job.needs or []):
            where: Path = ("jobs", name, "needs", index)
            other = self.jobs.get(needed)
            if needed == name:
                problems.append((where, "a job cannot need itself"))
            elif other is None:
                problems.append((where, f"no job is named {needed!r}"))
            elif self._is_later(other.stage, job.stage):
                problems.append((where, f"{needed!r} is in the later stage {other.stage!r}"))
        if job.kind is JobKind.DEPLOY:
            problems.extend(self._image_job_problems(name, job))
        if job.needs is not None and len(set(job.needs)) != len(job.needs):
            problems.append((("jobs", name, "needs"), "a job is listed twice"))
        return problems

    def _image_job_problems(self, name: str, job: JobSpec) -> list[tuple[Path, str]]:
        """The image job a deploy job releases: named, or the only one; and it runs
        before the deploy job (an earlier stage, or in its needs)."""
        images = [other for other, spec in self.jobs.items() if spec.kind is JobKind.IMAGE]
        where: Path = ("jobs", name, "image_job") if job.image_job else ("jobs", name)
        chosen = job.image_job
        if chosen is None:
            if len(images) != 1:
                return [(where, "name the image job to release with image_job")]
            chosen = images[0]
        elif chosen not in images:
            return [(where, f"{chosen!r} is not an image job of this file")]
        upstream = (
            job.needs
            if job.needs is not None
            else [other for other in self.jobs if self._is_later(job.stage, self.jobs[other].stage)]
        )
        if chosen not in upstream:
            return [(where, f"the image job {chosen!r} must run before: an earlier stage or needs")]
        return []

    def _is_later(self, stage: str, than: str) -> bool:
        if stage not in self.stages or than not in self.stages:
            return False  # an unknown stage is reported on its own
        return self.stages.index(stage) > self.stages.index(than)


_IMAGE_KEYS = ("layers", "dockerfile", "context", "repository", "runtime_mounts")
_SCAN_KEYS = ("analysers", "paths", "gate")
_KIND_KEYS = {
    JobKind.IMAGE: _IMAGE_KEYS,
    JobKind.SCAN: _SCAN_KEYS,
    JobKind.SCRIPT: ("reports", "cache"),
    JobKind.DEPLOY: ("release", "image_job"),
    JobKind.PROMOTE: ("release", "from_environment"),
}


def _a(kind: JobKind) -> str:
    return f"an {kind.value}" if kind.value[0] in "aeiou" else f"a {kind.value}"


def _kind_problems(name: str, job: JobSpec) -> list[tuple[Path, str]]:
    """Keys that belong to some kinds of job are refused on the others."""
    where: Path = ("jobs", name)
    given = job.model_fields_set
    owners: dict[str, list[JobKind]] = {}
    for kind, keys in _KIND_KEYS.items():
        for key in keys:
            owners.setdefault(key, []).append(kind)
    problems: list[tuple[Path, str]] = [
        (
            (*where, key),
            " or ".join(f"only {_a(kind)} job (kind: {kind.value})" for kind in kinds).replace(
                " or only", " or"
            )
            + " takes this key",
        )
        for key, kinds in owners.items()
        if key in given and job.kind not in kinds
    ]
    if job.kind is JobKind.SCRIPT and job.script is None:
        problems.append(((*where, "script"), "required key is missing"))
    if job.kind is not JobKind.SCRIPT and "script" in given:
        problems.append(((*where, "script"), f"{_a(job.kind)} job runs no script: Shipway runs it"))
    if job.kind is JobKind.DEPLOY:
        if job.environment is None:
            problems.append((where, "a deploy job names the environment it releases to"))
        if "image" in given:
            problems.append(
                ((*where, "image"), "a deploy job releases an image job's image: see image_job")
            )
    if job.kind is JobKind.PROMOTE:
        problems.extend(_promote_problems(where, job, given))
    if job.kind is JobKind.IMAGE:
        if "image" in given:
            problems.append(
                ((*where, "image"), "an image job runs in no image: its base is layers.os")
            )
        if (job.layers is None) == (job.dockerfile is None):
            problems.append((where, "an image job needs either layers or dockerfile"))
        if job.context is not None and job.dockerfile is None:
            problems.append(((*where, "context"), "context goes with dockerfile"))
    return problems


def _promote_problems(where: Path, job: JobSpec, given: set[str]) -> list[tuple[Path, str]]:
    problems: list[tuple[Path, str]] = []
    if job.environment is None:
        problems.append((where, "a promote job names the environment it releases to"))
    if job.from_environment is None:
        problems.append((where, "a promote job names where its image runs: from_environment"))
    elif job.from_environment == job.environment:
        problems.append(((*where, "from_environment"), "it promotes to another environment"))
    if "image" in given:
        problems.append(
            ((*where, "image"), "a promote job releases what from_environment runs, no image")
        )
    return problems


def _cycles(jobs: dict[str, JobSpec]) -> list[tuple[Path, str]]:
    """Jobs whose needs lead back to themselves (possible within one stage)."""
    graph = {
        name: [n for n in (job.needs or []) if n in jobs and n != name]
        for name, job in jobs.items()
    }
    problems: list[tuple[Path, str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for needed in graph[name]:
            if state.get(needed) == 1:
                loop = [*path[path.index(needed) :], needed]
                problems.append(
                    (("jobs", name, "needs"), f"needs form a cycle: {' -> '.join(loop)}")
                )
            elif needed not in state:
                visit(needed, [*path, needed])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])
    return problems


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
