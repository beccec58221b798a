"""End to end, what the unit and integration tests cover piece by piece: a beta
release confirmed by hand (L5), traffic shares through a real nginx (L6), the empty
grace of ``shipway confd`` during a release (S2), an image's runtime mounts in its
running instances (I4) and CPU limits on the running containers (D2).

Everything runs for real: ``shipway serve``, ``shipway runner``, the CLI, docker-compose
on the machine's engine, and for discovery a test's own etcd, nginx, registrar
sidecars and ``shipway confd`` as a process. Nothing decides a race by sleeping: each
wait is for a state, with a bound only a hang exceeds.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from tests.e2e.pipeline_helpers import SERVE, release, site_release_jobs
from tests.e2e.test_push_to_pipeline import finished, job_log, pushed_pipeline
from tests.support.discovery import GRACE, ConfdProcess, registering_web
from tests.support.etcd import EtcdServer
from tests.support.git import Repository
from tests.support.nginx import NginxServer
from tests.support.services import Deployment, RegistryServer, ShipwayProcess, wait_until

pytestmark = pytest.mark.docker

# Health checks a busy machine does not fail: only a real failure runs out of retries.
PATIENT = {"interval": 1, "timeout": 5, "retries": 10}


def web(content: str, instances: int) -> dict[str, Any]:
    """busybox httpd answering ``content`` on port 8000, without discovery."""
    return {
        "instances": instances,
        "ports": [{"container": 8000}],
        "command": SERVE,
        "files": [{"path": "/srv/www/index.html", "content": content}],
        "health": {"http": {"path": "/", "port": 8000}, **PATIENT},
    }


def registering(content: str, instances: int) -> dict[str, Any]:
    """The same, registered in etcd by a registrar sidecar and routed by path ``/``."""
    return registering_web(content, instances) | {
        "health": {"http": {"path": "/", "port": 8000}, **PATIENT}
    }


def released(
    deployment: Deployment,
    base: str,
    config: dict[str, Any],
    order: dict[str, Any],
    status: str = "success",
) -> dict[str, Any]:
    """Put the configuration of the environment at ``base`` (its API path), order a
    release there, and wait for the release to be ``status``."""
    with deployment.api() as api:
        api.put(f"{base}/config", json=config).raise_for_status()
        made = api.post(f"{base}/releases", json=order).json()
    return release(deployment, made["id"], status)


def host_port(docker_client: docker.DockerClient, name: str) -> int:
    container = docker_client.containers.get(name)
    return int(container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"])


def served(docker_client: docker.DockerClient, name: str) -> str:
    """What the instance answers on its published port, not through any proxy."""
    answer = httpx.get(f"http://127.0.0.1:{host_port(docker_client, name)}/", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.text


def ordered(deployment: Deployment, *args: str) -> int:
    """``shipway release create ...``: the new release's id, from what the CLI prints."""
    created = deployment.cli("release", "create", *args)
    assert created.returncode == 0, created.stderr
    match = re.match(r"release (\d+) of ", created.stdout)
    assert match, created.stdout
    return int(match.group(1))


