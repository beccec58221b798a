"""Property-based fuzzing of the webhook and of every route that takes a body.

Hypothesis sends, with a valid token, bodies made to hurt: bytes that are not
UTF-8, JSON nested thousands deep, lone surrogates, NUL characters, NaN, numbers
of thousands of digits, refs git refuses, strings over every column's width, and
valid bodies with one or two fields replaced by any of these. The real app runs
in-process on real Redis, once on SQLite and once on PostgreSQL (which enforces
column widths, NUL and 32-bit integers that SQLite lets pass); its engine is
stopped so that only the request under test changes the database. Each answer
must be under 500, and a refusal (4xx) must be JSON naming the problem and leave
every table as it was (a webhook refusal adds its one audit line).

The routes come from the route table: a new route with a body is fuzzed without
being named here, once :data:`TEMPLATES` has a valid body for it. Deterministic:
``derandomize`` and no example database, so CI sees the same examples each run.
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.routing import Route
from starlette.testclient import TestClient

from pipelines.model import GitRef, RefKind
from pipelines.plan import plan_jobs
from pipelines.spec import parse_spec
from pipelines.status import Status
from server.app import create_app
from server.routes import routes
from server.settings import Settings
from server.state import AppState
from server.store.pipelines import NewPipeline
from tests.conftest import empty_database
from tests.support.git import Repository
from tests.support.rows import row_counts
from tests.support.services import RedisServer
from tests.unit.test_events import push_payload

API_TOKEN = "api-token-0123456789"
RUNNER_TOKEN = "runner-token-0123456789"
SECRET = "webhook-secret-0123456789"
API = {"Authorization": f"Bearer {API_TOKEN}"}
RUNNER = {"Authorization": f"Bearer {RUNNER_TOKEN}"}
SPEC = "image: i\njobs:\n  a: {script: [x]}\n"
# SHIPWAY_FUZZ_EXAMPLES=500 explores further, with new random examples each run.
EXPLORE = int(os.environ.get("SHIPWAY_FUZZ_EXAMPLES", "0"))
# Examples per route: fewer on PostgreSQL, whose round trips are slower, so that the
# file runs in about 45 s; PostgreSQL is here for what SQLite does not check.
EXAMPLES = {"sqlite": 50, "postgresql": 20}
FUZZ = settings(
    deadline=None,
    derandomize=not EXPLORE,
    database=None,
    # Generating deep or long bodies takes its time.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# A valid body of each route that takes one: the fuzzer changes it field by field,
# so that bodies get past the first check and reach the use case and the store.
# A body that is not JSON is text, its blanks ({}) filled in by the fuzzer.
TEMPLATES: dict[tuple[str, str], Any] = {
    ("POST", "/api/lint"): {"content": SPEC},
    ("POST", "/api/projects"): {
        "name": "fuzzed",
        "clone_url": "/srv/git/fuzzed.git",
        "gitlab_path": "team/fuzzed",
        "webhook_secret": "s" * 16,
        "branches": ["main"],
        "tags": ["v*"],
        "supersede": False,
    },
    ("PATCH", "/api/projects/{name}"): {"branches": ["main"], "tags": ["*"], "supersede": True},
    ("POST", "/api/projects/{name}/pipelines"): {"branch": "main"},
    ("PUT", "/api/projects/{name}/environments/{environment}/config"): {
        "instances": 2,
        "ports": [{"container": 8000}],
        "resources": {"memory": "64m"},
    },
    ("POST", "/api/projects/{name}/environments/{environment}/releases"): {
        "image": "x:1",
        "batches": 2,
        "pause_mode": "never",
        "beta": False,
    },
    ("POST", "/api/projects/{name}/environments/{environment}/rollback"): {
        "image": "x:1",
        "reason": "it broke",
    },
    ("POST", "/api/projects/{name}/environments/{environment}/restart"): {
        "batches": 1,
        "pause_mode": "never",
    },
    ("POST", "/api/releases/{release_id:int}/mode"): {"pause_mode": "after_every"},
    ("POST", "/api/releases/{release_id:int}/traffic"): {"new_share": 50},
    ("PUT", "/api/projects/{name}/secrets/{secret}"): {
        "value": "s3cret-value",
        "environment": "staging",
    },
    ("POST", "/api/users"): {"name": "fuzzed", "email": "f@example.com", "roles": ["tester"]},
    ("POST", "/api/users/{user}/roles"): {"grant": ["tester:app"], "revoke": ["developer:app"]},
    ("PUT", "/api/users/{user}/password"): {"password": "correct horse battery"},
    ("POST", "/api/runner-tokens"): {"runner": "fuzz"},
    ("POST", "/api/projects/{name}/promotions"): {
        "from": "staging",
        "to": "production",
        "batches": 1,
        "pause_mode": "never",
    },
    ("POST", "/api/releases/{release_id:int}/approve"): {"comment": "looks good"},
    ("POST", "/api/releases/{release_id:int}/reject"): {"comment": "not yet"},
    ("PUT", "/api/projects/{name}/environments/{environment}/protection"): {
        "protected": True,
        "approvals": 2,
        "approver_role": "ops",
        "self_approval": False,
        "valid_minutes": 60,
        "verdict_from": "staging",
    },
    ("POST", "/api/projects/{name}/environments/{environment}/verdicts"): {
        "passed": True,
        "comment": "all good",
    },
    ("POST", "/api/tokens"): {"name": "ci", "user": "fuzzer", "expires_in_days": 30},
    ("POST", "/api/runner/heartbeat"): {
        "runner": "fuzz",
        "queues": ["build"],
        "host": "h",
        "pid": 1,
        "job_id": None,
    },
    ("POST", "/api/runner/jobs/{job_id:int}/start"): {"runner": "fuzz"},
    ("POST", "/api/runner/jobs/{job_id:int}/log"): "",
    ("POST", "/api/runner/jobs/{job_id:int}/image"): {
        "repository": "registry/app",
        "tag": "1",
        "digest": "sha256:" + "a" * 64,
        "middleware": None,
        "pushed_bytes": 1,
        "app_layer_bytes": 1,
        "runtime_mounts": [],
    },
    ("POST", "/api/runner/jobs/{job_id:int}/reports/junit"): (
        '<testsuite name="{}"><testcase classname="{}" name="{}" time="{}"/></testsuite>'
    ),
    ("POST", "/api/runner/jobs/{job_id:int}/reports/scan"): [
        {"code": "F401", "message": "m", "filename": "/workspace/a.py", "location": {"row": 1}}
    ],
    ("POST", "/api/runner/jobs/{job_id:int}/finish"): {
        "succeeded": False,
        "exit_code": 1,
        "failure_kind": None,
        "failure_reason": "it failed",
    },
    ("POST", "/api/runner/releases/{release_id:int}/instances/{name}"): {
        "status": "healthy",
        "log": "ok",
    },
    ("POST", "/api/runner/releases/{release_id:int}/batches/{batch:int}/start"): {
        "runner": "fuzz",
        "handout": 1,
    },
    ("POST", "/api/runner/releases/{release_id:int}/batches/{batch:int}/done"): {"failure": None},
}
QUERIES = {
    "/api/runner/jobs/{job_id:int}/log": "?offset=0",
    "/api/runner/jobs/{job_id:int}/reports/junit": "?name=report.xml",
    "/api/runner/jobs/{job_id:int}/reports/scan": "?analyser=ruff",
}


def body_routes() -> list[tuple[str, str]]:
    """Every route a body can be sent to, the webhook aside, from the route table."""
    found = []
    for route in routes:
        assert isinstance(route, Route)
        for method in sorted((route.methods or set()) & {"POST", "PUT", "PATCH"}):
            if route.path != "/webhooks/gitlab":
                found.append((method, route.path))
    return found


# POST routes that act on their path alone and read no body (sent one all the same).
BODYLESS = {
    (method, path)
    for method, path in body_routes()
    if path.endswith(
        ("/retry", "/pause", "/resume", "/close", "/cancel", "/play", "/gate", "/disable")
    )
}


# Strings made to hurt: what the rules are about, what columns cannot hold.
NASTY = [
    "\ud83d",
    "a\udc00b",
    "a\x00b",
    "\x00",
    "\x7f\x1b[2J",
    "a..b",
    "x.lock",
    "a~1",
    "refs/heads/a..b",
    "refs/heads/main",
    "main",
    "-rf",
    "../../etc/passwd",
    "$(touch /tmp/x)",
    "'; DROP TABLE pipelines; --",
    "\u202egnp.exe",
    "é",
    "😀",
    "",
    " ",
    "*",
    "never",
    "after_every",
    "healthy",
    "sha256:" + "a" * 64,
    "a" * 40,
    "[" * 5000,
    "{a: " * 2000,
    "a: &a [*a]",
    "x" * 256,
    "x" * 1001,
]
# Stands for a number of more digits than Python converts (json.dumps cannot write it).
BIG_NUMBER = "@@big-number@@"
text = st.one_of(
    st.sampled_from(NASTY),
    st.sampled_from(NASTY),
    st.text(max_size=12),
    st.text(st.characters(categories=["Cs", "Cc"]), min_size=1, max_size=3),
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**31, 2**63, BIG_NUMBER]),
    st.floats(),
    text,
)
values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)


def encode(value: Any, surrogates_raw: bool) -> bytes:
    """JSON text of ``value``: surrogates escaped (valid UTF-8 that decodes to a lone
    surrogate) or raw (bytes that are not UTF-8); NaN and Infinity as Python writes."""
    written = json.dumps(value, ensure_ascii=not surrogates_raw)
    written = written.replace(f'"{BIG_NUMBER}"', "1" + "0" * 5000)
    return written.encode("utf-8", "surrogatepass")


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths_of(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths_of(child, (*prefix, index))
    return found


numbers = st.one_of(
    st.integers(-3, 300),
    st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, BIG_NUMBER]),
    st.floats(),
)


def alike(value: Any) -> st.SearchStrategy[Any]:
    """Values of the same JSON type as ``value``: they get past type checks."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int | float):
        return numbers
    if isinstance(value, list):
        return st.lists(text, max_size=3)
    return text


