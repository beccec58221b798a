"""Promotion (P2) against the real app, Redis, SQLite and a real registry: the digest
staging runs is released to production with production's configuration, awaiting
approval, by hand or by a pipeline's promote job; refused when staging has no
successful release, runs a tag, or when the registry no longer holds the digest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from starlette.testclient import TestClient

from pipelines.model import GitRef, RefKind
from pipelines.plan import plan_jobs
from pipelines.release import ReleaseStatus
from pipelines.spec import parse_spec
from pipelines.status import Status
from server.registry_check import holds
from server.state import AppState
from server.store.pipelines import NewPipeline
from server.usecases.deploy_jobs import start_deploy
from tests.support.app import ADMIN, running_app, store_of
from tests.support.services import RegistryServer
from tests.support.test_run import unique_name

pytestmark = pytest.mark.docker

MISSING = "sha256:" + "0" * 64


@pytest.fixture
def pushed(
    docker_client: docker.DockerClient, registry: RegistryServer, busybox: str
) -> Iterator[str]:
    """busybox pushed to the test's registry: its reference by digest."""
    repository = f"{registry.address}/{unique_name('promoted-')}"
    docker_client.images.get(busybox).tag(repository, "1")
    try:
        docker_client.images.push(repository, tag="1")
        digest = docker_client.images.get_registry_data(f"{repository}:1").id
        yield f"{repository}@{digest}"
    finally:
        docker_client.images.remove(f"{repository}:1", force=True)


@pytest.fixture
def client(tmp_path: Path, redis_url: str) -> Iterator[TestClient]:
    with running_app(tmp_path, redis_url) as test_client:
        state: AppState = test_client.app.state.shipway  # type: ignore[attr-defined]
        state.engine.stop()  # no batch is handed out: the releases' statuses are the test's
        body = {"name": "app", "clone_url": "/r.git", "webhook_secret": "s" * 16}
        assert test_client.post("/api/projects", json=body, headers=ADMIN).status_code == 201
        for environment, instances in (("staging", 1), ("production", 3)):
            url = f"/api/projects/app/environments/{environment}/config"
            put = test_client.put(url, json={"instances": instances}, headers=ADMIN)
            assert put.status_code == 201, put.text
        yield test_client


def released(client: TestClient, image: str) -> int:
    """A release of ``image`` to staging that succeeded."""
    url = "/api/projects/app/environments/staging/releases"
    made = client.post(url, json={"image": image, "batches": 1}, headers=ADMIN)
    assert made.status_code == 201, made.text
    store_of(client).releases.update(made.json()["id"], status=ReleaseStatus.SUCCESS)
    return int(made.json()["id"])


def promote(client: TestClient) -> tuple[int, dict[str, object]]:
    body = {"from": "staging", "to": "production", "batches": 3}
    answer = client.post("/api/projects/app/promotions", json=body, headers=ADMIN)
    return answer.status_code, answer.json()


def test_the_digest_staging_runs_goes_to_production_awaiting_approval(
    client: TestClient, pushed: str
) -> None:
    assert promote(client) == (409, {"error": "staging has no successful release to promote"})
    source = released(client, pushed)
    status, release = promote(client)
    assert status == 201, release
    assert (release["image"], release["kind"], release["status"]) == (
        pushed,
        "promotion",
        "awaiting_approval",
    )
    assert release["reason"] == f"promotion of release {source} from staging"
    assert release["batches"] == [[f"app-production-{n}"] for n in (1, 2, 3)]  # its config


def test_a_digest_gone_from_the_registry_or_a_tag_is_refused(
    client: TestClient, pushed: str, registry: RegistryServer
) -> None:
    gone = pushed.split("@")[0] + "@" + MISSING
    assert holds(pushed)
    assert not holds(gone)
    released(client, gone)
    status, answer = promote(client)
    assert (status, answer["error"]) == (
        409,
        f"{gone} is no longer in the registry: it cannot be promoted",
    )
    released(client, f"{registry.address}/app:1")
    status, answer = promote(client)
    assert status == 409
    assert "a tag, not a digest" in str(answer["error"])
    same = client.post(
        "/api/projects/app/promotions", json={"from": "staging", "to": "staging"}, headers=ADMIN
    )
    assert (same.status_code, same.json()["field"]) == (400, "to")


def test_a_pipelines_promote_job_orders_the_promotion_and_waits_with_it(
    client: TestClient, pushed: str
) -> None:
    store = store_of(client)
    source = released(client, pushed)
    text = (
        "stages: [production]\njobs:\n  promote:\n    stage: production\n    kind: promote\n"
        "    from_environment: staging\n    environment: production\n"
    )
    project = store.projects.by_name("app")
    pipeline = store.pipelines.create(
        NewPipeline(project.id, GitRef(RefKind.BRANCH, "main"), "a" * 40, "push", "dave")
    )
    store.pipelines.add_jobs(pipeline.id, plan_jobs(parse_spec(text)))
    (job,) = store.jobs.of_pipeline(pipeline.id)
    store.jobs.change_status(job.id, Status.PENDING)
    start_deploy(store, store.jobs.get(job.id))
    release = store.releases.of_job(job.id)
    assert release is not None
    assert (release.image, release.kind.value, release.status.value) == (
        pushed,
        "promotion",
        "awaiting_approval",
    )
    assert release.reason == f"promotion of release {source} from staging"
    assert store.jobs.get(job.id).status is Status.RUNNING  # waits with its release
    log, _ = store.logs.read(job.id, 0, 10_000)
    assert f"Release {release.id} of {pushed} to production" in log