def test_a_beta_instance_goes_first_and_the_rest_wait_for_a_confirmation(
    app: str,
    deployment: Deployment,
    deploy_runner: ShipwayProcess,
    busybox: str,
    docker_client: docker.DockerClient,
    repository: Repository,
    runner_name: str,
) -> None:
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    base = f"/api/projects/{app}/environments/staging"
    names = [f"{app}-staging-{index}" for index in (1, 2, 3)]
    with deployment.api() as api:
        api.put(f"{base}/config", json=web("old\n", 3)).raise_for_status()
    at_once = ("--grouping", "all_at_once", "--pause", "never")
    first = ordered(deployment, app, "staging", "--image", busybox, *at_once)
    release(deployment, first, "success")
    assert [served(docker_client, name) for name in names] == ["old\n"] * 3

    with deployment.api() as api:
        api.put(f"{base}/config", json=web("new\n", 3)).raise_for_status()
    # "never" pauses: a beta release waits after its beta instance all the same.
    with_beta = ("--batches", "1", "--pause", "never", "--beta")
    beta = ordered(deployment, app, "staging", "--image", busybox, *with_beta)
    paused = release(deployment, beta, "paused")
    assert (paused["beta"], paused["pause_mode"], paused["next_batch"]) == (True, "never", 1)
    assert paused["batches"] == [[names[0]], names[1:]]
    assert {i["name"]: i["status"] for i in paused["instances"]} == {
        names[0]: "healthy",
        names[1]: "waiting",
        names[2]: "waiting",
    }
    assert [served(docker_client, name) for name in names] == ["new\n", "old\n", "old\n"]
    untouched = {name: docker_client.containers.get(name).id for name in names[1:]}

    # It waits for a person: a heartbeat of the idle runner later, nothing has moved.
    with deployment.api() as api:

        def heartbeat() -> str:
            runners = {r["name"]: r for r in api.get("/api/runners").json()}
            assert runners[runner_name]["current_job_id"] is None
            return str(runners[runner_name]["last_seen"])

        seen = heartbeat()
        wait_until(lambda: heartbeat() != seen, 60, "a heartbeat of the idle runner", pause=0.5)
        still = api.get(f"/api/releases/{beta}").json()
    assert (still["status"], still["next_batch"]) == ("paused", 1)
    assert [i["status"] for i in still["instances"]] == ["healthy", "waiting", "waiting"]
    assert {name: docker_client.containers.get(name).id for name in names[1:]} == untouched
    assert [served(docker_client, name) for name in names] == ["new\n", "old\n", "old\n"]

    confirmed = deployment.cli("release", "resume", str(beta))
    assert confirmed.returncode == 0, confirmed.stderr
    assert confirmed.stdout == f"release {beta}: running (pause mode never)\n"
    done = release(deployment, beta, "success")
    assert [i["status"] for i in done["instances"]] == ["healthy"] * 3
    assert [served(docker_client, name) for name in names] == ["new\n"] * 3
    assert all(docker_client.containers.get(n).id != untouched[n] for n in names[1:])


# --- service discovery: a test's own etcd, nginx and shipway confd ---------------------


def split(nginx: NginxServer, requests: int) -> Counter[str]:
    """What ``requests`` requests through nginx got: a body, or a status or error."""
    answers: Counter[str] = Counter()
    for _ in range(requests):
        try:
            answer = nginx.get("/")
        except httpx.HTTPError as exc:
            answers[type(exc).__name__] += 1
            continue
        answers[answer.text if answer.status_code == 200 else str(answer.status_code)] += 1
    return answers


def settled_split(
    nginx: NginxServer, requests: int, fits: Callable[[Counter[str]], bool], what: str
) -> Counter[str]:
    """Sample until a sample fits (nginx reloads gracefully: an old worker may answer
    a few more requests first); the timeout says what the last sample was."""
    samples: list[Counter[str]] = []

    def fitting() -> bool:
        samples.append(split(nginx, requests))
        return fits(samples[-1])

    try:
        wait_until(fitting, 60, what, pause=0.2)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; the last of {len(samples)} samples: {samples[-1]}") from exc
    return samples[-1]


def weights(etcd: EtcdServer, service: str) -> dict[str, str]:
    found = etcd.client().get_prefix(f"/shipway/weights/{service}/")
    return {meta["key"].decode().rsplit("/", 1)[1]: value.decode() for value, meta in found}


def registered(etcd: EtcdServer, service: str) -> list[str]:
    return sorted(value.decode() for value, _ in etcd.client().get_prefix(f"/{service}/"))


