"""What thousands of pipelines waiting on a manual job cost an idle server and a push.

Starts its own Redis, Shipway server (SQLite) and one runner (real processes), and
measures twice in one run, first with the server nearly empty (the baseline), then
with ``--waiting`` pipelines (10,000 by default) each parked at a blocking manual deploy
(``allow_failure: false``), as a team's pushes to main that wait for ops pile up:

- the idle server's CPU, as a share of one core, over ``--idle`` seconds with no
  request (goal: under 2% with the pipelines waiting);
- push -> first job running: from ``git push`` through the post-receive hook until
  the API shows the job running, ``--runs`` times (goal: p50 and p99 within 1.2x of
  the baseline's).

The waiting pipelines are copies of one real pipeline, made through a push and
settled by the engine (its rows copied in the database: 10,000 pushes would take an
hour), so they are exactly what the engine finds after weeks of pushes.

    .venv/bin/python -m bench.waiting_pipelines [--waiting 10000] [--runs 30] [--idle 30]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import docker
import httpx
import psutil
import sqlalchemy as sa

from runners.base_images import ensure_busybox
from server.store.tables import jobs, pipelines
from tests.support.git import Repository
from tests.support.services import Deployment, RedisServer, ShipwayProcess
from tests.support.test_run import remove_job_containers, unique_name

SECRET = "bench-webhook-secret-0123456789"
FILE = (
    "image: {image}\nstages: [test, deploy]\njobs:\n"
    "  unit: {{stage: test, script: [echo ok]}}\n"
    "  deploy: {{stage: deploy, script: [echo deploying], when: manual, allow_failure: false}}\n"
)


def pushed(repository: Repository, n: int) -> int:
    repository.commit({"README": f"push {n}\n"}, f"bench {n}")
    match = re.search(r"created pipeline (\d+)", repository.push())
    if match is None:
        raise RuntimeError("the push made no pipeline")
    return int(match.group(1))


def job_of(api: httpx.Client, pipeline_id: int, name: str) -> dict[str, Any] | None:
    found = api.get(f"/api/pipelines/{pipeline_id}/jobs").json()
    return next((job for job in found if job["name"] == name and not job["retried"]), None)


def wait_for_status(
    api: httpx.Client, pipeline_id: int, statuses: set[str], timeout: float = 120
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = str(api.get(f"/api/pipelines/{pipeline_id}").json()["status"])
        if status in statuses:
            return status
        time.sleep(0.05)
    raise TimeoutError(f"pipeline {pipeline_id} not {statuses} within {timeout}s")


def push_to_running(api: httpx.Client, repository: Repository, n: int) -> float:
    """From the push until its first job runs (or has already ended)."""
    started = time.perf_counter()
    pipeline_id = pushed(repository, n)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = job_of(api, pipeline_id, "unit")
        if job is not None and job["status"] in ("running", "success", "failed"):
            took = time.perf_counter() - started
            wait_for_status(api, pipeline_id, {"manual"})  # parked, like the others
            return took
        time.sleep(0.01)
    raise TimeoutError(f"pipeline {pipeline_id}: its first job never ran")


def idle_cpu(server: ShipwayProcess, seconds: float) -> float:
    """The server's CPU over ``seconds`` with no request, as a share of one core."""
    process = psutil.Process(server.process.pid)
    before, started = process.cpu_times(), time.perf_counter()
    time.sleep(seconds)
    after, took = process.cpu_times(), time.perf_counter() - started
    return (after.user + after.system - before.user - before.system) / took


def copy_waiting(database: Path, template: int, copies: int) -> int:
    """``copies`` copies of the settled pipeline ``template`` and its jobs; how many
    pipelines wait on a manual job then."""
    engine = sa.create_engine(f"sqlite:///{database}", connect_args={"timeout": 60})
    with engine.begin() as conn:
        pipeline = dict(
            conn.execute(sa.select(pipelines).where(pipelines.c.id == template)).one()._mapping
        )
        its_jobs = [
            dict(row._mapping)
            for row in conn.execute(sa.select(jobs).where(jobs.c.pipeline_id == template))
        ]
        first = int(conn.execute(sa.select(sa.func.max(pipelines.c.id))).scalar_one()) + 1
        for start in range(0, copies, 1000):
            ids = range(first + start, first + min(start + 1000, copies))
            conn.execute(pipelines.insert(), [pipeline | {"id": i} for i in ids])
            conn.execute(
                jobs.insert(),
                [
                    {key: value for key, value in job.items() if key != "id"} | {"pipeline_id": i}
                    for i in ids
                    for job in its_jobs
                ],
            )
        query = sa.select(sa.func.count()).where(pipelines.c.status == "manual")
        waiting = int(conn.execute(query).scalar_one())
    engine.dispose()
    return waiting


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(
    api: httpx.Client,
    repository: Repository,
    server: ShipwayProcess,
    runs: int,
    idle: float,
    first: int,
) -> tuple[float, list[float]]:
    cpu = idle_cpu(server, idle)
    return cpu, [push_to_running(api, repository, first + n) for n in range(runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--idle", type=float, default=30.0)
    args = parser.parse_args()
    client = docker.from_env()
    image = ensure_busybox(client)
    with tempfile.TemporaryDirectory(prefix="shipway-bench-") as root_text:
        root = Path(root_text)
        redis_server = RedisServer.start(root)
        deployment = Deployment(root=root, redis_url=redis_server.url)
        server = deployment.start_server()
        runner = deployment.start_runner(unique_name("-runner-"))
        try:
            repository = Repository(root / "repo")
            repository.commit({".shipway.yml": FILE.format(image=image), "README": "start\n"})
            deployment.add_project("bench", repository.bare, "bench/app", SECRET, ["main"])
            with deployment.api() as api:
                template = pushed(repository, 0)
                wait_for_status(api, template, {"manual"})
                empty_cpu, empty = measure(api, repository, server, args.runs, args.idle, 1)
                started = time.perf_counter()
                waiting = copy_waiting(root / "server" / "shipway.db", template, args.waiting)
                filled = time.perf_counter() - started
                full_cpu, full = measure(
                    api, repository, server, args.runs, args.idle, 1 + args.runs
                )
        finally:
            runner.stop()
            server.stop()
            redis_server.stop()
            remove_job_containers(client)
            client.close()
    print(f"pipelines waiting on a manual job: {waiting} (copied in {filled:.1f} s)")
    print(
        f"  idle server CPU, {args.idle:.0f} s    empty {empty_cpu:6.1%}"
        f"   with them {full_cpu:6.1%}"
    )
    print("                                    goal: under 2% of a core with them")
    for name, share in (("p50", 0.5), ("p99", 0.99)):
        base, loaded = percentile(empty, share), percentile(full, share)
        print(
            f"  push -> first job running {name}   empty {base * 1000:6.0f} ms"
            f"   with them {loaded * 1000:6.0f} ms   {loaded / base:.2f}x   goal: at most 1.2x"
        )


if __name__ == "__main__":
    main()
