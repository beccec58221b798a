"""Traffic shares of a release (L6) written to a real etcd as the weights the confd
agent renders: the replaced instances get the share asked, the others the rest, and
resuming the release puts every instance back to an equal share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pipelines.release import InstanceStatus
from server.app import create_app
from server.settings import Settings
from server.state import AppState
from tests.integration.test_api import API, pending_job
from tests.support.etcd import EtcdServer


@pytest.fixture
def client(tmp_path: Path, redis_url: str, etcd: EtcdServer) -> Iterator[TestClient]:
    settings = Settings.from_env(
        {
            "SHIPWAY_STATE_DIR": str(tmp_path),
            "SHIPWAY_REDIS_URL": redis_url,
            "SHIPWAY_API_TOKEN": "api-token-0123456789",
            "SHIPWAY_RUNNER_TOKEN": "runner-token-0123456789",
            "SHIPWAY_ETCD_URL": etcd.url,
        }
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def weights(etcd: EtcdServer) -> dict[str, int]:
    found = etcd.client().get_prefix("/shipway/weights/app_STAGING/")
    return {meta["key"].decode().rsplit("/", 1)[1]: int(value) for value, meta in found}


def test_a_share_for_the_new_instances_until_the_release_goes_on(
    client: TestClient, etcd: EtcdServer
) -> None:
    pending_job(client)  # registers "app"
    base = "/api/projects/app/environments/staging"
    config = {"instances": 4, "ports": [{"container": 8000}], "discovery": {"path": "/"}}
    assert client.put(f"{base}/config", json=config, headers=API).status_code in (200, 201)
    order = {"image": "x:1", "batches": 4, "pause_mode": "after_first"}
    rid = client.post(f"{base}/releases", json=order, headers=API).json()["id"]
    state: AppState = client.app.state.shipway  # type: ignore[attr-defined]

    nobody = client.post(f"/api/releases/{rid}/traffic", json={"new_share": 10}, headers=API)
    assert nobody.status_code == 409
    assert nobody.json()["error"] == "no instance of app_STAGING is registered in etcd"

    # Four instances registered (what their registrars do); the first one replaced.
    project = state.store.projects.by_name("app")
    ports = state.store.deployments.ports(project.id, "staging")
    first = ports[(1, 8000)]
    for port in ports.values():
        etcd.client().put(f"/app_STAGING/127.0.0.1-{port}", f"127.0.0.1:{port}")
    state.store.releases.report_instance(rid, "app-staging-1", InstanceStatus.HEALTHY, "")
    client.post(f"/api/releases/{rid}/pause", headers=API)

    bad = client.post(f"/api/releases/{rid}/traffic", json={"new_share": 120}, headers=API)
    assert (bad.status_code, bad.json()["field"]) == (400, "new_share")
    ten = client.post(f"/api/releases/{rid}/traffic", json={"new_share": 10}, headers=API)
    assert ten.status_code == 200, ten.text
    # 1 new instance at 10 percent against 3 old ones: weight 1 against 3 each.
    expected = {f"127.0.0.1-{port}": 3 for port in ports.values()} | {f"127.0.0.1-{first}": 1}
    assert weights(etcd) == expected
    all_new = client.post(f"/api/releases/{rid}/traffic", json={"new_share": 100}, headers=API)
    assert all_new.json()["weights"][f"127.0.0.1:{first}"] == 1
    assert sorted(weights(etcd).values()) == [0, 0, 0, 1]  # the old ones get nothing

    assert client.post(f"/api/releases/{rid}/resume", headers=API).status_code == 200
    assert weights(etcd) == {}  # going on: every instance back to an equal share
    client.post(f"/api/releases/{rid}/close", headers=API)
    closed = client.post(f"/api/releases/{rid}/traffic", json={"new_share": 50}, headers=API)
    assert closed.status_code == 409