def test_traffic_shares_split_the_requests_through_nginx(
    deployment: Deployment,
    discovery_runner: ShipwayProcess,
    confd: ConfdProcess,
    nginx: NginxServer,
    etcd: EtcdServer,
    busybox: str,
    app: str,
    repository: Repository,
    docker_client: docker.DockerClient,
) -> None:
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    base = f"/api/projects/{app}/environments/staging"
    service = f"{app}_STAGING"
    order = {"image": busybox, "batches": 2, "pause_mode": "never"}
    released(deployment, base, registering("old\n", 2), order)
    new, old = (f"127.0.0.1:{host_port(docker_client, f'{app}-staging-{i}')}" for i in (1, 2))
    assert registered(etcd, service) == sorted([new, old])
    settled_split(nginx, 20, lambda s: s == {"old\n": 20}, "nginx routing to both instances")

    # The new version on the first instance; paused there, both still take traffic.
    order = {"image": busybox, "batches": 2, "pause_mode": "after_first"}
    second = released(deployment, base, registering("new\n", 2), order, "paused")
    even = settled_split(
        nginx, 40, lambda s: set(s) == {"old\n", "new\n"}, "the new instance routed too"
    )
    assert 10 <= even["new\n"] <= 30, even

    def share(percent: int, expected: dict[str, int]) -> None:
        """``shipway release traffic``: what it says, what etcd holds, what nginx runs."""
        shared = deployment.cli("release", "traffic", str(second["id"]), str(percent))
        assert shared.returncode == 0, shared.stderr
        lines = [f"  {address} weight {weight}" for address, weight in sorted(expected.items())]
        head = f"release {second['id']}: the new instances get {percent}% of the requests"
        assert shared.stdout.splitlines() == [head, *lines]
        assert weights(etcd, service) == {
            address.replace(":", "-"): str(weight) for address, weight in expected.items()
        }
        rendered = [
            f"server {address} down " if weight == 0 else f"server {address} weight={weight} "
            for address, weight in expected.items()
        ]
        wait_until(
            lambda: all(line in nginx.include.read_text() for line in rendered),
            30,
            f"nginx's upstream rendered with the weights of {percent}%",
        )

    # 10 percent: 1 against 9, so about 10 of 100 requests (nginx's weighted round
    # robin is exact with one worker; the bounds leave room for a reload).
    share(10, {new: 1, old: 9})
    tenth = settled_split(
        nginx, 100, lambda s: set(s) == {"old\n", "new\n"} and s["new\n"] <= 20, "a 10% share"
    )
    assert 3 <= tenth["new\n"] <= 20, tenth

    share(50, {new: 1, old: 1})
    half = settled_split(
        nginx, 100, lambda s: set(s) == {"old\n", "new\n"} and s["new\n"] >= 30, "a 50% share"
    )
    assert 30 <= half["new\n"] <= 70, half

    share(100, {new: 1, old: 0})
    settled_split(nginx, 40, lambda s: s == {"new\n": 40}, "every request to the new instance")
    assert split(nginx, 40) == {"new\n": 40}
    assert registered(etcd, service) == sorted([new, old])  # the old one is only down

    # Confirmed: the weights go, the release goes on and replaces the other instance.
    resumed = deployment.cli("release", "resume", str(second["id"]))
    assert resumed.returncode == 0, resumed.stderr
    assert weights(etcd, service) == {}
    release(deployment, second["id"], "success")
    assert registered(etcd, service) == sorted([new, old])
    settled_split(nginx, 40, lambda s: s == {"new\n": 40}, "both instances on the new version")
    assert " down " not in nginx.include.read_text()
    assert f"server {old} weight=1 " in nginx.include.read_text()


