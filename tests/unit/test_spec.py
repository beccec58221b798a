from __future__ import annotations

import pytest

from pipelines.errors import SpecError
from pipelines.plan import plan_jobs
from pipelines.spec import parse_duration, parse_spec


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(text)
    return [str(issue) for issue in caught.value.issues]


def test_a_minimal_file() -> None:
    spec = parse_spec("image: shipway/busybox:1\njobs:\n  unit:\n    script: echo hi\n")
    (job,) = plan_jobs(spec)
    assert job.name == "unit"
    assert job.image == "shipway/busybox:1"
    assert job.script == ("echo hi",)
    assert job.stage == "test"
    assert job.queue == "build"
    assert job.timeout_seconds == 3600


def test_stages_order_jobs_and_variables_merge() -> None:
    spec = parse_spec(
        """
image: base
stages: [build, test]
variables: {A: one, B: 2, C: true}
jobs:
  unit:
    stage: test
    image: other
    script: [echo $A]
    variables: {B: three}
    timeout: 1h30m
  compile:
    stage: build
    script: [make]
"""
    )
    compile_job, unit = plan_jobs(spec)
    assert (compile_job.name, compile_job.stage_index) == ("compile", 0)
    assert (unit.name, unit.stage_index, unit.image) == ("unit", 1, "other")
    assert unit.variables == {"A": "one", "B": "three", "C": "true"}
    assert unit.timeout_seconds == 5400


def test_anchors_and_merge_keys_reuse_settings() -> None:
    spec = parse_spec(
        """
.defaults: &defaults
  image: base
  timeout: 90
jobs:
  a:
    <<: *defaults
    script: [echo a]
"""
    )
    (job,) = plan_jobs(spec)
    assert (job.image, job.timeout_seconds) == ("base", 90)


def test_unknown_keys_name_their_line() -> None:
    assert problems("image: x\njobs:\n  unit:\n    script: [a]\n    scirpt: [b]\n") == [
        "line 5: jobs.unit.scirpt: unknown key"
    ]


def test_a_missing_key_names_the_line_of_its_parent() -> None:
    assert problems("image: x\njobs:\n  unit:\n    stage: test\n") == [
        "line 3: jobs.unit.script: required key is missing"
    ]


def test_yaml_syntax_errors_name_the_line() -> None:
    (problem,) = problems("image: x\njobs:\n  unit:\n    script: [a\n  other: 1\n")
    assert problem.startswith("line 5: invalid YAML")


def test_duplicate_keys_are_errors() -> None:
    assert problems("jobs:\n  a: {image: x, script: [a]}\n  a: {image: x, script: [b]}\n") == [
        "line 3: jobs.a: duplicate key (first at line 2)"
    ]


def test_cross_checks_name_lines() -> None:
    assert problems(
        "stages: [build]\njobs:\n  a:\n    image: x\n    script: [a]\n    stage: test\n"
        "  b:\n    stage: build\n    script: [b]\n"
    ) == [
        "line 6: jobs.a.stage: stage 'test' is not one of: build",
        "line 7: jobs.b: no image: set image on the job or the file",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "line 1: the file is empty: it needs at least one job"),
        ("- a\n", "line 1: the file must be a mapping of keys"),
        (
            "jobs: {}\n",
            "line 1: jobs: Dictionary should have at least 1 item after validation, not 0",
        ),
        (
            "image: x\njobs:\n  a:\n    script: []\n",
            "line 4: jobs.a.script: List should have at least 1 item after validation, not 0",
        ),
        (
            "image: x\njobs:\n  a:\n    script: [a]\n    timeout: 3d\n",
            "line 5: jobs.a.timeout: a duration is a number of seconds or text like 10m or 1h30m",
        ),
        (
            "image: x\njobs:\n  'bad name':\n    script: [a]\n",
            "line 3: jobs.bad name: a job name is 1-63 letters, digits, '.', '_' or '-'",
        ),
        (
            "image: x\nvariables: {'a-b': 1}\njobs:\n  a:\n    script: [a]\n",
            "line 2: variables: variable name 'a-b' is not letters, digits and underscores",
        ),
        (
            "image: x\nstages: [a, a]\njobs:\n  j:\n    stage: a\n    script: [a]\n",
            "line 2: stages: stage listed twice: a",
        ),
    ],
)
def test_invalid_files(text: str, expected: str) -> None:
    assert problems(text) == [expected]


@pytest.mark.parametrize(
    ("value", "seconds"), [(90, 90), ("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400)]
)
def test_durations(value: int | str, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [0, -1, True, "", "10x", "25h", 10**6])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)