@st.composite
def mutated(draw: st.DrawFn, template: Any) -> Any:
    """The template with one or two places changed: mostly a value of the same type
    (so the body reaches the use case), else any value, a deletion or a new key."""
    value = copy.deepcopy(template)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2]))):
        path = draw(st.sampled_from(paths_of(value)))
        if not path:
            value = draw(values)
            break
        parent = value
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["alike", "alike", "alike", "any", "delete", "add"]))
        if action == "alike":
            parent[path[-1]] = draw(alike(parent[path[-1]]))
        elif action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(text)] = draw(values)
        else:
            parent[path[-1]] = draw(values)
    return value


@st.composite
def bodies(draw: st.DrawFn, template: Any) -> bytes:
    kind = draw(st.sampled_from(["mutated"] * 5 + ["json", "bytes", "deep"]))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "deep":
        depth = draw(st.integers(20, 3000))
        inner = "[" * depth + "]" * depth
        if isinstance(template, dict) and template:
            key = draw(st.sampled_from(sorted(template)))
            wrapped = json.dumps({**template, key: "@@"}).replace('"@@"', inner)
            return wrapped.encode()
        return inner.encode()
    if isinstance(template, str) and kind == "mutated":  # text: fill in its blanks
        blanks = [html.escape(draw(text), quote=True) for _ in range(template.count("{}"))]
        filled = template.format(*blanks) if blanks else draw(text)
        return filled.encode("utf-8", "surrogatepass")
    if kind == "json" or not isinstance(template, dict | list):
        return encode(draw(values), draw(st.booleans()))
    return encode(draw(mutated(template)), draw(st.booleans()))


