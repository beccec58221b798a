"""The REST API and the runners' API against the real app, Redis and SQLite."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import server.endpoints.pipelines
from pipelines.errors import Conflict
from pipelines.model import GitRef, RefKind
from pipelines.plan import plan_jobs
from pipelines.spec import parse_spec
from pipelines.status import Status
from server.app import create_app
from server.cli.client import ApiError
from server.cli.main import _parser as cli_parser
from server.settings import Settings, SettingsError
from server.state import AppState
from server.store import Store
from server.store.pipelines import NewPipeline
from tests.support.app import cli_api
from tests.support.rows import row_counts
from tests.support.services import wait_until

API = {"Authorization": "Bearer api-token-0123456789"}
RUNNER = {"Authorization": "Bearer runner-token-0123456789"}


@pytest.fixture
def client(tmp_path: Path, redis_url: str) -> Iterator[TestClient]:
    settings = Settings.from_env(
        {
            "SHIPWAY_STATE_DIR": str(tmp_path),
            "SHIPWAY_REDIS_URL": redis_url,
            "SHIPWAY_API_TOKEN": "api-token-0123456789",
            "SHIPWAY_RUNNER_TOKEN": "runner-token-0123456789",
        }
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def pending_job(client: TestClient) -> int:
    state: AppState = client.app.state.shipway  # type: ignore[attr-defined]
    store = state.store
    project = store.projects.create("app", "/nowhere.git", "g/app", "s" * 20, ("*",), ("*",))
    pipeline = store.pipelines.create(
        NewPipeline(project.id, GitRef(RefKind.BRANCH, "main"), "a" * 40, "api", "t")
    )
    store.pipelines.add_jobs(
        pipeline.id, plan_jobs(parse_spec("image: i\njobs:\n  a: {script: [x]}\n"))
    )
    job = store.jobs.of_pipeline(pipeline.id)[0]
    make_pending(store, job.id)
    return job.id


def make_pending(store: Store, job_id: int) -> None:
    """The app's engine runs meanwhile and may have made it pending first."""
    with contextlib.suppress(Conflict):
        store.jobs.change_status(job_id, Status.PENDING)
    assert store.jobs.get(job_id).status is Status.PENDING


def test_settings_name_what_is_missing() -> None:
    with pytest.raises(SettingsError, match="SHIPWAY_API_TOKEN is not set"):
        Settings.from_env({"SHIPWAY_RUNNER_TOKEN": "x"})
    with pytest.raises(SettingsError, match="SHIPWAY_WEBHOOK_MAX_BYTES must be a whole number"):
        Settings.from_env(
            {
                "SHIPWAY_API_TOKEN": "a",
                "SHIPWAY_RUNNER_TOKEN": "b",
                "SHIPWAY_WEBHOOK_MAX_BYTES": "big",
            }
        )


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {
        "status": "ok",
        "checks": {"database": True, "redis": True},
    }


