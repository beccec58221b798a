from __future__ import annotations

import pytest

from pipelines.errors import SpecError
from pipelines.model import GitRef, RefKind
from pipelines.plan import JobDraft, PipelineContext, plan_jobs
from pipelines.spec import parse_spec
from pipelines.spec_types import parse_duration


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


FULL = """
image: base
stages: [build, test, deploy]
jobs:
  compile:
    stage: build
    script: make
  unit:
    stage: test
    needs: [compile]
    script: make test
    retry: 2
  lint:
    stage: test
    needs: []
    script: ruff check
    allow_failure: true
  release:
    stage: deploy
    environment: staging
    secrets: [DEPLOY_TOKEN]
    when: manual
    retry: {max: 1, when: [runner_lost]}
    rules:
      - merge_request: true
        when: never
      - branch: main
      - tag: "v*"
        when: on_success
    script: ./deploy.sh
"""


def plan_for(text: str, kind: RefKind, name: str, source: str = "push") -> dict[str, JobDraft]:
    context = PipelineContext(GitRef(kind, name), source)
    return {draft.name: draft for draft in plan_jobs(parse_spec(text), context)}


def test_every_key_reaches_the_drafts() -> None:
    drafts = plan_for(FULL, RefKind.BRANCH, "main")
    assert drafts["unit"].needs == ("compile",)
    assert (drafts["unit"].retry_max, drafts["unit"].retry_on) == (2, ("any",))
    assert drafts["lint"].needs == ()
    assert drafts["lint"].allow_failure
    assert drafts["compile"].needs is None
    release = drafts["release"]
    assert (release.when, release.environment, release.secrets) == (
        "manual",
        "staging",
        ("DEPLOY_TOKEN",),
    )
    assert release.allow_failure  # a manual job is optional unless it says otherwise
    assert (release.retry_max, release.retry_on) == (1, ("runner_lost",))


def test_rules_pick_the_jobs_of_a_pipeline() -> None:
    assert "release" not in plan_for(FULL, RefKind.BRANCH, "feature")
    assert plan_for(FULL, RefKind.TAG, "v1.2")["release"].when == "on_success"
    assert "release" not in plan_for(FULL, RefKind.TAG, "nightly")
    assert "release" not in plan_for(FULL, RefKind.BRANCH, "main", source="merge_request")
    assert "release" in plan_for(FULL, RefKind.BRANCH, "main", source="api")


def test_a_need_that_the_rules_leave_out_is_an_error() -> None:
    text = """
image: base
jobs:
  build: {stage: build, script: make, rules: [{branch: main}]}
  test: {needs: [build], script: make test}
"""
    with pytest.raises(SpecError, match="'build' is not in this pipeline"):
        plan_for(text, RefKind.BRANCH, "feature")


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ("needs: [nope]", "line 5: jobs.a.needs[0]: no job is named 'nope'"),
        ("needs: [a]", "line 5: jobs.a.needs[0]: a job cannot need itself"),
        ("needs: [b]", "line 5: jobs.a.needs[0]: 'b' is in the later stage 'deploy'"),
        ("kind: deploy", "line 4: jobs.a: a deploy job names the environment it releases to"),
        ("dockerfile: Dockerfile", "line 5: jobs.a.dockerfile: only an image job (kind: image)"),
        ("when: sometimes", "line 5: jobs.a.when: Input should be 'on_success'"),
        ("retry: 9", "line 5: jobs.a.retry.max: Input should be less than or equal to 5"),
        ("retry: {max: 1, when: [oops]}", "line 5: jobs.a.retry.when: 'oops' is not one of"),
        ("rules: [{branch: main, colour: red}]", "line 5: jobs.a.rules[0].colour: unknown key"),
        ("secrets: [A-B]", "line 5: jobs.a.secrets: secret name 'A-B' is not"),
        ("secrets: [GREETING]", "line 5: jobs.a.secrets: GREETING is both a variable and"),
        ("environment: 'pro duction'", "line 5: jobs.a.environment: an environment name is"),
    ],
)
def test_new_keys_are_checked_with_their_line(job: str, expected: str) -> None:
    text = f"""image: base
variables: {{GREETING: hi}}
jobs:
  a:
    {job}
    script: x
  b: {{stage: deploy, script: y}}
"""
    found = problems(text)
    assert any(problem.startswith(expected) for problem in found), found