@dataclass
class World:
    client: TestClient
    state: AppState
    sha: str
    database: str  # sqlite or postgresql

    def fuzz(self, scale: int = 1) -> settings:
        return settings(FUZZ, max_examples=(EXPLORE or EXAMPLES[self.database]) * scale)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """SQLite, and PostgreSQL, which enforces what SQLite lets pass: the width of a
    column, NUL characters, 32-bit integers."""
    with empty_database(request, tmp_path_factory.mktemp("fuzz-db"), "fuzz") as url:
        yield url


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, database_url: str
) -> Iterator[World]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    repository = Repository(root / "repo")
    sha = repository.commit({".shipway.yml": SPEC})
    repository.push()
    settings_ = Settings(
        state_dir=root / "state",
        database_url=database_url,
        redis_url=redis_server.url,
        api_token=API_TOKEN,
        runner_token=RUNNER_TOKEN,
        secret_key_file=root / "secret.key",
        webhook_max_bytes=64 * 1024,
    )
    with TestClient(create_app(settings_)) as client:
        state: AppState = client.app.state.shipway  # type: ignore[attr-defined]
        state.engine.stop()  # nothing but the request under test changes the database
        project = {
            "name": "app",
            "clone_url": str(repository.bare),
            "gitlab_path": "team/app",
            "webhook_secret": SECRET,
        }
        assert client.post("/api/projects", json=project, headers=API).status_code == 201
        user = {"name": "fuzzer", "roles": ["developer:app"]}
        assert client.post("/api/users", json=user, headers=API).status_code == 201
        yield World(client, state, sha, database_url.split(":", 1)[0].split("+")[0])


