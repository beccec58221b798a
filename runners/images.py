"""Image jobs: build the three layers (or the repository's Dockerfile) and push.

Layers: the os image is a base the runner's engine has; the middleware image is
built from a Dockerfile generated from the pipeline file and tagged by a hash of
that Dockerfile and the base image's id, so every application and commit declaring
the same middleware shares one image, built once (found locally, or pulled from the
registry when another runner built it); the application image is FROM it and adds
one layer, the copied paths, plus metadata. It is tagged with the commit and pushed,
and its digest reported.

Builds go through the Docker SDK's classic builder (``client.api.build``): this
engine (dockerd 20.10) has BuildKit, but BuildKit is reached only through the CLI's
buildx plugin, which is not on these machines (``docker buildx`` is an unknown
command), and docker-py speaks only the classic protocol (docker/docker-py#2230).
README "Images" has the measurement.
"""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from pipelines.image_spec import app_dockerfile, middleware_dockerfile, middleware_tag
from pipelines.model import JobTask
from pipelines.status import FailureKind
from runners.executor import ExecutionResult
from runners.job_files import with_file
from runners.outages import DEFAULT_OUTAGE_PATIENCE_SECONDS
from runners.registry import RegistryUnreachable, registry_of, waiting_out_outages

MIDDLEWARE_REPOSITORY = "shipway-middleware"
APP_DOCKERFILE = ".shipway.Dockerfile"


class BuildFailed(Exception):
    def __init__(self, reason: str, kind: FailureKind) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class PushFailed(BuildFailed):
    """The engine reported an error while pushing: the registry's refusal, or the
    registry out of reach (then the push is tried again, see runners.registry)."""


@dataclass(frozen=True)
class PushedImage:
    repository: str
    tag: str
    digest: str
    middleware: str | None
    pushed_bytes: int
    app_layer_bytes: int | None
    runtime_mounts: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "middleware": self.middleware,
            "pushed_bytes": self.pushed_bytes,
            "app_layer_bytes": self.app_layer_bytes,
            "runtime_mounts": self.runtime_mounts,
        }