def test_a_cycle_of_needs_is_named() -> None:
    text = """image: base
jobs:
  a: {needs: [b], script: x}
  b: {needs: [c], script: x}
  c: {needs: [a], script: x}
"""
    assert any("needs form a cycle: a -> b -> c -> a" in problem for problem in problems(text))


IMAGE_JOB = """
image: shipway/busybox:1
stages: [build]
jobs:
  image:
    stage: build
    kind: image
    repository: team/hello
    layers:
      os: shipway/debian:bookworm
      middleware:
        packages: [python3, "libpq5=15.8-0+deb12u1"]
        run: useradd --system app
        env: {PYTHONUNBUFFERED: 1}
      app:
        copy: [src/, requirements.txt]
        command: [python3, -m, src.main]
        expose: [8000]
    runtime_mounts:
      - {host: /opt/jdk-17, target: /opt/jdk, environments: [production]}
"""


def test_an_image_job_keeps_its_layers() -> None:
    (draft,) = plan_jobs(parse_spec(IMAGE_JOB))
    assert (draft.kind, draft.script, draft.image) == ("image", (), "shipway/debian:bookworm")
    assert draft.settings is not None
    layers = draft.settings["layers"]
    assert layers["middleware"]["env"] == {"PYTHONUNBUFFERED": "1"}
    assert layers["middleware"]["run"] == ["useradd --system app"]
    assert layers["app"]["copy"] == ["src/", "requirements.txt"]
    assert layers["app"]["workdir"] == "/app"
    assert draft.settings["repository"] == "team/hello"
    assert draft.settings["runtime_mounts"] == [
        {"host": "/opt/jdk-17", "target": "/opt/jdk", "environments": ["production"]}
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("    script: make\n", "jobs.image.script: an image job runs no script: Shipway runs it"),
        ("    dockerfile: Dockerfile\n", "jobs.image: an image job needs either layers or"),
        ("    repository: Team/Hello\n", "jobs.image.repository: a repository is lower-case"),
    ],
)
def test_image_job_mistakes_are_named(change: str, expected: str) -> None:
    text = IMAGE_JOB.replace("    repository: team/hello\n", "") + change
    assert any(expected in problem for problem in problems(text)), problems(text)


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        ("copy: [../secrets]", "must be a path inside the repository"),
        ("copy: [/etc/passwd]", "must be a path inside the repository"),
        ("workdir: app", "must be an absolute path"),
        ("expose: [70000]", "less than or equal to 65535"),
    ],
)
def test_app_layer_values_are_checked(layer: str, expected: str) -> None:
    text = f"""jobs:
  image:
    kind: image
    layers:
      os: base
      app: {{command: [run], copy: [src/], {layer.replace("copy: ", "copy: ")}}}
"""
    if layer.startswith("copy"):
        text = text.replace("copy: [src/], ", "")
    assert any(expected in problem for problem in problems(text)), problems(text)


def test_reports_belong_to_script_jobs() -> None:
    (draft,) = plan_jobs(parse_spec("image: x\njobs:\n  a: {script: t, reports: {junit: r.xml}}\n"))
    assert draft.settings == {"reports": {"junit": ["r.xml"]}}
    text = IMAGE_JOB + "    reports: {junit: r.xml}\n"
    assert any(
        "jobs.image.reports: only a script job (kind: script) takes this key" in problem
        for problem in problems(text)
    )
    assert any(
        "jobs.a.reports.cobertura: unknown key" in problem
        for problem in problems("image: x\njobs:\n  a: {script: t, reports: {cobertura: c}}\n")
    )