def targets_for(world: World, path: str) -> dict[str, str]:
    """Fresh things for one route's examples to act on, made only when the route's
    path names them: a running script job, a running scan job, an environment and
    a release (whose compose file takes a while to make)."""
    store = world.state.store
    project = store.projects.by_name("app")
    pipeline = store.pipelines.create(
        NewPipeline(project.id, GitRef(RefKind.BRANCH, "main"), world.sha, "api", "fuzz")
    )
    environment = f"env{pipeline.id}"  # one release at a time per environment
    found = {
        "name": "app",
        "environment": environment,
        "secret": "API_KEY",
        "instance": f"app-{environment}-1",
        "pipeline_id": str(pipeline.id),
        "batch": "0",
        "user": "fuzzer",
    }
    if "{job_id" in path or "{pipeline_id" in path:
        store.pipelines.add_jobs(pipeline.id, plan_jobs(parse_spec(SPEC + "  s: {kind: scan}\n")))
        jobs = {job.name: job.id for job in store.jobs.of_pipeline(pipeline.id)}
        for job_id in jobs.values():
            store.jobs.change_status(job_id, Status.PENDING)
            start = f"/api/runner/jobs/{job_id}/start"
            answer = world.client.post(start, json={"runner": "fuzz"}, headers=RUNNER)
            assert answer.status_code == 200, answer.text
        found |= {"job_id": str(jobs["a"]), "scan_job_id": str(jobs["s"])}
    if "{environment}" in path or "{release_id" in path:
        base = f"/api/projects/app/environments/{environment}"
        put = world.client.put(f"{base}/config", json={"instances": 2}, headers=API)
        assert put.status_code == 201, put.text
    if "{release_id" in path:
        release = world.client.post(
            f"{base}/releases", json={"image": "x:1", "batches": 2}, headers=API
        )
        assert release.status_code == 201, release.text
        found["release_id"] = str(release.json()["id"])
    return found


def concrete(path: str, targets: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name == "job_id" and path.endswith("/reports/scan"):
            return targets["scan_job_id"]
        if name == "name" and path.startswith("/api/runner/releases/"):
            return targets["instance"]
        return targets[name]

    return re.sub(r"\{(\w+)(?::int)?\}", value, path) + QUERIES.get(path, "")


def send_and_check(
    world: World, method: str, url: str, body: bytes, headers: dict[str, str], webhook: bool
) -> None:
    before = row_counts(world.state.store)
    response = world.client.request(
        method, url, content=body, headers={**headers, "Content-Type": "application/json"}
    )
    event(f"{method} {url.split('?')[0]}: {response.status_code}")
    assert response.status_code < 500, (method, url, body[:500], response.text)
    if response.status_code < 400:
        return
    answer = response.json()
    assert isinstance(answer["error"], str), answer
    assert isinstance(answer.get("field", ""), str), answer
    if webhook:  # a refused delivery stores its audit line and nothing else
        before["audit_log"] += 1
    assert row_counts(world.state.store) == before, (method, url, body[:500], answer)


def test_every_route_with_a_body_has_a_template() -> None:
    assert set(body_routes()) <= set(TEMPLATES) | BODYLESS, set(body_routes()) - set(TEMPLATES)


@pytest.mark.parametrize(("method", "path"), body_routes())
def test_no_body_makes_a_route_fail_or_store_when_it_refuses(
    world: World, method: str, path: str
) -> None:
    template = TEMPLATES.get((method, path), {})
    headers = RUNNER if path.startswith("/api/runner/") else API
    url = concrete(path, targets_for(world, path))

    @world.fuzz()
    @given(bodies(template))
    def fuzz(body: bytes) -> None:
        send_and_check(world, method, url, body, headers, webhook=False)

    fuzz()


EVENTS = ["Push Hook", "Tag Push Hook", "Merge Request Hook", "System Hook", "Note Hook"]


def webhook_templates(sha: str) -> list[tuple[str, dict[str, Any]]]:
    """Valid deliveries, each with its event header."""
    project = {"path_with_namespace": "team/app"}
    merge_request = {
        "object_kind": "merge_request",
        "user": {"username": "root"},
        "project": project,
        "object_attributes": {
            "iid": 7,
            "source_branch": "feature/login",
            "target_branch": "main",
            "source_project_id": 15,
            "target_project_id": 15,
            "action": "open",
            "last_commit": {"id": sha, "message": "add login"},
        },
    }
    tag = {"object_kind": "tag_push", "ref": "refs/tags/v1.0"}
    return [
        ("Push Hook", push_payload(project=project, after=sha, checkout_sha=sha)),
        ("Tag Push Hook", push_payload(project=project, after=sha, checkout_sha=sha, **tag)),
        ("Merge Request Hook", merge_request),
    ]


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)


def test_no_delivery_makes_the_webhook_fail_or_store_when_it_refuses(world: World) -> None:
    @world.fuzz(scale=6)
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        kind, template = data.draw(st.sampled_from(webhook_templates(world.sha)))
        body = data.draw(bodies(template))
        headers = {
            "X-Gitlab-Token": data.draw(st.sampled_from([SECRET] * 8 + ["nope", ""])),
            "X-Gitlab-Event": data.draw(st.sampled_from([kind] * 8 + EVENTS) | header_text),
            "Idempotency-Key": data.draw(header_text),
        }
        send_and_check(world, "POST", "/webhooks/gitlab", body, headers, webhook=True)

    fuzz()