@pytest.mark.parametrize("path", ["/api/projects", "/api/pipelines", "/api/jobs/1"])
def test_the_api_needs_its_token(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    wrong = client.get(path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json() == {
        "error": "API token is wrong, expired or revoked (or its user disabled)"
    }
    assert client.get(path, headers=RUNNER).status_code == 401


def test_project_input_is_checked_field_by_field(client: TestClient) -> None:
    short = client.post(
        "/api/projects",
        headers=API,
        json={"name": "a", "clone_url": "/r.git", "webhook_secret": "short"},
    )
    assert short.status_code == 400
    assert short.json()["field"] == "webhook_secret"
    option = client.post(
        "/api/projects",
        headers=API,
        json={"name": "a", "clone_url": "--upload-pack=x", "webhook_secret": "s" * 16},
    )
    assert option.status_code == 400
    assert "clone_url" in option.json()["error"]
    extra = client.post(
        "/api/projects",
        headers=API,
        json={"name": "a", "clone_url": "/r", "webhook_secret": "s" * 16, "colour": 1},
    )
    assert (extra.status_code, extra.json()["field"]) == (400, "colour")
    body = {"name": "a", "clone_url": "/r", "webhook_secret": "s" * 16}
    assert client.post("/api/projects", headers=API, json=body).status_code == 201
    assert client.post("/api/projects", headers=API, json=body).status_code == 409
    assert client.get("/api/projects/absent", headers=API).status_code == 404


def test_trigger_input(client: TestClient) -> None:
    body = {"name": "x", "clone_url": "/r.git", "webhook_secret": "s" * 16}
    assert client.post("/api/projects", headers=API, json=body).status_code == 201
    both = client.post("/api/projects/x/pipelines", headers=API, json={"branch": "a", "tag": "b"})
    assert (both.status_code, both.json()["error"]) == (
        400,
        "body: give exactly one of branch, tag or commit",
    )
    # Who may act on a project is checked before its body is read: absent is 404 first.
    absent = client.post("/api/projects/y/pipelines", headers=API, json={"branch": "a", "tag": "b"})
    assert absent.status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/api/jobs/99999999999999999999", "/api/releases/2147483648", "/api/pipelines/" + "9" * 30],
)
def test_an_id_beyond_any_column_is_not_found(client: TestClient, path: str) -> None:
    response = client.get(path, headers=API)
    assert response.status_code == 404, response.text


def test_jobs_of_a_pipeline(client: TestClient) -> None:
    job_id = pending_job(client)
    pipeline_id = client.get(f"/api/jobs/{job_id}", headers=API).json()["pipeline_id"]
    jobs = client.get(f"/api/pipelines/{pipeline_id}/jobs", headers=API).json()
    assert [(job["id"], job["name"], job["status"]) for job in jobs] == [(job_id, "a", "pending")]
    assert client.get("/api/pipelines/999/jobs", headers=API).status_code == 404


def test_list_filters_are_checked(client: TestClient) -> None:
    assert client.get("/api/pipelines?limit=0", headers=API).status_code == 400
    assert client.get("/api/pipelines?status=bogus", headers=API).json()["field"] == "status"
    assert client.get("/api/pipelines?project=ghost", headers=API).status_code == 404


def test_the_runner_protocol(client: TestClient) -> None:
    job_id = pending_job(client)
    base = f"/api/runner/jobs/{job_id}"
    assert client.post(f"{base}/start", json={"runner": "r1"}, headers=API).status_code == 401
    assert client.post(f"{base}/log?offset=0", content=b"early", headers=RUNNER).status_code == 409
    started = client.post(f"{base}/start", json={"runner": "r1"}, headers=RUNNER)
    assert started.json()["job"]["status"] == "running"
    assert started.json()["secrets"] == {}
    assert client.post(f"{base}/start", json={"runner": "r2"}, headers=RUNNER).status_code == 409
    assert client.post(f"{base}/log?offset=0", content=b"line 1\n", headers=RUNNER).json() == {
        "length": 7
    }
    assert client.post(f"{base}/log?offset=0", content=b"line 1\n", headers=RUNNER).json() == {
        "length": 7
    }
    assert client.post(f"{base}/log?offset=99", content=b"gap", headers=RUNNER).status_code == 409
    assert client.post(f"{base}/log?offset=x", content=b"", headers=RUNNER).status_code == 400
    assert client.post(f"{base}/log?offset=7", content=b"\xff", headers=RUNNER).status_code == 400
    finish = {"succeeded": False, "exit_code": 2, "failure_reason": None}
    failed = client.post(f"{base}/finish", json=finish, headers=RUNNER).json()
    assert (failed["status"], failed["failure_kind"]) == ("failed", "script_failure")
    assert client.post(f"{base}/finish", json=finish, headers=RUNNER).status_code == 200  # a resend
    assert client.post(f"{base}/log?offset=7", content=b"late", headers=RUNNER).status_code == 409
    assert client.get(f"/api/jobs/{job_id}/log", headers=API).text == "line 1\n"


def test_the_live_log_resumes_and_ends(client: TestClient) -> None:
    job_id = pending_job(client)
    base = f"/api/runner/jobs/{job_id}"
    client.post(f"{base}/start", json={"runner": "r1"}, headers=RUNNER)
    client.post(f"{base}/log?offset=0", content=b"one\ntwo\n", headers=RUNNER)
    client.post(f"{base}/finish", json={"succeeded": True, "exit_code": 0}, headers=RUNNER)
    events = client.get(
        f"/api/jobs/{job_id}/log/stream", headers={**API, "Last-Event-ID": "4"}
    ).text
    assert events == (
        'id: 8\nevent: log\ndata: "two\\n"\n\n'
        'event: end\ndata: {"status": "success", "exit_code": 0}\n\n'
    )
    assert client.get("/api/jobs/999/log/stream", headers=API).status_code == 404


def test_a_log_is_read_whole_or_by_range_across_its_chunks(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pieces of 4 characters here (a MB in a server): a range that starts and ends
    inside chunks is cut exactly, the whole log comes in several pieces, and the
    live stream sends every piece before the end."""
    monkeypatch.setattr(server.endpoints.pipelines, "LOG_PIECE", 4)
    job_id = pending_job(client)
    base = f"/api/runner/jobs/{job_id}"
    client.post(f"{base}/start", json={"runner": "r1"}, headers=RUNNER)
    text = ""
    for line in ("alpha\n", "béta\n", "gamma ✓\n"):
        client.post(f"{base}/log?offset={len(text)}", content=line.encode(), headers=RUNNER)
        text += line

    def read(query: str) -> tuple[str, str]:
        answer = client.get(f"/api/jobs/{job_id}/log{query}", headers=API)
        assert answer.status_code == 200, answer.text
        return answer.text, answer.headers["X-Log-Offset"]

    assert read("") == (text, str(len(text)))
    assert read("?offset=3&limit=7") == (text[3:10], "10")
    assert read("?offset=6&limit=5") == ("béta\n", "11")
    assert read(f"?offset={len(text) - 2}") == (text[-2:], str(len(text)))
    assert read("?offset=99") == ("", str(len(text)))
    assert read("?limit=0") == ("", "0")
    assert client.get(f"/api/jobs/{job_id}/log?limit=x", headers=API).status_code == 400
    assert client.get("/api/jobs/999/log", headers=API).status_code == 404

    client.post(f"{base}/finish", json={"succeeded": True, "exit_code": 0}, headers=RUNNER)
    events = client.get(f"/api/jobs/{job_id}/log/stream", headers=API).text
    sent = [json.loads(line[6:]) for line in events.splitlines() if line.startswith('data: "')]
    assert "".join(sent) == text
    assert len(sent) == -(-len(text) // 4)
    assert events.endswith('event: end\ndata: {"status": "success", "exit_code": 0}\n\n')


def test_lint_answers_like_the_cli(client: TestClient, tmp_path: Path) -> None:
    bad = "image: x\njobs:\n  unit:\n    script: [a]\n    imgae: y\n"
    answer = client.post("/api/lint", json={"content": bad}, headers=API).json()
    assert answer == {
        "valid": False,
        "errors": [{"line": 5, "key": "jobs.unit.imgae", "message": "unknown key"}],
        "jobs": [],
    }
    path = tmp_path / ".shipway.yml"
    path.write_text(bad)
    cli = subprocess.run(
        [sys.executable, "-m", "server.cli.main", "--json", "lint", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 1
    assert json.loads(cli.stdout) == answer
    human = subprocess.run(
        [sys.executable, "-m", "server.cli.main", "lint", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert human.stdout == f"{path}:5: jobs.unit.imgae: unknown key\n"
    good = client.post(
        "/api/lint", json={"content": "image: x\njobs:\n  unit: {script: [a]}\n"}, headers=API
    )
    assert good.json() == {
        "valid": True,
        "errors": [],
        "jobs": [
            {
                "name": "unit",
                "stage": "test",
                "image": "x",
                "queue": "build",
                "needs": None,
                "when": "on_success",
                "environment": None,
            }
        ],
    }
    assert client.post("/api/lint", json={}, headers=API).json() == {
        "error": "content: is missing",
        "field": "content",
    }
    missing = subprocess.run(
        [sys.executable, "-m", "server.cli.main", "lint", str(tmp_path / "absent.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr


def test_secrets_are_checked_and_never_shown(client: TestClient) -> None:
    pending_job(client)  # registers the project "app"
    base = "/api/projects/app/secrets"
    put = client.put(f"{base}/TOKEN", json={"value": "short"}, headers=API)
    assert (put.status_code, put.json()["field"]) == (400, "value")
    bad_name = client.put(f"{base}/BAD-NAME", json={"value": "x" * 12}, headers=API)
    assert (bad_name.status_code, bad_name.json()["field"]) == (400, "name")
    bad_env = client.put(
        f"{base}/TOKEN", json={"value": "x" * 12, "environment": "a b"}, headers=API
    )
    assert (bad_env.status_code, bad_env.json()["field"]) == (400, "environment")
    unknown = client.put("/api/projects/nope/secrets/T", json={"value": "x" * 12}, headers=API)
    assert unknown.status_code == 404
    extra = client.put(f"{base}/TOKEN", json={"value": "x" * 12, "colour": "red"}, headers=API)
    assert extra.status_code == 400
    assert client.put(f"{base}/TOKEN", json={"value": "x" * 12}, headers=RUNNER).status_code == 401
    first = client.put(f"{base}/TOKEN", json={"value": "value-one-1234"}, headers=API)
    assert (first.status_code, first.json()["created"]) == (201, True)
    again = client.put(f"{base}/TOKEN", json={"value": "value-two-1234"}, headers=API)
    assert (again.status_code, again.json()["created"]) == (200, False)
    listed = client.get(base, headers=API)
    assert [(s["name"], s["environment"]) for s in listed.json()] == [("TOKEN", "*")]
    assert "value-two" not in listed.text
    assert client.delete(f"{base}/TOKEN", headers=API).status_code == 204
    assert client.delete(f"{base}/TOKEN", headers=API).status_code == 404


def test_job_actions_refuse_what_the_state_forbids(client: TestClient) -> None:
    job_id = pending_job(client)
    assert client.post("/api/jobs/999/cancel", headers=API).status_code == 404
    play = client.post(f"/api/jobs/{job_id}/play", headers=API)
    assert play.status_code == 409
    assert "only a manual job that waits is played" in play.json()["error"]
    retry = client.post(f"/api/jobs/{job_id}/retry", headers=API)
    assert retry.status_code == 409
    canceled = client.post(f"/api/jobs/{job_id}/cancel", headers=API)
    assert (canceled.status_code, canceled.json()["status"]) == (200, "canceled")
    assert canceled.json()["failure_reason"] == "canceled by admin"
    twice = client.post(f"/api/jobs/{job_id}/cancel", headers=API)
    assert twice.status_code == 409
    runner_start = client.post(
        f"/api/runner/jobs/{job_id}/start", json={"runner": "r1"}, headers=RUNNER
    )
    assert runner_start.status_code == 409  # a runner that took it anyway must not run it
    retried = client.post(f"/api/jobs/{job_id}/retry", headers=API)
    assert (retried.status_code, retried.json()["attempt"]) == (201, 2)
    pipeline_id = retried.json()["pipeline_id"]
    old = client.get(f"/api/jobs/{job_id}", headers=API).json()
    assert old["retried"]
    nothing = client.post(f"/api/pipelines/{pipeline_id}/retry", headers=API)
    assert nothing.status_code == 409
    whole = client.post(f"/api/pipelines/{pipeline_id}/cancel", headers=API)
    assert whole.status_code == 200
    assert whole.json()["status"] == "canceled"


def test_project_settings_change_field_by_field(client: TestClient) -> None:
    pending_job(client)
    changed = client.patch("/api/projects/app", json={"supersede": True}, headers=API)
    assert (changed.status_code, changed.json()["supersede"]) == (200, True)
    assert changed.json()["branches"] == ["*"]
    bad = client.patch("/api/projects/app", json={"supersede": "maybe"}, headers=API)
    assert (bad.status_code, bad.json()["field"]) == (400, "supersede")
    assert client.patch("/api/projects/app", json={"x": 1}, headers=API).status_code == 400
    assert client.patch("/api/projects/nope", json={}, headers=API).status_code == 404
    assert client.get("/api/projects/app/environments", headers=API).json() == []


def test_junit_reports_are_checked_and_fail_a_green_script(client: TestClient) -> None:
    job_id = pending_job(client)
    base = f"/api/runner/jobs/{job_id}"
    early = client.post(f"{base}/reports/junit?name=r.xml", content=b"<testsuite/>", headers=RUNNER)
    assert early.status_code == 409  # not running yet
    client.post(f"{base}/start", json={"runner": "r1"}, headers=RUNNER)
    bad = client.post(f"{base}/reports/junit?name=r.xml", content=b"<html/>", headers=RUNNER)
    assert (bad.status_code, bad.json()["field"]) == (400, "report")
    assert "the root element is <html>" in bad.json()["error"]
    nameless = client.post(f"{base}/reports/junit", content=b"<testsuite/>", headers=RUNNER)
    assert nameless.status_code == 400
    report = b'<testsuite><testcase name="a"/><testcase name="b"><error/></testcase></testsuite>'
    good = client.post(f"{base}/reports/junit?name=r.xml", content=report, headers=RUNNER)
    assert good.status_code == 201
    assert good.json() == {"total": 2, "passed": 1, "failed": 0, "errors": 1, "skipped": 0}
    finish = {"succeeded": True, "exit_code": 0}
    done = client.post(f"{base}/finish", json=finish, headers=RUNNER).json()
    assert (done["status"], done["failure_kind"]) == ("failed", "test_failure")
    assert done["failure_reason"] == "1 of 2 tests failed: b"
    assert client.post(f"{base}/finish", json=finish, headers=RUNNER).status_code == 200


def test_scan_reports_are_checked(client: TestClient) -> None:
    job_id = pending_job(client)  # a script job
    base = f"/api/runner/jobs/{job_id}"
    client.post(f"{base}/start", json={"runner": "r1"}, headers=RUNNER)
    wrong_kind = client.post(f"{base}/reports/scan?analyser=ruff", content=b"[]", headers=RUNNER)
    assert wrong_kind.status_code == 409
    assert "it does not scan" in wrong_kind.json()["error"]
    assert client.post(f"{base}/gate", headers=RUNNER).status_code == 409

    state: AppState = client.app.state.shipway  # type: ignore[attr-defined]
    store = state.store
    project = store.projects.by_name("app")
    pipeline = store.pipelines.create(
        NewPipeline(project.id, GitRef(RefKind.BRANCH, "main"), "b" * 40, "api", "t")
    )
    store.pipelines.add_jobs(pipeline.id, plan_jobs(parse_spec("jobs:\n  s: {kind: scan}\n")))
    scan = store.jobs.of_pipeline(pipeline.id)[0]
    make_pending(store, scan.id)
    scan_base = f"/api/runner/jobs/{scan.id}"
    client.post(f"{scan_base}/start", json={"runner": "r1"}, headers=RUNNER)
    unknown = client.post(
        f"{scan_base}/reports/scan?analyser=pylint", content=b"[]", headers=RUNNER
    )
    assert (unknown.status_code, unknown.json()["field"]) == (400, "analyser")
    garbled = client.post(f"{scan_base}/reports/scan?analyser=ruff", content=b"{", headers=RUNNER)
    assert (garbled.status_code, garbled.json()["field"]) == (400, "report")
    empty = client.post(f"{scan_base}/reports/scan?analyser=ruff", content=b"[]", headers=RUNNER)
    assert (empty.status_code, empty.json()) == (201, {"findings": 0})
    verdict = client.post(f"{scan_base}/gate", headers=RUNNER).json()
    assert (verdict["passed"], verdict["counts"]["total"]) == (True, 0)


def test_deployment_configuration_and_compose(client: TestClient) -> None:
    pending_job(client)  # registers "app"
    base = "/api/projects/app/environments/staging"
    config = {"instances": 2, "ports": [{"container": 8000}], "resources": {"memory": "64m"}}
    first = client.put(f"{base}/config", json=config, headers=API)
    assert (first.status_code, first.json()["version"]) == (201, 1)
    same = client.put(f"{base}/config", json=config, headers=API)
    assert (same.status_code, same.json()["version"]) == (200, 1)
    changed = client.put(f"{base}/config", json={**config, "instances": 3}, headers=API)
    assert changed.json()["version"] == 2
    assert client.get(f"{base}/config?version=1", headers=API).json()["config"]["instances"] == 2
    bad = client.put(f"{base}/config", json={"instances": "many"}, headers=API)
    assert (bad.status_code, bad.json()["field"]) == (400, "instances")
    star = client.put("/api/projects/app/environments/*/config", json=config, headers=API)
    assert (star.status_code, star.json()["field"]) == (400, "environment")
    assert client.put(f"{base}/config", content=b"[1]", headers=API).status_code == 400
    assert client.get("/api/projects/app/environments/prod/config", headers=API).status_code == 404
    assert client.get(f"{base}/compose", headers=API).json()["field"] == "image"
    composed = client.get(f"{base}/compose?image=shipway/busybox:1", headers=API).json()
    assert composed["version"] == 2
    assert composed["compose"].count("container_name:") == 3


def test_release_orders_are_steered_and_checked(client: TestClient) -> None:
    pending_job(client)  # registers "app"
    base = "/api/projects/app/environments/staging"
    client.put(f"{base}/config", json={"instances": 3}, headers=API)
    both = client.post(
        f"{base}/releases",
        json={"image": "x:1", "batches": 2, "grouping": "one_by_one"},
        headers=API,
    )
    assert (both.status_code, both.json()["field"]) == (400, "batches")
    created = client.post(
        f"{base}/releases",
        json={"image": "x:1", "grouping": "two_groups", "beta": True},
        headers=API,
    )
    assert created.status_code == 201, created.text
    release = created.json()
    assert release["batches"] == [["app-staging-1"], ["app-staging-2"], ["app-staging-3"]]
    rid = release["id"]
    mode = client.post(f"/api/releases/{rid}/mode", json={"pause_mode": "after_every"}, headers=API)
    assert mode.json()["pause_mode"] == "after_every"
    assert client.post(f"/api/releases/{rid}/pause", headers=API).json()["status"] == "paused"
    assert client.post(f"/api/releases/{rid}/pause", headers=API).status_code == 409
    assert client.post(f"/api/releases/{rid}/resume", headers=API).json()["status"] == "running"
    closed = client.post(f"/api/releases/{rid}/close", headers=API).json()
    assert (closed["status"], closed["closed"], closed["reason"]) == (
        "failed",
        True,
        "closed by admin",
    )
    refused = client.post(f"/api/releases/{rid}/retry", headers=API)
    assert (refused.status_code, "was closed" in refused.json()["error"]) == (409, True)
    assert client.post(f"/api/releases/{rid}/close", headers=API).status_code == 409
    history = client.get(f"{base}/releases", headers=API).json()
    assert history["current_version"] is None
    assert client.get("/api/releases/999", headers=API).status_code == 404
    no_config = client.post(
        "/api/projects/app/environments/prod/releases",
        json={"image": "x:1", "batches": 1},
        headers=API,
    )
    assert no_config.status_code == 404


def test_a_runner_claims_a_batch_only_while_it_is_wanted(client: TestClient) -> None:
    pending_job(client)
    base = "/api/projects/app/environments/staging"
    client.put(f"{base}/config", json={"instances": 2}, headers=API)
    rid = client.post(f"{base}/releases", json={"image": "x:1", "batches": 2}, headers=API).json()[
        "id"
    ]
    state: AppState = client.app.state.shipway  # type: ignore[attr-defined]
    wait_until(lambda: state.store.releases.get(rid).batch_in_flight, 30, "batch 0 handed out")
    claim = f"/api/runner/releases/{rid}/batches"
    handout = state.store.releases.get(rid).handouts
    me = {"runner": "r1", "handout": handout}
    assert client.post(f"{claim}/1/start", json=me, headers=RUNNER).status_code == 409
    stale = {"runner": "r1", "handout": handout - 1}  # a task handed out before, late
    assert client.post(f"{claim}/0/start", json=stale, headers=RUNNER).status_code == 409
    assert client.post(f"{claim}/0/start", json=me, headers=RUNNER).status_code == 200
    other = client.post(f"{claim}/0/start", json={**me, "runner": "r2"}, headers=RUNNER)
    assert (other.status_code, other.json()["error"]) == (409, "r1 runs batch 0 already")
    assert client.get(f"/api/releases/{rid}", headers=API).json()["batch_runner"] == "r1"
    client.post(f"/api/releases/{rid}/close", headers=API)
    late = client.post(f"{claim}/0/start", json=me, headers=RUNNER)
    assert (late.status_code, "is failed" in late.json()["error"]) == (409, True)


def test_restart_and_logs_are_refused_clearly(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    pending_job(client)
    base = "/api/projects/app/environments/staging"
    client.put(f"{base}/config", json={"instances": 2}, headers=API)
    never = client.post(f"{base}/restart", json={}, headers=API)
    assert never.status_code == 409
    assert never.json()["error"] == "app has never been released to staging: nothing to restart"
    unknown = client.get(f"{base}/instances/app-staging-1/logs", headers=API)
    assert unknown.status_code == 404  # no release ever made that instance
    client.post(f"{base}/releases", json={"image": "x:1", "batches": 1}, headers=API)
    bad_tail = client.get(f"{base}/instances/app-staging-1/logs?tail=0", headers=API)
    assert (bad_tail.status_code, bad_tail.json()["field"]) == (400, "tail")
    monkeypatch.setattr("server.usecases.release_operations.LOGS_TIMEOUT_SECONDS", 0.5)
    nobody = client.get(f"{base}/instances/app-staging-1/logs", headers=API)
    assert nobody.status_code == 502
    assert nobody.json()["error"] == "no runner serving the queue staging answered within 0.5s"


def test_metrics_are_prometheus_text_read_from_the_store(client: TestClient) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    pending_job(client)  # a project "app", a pipeline and its pending job
    beat = client.post(
        "/api/runner/heartbeat",
        json={"runner": "r1", "queues": ["build"], "host": "h", "pid": 1, "job_id": None},
        headers=RUNNER,
    )
    assert beat.status_code == 200, beat.text
    answer = client.get("/metrics")  # no token, like /healthz
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }
    pipelines = [v for (name, labels), v in samples.items() if name == "shipway_pipelines"]
    assert pipelines == [1]  # created or pending: the engine may have settled it meanwhile
    assert samples[("shipway_jobs", (("status", "pending"),))] == 1
    assert samples[("shipway_runners", (("state", "online"),))] == 1
    assert samples[("shipway_up", (("component", "redis"),))] == 1
    assert samples[("shipway_pipeline_duration_seconds_count", ())] == 0
    assert samples[("shipway_gitlab_reports_failing", ())] == 0


def stored_rows(client: TestClient) -> dict[str, int]:
    state: AppState = client.app.state.shipway  # type: ignore[attr-defined]
    return row_counts(state.store)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"name": "a", "clone_url": ' + b"[" * 1000 + b"]" * 1000 + b"}", "nests 1001 levels"),
        (
            b'{"name": "a", "clone_url": "/r\\ud83d", "webhook_secret": "ssssssssssssssss"}',
            "clone_url: the value holds a lone surrogate",
        ),
        (
            '{"name": "a", "clone_url": "/r", "webhook_secret": "ssssssssssssssss"}'.encode(
                "utf-16"
            ),
            "not valid UTF-8",
        ),
        (b'{"name": NaN}', "NaN is not a JSON number"),
    ],
)
def test_hostile_api_bodies_are_refused_at_the_boundary(
    client: TestClient, body: bytes, words: str
) -> None:
    before = stored_rows(client)
    response = client.post("/api/projects", content=body, headers=API)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]
    assert stored_rows(client) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"branch": "a..b"}, "branch"),
        ({"branch": "a~1"}, "branch"),
        ({"branch": "x.lock"}, "branch"),
        ({"branch": "a\x00b"}, "branch"),
        ({"tag": "v1^"}, "tag"),
        ({"tag": ".v1"}, "tag"),
        ({"commit": "xyz1234"}, "commit"),
    ],
)
def test_trigger_refuses_refs_git_refuses(
    client: TestClient, tmp_path: Path, body: dict[str, str], field: str
) -> None:
    project = {"name": "app", "clone_url": str(tmp_path / "absent.git"), "webhook_secret": "s" * 16}
    assert client.post("/api/projects", json=project, headers=API).status_code == 201
    before = stored_rows(client)
    response = client.post("/api/projects/app/pipelines", json=body, headers=API)
    assert (response.status_code, response.json()["field"]) == (400, field), response.text
    assert stored_rows(client) == before


def test_cli_trigger_of_a_ref_git_refuses_is_bad_input(client: TestClient, tmp_path: Path) -> None:
    """The CLI's own code, sending to the app in-process through an httpx transport."""

    project = {"name": "app", "clone_url": str(tmp_path / "absent.git"), "webhook_secret": "s" * 16}
    assert client.post("/api/projects", json=project, headers=API).status_code == 201
    api = cli_api(client)
    args = cli_parser().parse_args(["trigger", "app", "--branch", "release/a..b"])
    with pytest.raises(ApiError, match=r"branch: 'refs/heads/release/a\.\.b' .*'\.\.'") as caught:
        args.api(api, args)
    assert caught.value.exit_code == 2
    assert stored_rows(client)["pipelines"] == 0


def test_a_release_mode_is_authenticated_before_its_body_is_read(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, RUNNER):
        response = client.post(
            "/api/releases/1/mode", json={"pause_mode": "bogus"}, headers=headers
        )
        assert response.status_code == 401, response.text


def test_a_runner_says_what_it_waits_for_in_its_heartbeat(client: TestClient) -> None:
    def beat(problem: str | None) -> dict[str, Any]:
        body = {"runner": "r1", "queues": ["build"], "host": "h", "pid": 7, "job_id": None}
        answer = client.post(
            "/api/runner/heartbeat", json={**body, "problem": problem}, headers=RUNNER
        )
        assert answer.status_code == 200, answer.text
        (listed,) = client.get("/api/runners", headers=API).json()
        return dict(listed)

    waiting = "Redis at 127.0.0.1:6379 unreachable since 2026-01-01 12:00:00 UTC, retrying"
    assert beat(waiting)["problem"] == waiting
    assert beat(None)["problem"] is None  # said no more once Redis answers
    too_long = client.post(
        "/api/runner/heartbeat",
        json={"runner": "r1", "queues": ["build"], "host": "h", "pid": 7, "problem": "x" * 2001},
        headers=RUNNER,
    )
    assert (too_long.status_code, too_long.json()["field"]) == (400, "problem")


def test_a_created_job_says_which_jobs_it_waits_for(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    state: AppState = client.app.state.shipway  # type: ignore[attr-defined]
    store = state.store
    project = store.projects.create("app", "/nowhere.git", "g/app", "s" * 20, ("*",), ("*",))
    pipeline = store.pipelines.create(
        NewPipeline(project.id, GitRef(RefKind.BRANCH, "main"), "a" * 40, "api", "t")
    )
    spec = (
        "image: i\nstages: [build, test]\njobs:\n"
        "  compile: {stage: build, script: [x]}\n"
        "  unit: {stage: build, script: [x]}\n"
        "  package: {stage: test, script: [x]}\n"
        "  report: {stage: test, needs: [compile], script: [x]}\n"
    )
    store.pipelines.add_jobs(pipeline.id, plan_jobs(parse_spec(spec)))
    jobs = {job.name: job.id for job in store.jobs.of_pipeline(pipeline.id)}
    for name in ("compile", "unit"):
        make_pending(store, jobs[name])

    def waiting(job: str) -> str | None:
        found = client.get(f"/api/jobs/{jobs[job]}", headers=API).json()
        assert found["status"] == ("created" if job in ("package", "report") else "pending")
        return found["waiting"]  # type: ignore[no-any-return]

    assert waiting("package") == "waiting for compile, unit"
    assert waiting("report") == "waiting for compile"
    runners = "waiting for a runner serving queue build; no runner has ever served queue build"
    assert waiting("compile") == runners
    shown = client.get(f"/api/pipelines/{pipeline.id}", headers=API).json()
    assert {job["name"]: job["waiting"] for job in shown["jobs"]} == {
        "compile": runners,
        "unit": runners,
        "package": "waiting for compile, unit",
        "report": "waiting for compile",
    }
    # What holds the pipeline is the runner, not the jobs waiting for others.
    assert shown["waiting"] == f"job compile: {runners} (and 3 more jobs waiting)"
    listed = client.get(f"/api/pipelines/{pipeline.id}/jobs", headers=API).json()
    assert [job["waiting"] for job in listed] == [job["waiting"] for job in shown["jobs"]]

    # The CLI's own code prints it beside the job.
    api = cli_api(client)
    args = cli_parser().parse_args(["pipeline", str(pipeline.id)])
    args.api(api, args)
    printed = capsys.readouterr().out
    assert f"job {jobs['package']} test/package: created (waiting for compile, unit)" in printed

    # compile ends: package still waits for unit; report is no longer held by a job.
    base = f"/api/runner/jobs/{jobs['compile']}"
    assert client.post(f"{base}/start", json={"runner": "r1"}, headers=RUNNER).status_code == 200
    finish = {"succeeded": True, "exit_code": 0}
    assert client.post(f"{base}/finish", json=finish, headers=RUNNER).status_code == 200
    assert waiting("package") == "waiting for unit"
    report = client.get(f"/api/jobs/{jobs['report']}", headers=API).json()
    assert not (report["waiting"] or "").startswith("waiting for compile")