def test_a_scan_job_and_its_gate() -> None:
    text = """jobs:
  scan:
    kind: scan
    paths: [src/]
    gate: {new_high: 0, total: 20}
"""
    (draft,) = plan_jobs(parse_spec(text))
    assert (draft.kind, draft.image) == ("scan", "shipway/scanners:1")
    assert draft.settings == {
        "analysers": None,
        "paths": ["src/"],
        "gate": {"new_high": 0, "total": 20},
    }
    wrong = text.replace("total: 20", "bugs: 1")
    assert any("jobs.scan.gate: 'bugs' is not one of" in problem for problem in problems(wrong))
    assert any(
        "jobs.scan.analysers[0]: Input should be 'ruff' or 'bandit'" in problem
        for problem in problems(text + "    analysers: [pylint]\n")
    )


DEPLOYING = """
stages: [package, deploy]
jobs:
  image:
    stage: package
    kind: image
    layers: {os: base, app: {copy: [src/], command: [run]}}
  staging:
    stage: deploy
    kind: deploy
    environment: staging
    release: {batches: 2, pause_mode: after_first}
"""


def test_a_deploy_job_releases_the_image_of_the_pipeline() -> None:
    drafts = {draft.name: draft for draft in plan_jobs(parse_spec(DEPLOYING))}
    staging = drafts["staging"]
    assert (staging.kind, staging.environment) == ("deploy", "staging")
    assert staging.settings == {
        "release": {"batches": 2, "grouping": None, "pause_mode": "after_first", "beta": False},
        "image_job": None,
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("    stage: deploy\n    kind: deploy", "    stage: package\n    kind: deploy"),
            "jobs.staging: the image job 'image' must run before",
        ),
        (
            ("release: {batches: 2", "image_job: nope\n    release: {batches: 2"),
            "jobs.staging.image_job: 'nope' is not an image job",
        ),
        (("pause_mode: after_first}", "grouping: all_at_once}"), "give batches or grouping"),
    ],
)
def test_deploy_job_mistakes(change: tuple[str, str], expected: str) -> None:
    text = DEPLOYING.replace(*change)
    assert any(expected in problem for problem in problems(text)), problems(text)


PROMOTING = """
stages: [production]
jobs:
  promote:
    stage: production
    kind: promote
    from_environment: staging
    environment: production
    when: manual
"""


def test_a_promote_job_releases_what_another_environment_runs() -> None:
    (draft,) = plan_jobs(parse_spec(PROMOTING))
    assert (draft.kind, draft.environment) == ("promote", "production")
    assert draft.image == "promotion from staging to production"
    assert draft.settings == {
        "release": {"pause_mode": "never", "beta": False, "grouping": "two_groups"},
        "from": "staging",
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("    from_environment: staging\n", ""),
            "line 4: jobs.promote: a promote job names where",
        ),
        (("from_environment: staging", "from_environment: production"), "to another environment"),
        (("    environment: production\n", ""), "names the environment it releases to"),
        (
            ("    when: manual", "    image_job: x"),
            "jobs.promote.image_job: only a deploy job (kind: deploy) takes this key",
        ),
        (("    when: manual", "    image: x:1"), "releases what from_environment runs, no image"),
        (
            (
                "    kind: promote\n    from_environment: staging",
                "    script: [x]\n    from_environment: a",
            ),
            "from_environment: only a promote job (kind: promote) takes this key",
        ),
    ],
)
def test_promote_job_mistakes(change: tuple[str, str], expected: str) -> None:
    text = PROMOTING.replace(*change)
    assert any(expected in problem for problem in problems(text)), problems(text)


def test_a_key_of_two_kinds_names_both() -> None:
    text = PROMOTING.replace("    kind: promote\n", "    image: i\n    script: [x]\n")
    text = text.replace("from_environment: staging", "release: {batches: 1}")
    assert any(
        "release: only a deploy job (kind: deploy) or a promote job (kind: promote) takes"
        in problem
        for problem in problems(text)
    ), problems(text)
