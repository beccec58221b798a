"""Who may do what (U1), against the real app, Redis and SQLite: docs/permissions.md
is read and held to the code, and every API route is called with a token of each
role, expecting exactly what the page says."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from pipelines.model import GitRef, RefKind
from pipelines.plan import plan_jobs
from pipelines.roles import ROLE_PERMISSIONS, Permission, Role
from pipelines.spec import parse_spec
from pipelines.status import Status
from server.access import Access, GuardedRoute
from server.cli.main import _parser as cli_parser
from server.routes import routes
from server.state import AppState
from server.store import Store
from server.store.pipelines import NewPipeline
from server.store.tables import api_tokens, utcnow
from tests.support.app import ADMIN, API_TOKEN, RUNNER_TOKEN, cli_api, running_app
from tests.support.rows import row_counts

DOCS = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
BOOTSTRAP = API_TOKEN
# Answers that would run for long or stream when allowed: made to end at once (400).
QUERIES = {"/instances/{instance}/logs": "?tail=0", "/log/stream": "?offset=x"}
# One person per role, holding it for all projects.
ROLE_OF = {"adam": Role.ADMIN, "olga": Role.OPS, "tess": Role.TESTER, "dave": Role.DEVELOPER}


def documented_roles() -> dict[Permission, set[Role]]:
    """The first table of docs/permissions.md: permission -> roles with a yes."""
    lines = DOCS.read_text().split("## Roles and their permissions")[1].split("\n## ")[0]
    rows = [line.split("|")[1:-1] for line in lines.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in rows[0]]
    table = {}
    for row in rows[1:]:
        cells = [cell.strip() for cell in row]
        table[Permission(cells[0])] = {
            Role(role) for role, cell in zip(header[1:5], cells[1:5], strict=True) if cell == "yes"
        }
    return table


def documented_routes() -> dict[tuple[str, str], Permission]:
    """The second table: (method, path) -> permission."""
    section = DOCS.read_text().split("## Routes and the permission each needs")[1]
    found = {}
    for method, path, permission in re.findall(
        r"^\| (\w+) \| `([^`]+)` \| (\w+) \|$", section, re.M
    ):
        found[(method, path)] = Permission(permission)
    return found


def api_routes() -> dict[tuple[str, str], Permission | None]:
    return {
        (sorted((route.methods or set()) - {"HEAD"})[0], route.path): route.permission
        for route in routes
        if isinstance(route, GuardedRoute) and route.access is Access.API
    }


def test_the_roles_table_is_the_codes() -> None:
    assert documented_roles() == {
        permission: {role for role, given in ROLE_PERMISSIONS.items() if permission in given}
        for permission in Permission
    }


def test_the_routes_table_is_the_codes() -> None:
    assert documented_routes() == api_routes()


@dataclass
class World:
    client: TestClient
    store: Store
    tokens: dict[str, str]  # user -> token
    targets: dict[str, str]


def _token(client: TestClient, user: str) -> str:
    made = client.post("/api/tokens", json={"name": "t", "user": user}, headers=ADMIN)
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


@pytest.fixture
def world(tmp_path: Path, redis_url: str) -> Iterator[World]:
    with running_app(tmp_path, redis_url) as client:
        state: AppState = client.app.state.shipway  # type: ignore[attr-defined]
        state.engine.stop()  # nothing but the requests under test changes the database
        store = state.store
        for name in ("app", "other"):
            body = {"name": name, "clone_url": "/r.git", "webhook_secret": "s" * 16}
            assert client.post("/api/projects", json=body, headers=ADMIN).status_code == 201
        people = {name: [role.value] for name, role in ROLE_OF.items()} | {
            "elsewhere": ["developer:other"],  # a role in another project only
            "target": [],  # whose account the user routes act on
        }
        for name, roles in people.items():
            answer = client.post("/api/users", json={"name": name, "roles": roles}, headers=ADMIN)
            assert answer.status_code == 201, answer.text
        tokens = {name: _token(client, name) for name in people}
        project = store.projects.by_name("app")
        pipeline = store.pipelines.create(
            NewPipeline(project.id, GitRef(RefKind.BRANCH, "main"), "a" * 40, "api", "t")
        )
        store.pipelines.add_jobs(
            pipeline.id, plan_jobs(parse_spec("image: i\njobs:\n  a: {script: [x]}\n"))
        )
        (job,) = store.jobs.of_pipeline(pipeline.id)
        artifact = store.artifacts.attach(pipeline.id, job.id, "junit", "r.xml", "text/xml", b"")
        base = "/api/projects/app/environments/staging"
        put = client.put(f"{base}/config", json={"instances": 1}, headers=ADMIN)
        assert put.status_code == 201, put.text
        release = client.post(
            f"{base}/releases", json={"image": "x:1", "batches": 1}, headers=ADMIN
        )
        assert release.status_code == 201, release.text
        spare = client.post("/api/tokens", json={"name": "x", "user": "target"}, headers=ADMIN)
        targets = {
            "name": "app",
            "environment": "staging",
            "instance": "app-staging-1",
            "secret": "API_KEY",
            "pipeline_id": str(pipeline.id),
            "job_id": str(job.id),
            "release_id": str(release.json()["id"]),
            "artifact_id": str(artifact.id),
            "user": "target",
            "token_id": str(spare.json()["id"]),
        }
        yield World(client, store, tokens, targets)


def concrete(path: str, targets: dict[str, str]) -> str:
    url = re.sub(r"\{(\w+)(?::int)?\}", lambda match: targets[match[1]], path)
    return url + next((q for end, q in QUERIES.items() if path.endswith(end)), "")


def expected_allowed(user: str, permission: Permission, path: str) -> bool:
    others = "{user}" in path or "{token_id" in path  # the account of "target", not theirs
    if user == "elsewhere":  # developer in "other" only: reads and own account off-project
        scoped = "{" in path and not others
        return not scoped and not others and permission in (Permission.READ, Permission.ACCOUNT)
    role = ROLE_OF[user]
    if permission is Permission.ACCOUNT and others:
        return role is Role.ADMIN
    return role in documented_roles()[permission]


def unchanged(store: Store) -> dict[str, int]:
    return {table: n for table, n in row_counts(store).items() if table != "audit_log"}


@pytest.mark.parametrize("user", [*ROLE_OF, "elsewhere"])
def test_every_route_answers_each_role_as_documented(world: World, user: str) -> None:
    headers = {"Authorization": f"Bearer {world.tokens[user]}"}
    wrong = []
    for (method, path), permission in sorted(documented_routes().items()):
        url = concrete(path, world.targets)
        before, audited = unchanged(world.store), len(world.store.audit.recent(10_000))
        answer = world.client.request(method, url, content=b"{not json", headers=headers)
        allowed = expected_allowed(user, permission, path)
        if allowed and answer.status_code in (401, 403):
            wrong.append(f"{method} {url}: {answer.status_code}, expected to be let through")
        if not allowed:
            if answer.status_code != 403:
                wrong.append(f"{method} {url}: {answer.status_code} {answer.text}, expected 403")
                continue
            assert unchanged(world.store) == before, (method, url)
            refusals = len(world.store.audit.recent(10_000)) - audited
            assert refusals == (0 if method == "GET" else 1), (method, url)
    assert not wrong, "\n".join(wrong)


def test_without_a_valid_token_every_route_is_401_and_nothing_changes(world: World) -> None:
    expired, _ = world.store.users.create_token("dave", "old", utcnow() - timedelta(days=1))
    revoked, token_id = world.store.users.create_token("dave", "gone", None)
    world.store.users.revoke_token(token_id)
    disabled = world.tokens["target"]
    world.store.users.disable("target")
    before = row_counts(world.store)
    for method, path in documented_routes():
        url = concrete(path, world.targets)
        for token in (None, "nope", expired, revoked, disabled, RUNNER_TOKEN):
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
            answer = world.client.request(method, url, content=b"{}", headers=headers)
            assert answer.status_code == 401, (method, url, token, answer.text)
    assert row_counts(world.store) == before


def test_a_route_that_declares_no_permission_is_refused_even_to_an_admin(world: World) -> None:
    async def anything(request: Any) -> Any:
        raise AssertionError("reached")

    app = world.client.app
    app.router.routes.append(GuardedRoute("/api/undeclared", anything, "GET", Access.API))  # type: ignore[attr-defined]
    answer = world.client.get("/api/undeclared", headers=ADMIN)
    assert answer.status_code == 403
    assert "no permission is declared" in answer.json()["error"]


def test_tokens_are_shown_once_and_stored_as_digests(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['tess']}"}
    made = world.client.post("/api/tokens", json={"name": "laptop"}, headers=headers)
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert token.startswith("swp_")
    assert len(token) > 40
    listed = world.client.get("/api/tokens", headers=headers).json()
    assert [entry["name"] for entry in listed] == ["t", "laptop"]  # the tester's only
    assert all("token" not in entry for entry in listed)
    with world.store.engine.connect() as conn:
        stored = [row.digest for row in conn.execute(sa.select(api_tokens.c.digest))]
    assert token not in stored
    assert all(len(digest) == 64 for digest in stored)
    me = world.client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me == {"name": "tess", "roles": ["tester"]}
    revoked = world.client.delete(f"/api/tokens/{made.json()['id']}", headers=headers)
    assert revoked.status_code == 200
    assert revoked.json()["usable"] is False
    again = world.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401


def test_who_did_what_is_the_authenticated_user(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['dave']}"}
    job_id = world.targets["job_id"]
    canceled = world.client.post(f"/api/jobs/{job_id}/cancel", headers=headers)
    assert canceled.status_code == 200, canceled.text
    (entry,) = world.store.audit.recent(1, action="job.cancel")
    assert entry.actor == "dave"
    refused = world.client.post("/api/projects/app/secrets/K", headers=headers)
    assert refused.status_code in (403, 405)
    put = world.client.put(
        "/api/projects/app/secrets/K", json={"value": "v", "environment": "*"}, headers=headers
    )
    assert put.status_code == 403
    assert "dave may not secrets in project app" in put.json()["error"]
    (refusal,) = world.store.audit.recent(1)
    assert (refusal.actor, refusal.outcome) == ("dave", "forbidden")


def test_a_project_scoped_role_sees_only_its_projects_in_lists(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['elsewhere']}"}
    projects = world.client.get("/api/projects", headers=headers).json()
    assert [project["name"] for project in projects] == ["other"]
    assert world.client.get("/api/pipelines", headers=headers).json() == []
    asked = world.client.get("/api/pipelines?project=app", headers=headers)
    assert asked.status_code == 403
    everyone = world.client.get("/api/pipelines", headers=ADMIN).json()
    assert len(everyone) == 1


def test_the_cli_manages_users_roles_and_tokens(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    def shipway(*argv: str, token: str = BOOTSTRAP) -> str:
        api = cli_api(world.client, token)
        args = cli_parser().parse_args(list(argv))
        assert args.api(api, args) == 0
        return capsys.readouterr().out

    said = shipway("user", "add", "ann", "--email", "ann@example.com", "--role", "ops:app")
    assert said == "user ann added: roles ops:app\n"
    assert re.search(r"^ann +ann@example.com +ops:app +active$", shipway("user", "list"), re.M)
    token = shipway("token", "create", "--name", "laptop", "--user", "ann").strip()
    assert shipway("whoami", token=token) == "ann: ops:app\n"
    assert "laptop" in shipway("token", "list", token=token)
    shipway("user", "roles", "ann", "--grant", "tester", "--revoke", "ops:app")
    assert shipway("whoami", token=token) == "ann: tester\n"
    shipway("user", "disable", "ann")
    gone = world.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401


def test_the_audit_log_says_who_did_what_where_and_is_read_only(world: World) -> None:
    dave = {"Authorization": f"Bearer {world.tokens['dave']}"}
    olga = {"Authorization": f"Bearer {world.tokens['olga']}"}
    release_id = world.targets["release_id"]
    paused = world.client.post(f"/api/releases/{release_id}/pause", headers=olga)
    assert paused.status_code in (200, 409), paused.text
    refused = world.client.post(f"/api/releases/{release_id}/close", headers=dave)
    assert refused.status_code == 403
    canceled = world.client.post(f"/api/jobs/{world.targets['job_id']}/cancel", headers=dave)
    assert canceled.status_code == 200, canceled.text

    def audit(query: str, headers: dict[str, str] = olga) -> list[dict[str, Any]]:
        answer = world.client.get(f"/api/audit{query}", headers=headers)
        assert answer.status_code == 200, answer.text
        return list(answer.json())

    mine = audit("?user=dave")
    assert [(e["action"], e["outcome"]) for e in mine] == [
        ("job.cancel", "canceled"),
        (f"POST /api/releases/{release_id}/close", "forbidden"),
    ]
    assert [(e["project"], e["environment"]) for e in mine] == [("app", None), ("app", "staging")]
    staging = audit("?project=app&environment=staging&action=release")
    assert {e["action"] for e in staging} >= {"release.create"}
    assert all(e["environment"] == "staging" for e in staging)
    assert audit("?project=other") == []
    assert audit("?since=2999-01-01") == []
    assert len(audit("?until=2000-01-01T00:00:00Z")) == 0
    assert len(audit("?limit=1")) == 1
    newest = audit("?limit=2")
    assert audit(f"?before={newest[0]['id']}&limit=1") == [newest[1]]
    bad = world.client.get("/api/audit?since=yesterday", headers=olga)
    assert (bad.status_code, bad.json()["field"]) == (400, "since")
    assert world.client.get("/api/audit", headers=dave).status_code == 403
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert world.client.request(method, "/api/audit", headers=ADMIN).status_code == 405


def test_a_runners_own_token_speaks_only_for_that_runner(world: World) -> None:
    def token_of(runner: str) -> dict[str, str]:
        made = world.client.post("/api/runner-tokens", json={"runner": runner}, headers=ADMIN)
        assert made.status_code == 201, made.text
        return {"Authorization": f"Bearer {made.json()['token']}"}

    first, second = token_of("r1"), token_of("r2")
    job_id = int(world.targets["job_id"])
    world.store.jobs.change_status(job_id, Status.PENDING)
    start = f"/api/runner/jobs/{job_id}/start"
    assert world.client.post(start, json={"runner": "r1"}, headers=second).status_code == 403
    assert world.client.post(start, json={"runner": "r1"}, headers=first).status_code == 200
    log = f"/api/runner/jobs/{job_id}/log?offset=0"
    refused = world.client.post(log, content=b"not mine", headers=second)
    assert refused.status_code == 403
    assert "this token is runner r2's, and job" in refused.json()["error"]
    assert world.client.post(log, content=b"mine", headers=first).status_code == 200
    beat = {"runner": "r2", "queues": ["build"], "host": "h", "pid": 1}
    assert world.client.post("/api/runner/heartbeat", json=beat, headers=first).status_code == 403
    shared = {"Authorization": f"Bearer {RUNNER_TOKEN}"}
    assert world.client.post("/api/runner/heartbeat", json=beat, headers=shared).status_code == 200
    (listed,) = [
        t
        for t in world.client.get("/api/runner-tokens", headers=ADMIN).json()
        if t["runner"] == "r1"
    ]
    assert (
        world.client.delete(f"/api/runner-tokens/{listed['id']}", headers=ADMIN).status_code == 200
    )
    assert world.client.post(log, content=b"more", headers=first).status_code == 401
