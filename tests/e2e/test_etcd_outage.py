"""etcd away (killed with kill -9, or stopped cleanly) in the middle of a release of
instances that register themselves, then started again on its ports and its data.

Everything of service discovery runs for real: a test's own etcd, nginx and
``shipway confd`` process, the instances' registrar sidecars, and a server and a
runner whose traffic steps go through etcd. etcd goes away while the first new
instance is held in its PostStart hook (the old one already out of traffic): its
step back into traffic meets the outage, and so does the next instance's step out.

While etcd is away nginx keeps serving the instances it had, the release waits and
says so in the instance's steps; once etcd is back the release goes on and ends,
etcd holds exactly the new instances (registered again by their registrars, under
new leases) and nginx routes to them. Nothing is restarted by hand. Only the outage
is timed; everything else waits on conditions, with bounds only a hang exceeds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.e2e.pipeline_helpers import release
from tests.e2e.test_release_coverage import (
    host_port,
    registered,
    registering,
    settled_split,
    split,
)
from tests.support.discovery import ConfdProcess
from tests.support.etcd import EtcdServer
from tests.support.git import Repository
from tests.support.nginx import NginxServer
from tests.support.outages import How
from tests.support.services import Deployment, ShipwayProcess, wait_until

pytestmark = pytest.mark.docker

ENDS_WITHIN = 180  # seconds after etcd is back: generous on a busy machine
# Held until the test makes the flag: etcd goes away while the instance waits here.
HELD = "while [ ! -e /flags/go ]; do sleep 0.2; done"


def steps(deployment: Deployment, release_id: int) -> dict[str, str]:
    """Each instance's step log, as the API shows it."""
    with deployment.api() as api:
        shown: dict[str, Any] = api.get(f"/api/releases/{release_id}").json()
    return {instance["name"]: str(instance["log"] or "") for instance in shown["instances"]}


@pytest.mark.parametrize(("how", "seconds"), [("kill", 60), ("stop", 5)])
def test_a_release_waits_out_etcd_and_nginx_serves_throughout(
    deployment: Deployment,
    discovery_runner: ShipwayProcess,
    confd: ConfdProcess,
    nginx: NginxServer,
    etcd: EtcdServer,
    app: str,
    repository: Repository,
    docker_client: docker.DockerClient,
    busybox: str,
    tmp_path: Path,
    how: How,
    seconds: int,
) -> None:
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    base = f"/api/projects/{app}/environments/staging"
    service = f"{app}_STAGING"
    names = [f"{app}-staging-{index}" for index in (1, 2)]
    flags = tmp_path / "flags"
    flags.mkdir()
    order = {"image": busybox, "batches": 1, "pause_mode": "never"}
    with deployment.api() as api:
        api.put(f"{base}/config", json=registering("one\n", 2)).raise_for_status()
        first = api.post(f"{base}/releases", json=order).json()
    release(deployment, first["id"], "success")
    addresses = sorted(f"127.0.0.1:{host_port(docker_client, name)}" for name in names)
    assert registered(etcd, service) == addresses
    settled_split(nginx, 10, lambda s: s == {"one\n": 10}, "nginx routing to both instances")

    held = registering("two\n", 2) | {
        "directories": [{"host": str(flags), "container": "/flags"}],
        "hooks": {"post_start": HELD, "timeout": "10m"},
    }
    with deployment.api() as api:
        api.put(f"{base}/config", json=held).raise_for_status()
        second = api.post(f"{base}/releases", json=order).json()
    wait_until(
        lambda: "started the new container" in steps(deployment, second["id"]).get(names[0], ""),
        120,
        "the first new instance held in its PostStart hook",
        pause=0.2,
    )
    assert "nginx has it" in steps(deployment, second["id"])[names[0]]  # out of traffic

    began = time.monotonic()
    assert etcd.process is not None
    if how == "kill":
        etcd.process.kill()  # no goodbye to the watch streams nor the leases
        etcd.process.wait()
    else:
        etcd.stop()
    try:
        (flags / "go").write_text("")  # the hook ends; the step back into traffic meets it
        said = f"etcd at {etcd.url} unreachable since"
        wait_until(
            lambda: said in steps(deployment, second["id"])[names[0]],
            120,
            "the release saying it waits for etcd",
            pause=0.5,
        )
        # What nginx had: the old second instance, and the new first one if its
        # registrar registered it before etcd went (it does once its own check passes).
        rendered = nginx.include.read_text()
        while time.monotonic() - began < seconds:  # the outage itself
            assert serves(nginx), "nginx stopped serving during the outage"
            assert confd.process.poll() is None, confd.log()
            time.sleep(min(5.0, max(0.0, seconds - (time.monotonic() - began))))
        assert serves(nginx)
        assert nginx.include.read_text() == rendered
    finally:
        etcd.start()
    lasted = time.monotonic() - began

    wait_until(
        lambda: release_status(deployment, second["id"]) in ("success", "failed"),
        ENDS_WITHIN,
        "the release ending",
        pause=0.5,
    )
    ended = time.monotonic() - began
    done = release(deployment, second["id"], "success")
    logs = steps(deployment, second["id"])
    assert f"etcd at {etcd.url} answers again after" in logs[names[0]], logs
    for name in names:
        # Out and back in, each time once nginx had it: the agent's silence while etcd
        # was away did not make it count as gone.
        assert logs[name].count("nginx has it") == 2, logs[name]
    assert [instance["status"] for instance in done["instances"]] == ["healthy", "healthy"]
    # The registrations are right: both new instances, no other key, the same addresses.
    wait_until(lambda: registered(etcd, service) == addresses, 30, "both registered")
    settled_split(nginx, 20, lambda s: s == {"two\n": 20}, "nginx routing to both new ones")
    for name in names:
        assert docker_client.containers.get(f"{name}-registrar").status == "running"
    assert confd.process.poll() is None, confd.log()
    assert discovery_runner.process.poll() is None, discovery_runner.log()
    print(
        f"etcd {how}, away {lasted:.0f}s: the release succeeded {ended:.0f}s after the outage began"
    )


def serves(nginx: NginxServer) -> bool:
    """Every request answered by an instance, the old version or the new."""
    answers = split(nginx, 5)
    return sum(answers.values()) == 5 and set(answers) <= {"one\n", "two\n"}


def release_status(deployment: Deployment, release_id: int) -> str:
    with deployment.api() as api:
        return str(api.get(f"/api/releases/{release_id}").json()["status"])