def test_a_released_service_left_without_instances_is_served_for_the_grace_then_503(
    deployment: Deployment,
    discovery_runner: ShipwayProcess,
    confd: ConfdProcess,
    nginx: NginxServer,
    etcd: EtcdServer,
    busybox: str,
    app: str,
    repository: Repository,
    docker_client: docker.DockerClient,
) -> None:
    """One instance, released again: out of traffic its key goes, and its PreStop
    hook holds it running until the test lets it go, so the grace is watched with
    the old instance still up and no instance in etcd."""
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    base = f"/api/projects/{app}/environments/staging"
    service = f"{app}_STAGING"
    name = f"{app}-staging-1"
    held = "while [ ! -e /tmp/go ]; do sleep 0.2; done; echo let go"
    # Its timeout outlasts the grace by far: only the test ends the hook.
    config = registering("old\n", 1) | {"hooks": {"pre_stop": held, "timeout": "10m"}}
    order = {"image": busybox, "batches": 1, "pause_mode": "never"}
    released(deployment, base, config, order)
    address = f"127.0.0.1:{host_port(docker_client, name)}"
    assert registered(etcd, service) == [address]
    settled_split(nginx, 5, lambda s: s == {"old\n": 5}, "nginx routing to the instance")

    with deployment.api() as api:
        api.put(f"{base}/config", json=config | registering("new\n", 1)).raise_for_status()
        ordered_at = time.monotonic()
        second = api.post(f"{base}/releases", json=order).json()

    def step_log() -> str:
        with deployment.api() as api:
            shown = api.get(f"/api/releases/{second['id']}").json()
        return str(shown["instances"][0]["log"])

    held_instance = docker_client.containers.get(name)
    try:
        # Out of traffic, every agent has it: the grace has begun, PreStop holds.
        wait_until(lambda: "drained for 1s" in step_log(), 60, "the instance out of traffic", 0.2)
        assert f"nginx has it: {confd.name} at revision" in step_log()
        assert registered(etcd, service) == []
        assert f"server {address} weight=1 " in nginx.include.read_text()
        assert split(nginx, 5) == {"old\n": 5}

        # No etcd change from here: the agent's own timer ends the grace.
        wait_until(lambda: split(nginx, 1) == {"503": 1}, GRACE + 60, "503 after the grace", 0.2)
        assert time.monotonic() - ordered_at >= GRACE
        assert "upstream" not in nginx.include.read_text()
        # The reload is graceful: an old worker may answer a few more first.
        settled_split(nginx, 5, lambda s: s == {"503": 5}, "only 503 once nginx reloaded")
        held_instance.reload()
        assert held_instance.status == "running"  # up, but no longer routed
    finally:
        # Let PreStop end, also after a failed assertion: the release goes on to
        # the end instead of holding the runner's batch until the clean-up.
        held_instance.exec_run(["touch", "/tmp/go"])
    done = release(deployment, second["id"], "success")
    assert "PreStop: exit 0: let go" in done["instances"][0]["log"]
    assert registered(etcd, service) == [address]
    settled_split(nginx, 5, lambda s: s == {"new\n": 5}, "nginx routing to the new instance")


# --- the image and the resources a release runs with ----------------------------------


