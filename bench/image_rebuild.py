"""A code-only change: rebuild and push its image, three ways, in one run.

- Shipway: the image job's builder (``runners.images.ImageBuilder``): the middleware
  image exists (built for an earlier commit), so only the application layer is built
  and pushed;
- (a) a hand-written, well-layered Dockerfile (runtime first, code last) with a warm
  build cache, built and pushed the same way (the SDK's classic builder);
- (b) a naive single-layer Dockerfile (the code copied first, the runtime installed
  after it, in one step), so every change rebuilds and pushes everything.

The "runtime" stands for a middleware install: ~40 MB of compressed files, made by a
command that takes a few seconds, offline. Each run changes one source file.
Prints medians, the ratios to (a) (goal: at most 1.1x) and (b) (goal: at most 0.3x),
and the bytes Shipway's push sent against the application layer (goal: at most
1.05x). Uses its own registry (Debian's docker-registry) on a free port.

    .venv/bin/python -m bench.image_rebuild [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from pipelines.model import GitRef, JobTask, RefKind
from runners.base_images import ensure_busybox
from runners.images import ImageBuilder
from tests.support.services import RegistryServer

RUNTIME = (
    "mkdir -p /opt/runtime && for i in 1 2 3 4 5; do "
    "head -c 8000000 /dev/urandom | gzip -1 > /opt/runtime/lib$i.gz; done"
)
LAYERED = f'FROM {{base}}\nRUN {RUNTIME}\nCOPY src/ /app/\nWORKDIR /app\nCMD ["sh", "main.sh"]\n'
NAIVE = f'FROM {{base}}\nCOPY src/ /app/\nRUN {RUNTIME}\nWORKDIR /app\nCMD ["sh", "main.sh"]\n'


def source_files(change: str) -> dict[str, bytes]:
    """The application's sources; ``change`` differs on every build, so no build
    cache and no layer already pushed can make one variant look faster."""
    files = {f"src/module{i}.sh": f"# module {i}\n".encode() * 2000 for i in range(20)}
    files["src/main.sh"] = f"echo build {change}\n".encode()
    return files


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            out.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def shipway_build(
    client: docker.DockerClient, registry: str, tag: str, run: int
) -> tuple[float, int, int]:
    task = JobTask(
        job_id=run,
        pipeline_id=run,
        project="bench-shipway",
        clone_url="/unused",
        sha=tag,
        ref=GitRef(RefKind.BRANCH, "main"),
        name="image",
        image="",
        script=(),
        timeout_seconds=600,
        kind="image",
        settings={
            "layers": {
                "os": "shipway/busybox:1",
                "middleware": {"packages": [], "run": [RUNTIME], "env": {}},
                "app": {"copy": ["src/"], "workdir": "/app", "command": ["sh", "main.sh"]},
            },
            "runtime_mounts": [],
        },
    )
    builder = ImageBuilder(client, registry, lambda _: None, threading.Event())
    files = source_files(f"shipway {tag}")
    started = time.perf_counter()
    result, image = builder.run(task, lambda _folder: tar_of(files))
    elapsed = time.perf_counter() - started
    if image is None or image.app_layer_bytes is None:
        raise RuntimeError(f"shipway build failed: {result.failure_reason}")
    return elapsed, image.pushed_bytes, image.app_layer_bytes


def dockerfile_build(
    client: docker.DockerClient, registry: str, name: str, dockerfile: str, tag: str, run: int
) -> tuple[float, int]:
    files = {
        **source_files(f"{name} {tag}"),
        "Dockerfile": dockerfile.format(base="shipway/busybox:1").encode(),
    }
    builder = ImageBuilder(client, registry, lambda _: None, threading.Event())
    started = time.perf_counter()
    repository = f"{registry}/{name}"
    builder._build(tar_of(files), f"{repository}:{tag}", "Dockerfile", {}, time.monotonic() + 600)
    _, pushed = builder._push(repository, tag, time.monotonic() + 600)
    return time.perf_counter() - started, pushed


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    client = docker.from_env()
    ensure_busybox(client)
    with tempfile.TemporaryDirectory(prefix="shipway-bench-") as workdir:
        registry = RegistryServer.start(Path(workdir) / "registry")
        try:
            run_id = uuid.uuid4().hex[:8]

            def tag(run: int) -> str:
                return f"{run_id}-{run}"

            # Warm-up (not timed): the middleware and the layered cache exist, as
            # after an earlier commit.
            shipway_build(client, registry.address, tag(0), 0)
            dockerfile_build(client, registry.address, "bench-layered", LAYERED, tag(0), 0)
            dockerfile_build(client, registry.address, "bench-naive", NAIVE, tag(0), 0)
            times: dict[str, list[float]] = {"shipway": [], "layered": [], "naive": []}
            sent: dict[str, list[float]] = {"shipway": [], "layered": [], "naive": [], "app": []}
            steps: list[tuple[str, Callable[[int], tuple[float, int]]]] = [
                ("shipway", lambda run: _shipway(client, registry.address, tag(run), run, sent)),
                (
                    "layered",
                    lambda run: dockerfile_build(
                        client, registry.address, "bench-layered", LAYERED, tag(run), run
                    ),
                ),
                (
                    "naive",
                    lambda run: dockerfile_build(
                        client, registry.address, "bench-naive", NAIVE, tag(run), run
                    ),
                ),
            ]
            for run in range(1, args.runs + 1):
                for name, step in steps:
                    elapsed, pushed = step(run)
                    times[name].append(elapsed)
                    sent[name].append(pushed)
        finally:
            registry.stop()
            made = [
                made_tag
                for image in client.images.list()
                for made_tag in image.tags
                if registry.address in made_tag
            ]
            for made_tag in made:
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(made_tag, force=True)
    shipway, layered, naive = (median(times[key]) for key in ("shipway", "layered", "naive"))
    print(f"code-only change, rebuild and push, {args.runs} runs each, interleaved")
    for key, label in (
        ("shipway", "Shipway (three layers)"),
        ("layered", "(a) hand-written layered, warm cache"),
        ("naive", "(b) naive single layer"),
    ):
        print(
            f"  {label:40} median {median(times[key]):.3f}s "
            f"(min {min(times[key]):.3f}s, max {max(times[key]):.3f}s), "
            f"pushed {median(sent[key]) / 1e6:.2f} MB"
        )
    print(f"  Shipway / (a): {shipway / layered:.2f}x   goal: at most 1.1x")
    print(f"  Shipway / (b): {shipway / naive:.2f}x   goal: at most 0.3x")
    ratio = median(sent["shipway"]) / median(sent["app"])
    print(
        f"  Shipway pushed {median(sent['shipway']):.0f} bytes for an application layer of "
        f"{median(sent['app']):.0f} bytes: {ratio:.3f}x   goal: at most 1.05x"
    )


def _shipway(
    client: docker.DockerClient, registry: str, tag: str, run: int, sent: dict[str, list[float]]
) -> tuple[float, int]:
    elapsed, pushed, app_layer = shipway_build(client, registry, tag, run)
    sent["app"].append(app_layer)
    return elapsed, pushed


if __name__ == "__main__":
    main()
