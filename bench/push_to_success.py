"""How long from ``git push`` to a green one-job pipeline, against doing it by hand.

Starts its own Redis, Shipway server and one runner (real processes, free ports),
then alternates, run by run:

- Shipway: commit, ``git push`` through the post-receive hook, poll the API until the
  pipeline is ``success``;
- by hand: ``git clone`` of the same repository and ``docker run --rm`` of the same
  image and script.

It prints medians (with min and max), the ratio of the medians and the median of the
per-pair ratios (goal: at most 1.1x), push -> job running at p50 and p99 (goal: p99
under 200 ms), where the Shipway time goes, and how fast the webhook answers (GitLab
gives up after 10 s).

After each Shipway run it waits until the runner's pre-started container for the
next job runs (``runners.spares``): the runner starts it once the job's result is
reported, and the by-hand run must not share the engine with that start. A push
that finds no spare (the first of an image on a runner) pays the container's start
as the by-hand run does.

    .venv/bin/python -m bench.push_to_success [--runs 20]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import httpx

from runners.base_images import ensure_busybox
from runners.job_containers import LABEL_RUNNER, LABEL_SPARE
from tests.support.git import Repository
from tests.support.services import Deployment, RedisServer
from tests.unit.test_events import push_payload

SECRET = "bench-webhook-secret-0123456789"
SCRIPT = ["cat README", "echo done"]


def pipeline_file(image: str) -> str:
    lines = "\n".join(f"      - {line}" for line in SCRIPT)
    return f"image: {image}\njobs:\n  unit:\n    script:\n{lines}\n"


def shipway_run(
    deployment: Deployment, api: httpx.Client, repository: Repository, n: int
) -> tuple[float, float, dict[str, Any]]:
    """Seconds from the push to success and to the job running, and the pipeline."""
    repository.commit({"README": f"run {n}\n"}, f"bench {n}")
    pushed_at = datetime.now(UTC)  # the server's timestamps are the same clock's
    started = time.perf_counter()
    output = repository.push()
    match = re.search(r"created pipeline (\d+)", output)
    if match is None:
        raise RuntimeError(f"the push started no pipeline:\n{output}")
    pipeline_id = int(match.group(1))
    while True:
        pipeline: dict[str, Any] = api.get(f"/api/pipelines/{pipeline_id}").json()
        if pipeline["status"] == "success":
            total = time.perf_counter() - started
            running = datetime.fromisoformat(pipeline["jobs"][0]["started_at"]) - pushed_at
            return total, running.total_seconds(), pipeline
        if pipeline["status"] in ("failed", "canceled", "skipped"):
            raise RuntimeError(f"pipeline {pipeline_id} ended {pipeline['status']}: {pipeline}")
        time.sleep(0.01)


def spare_started(client: docker.DockerClient, runner_name: str, timeout: float = 30) -> None:
    """Wait until the runner's pre-started container for its next job runs."""
    filters: dict[str, str | list[str] | bool] = {
        "label": [f"{LABEL_RUNNER}={runner_name}", LABEL_SPARE],
        "status": "running",
    }
    deadline = time.monotonic() + timeout
    while not client.containers.list(filters=filters, sparse=True):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no spare of {runner_name} runs after {timeout}s")
        time.sleep(0.01)


def by_hand_run(repository: Repository, image: str) -> float:
    with tempfile.TemporaryDirectory() as workdir:
        started = time.perf_counter()
        subprocess.run(
            ["git", "clone", "--quiet", str(repository.bare), f"{workdir}/w"], check=True
        )
        subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "-v",
                f"{workdir}/w:/workspace",
                "-w",
                "/workspace",
                image,
                "sh",
                "-c",
                "; ".join(SCRIPT),
            ],
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started


def phases(pipeline: dict[str, Any], total: float) -> str:
    def at(value: str) -> datetime:
        return datetime.fromisoformat(value)

    job = pipeline["jobs"][0]
    created, started = at(pipeline["created_at"]), at(job["started_at"])
    job_done, done = at(job["finished_at"]), at(pipeline["finished_at"])
    pushed = total - (done - created).total_seconds()
    return (
        f"git push and hook until the pipeline is stored ~{pushed:.3f}s, "
        f"stored -> job started {(started - created).total_seconds():.3f}s, "
        f"job ran {(job_done - started).total_seconds():.3f}s, "
        f"job end -> pipeline success {(done - job_done).total_seconds():.3f}s"
    )