class ImageBuilder:
    """Builds and pushes the image of one image job on the engine ``client`` talks to."""

    def __init__(
        self,
        client: docker.DockerClient,
        registry: str,
        say: Callable[[str], None],
        cancel: threading.Event,
        outage_patience: float = DEFAULT_OUTAGE_PATIENCE_SECONDS,
    ) -> None:
        self.client = client
        self.registry = registry.rstrip("/")
        self.say = say
        self.cancel = cancel
        self.outage_patience = outage_patience  # how long a push waits out the registry

    def run(
        self, task: JobTask, context: Callable[[str | None], bytes]
    ) -> tuple[ExecutionResult, PushedImage | None]:
        """``context(folder)`` gives the commit's tree (or a folder of it) as a tar."""
        settings = task.settings or {}
        repository = f"{self.registry}/{settings.get('repository') or task.project}"
        labels = {
            "io.shipway.project": task.project,
            "io.shipway.commit": task.sha,
            "io.shipway.pipeline": str(task.pipeline_id),
        }
        deadline = time.monotonic() + task.timeout_seconds
        try:
            layers = settings.get("layers")
            if layers is not None:
                middleware = self._middleware(layers, deadline)
                dockerfile = app_dockerfile(middleware, layers["app"])
                self.say(f"Building the application layer of {repository}:{task.sha[:12]}\n")
                tree = with_file(context(None), APP_DOCKERFILE, dockerfile.encode())
                # No labels here: each is one more builder step (~70 ms, measured);
                # the tag is the commit and Shipway records the rest.
                self._build(tree, f"{repository}:{task.sha}", APP_DOCKERFILE, {}, deadline)
            else:
                middleware = None
                folder = settings.get("context")
                dockerfile_path = str(settings["dockerfile"])
                if folder is None:
                    folder = dockerfile_path.rpartition("/")[0] or None
                inside = _relative_to(dockerfile_path, folder)
                self.say(f"Building {repository}:{task.sha[:12]} from {dockerfile_path}\n")
                self._build(context(folder), f"{repository}:{task.sha}", inside, labels, deadline)
            app_bytes = self._app_layer_bytes(f"{repository}:{task.sha}", middleware)
            digest, pushed = self._push(repository, task.sha, deadline)
        except BuildFailed as failure:
            return ExecutionResult(None, failure.reason, failure.kind), None
        except RegistryUnreachable as exc:
            return ExecutionResult(None, str(exc), FailureKind.SYSTEM_FAILURE), None
        except docker.errors.APIError as exc:
            return ExecutionResult(None, f"docker: {exc.explanation}"), None
        self.say(f"Pushed {repository}:{task.sha[:12]} ({digest}), {pushed} bytes sent\n")
        image = PushedImage(
            repository,
            task.sha,
            digest,
            middleware,
            pushed,
            app_bytes,
            list(settings.get("runtime_mounts") or []),
        )
        return ExecutionResult(0), image

    def _middleware(self, layers: dict[str, Any], deadline: float) -> str:
        base = str(layers["os"])
        try:
            base_id = self.client.images.get(base).id
        except docker.errors.ImageNotFound:
            raise BuildFailed(
                f"the os image {base} is not on this runner (shipway images builds the base "
                "images)",
                FailureKind.SYSTEM_FAILURE,
            ) from None
        dockerfile = middleware_dockerfile(base, layers.get("middleware") or {})
        name = f"{self.registry}/{MIDDLEWARE_REPOSITORY}"
        tag = middleware_tag(str(base_id), dockerfile)
        image = f"{name}:{tag}"
        try:
            self.client.images.get(image)
            self.say(f"Middleware {image}: reused, built before\n")
            return image
        except docker.errors.ImageNotFound:
            pass
        try:
            self.client.images.pull(name, tag=tag)
            self.say(f"Middleware {image}: pulled from the registry, built by another runner\n")
            return image
        except docker.errors.APIError:
            pass
        self.say(f"Middleware {image}: building it once for every application that shares it\n")
        tree = with_file(_empty_tar(), "Dockerfile", dockerfile.encode())
        self._build(tree, image, "Dockerfile", {"io.shipway.layer": "middleware"}, deadline)
        self._push(name, tag, deadline)
        return image

    def _build(
        self, tree: bytes, tag: str, dockerfile: str, labels: dict[str, str], deadline: float
    ) -> None:
        """Build with the classic builder, streaming its output. Each label given is
        one more builder step."""
        stream = self.client.api.build(
            fileobj=io.BytesIO(tree),
            custom_context=True,
            dockerfile=dockerfile,
            tag=tag,
            labels=labels or None,
            rm=True,
            forcerm=True,
            decode=True,
        )
        for line in self._watched(stream, deadline):
            if "stream" in line:
                self.say(str(line["stream"]))
            elif "error" in line:
                raise BuildFailed(str(line["error"]).strip(), FailureKind.SCRIPT_FAILURE)

    def _push(self, repository: str, tag: str, deadline: float) -> tuple[str, int]:
        """Push, waiting out the registry's outages within the patience and the
        job's time; the digest and the bytes sent (layers the registry has cost none)."""

        def interrupt() -> None:
            if self.cancel.is_set():
                raise BuildFailed("canceled", FailureKind.SCRIPT_FAILURE)
            if time.monotonic() > deadline:
                raise BuildFailed("timed out waiting for the registry", FailureKind.TIMEOUT)

        return waiting_out_outages(
            registry_of(repository) or self.registry,
            lambda: self._push_once(repository, tag, deadline),
            (PushFailed, docker.errors.APIError),
            lambda text: self.say(text + "\n"),
            self.outage_patience,
            interrupt,
        )

    def _push_once(self, repository: str, tag: str, deadline: float) -> tuple[str, int]:
        sent: dict[str, int] = {}
        digest = ""
        stream = self.client.api.push(repository, tag=tag, stream=True, decode=True)
        for line in self._watched(stream, deadline):
            if "error" in line:
                raise PushFailed(f"push: {line['error']}", FailureKind.SYSTEM_FAILURE)
            layer = line.get("id")
            if line.get("status") == "Pushing" and layer:
                current = int(line.get("progressDetail", {}).get("current", 0))
                sent[layer] = max(sent.get(layer, 0), current)
            digest = str(line.get("aux", {}).get("Digest", digest))
        if not digest:
            raise BuildFailed("push: the registry reported no digest", FailureKind.SYSTEM_FAILURE)
        return digest, sum(sent.values())

    def _watched(
        self, stream: Iterator[dict[str, Any]], deadline: float
    ) -> Iterator[dict[str, Any]]:
        for line in stream:
            if self.cancel.is_set():
                raise BuildFailed("canceled", FailureKind.SCRIPT_FAILURE)
            if time.monotonic() > deadline:
                raise BuildFailed("timed out", FailureKind.TIMEOUT)
            yield line

    def _app_layer_bytes(self, image: str, middleware: str | None) -> int | None:
        """The size of what the application image adds to its middleware."""
        if middleware is None:
            return None
        ours = self.client.images.get(image).history()
        theirs = self.client.images.get(middleware).history()
        added = ours[: len(ours) - len(theirs)]
        return sum(int(entry.get("Size", 0)) for entry in added)


def _empty_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w"):
        pass
    return buffer.getvalue()


def _relative_to(path: str, folder: str | None) -> str:
    if not folder:
        return path
    prefix = folder.strip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path
