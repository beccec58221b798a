"""A job that installs Python packages into a virtualenv, run again with and without
a dependency cache (``cache:`` keyed by the lock file, the virtualenv as its path).

Nothing is downloaded inside the jobs: containers here cannot verify PyPI's
certificate (the machine's TLS proxy), so the host's pip downloads the wheels of
Shipway's own runtime dependencies once, and the repository carries them with the
lock file (``pip install --no-index --find-links wheels``). What a cache saves here
is creating the virtualenv and installing the wheels; against a real index it would
also save the downloads. The job runs in ``shipway/python:3.11`` (Debian's python3
and python3-venv on ``shipway/debian:bookworm``, built here when missing).

Starts its own Redis, Shipway server and one runner, three projects whose only
difference is the pipeline file's ``cache:``, then, run by run, pushes a change to
each (interleaved) and times ``git push`` -> pipeline ``success`` and the job:

- no cache: the virtualenv is made and filled every time;
- ``pull-push`` (GitLab's default): restored before the script, saved after it;
- ``pull``: restored only (the cache made by a first pipeline with ``pull-push``).

    .venv/bin/python -m bench.dependency_cache [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx

from runners.base_images import RECIPE_LABEL, ensure_debian
from runners.job_containers import LABEL_RUNNER
from tests.support.git import Repository
from tests.support.services import Deployment, RedisServer

SECRET = "bench-webhook-secret-0123456789"
PYTHON_IMAGE = "shipway/python:3.11"
PYTHON_DOCKERFILE = """FROM shipway/debian:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
    python3 python3-venv && rm -rf /var/lib/apt/lists/*
LABEL {label}={recipe}
"""
# Shipway's runtime dependencies, pinned at the versions this environment runs.
PACKAGES = (
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "psycopg-binary",
    "rq",
    "redis",
    "docker",
    "httpx",
    "pyyaml",
    "pydantic",
    "cryptography",
    "defusedxml",
    "jinja2",
    "prometheus-client",
    "python-gitlab",
    "etcd3gw",
    "requests",
)
SCRIPT = [
    "[ -x .venv/bin/python ] || python3 -m venv .venv",
    ".venv/bin/pip install --quiet --no-index --find-links wheels -r requirements.lock",
    ".venv/bin/python -c 'import starlette, sqlalchemy, pydantic, cryptography, gitlab'",
]
VARIANTS = ("no cache", "pull-push", "pull")


def ensure_python_image(client: docker.DockerClient) -> str:
    recipe = "python-v1-bookworm-python3-venv"
    try:
        if (client.images.get(PYTHON_IMAGE).labels or {}).get(RECIPE_LABEL) == recipe:
            return PYTHON_IMAGE
    except docker.errors.ImageNotFound:
        pass
    ensure_debian(client)
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        data = PYTHON_DOCKERFILE.format(label=RECIPE_LABEL, recipe=recipe).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    for line in client.api.build(
        fileobj=context, custom_context=True, tag=PYTHON_IMAGE, rm=True, forcerm=True, decode=True
    ):
        if "error" in line:
            raise RuntimeError(f"building {PYTHON_IMAGE} failed: {line['error']}")
    return PYTHON_IMAGE


def download_wheels(folder: Path) -> str:
    """The wheels of :data:`PACKAGES` and their dependencies; returns the lock file
    (every wheel pinned)."""
    pins = [f"{name}=={metadata.version(name)}" for name in PACKAGES]
    # pip evaluates markers with the host's Python (3.11.x, x >= 3): Debian's 3.11.2
    # also needs what redis requires below 3.11.3.
    pins.append("async-timeout>=4.0.3")
    downloaded = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:"),
            *("--python-version", "3.11", "--dest", str(folder), *pins),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if downloaded.returncode != 0:
        raise RuntimeError(f"pip could not download the wheels: {downloaded.stderr}")
    locked = sorted("{}=={}".format(*wheel.name.split("-")[:2]) for wheel in folder.glob("*.whl"))
    return "\n".join(locked) + "\n"


def pipeline_file(image: str, policy: str | None) -> str:
    lines = [f"image: {image}", "jobs:", "  install:", "    script:"]
    lines += [f'      - "{command}"' for command in SCRIPT]
    if policy is not None:
        lines += [
            "    cache:",
            "      key: {files: [requirements.lock], prefix: venv}",
            "      paths: [.venv]",
            f"      policy: {policy}",
        ]
    return "\n".join(lines) + "\n"


def push_and_wait(api: httpx.Client, repository: Repository) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    output = repository.push()
    match = re.search(r"created pipeline (\d+)", output)
    if match is None:
        raise RuntimeError(f"the push started no pipeline:\n{output}")
    pipeline_id = int(match.group(1))
    while True:
        pipeline: dict[str, Any] = api.get(f"/api/pipelines/{pipeline_id}").json()
        if pipeline["status"] == "success":
            return time.perf_counter() - started, pipeline
        if pipeline["status"] in ("failed", "canceled", "skipped"):
            job = pipeline["jobs"][0]
            log = api.get(f"/api/jobs/{job['id']}/log").text
            raise RuntimeError(f"pipeline {pipeline_id} ended {pipeline['status']}:\n{log}")
        time.sleep(0.05)


def job_seconds(pipeline: dict[str, Any]) -> float:
    job = pipeline["jobs"][0]
    started = datetime.fromisoformat(job["started_at"])
    return (datetime.fromisoformat(job["finished_at"]) - started).total_seconds()


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f}s  ({min(values):.2f} - {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    client = docker.from_env()
    image = ensure_python_image(client)
    runner_name = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="shipway-bench-") as root_text:
        root = Path(root_text)
        wheels = root / "wheels"
        lock = download_wheels(wheels)
        wheel_bytes = sum(path.stat().st_size for path in wheels.iterdir())
        redis_server = RedisServer.start(root)
        deployment = Deployment(root=root, redis_url=redis_server.url)
        server = deployment.start_server()
        runner = deployment.start_runner(runner_name)
        totals: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        jobs: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        last: dict[str, dict[str, Any]] = {}
        try:
            repositories: dict[str, Repository] = {}
            for index, variant in enumerate(VARIANTS):
                repository = Repository(root / f"project-{index}")
                shutil.copytree(wheels, repository.work / "wheels")
                policy = None if variant == "no cache" else "pull-push"
                repository.commit(
                    {".shipway.yml": pipeline_file(image, policy), "requirements.lock": lock}
                )
                name = f"bench{index}"
                deployment.add_project(name, repository.bare, f"bench/{name}", SECRET, ["main"])
                repositories[variant] = repository
            with deployment.api() as api:
                for repository in repositories.values():
                    push_and_wait(api, repository)  # the first run: it makes the cache
                repositories["pull"].commit({".shipway.yml": pipeline_file(image, "pull")})
                for run in range(1, runs + 1):
                    for variant, repository in repositories.items():
                        repository.commit({"README": f"run {run}\n"})
                        seconds, pipeline = push_and_wait(api, repository)
                        totals[variant].append(seconds)
                        jobs[variant].append(job_seconds(pipeline))
                        last[variant] = pipeline
                cached_log = api.get(f"/api/jobs/{last['pull-push']['jobs'][0]['id']}/log").text
        finally:
            runner.stop()
            server.stop()
            redis_server.stop()
            for container in client.containers.list(
                all=True, filters={"label": f"{LABEL_RUNNER}={runner_name}"}
            ):
                container.remove(force=True)
            client.close()
        cache_files = list((root / "runner-cache" / "caches").rglob("*.tar"))
        cache_bytes = max(path.stat().st_size for path in cache_files)
    packages = len(lock.splitlines())
    print(
        f"a second run of a job installing {packages} packages ({wheel_bytes / 1e6:.1f} MB of "
        f"wheels) into a virtualenv; cache {cache_bytes / 1e6:.1f} MB; {runs} runs each"
    )
    print(f"{'':12}{'push -> success (median, min - max)':38}job (median, min - max)")
    for variant in VARIANTS:
        print(f"  {variant:10}{summary(totals[variant]):38}{summary(jobs[variant])}")
    base = statistics.median(totals["no cache"])
    for variant in VARIANTS[1:]:
        # The three variants of a run follow each other: the ratio within a run
        # compares them under the same load; its median is the figure to trust on a
        # busy machine.
        pairs = [a / b for a, b in zip(totals[variant], totals["no cache"], strict=True)]
        print(
            f"  {variant} / no cache, push -> success: ratio of medians "
            f"{statistics.median(totals[variant]) / base:.2f}x, median of run ratios "
            f"{statistics.median(pairs):.2f}x, fastest / fastest "
            f"{min(totals[variant]) / min(totals['no cache']):.2f}x"
        )
    print("the last pull-push run's log:")
    print("    " + cached_log.strip().replace("\n", "\n    "))


if __name__ == "__main__":
    main()