def webhook_latency(deployment: Deployment, project_path: str, deliveries: int = 50) -> list[float]:
    payload = push_payload(
        ref="refs/heads/bench-skipped", project={"path_with_namespace": project_path}
    )
    timings = []
    with httpx.Client(base_url=deployment.url, timeout=10) as client:
        for _ in range(deliveries):
            headers = {
                "Content-Type": "application/json",
                "X-Gitlab-Event": "Push Hook",
                "X-Gitlab-Token": SECRET,
                "Idempotency-Key": str(uuid.uuid4()),
                "X-Gitlab-Event-UUID": str(uuid.uuid4()),
            }
            started = time.perf_counter()
            response = client.post("/webhooks/gitlab", json=payload, headers=headers)
            timings.append(time.perf_counter() - started)
            response.raise_for_status()
    return timings


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.3f}s  (min {min(values):.3f}s, max {max(values):.3f}s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    client = docker.from_env()
    image = ensure_busybox(client)
    runner_name = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="shipway-bench-") as root_text:
        root = Path(root_text)
        redis_server = RedisServer.start(root)
        deployment = Deployment(root=root, redis_url=redis_server.url)
        server = deployment.start_server()
        runner = deployment.start_runner(runner_name)
        try:
            repository = Repository(root / "repo")
            repository.commit({".shipway.yml": pipeline_file(image), "README": "start\n"})
            deployment.add_project("bench", repository.bare, "bench/app", SECRET, ["main"])
            with deployment.api() as api:
                shipway_run(deployment, api, repository, 0)  # warm-up: mirrors, image, imports
                spare_started(client, runner_name)
                by_hand_run(repository, image)
                shipway_times, hand_times, running_times, pipelines = [], [], [], []
                for n in range(1, runs + 1):
                    seconds, running, pipeline = shipway_run(deployment, api, repository, n)
                    shipway_times.append(seconds)
                    running_times.append(running)
                    pipelines.append(pipeline)
                    spare_started(client, runner_name)
                    hand_times.append(by_hand_run(repository, image))
            webhook = webhook_latency(deployment, "bench/app")
        finally:
            runner.stop()
            server.stop()
            redis_server.stop()
            for container in client.containers.list(
                all=True, filters={"label": f"{LABEL_RUNNER}={runner_name}"}
            ):
                container.remove(force=True)
            client.close()
    ratios = [a / b for a, b in zip(shipway_times, hand_times, strict=True)]
    median_time = sorted(shipway_times)[len(shipway_times) // 2]
    median_run = pipelines[shipway_times.index(median_time)]
    print(f"push to success, one job, {runs} runs each, interleaved")
    print(f"  shipway  {summary(shipway_times)}")
    print(f"  by hand  {summary(hand_times)}   (git clone + docker run --rm)")
    ratio = statistics.median(shipway_times) / statistics.median(hand_times)
    print(
        f"  ratio of medians {ratio:.2f}x, "
        f"median of pair ratios {statistics.median(ratios):.2f}x   goal: at most 1.1x"
    )
    running_ms = sorted(t * 1000 for t in running_times)
    print(
        f"  push -> job running p50 {statistics.median(running_ms):.0f} ms, "
        f"p99 {percentile(running_ms, 0.99):.0f} ms, max {running_ms[-1]:.0f} ms   "
        "goal: p99 under 200 ms"
    )
    print(f"  where a median run goes: {phases(median_run, median_time)}")
    webhook_ms = sorted(t * 1000 for t in webhook)
    median_ms = statistics.median(webhook_ms)
    print(
        f"webhook answer, {len(webhook)} deliveries: median {median_ms:.1f} ms, "
        f"p99 {percentile(webhook_ms, 0.99):.1f} ms   goal: well under 1 s "
        "(GitLab gives up after 10 s)"
    )


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted values (with 20 runs, p99 is the worst)."""
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
