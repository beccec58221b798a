"""Protected environments (U3) against the real app, Redis and SQLite: a release to
one awaits approvals, only the approving role gives them, not who asked for it,
expired approvals stop counting, a rejection ends it, and all of it survives a
restart of the server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from pipelines.release import ReleaseStatus
from server.cli.client import ApiClient
from server.cli.main import _parser as cli_parser
from server.store import Store
from server.store.tables import release_approvals
from tests.support.app import ADMIN, cli_api, running_app, store_of

PEOPLE = {
    "olga": ["ops"],
    "oscar": ["ops"],
    "paula": ["ops:app"],
    "dave": ["developer"],
    "tess": ["tester:app"],
}


class World:
    def __init__(self, tmp_path: Path, redis_url: str) -> None:
        self.state_dir = tmp_path
        self.redis_url = redis_url
        self.tokens: dict[str, dict[str, str]] = {}

    def server(self) -> AbstractContextManager[TestClient]:
        """The app, started (and later stopped) on the same database."""
        return running_app(self.state_dir, self.redis_url)

    def store(self, client: TestClient) -> Store:
        return store_of(client)

    def cli(self, client: TestClient, who: str | None) -> ApiClient:
        return cli_api(client, (self.tokens[who] if who else ADMIN)["Authorization"].split()[1])


@pytest.fixture
def world(tmp_path: Path, redis_url: str) -> Iterator[tuple[World, TestClient]]:
    world = World(tmp_path, redis_url)
    with world.server() as client:
        body = {"name": "app", "clone_url": "/r.git", "webhook_secret": "s" * 16}
        assert client.post("/api/projects", json=body, headers=ADMIN).status_code == 201
        for name, roles in PEOPLE.items():
            made = client.post("/api/users", json={"name": name, "roles": roles}, headers=ADMIN)
            assert made.status_code == 201, made.text
            token = client.post("/api/tokens", json={"name": "t", "user": name}, headers=ADMIN)
            world.tokens[name] = {"Authorization": f"Bearer {token.json()['token']}"}
        for environment in ("staging", "production"):
            config = f"/api/projects/app/environments/{environment}/config"
            assert client.put(config, json={"instances": 1}, headers=ADMIN).status_code == 201
        yield world, client


def order(world: World, client: TestClient, environment: str, by: str = "olga") -> int:
    url = f"/api/projects/app/environments/{environment}/releases"
    made = client.post(url, json={"image": "x:1", "batches": 1}, headers=world.tokens[by])
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def shown(world: World, client: TestClient, release_id: int) -> dict[str, Any]:
    answer = client.get(f"/api/releases/{release_id}", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def decide(
    world: World, client: TestClient, release_id: int, who: str, verb: str = "approve", **body: str
) -> Any:
    return client.post(f"/api/releases/{release_id}/{verb}", json=body, headers=world.tokens[who])


def test_production_awaits_an_ops_approval_not_its_orderers(
    world: tuple[World, TestClient],
) -> None:
    w, client = world
    staging = order(w, client, "staging")
    assert shown(w, client, staging)["status"] == "running"  # not protected
    release_id = order(w, client, "production")
    release = shown(w, client, release_id)
    assert release["status"] == "awaiting_approval"
    assert release["approval"] == {
        "needed": 1,
        "approved_by": [],
        "may_approve": ["oscar", "paula"],
    }
    assert release["waiting"] == "waiting for 1 more approval by ops (oscar, paula)"

    refused = decide(w, client, release_id, "dave")
    assert refused.status_code == 403  # developers hold no approve permission
    own = decide(w, client, release_id, "olga")
    assert own.status_code == 403
    assert "olga asked for this release" in own.json()["error"]
    actors = [(e.actor, e.outcome) for e in w.store(client).audit.recent(2)]
    assert actors == [("olga", "forbidden"), ("dave", "forbidden")]
    assert shown(w, client, release_id)["status"] == "awaiting_approval"

    approved = decide(w, client, release_id, "oscar", comment="tested on staging")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "running"
    again = decide(w, client, release_id, "paula")
    assert again.status_code == 409  # it awaits nothing any more


def test_two_approvals_within_their_validity_and_a_restart_between(
    world: tuple[World, TestClient], tmp_path: Path
) -> None:
    w, client = world
    protection = {"approvals": 2, "valid_minutes": 30}
    url = "/api/projects/app/environments/staging/protection"
    assert client.put(url, json=protection, headers=ADMIN).status_code == 200
    release_id = order(w, client, "staging")
    first = decide(w, client, release_id, "oscar")
    assert first.json()["status"] == "awaiting_approval"
    assert first.json()["approval"]["needed"] == 1
    store = w.store(client)
    with store.engine.begin() as conn:  # oscar's approval is 31 minutes old now
        (given,) = conn.execute(sa.select(release_approvals.c.at)).scalars()
        conn.execute(release_approvals.update().values(at=given - timedelta(minutes=31)))
    paula = decide(w, client, release_id, "paula")
    assert paula.json()["approval"]["needed"] == 1  # oscar's no longer counts
    assert paula.json()["approval"]["approved_by"] == ["paula"]

    client.__exit__(None, None, None)  # the server stops; the approvals are stored
    with w.server() as restarted:
        release = shown(w, restarted, release_id)
        assert release["status"] == "awaiting_approval"
        assert release["approval"]["approved_by"] == ["paula"]
        assert decide(w, restarted, release_id, "paula").json()["approval"]["needed"] == 1
        done = decide(w, restarted, release_id, "oscar")
        assert done.json()["status"] == "running"


def test_a_rejection_ends_the_release_with_its_reason(world: tuple[World, TestClient]) -> None:
    w, client = world
    release_id = order(w, client, "production")
    assert decide(w, client, release_id, "oscar", "reject").status_code == 400  # says why
    rejected = decide(w, client, release_id, "oscar", "reject", comment="the change log is wrong")
    assert rejected.status_code == 200, rejected.text
    release = shown(w, client, release_id)
    assert (release["status"], release["closed"]) == ("failed", True)
    assert release["reason"] == "rejected by oscar: the change log is wrong"
    assert client.post(f"/api/releases/{release_id}/retry", headers=ADMIN).status_code == 409
    assert order(w, client, "production") > release_id  # the environment is free again


def test_protection_settings_and_an_unprotected_production(world: tuple[World, TestClient]) -> None:
    w, client = world
    url = "/api/projects/app/environments/production/protection"
    assert client.get(url, headers=w.tokens["dave"]).json() == {
        "protected": True,
        "approvals": 1,
        "approver_role": "ops",
        "self_approval": False,
        "valid_minutes": None,
        "verdict_from": None,
    }
    assert client.put(url, json={"protected": False}, headers=w.tokens["olga"]).status_code == 403
    bad = client.put(url, json={"approver_role": "tester"}, headers=ADMIN)
    assert (bad.status_code, bad.json()["field"]) == (400, "approver_role")
    assert client.put(url, json={"protected": False}, headers=ADMIN).status_code == 200
    release_id = order(w, client, "production")
    assert shown(w, client, release_id)["status"] == "running"
    self_ok = {"self_approval": True}
    assert client.put(url, json=self_ok, headers=ADMIN).json()["self_approval"] is True


def test_the_cli_protects_approves_and_rejects(
    world: tuple[World, TestClient], capsys: pytest.CaptureFixture[str]
) -> None:
    w, client = world

    def shipway(*argv: str, who: str | None = None) -> str:
        args = cli_parser().parse_args(list(argv))
        assert args.api(w.cli(client, who), args) == 0
        return capsys.readouterr().out

    said = shipway("protection", "set", "app", "staging", "--approvals", "2", "--valid-for", "60")
    assert said == (
        "staging: protected, 2 approval(s) by ops, valid 60 min; "
        "who asked for a release may not approve it\n"
    )
    release_id = order(w, client, "staging")
    assert shipway("release", "approve", str(release_id), "-m", "ok", who="oscar") == (
        f"release {release_id}: awaiting_approval, 1 more approval(s) needed\n"
    )
    assert shipway("release", "reject", str(release_id), "-m", "no", who="paula") == (
        f"release {release_id}: failed\n"
    )
    assert shipway("protection", "set", "app", "production", "--unprotected") == (
        "production: not protected\n"
    )


def test_a_testers_verdict_holds_production_back_until_it_passes(
    world: tuple[World, TestClient], capsys: pytest.CaptureFixture[str]
) -> None:
    w, client = world
    url = "/api/projects/app/environments/production/protection"
    assert client.put(url, json={"verdict_from": "staging"}, headers=ADMIN).status_code == 200
    verdicts = "/api/projects/app/environments/staging/verdicts"
    verdict = {"passed": True, "comment": "checkout works"}
    none_yet = client.post(verdicts, json=verdict, headers=w.tokens["tess"])
    assert none_yet.status_code == 409  # staging released nothing yet
    staging = order(w, client, "staging")
    w.store(client).releases.update(staging, status=ReleaseStatus.SUCCESS)
    production = "/api/projects/app/environments/production/releases"

    def to_production() -> Any:
        body = {"image": "x:1", "batches": 1}
        return client.post(production, json=body, headers=w.tokens["olga"])

    assert to_production().json()["error"] == (
        f"release {staging} of staging waits for its testers' verdict"
    )
    assert client.post(verdicts, json=verdict, headers=w.tokens["dave"]).status_code == 403
    failed = {"passed": False, "comment": "the cart is empty after login"}
    assert client.post(verdicts, json=failed, headers=w.tokens["tess"]).status_code == 201
    refused = to_production()
    assert refused.status_code == 409
    assert refused.json()["error"] == (
        f"tess failed release {staging} of staging: the cart is empty after login"
    )
    given = client.post(verdicts, json=verdict, headers=w.tokens["tess"])
    assert given.json() == given.json() | {"release_id": staging, "user": "tess", "passed": True}
    listed = client.get(verdicts, headers=w.tokens["dave"]).json()
    assert [v["passed"] for v in listed["verdicts"]] == [False, True]
    made = to_production()
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "awaiting_approval"
    other = {"image": "y:2", "batches": 1}
    never = client.post(production, json=other, headers=w.tokens["olga"])
    assert (
        never.json()["error"] == "y:2 was never released to staging: its testers must pass it first"
    )


def test_the_cli_gives_a_verdict(
    world: tuple[World, TestClient], capsys: pytest.CaptureFixture[str]
) -> None:
    w, client = world
    staging = order(w, client, "staging")
    w.store(client).releases.update(staging, status=ReleaseStatus.SUCCESS)
    args = cli_parser().parse_args(["verdict", "app", "--fail", "-m", "login loops"])
    assert args.api(w.cli(client, "tess"), args) == 0
    assert capsys.readouterr().out == f"release {staging} (x:1) failed by tess\n"