def test_an_images_runtime_mounts_are_read_only_in_the_environments_they_name(
    app: str,
    deployment: Deployment,
    deploy_runner: ShipwayProcess,
    busybox: str,
    repository: Repository,
    registry: RegistryServer,
    docker_client: docker.DockerClient,
    images_made: None,
    tmp_path: Path,
) -> None:
    jdk, fonts, zoneinfo = (tmp_path / "host" / part for part in ("jdk", "fonts", "zoneinfo"))
    for folder, text in ((jdk, "jdk 17\n"), (fonts, "fonts\n"), (zoneinfo, "UTC\n")):
        folder.mkdir(parents=True)
        (folder / "release").write_text(text)
    mounts: list[dict[str, Any]] = [
        {"host": str(jdk), "target": "/opt/jdk", "environments": ["staging"]},
        {"host": str(fonts), "target": "/opt/fonts", "environments": ["production"]},
        {"host": str(zoneinfo), "target": "/opt/zoneinfo"},  # every environment
    ]
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    with deployment.api() as api:
        api.put(
            f"/api/projects/{app}/environments/staging/config",
            json={
                "instances": 1,
                "ports": [{"container": 8000}],
                "health": {"http": {"path": "/", "port": 8000}, **PATIENT},
            },
        ).raise_for_status()
    repository.commit(
        {
            ".shipway.yml": "stages: [package, deploy]\njobs:\n"
            + site_release_jobs(busybox, image={"runtime_mounts": mounts}),
            "site/index.html": "mounted\n",
        }
    )
    pipeline = finished(deployment, pushed_pipeline(repository.push()), timeout=180)
    jobs = {job["name"]: job for job in pipeline["jobs"]}
    assert pipeline["status"] == "success", job_log(deployment, jobs["staging"]["id"])
    (image,) = pipeline["images"]
    assert image["runtime_mounts"] == [*mounts[:2], {**mounts[2], "environments": None}]

    container = docker_client.containers.get(f"{app}-staging-1")
    assert container.attrs["Config"]["Image"] == image["reference"]
    found = {
        mount["Destination"]: (mount["Source"], mount["RW"])
        for mount in container.attrs["Mounts"]
        if mount["Destination"].startswith("/opt/")
    }
    assert found == {"/opt/jdk": (str(jdk), False), "/opt/zoneinfo": (str(zoneinfo), False)}

    def inside(*command: str) -> tuple[int | None, str]:
        result = container.exec_run(list(command))
        assert isinstance(result.output, bytes)
        return result.exit_code, result.output.decode(errors="replace")

    assert inside("cat", "/opt/jdk/release") == (0, "jdk 17\n")
    assert inside("cat", "/opt/zoneinfo/release") == (0, "UTC\n")
    code, said = inside("touch", "/opt/jdk/written")
    assert (code, said) == (1, "touch: /opt/jdk/written: Read-only file system\n")
    code, said = inside("ls", "/opt/fonts")
    assert (code, said) == (1, "ls: /opt/fonts: No such file or directory\n")
    assert not (jdk / "written").exists()
    assert served(docker_client, f"{app}-staging-1") == "mounted\n"


def test_the_cpu_limit_of_the_configuration_is_the_running_containers(
    app: str,
    deployment: Deployment,
    deploy_runner: ShipwayProcess,
    busybox: str,
    repository: Repository,
    docker_client: docker.DockerClient,
) -> None:
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    base = f"/api/projects/{app}/environments/staging"
    names = [f"{app}-staging-{index}" for index in (1, 2)]
    order = {"image": busybox, "batches": 1, "pause_mode": "never"}
    for cpus, memory in ((0.5, 64), (0.25, 32)):
        config = web(f"{cpus}\n", 2) | {"resources": {"cpus": cpus, "memory": f"{memory}m"}}
        released(deployment, base, config, order)
        for name in names:
            limits = docker_client.containers.get(name).attrs["HostConfig"]
            assert (limits["NanoCpus"], limits["CpuQuota"], limits["CpuPeriod"]) == (
                int(cpus * 1_000_000_000),
                0,
                0,
            )
            assert limits["Memory"] == memory * 1024 * 1024
            assert served(docker_client, name) == f"{cpus}\n"


def test_a_hook_that_never_ends_does_not_hold_the_release(
    app: str,
    deployment: Deployment,
    deploy_runner: ShipwayProcess,
    busybox: str,
    repository: Repository,
    docker_client: docker.DockerClient,
) -> None:
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    base = f"/api/projects/{app}/environments/staging"
    name = f"{app}-staging-1"
    hooks = {"pre_stop": "sleep 100000", "post_start": "sleep 100000", "timeout": "2s"}
    order = {"image": busybox, "batches": 1, "pause_mode": "never"}
    for content in ("old\n", "new\n"):
        done = released(deployment, base, web(content, 1) | {"hooks": hooks}, order)
        assert served(docker_client, name) == content
    log = done["instances"][0]["log"]
    assert "PreStop: still running after 2s: going on without it" in log
    assert "PostStart: still running after 2s: going on without it" in log
