"""How fast Shipway reacts when a job must stop, against the engine's own floor.

The tests assert that these happen (with bounds only a hang exceeds); how fast is
measured here, in one run, on real processes (Redis, a Shipway server, a runner):

- cancel: ``POST /api/jobs/{id}/cancel`` of a running ``sleep 300`` job until its
  container is gone, against ``docker rm -f`` of the same kind of container by hand
  (goal: at most 5 s, README says about a second);
- a killed job process under a live runner: ``kill -9`` of the job's forked process
  until the job is failed ``runner lost``, against the same ``docker rm -f``
  (the runner removes the container, then reports; goal: at most 5 s);
- a dead runner: ``kill -9`` of the runner and its job until the job is failed,
  against the liveness deadline (``OFFLINE_AFTER``: no heartbeat for that long;
  goal: at most 30 s, the deadline plus a heartbeat and an engine pass).

    .venv/bin/python -m bench.reaction_times [--runs 5]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import httpx
import psutil

from pipelines.liveness import OFFLINE_AFTER
from runners.base_images import ensure_busybox
from tests.support.git import Repository
from tests.support.services import Deployment, RedisServer, ShipwayProcess
from tests.support.test_run import RUN_LABELS, job_containers, remove_job_containers, unique_name

SECRET = "bench-webhook-secret-0123456789"
HANG = "image: {image}\njobs:\n  hang:\n    script: [echo started, sleep 300]\n"


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``check`` every 10 ms; the seconds it took."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{what} did not happen within {timeout}s")
        time.sleep(0.01)
    return time.perf_counter() - started


def running_job(
    api: httpx.Client, repository: Repository, client: docker.DockerClient, n: int
) -> dict[str, Any]:
    """Push a hanging job and wait until its container runs."""
    repository.commit({"README": f"run {n}\n"}, f"bench {n}")
    match = re.search(r"created pipeline (\d+)", repository.push())
    if match is None:
        raise RuntimeError("the push started no pipeline")
    job: dict[str, Any] = {}

    def started() -> bool:
        jobs = api.get(f"/api/pipelines/{match.group(1)}/jobs").json()
        if not jobs:
            return False
        job.update(jobs[0])
        filters = job_containers(job["id"])
        return job["status"] == "running" and bool(client.containers.list(filters=filters))

    wait_for(started, 120, "the job running")
    return job


def job_status(api: httpx.Client, job_id: int) -> str:
    return str(api.get(f"/api/jobs/{job_id}").json()["status"])


def by_hand_remove(client: docker.DockerClient, image: str) -> float:
    container = client.containers.run(image, ["sleep", "300"], detach=True, labels=RUN_LABELS)
    started = time.perf_counter()
    container.remove(force=True)
    return time.perf_counter() - started


def kill_tree(process: ShipwayProcess) -> None:
    parent = psutil.Process(process.process.pid)
    for child in parent.children(recursive=True):
        child.kill()
    parent.kill()
    process.process.wait()


def summary(values: list[float]) -> str:
    median = statistics.median(values)
    return f"median {median:.3f}s (min {min(values):.3f}s, max {max(values):.3f}s)"


def job_failed(api: httpx.Client, job_id: int) -> Callable[[], bool]:
    return lambda: job_status(api, job_id) == "failed"


def containers_gone(client: docker.DockerClient, job_id: int) -> Callable[[], bool]:
    return lambda: not client.containers.list(filters=job_containers(job_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    client = docker.from_env()
    image = ensure_busybox(client)
    cancels, kills, deaths, by_hand = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="shipway-bench-") as root_text:
        root = Path(root_text)
        redis_server = RedisServer.start(root)
        deployment = Deployment(root=root, redis_url=redis_server.url)
        server = deployment.start_server()
        runners: list[ShipwayProcess] = []
        try:
            repository = Repository(root / "repo")
            repository.commit({".shipway.yml": HANG.format(image=image), "README": "start\n"})
            deployment.add_project("bench", repository.bare, "bench/app", SECRET, ["main"])
            runners.append(deployment.start_runner(unique_name("-runner-")))
            with deployment.api() as api:
                for n in range(runs):
                    job = running_job(api, repository, client, 2 * n)
                    asked = time.perf_counter()
                    api.post(f"/api/jobs/{job['id']}/cancel").raise_for_status()
                    wait_for(containers_gone(client, job["id"]), 60, "the container gone")
                    cancels.append(time.perf_counter() - asked)
                    by_hand.append(by_hand_remove(client, image))

                    job = running_job(api, repository, client, 2 * n + 1)
                    worker = psutil.Process(runners[-1].process.pid)
                    killed = time.perf_counter()
                    for child in worker.children():
                        child.kill()
                    wait_for(job_failed(api, job["id"]), 60, "the loss reported")
                    kills.append(time.perf_counter() - killed)

                for n in range(max(1, runs // 3)):  # each waits out the deadline
                    job = running_job(api, repository, client, 2 * runs + n)
                    kill_tree(runners[-1])
                    killed = time.perf_counter()
                    wait_for(job_failed(api, job["id"]), 120, "the job lost")
                    deaths.append(time.perf_counter() - killed)
                    runners.append(deployment.start_runner(unique_name("-runner-")))
        finally:
            for runner in runners:
                runner.stop()
            server.stop()
            redis_server.stop()
            remove_job_containers(client)
            client.close()
    floor = statistics.median(by_hand)
    deadline = OFFLINE_AFTER.total_seconds()
    print(f"reaction times, {runs} runs each ({len(deaths)} for a dead runner)")
    print(f"  docker rm -f by hand        {summary(by_hand)}")
    print(
        f"  cancel -> container gone    {summary(cancels)}  "
        f"{statistics.median(cancels) / floor:.1f}x docker rm -f   goal: at most 5 s"
    )
    print(
        f"  job process killed -> failed {summary(kills)}  "
        f"{statistics.median(kills) / floor:.1f}x docker rm -f   goal: at most 5 s"
    )
    print(
        f"  runner killed -> job failed {summary(deaths)}  "
        f"{statistics.median(deaths) / deadline:.2f}x the {deadline:.0f} s liveness deadline"
        "   goal: at most 30 s"
    )


if __name__ == "__main__":
    main()
