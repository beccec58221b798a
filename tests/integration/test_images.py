"""Image jobs on the real Docker Engine and a real registry (Debian's docker-registry):
three layers, a middleware built once and shared, a code-only change that pushes
only the application layer, and a repository's own Dockerfile."""

from __future__ import annotations

import io
import tarfile
import threading
import uuid
from typing import Any

import docker
import httpx
import pytest

from pipelines.model import GitRef, JobTask, RefKind
from runners.images import ImageBuilder
from tests.support.services import RegistryServer
from tests.support.test_run import RUN_LABELS

pytestmark = pytest.mark.docker

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def tree(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            out.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def image_task(project: str, sha: str, settings: dict[str, Any]) -> JobTask:
    return JobTask(
        job_id=1,
        pipeline_id=1,
        project=project,
        clone_url="/unused",
        sha=sha,
        ref=GitRef(RefKind.BRANCH, "main"),
        name="image",
        image="shipway/busybox:1",
        script=(),
        timeout_seconds=120,
        kind="image",
        settings=settings,
    )


def layers(marker: str) -> dict[str, Any]:
    return {
        "layers": {
            "os": "shipway/busybox:1",
            "middleware": {
                "packages": [],
                "run": [f"mkdir -p /opt/runtime && echo {marker} > /opt/runtime/version"],
                "env": {"RUNTIME_HOME": "/opt/runtime"},
            },
            "app": {
                "copy": ["app/"],
                "workdir": "/app",
                "command": ["sh", "run.sh"],
                "expose": [8000],
                "env": {},
            },
        },
        "runtime_mounts": [],
    }


@pytest.fixture
def marker(images_made: None) -> str:
    """A middleware unique to the test (images_made removes what it builds)."""
    return uuid.uuid4().hex[:10]


def build(
    client: docker.DockerClient, registry: RegistryServer, task: JobTask, files: dict[str, bytes]
) -> tuple[Any, Any, str]:
    log: list[str] = []
    builder = ImageBuilder(client, registry.address, log.append, threading.Event())
    result, image = builder.run(task, lambda folder: tree(files))
    return result, image, "".join(log)


def registry_digest(registry: RegistryServer, repository: str, tag: str) -> str:
    answer = httpx.head(
        f"http://{registry.address}/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST}
    )
    answer.raise_for_status()
    return answer.headers["Docker-Content-Digest"]


def test_three_layers_shared_middleware_and_code_only_pushes(
    docker_client: docker.DockerClient, busybox: str, registry: RegistryServer, marker: str
) -> None:
    files = {"app/run.sh": b"echo hello\n", "app/data.txt": b"x" * 200_000}
    first = image_task(f"app-{marker}", marker + "a" * 30, layers(marker))
    result, image, log = build(docker_client, registry, first, files)
    assert result.succeeded, log
    assert "building it once" in log
    assert image.digest == registry_digest(registry, f"app-{marker}", first.sha)
    built = docker_client.images.get(f"{registry.address}/app-{marker}:{first.sha}")
    middleware = docker_client.images.get(image.middleware)
    history = built.history()
    assert history[-len(middleware.history()) :] == middleware.history()  # FROM the middleware
    added = [entry for entry in history[: -len(middleware.history())] if entry["Size"]]
    assert len(added) == 1  # one layer...
    assert " COPY " in added[0]["CreatedBy"]  # ...the application's files
    run = docker_client.containers.run(str(built.id), remove=True, labels=RUN_LABELS)
    assert run == b"hello\n"

    # Another application declaring the same middleware reuses it.
    other = image_task(f"other-{marker}", marker + "b" * 30, layers(marker))
    result, second_image, log = build(
        docker_client, registry, other, {"app/run.sh": b"echo other\n"}
    )
    assert result.succeeded, log
    assert "reused" in log
    assert second_image.middleware == image.middleware

    # A code-only change: only the application layer travels.
    files["app/run.sh"] = b"echo changed\n"
    change = image_task(f"app-{marker}", marker + "c" * 30, layers(marker))
    result, changed, log = build(docker_client, registry, change, files)
    assert result.succeeded, log
    assert changed.middleware == image.middleware
    assert changed.app_layer_bytes is not None
    assert changed.pushed_bytes <= 1.05 * changed.app_layer_bytes


def test_a_repository_may_bring_its_own_dockerfile(
    docker_client: docker.DockerClient, busybox: str, registry: RegistryServer, marker: str
) -> None:
    files = {
        "Dockerfile": b'FROM shipway/busybox:1\nCOPY hello.txt /\nCMD ["cat", "/hello.txt"]\n',
        "hello.txt": b"own dockerfile\n",
    }
    task = image_task(f"own-{marker}", marker + "d" * 30, {"dockerfile": "Dockerfile"})
    result, image, log = build(docker_client, registry, task, files)
    assert result.succeeded, log
    assert image.middleware is None
    run = docker_client.containers.run(
        f"{registry.address}/own-{marker}:{task.sha}", remove=True, labels=RUN_LABELS
    )
    assert run == b"own dockerfile\n"


def test_a_failing_build_step_fails_the_job_with_its_message(
    docker_client: docker.DockerClient, busybox: str, registry: RegistryServer, marker: str
) -> None:
    settings = layers(marker)
    settings["layers"]["middleware"]["run"] = [f"echo {marker}; exit 9"]
    task = image_task(f"bad-{marker}", marker + "e" * 30, settings)
    result, image, _ = build(docker_client, registry, task, {"app/run.sh": b""})
    assert image is None
    assert not result.succeeded
    assert "returned a non-zero code: 9" in (result.failure_reason or "")


def test_a_missing_os_image_is_named(
    docker_client: docker.DockerClient, registry: RegistryServer, marker: str
) -> None:
    settings = layers(marker)
    settings["layers"]["os"] = "shipway/absent:1"
    result, image, _ = build(docker_client, registry, image_task("x", marker * 4, settings), {})
    assert image is None
    assert "the os image shipway/absent:1 is not on this runner" in (result.failure_reason or "")
