"""Runs one job's script in a container of the job's image.

Lifecycle of a job's container, whatever happens in between:
create (labelled with the job and the runner) -> attach its stdin -> start -> send
the workspace, the script and the secrets as one tar stream, which the container
unpacks with ``tar`` before it runs the script (``runners.job_files``) -> stream its
output -> wait -> remove.

Why stdin and not ``put_archive`` or a bind mount: ``put_archive`` costs ~45 ms of
the engine's per call (it re-executes dockerd to unpack) and made each job ~100 ms
slower, measured; a bind mount needs the runner's paths to be the engine host's
(not so for a runner in a container) and leaves files the job's root user made.
The stream needs only ``sh`` and ``tar`` in the image, which every image that can
run a shell script has. The workspace lives only inside the container, so removing
the container removes the workspace too; a runner that died mid-job leaves labelled
containers that :meth:`DockerExecutor.reap` removes when the runner starts again.

Docker errors are translated here, at the edge: callers see an
:class:`ExecutionResult` with a reason, or :class:`ExternalError` when the engine
itself cannot be reached. An engine that goes away in the middle of a job (stopped,
restarted) fails the job with that reason; the container it could not remove then
is removed when the next job of the runner starts.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import docker
import docker.errors
import requests
import urllib3
from docker.models.containers import Container

from pipelines.errors import ExternalError
from pipelines.model import JobTask
from pipelines.status import FailureKind
from runners.collect import collect
from runners.job_files import UNPACK_AND_RUN, WORKSPACE, job_tree, render_script

log = logging.getLogger(__name__)

LABEL_JOB = "io.shipway.job"
LABEL_RUNNER = "io.shipway.runner"
LABEL_INSTALLATION = "io.shipway.installation"
# The SDK talks to the engine through requests and urllib3: these say that the engine
# did not answer (or stopped answering mid-stream), not that it refused something.
ENGINE_UNREACHABLE = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError)


def docker_client() -> docker.DockerClient:
    """A client of the engine ``DOCKER_HOST`` names (the local one by default);
    ExternalError when it does not answer."""
    try:
        return docker.from_env()
    except docker.errors.DockerException as exc:
        raise ExternalError(f"the Docker Engine is unreachable: {exc}") from exc


@dataclass(frozen=True)
class ExecutionResult:
    exit_code: int | None
    failure_reason: str | None = None  # set when the script did not simply exit
    failure_kind: FailureKind | None = None  # when a reason alone does not say it
    reports: dict[str, bytes] = field(default_factory=dict)  # workspace path -> content

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and self.failure_reason is None

    @property
    def failure(self) -> FailureKind | None:
        """Why it failed, as retry rules name it; None when it succeeded."""
        if self.succeeded:
            return None
        if self.failure_kind is not None:
            return self.failure_kind
        if self.failure_reason is None:
            return FailureKind.SCRIPT_FAILURE
        return FailureKind.SYSTEM_FAILURE


def _raw_socket(attached: object) -> socket.socket:
    """The socket under what ``attach_socket`` returns (a SocketIO on unix and TCP)."""
    raw = getattr(attached, "_sock", attached)
    if not isinstance(raw, socket.socket):
        raise ExternalError("this Docker connection cannot stream a workspace to a job")
    return raw


@dataclass(frozen=True)
class ContainerOwner:
    """Whose job containers these are: a runner of one installation. Two Shipway
    installations on one engine (the demo and the tests, say) may name a runner
    alike; a runner only ever touches containers that carry both its labels."""

    runner: str
    installation: str

    def labels(self) -> dict[str, str]:
        return {LABEL_RUNNER: self.runner, LABEL_INSTALLATION: self.installation}

    def label_filters(self) -> list[str]:
        return [f"{key}={value}" for key, value in self.labels().items()]


class DockerExecutor:
    """Executes jobs on the Docker Engine the client talks to."""

    def __init__(
        self,
        client: docker.DockerClient,
        owner: ContainerOwner,
        after_script: Callable[[Container, ExecutionResult], None] | None = None,
    ) -> None:
        self.client = client
        self.owner = owner
        # Called with the stopped container before it is removed, unless the job was
        # canceled: dependency caches are saved there (runners.caches).
        self.after_script = after_script

    def run(
        self,
        task: JobTask,
        workspace: Callable[[], bytes],
        on_output: Callable[[bytes], None],
        cancel: threading.Event,
        collect_globs: Sequence[str] = (),
        secrets: Mapping[str, str] | None = None,
    ) -> ExecutionResult:
        """Run the task's script in a workspace made of the tar ``workspace()``
        returns (paths under ``workspace/``); files matching ``collect_globs`` are
        read from the workspace once the script ended (``ExecutionResult.reports``).
        ``workspace`` is called once the container is starting, so a caller can
        fetch the source meanwhile; what it raises
        propagates, after the container is removed. ``secrets`` reach the script as
        environment variables by way of the stdin stream, never the container's
        configuration (see ``runners.job_files``).

        Returns when the script ended, timed out or was canceled; the container is
        removed before this returns (or, when the engine went away, once the next
        job of this runner starts)."""
        try:
            self._remove_leftovers()
            return self._run(task, workspace, on_output, cancel, collect_globs, secrets or {})
        except ENGINE_UNREACHABLE as exc:
            return ExecutionResult(None, f"the Docker Engine became unreachable: {exc}")

    def _run(
        self,
        task: JobTask,
        workspace: Callable[[], bytes],
        on_output: Callable[[bytes], None],
        cancel: threading.Event,
        collect_globs: Sequence[str],
        secrets: Mapping[str, str],
    ) -> ExecutionResult:
        missing = self._ensure_image(task.image)
        if missing is not None:
            return ExecutionResult(None, missing)
        try:
            # The low-level call, since only with detach=False does the SDK set
            # StdinOnce: the container's stdin closes when the runner's does.
            created = self.client.api.create_container(
                task.image,
                entrypoint=["/bin/sh", "-c", UNPACK_AND_RUN],
                working_dir=WORKSPACE,
                environment=task.environment(),
                labels={LABEL_JOB: str(task.job_id), **self.owner.labels()},
                stdin_open=True,
                detach=False,
            )
            container = self.client.containers.get(created["Id"])
        except docker.errors.APIError as exc:
            return ExecutionResult(None, f"could not create the container: {exc.explanation}")
        try:
            script = render_script(task.script)
            attached = container.attach_socket(params={"stdin": 1, "stream": 1})
            stdin = _raw_socket(attached)
            try:
                container.start()  # ~0.2 s: the source is fetched meanwhile
                tree = job_tree(workspace(), script, secrets)
                # A container that ends before reading (no tar, say) breaks the pipe;
                # its output and exit code, collected below, say why.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    stdin.sendall(tree)
                    stdin.shutdown(socket.SHUT_WR)
            finally:
                attached.close()
                stdin.close()
            result = self._follow(container, task.timeout_seconds, on_output, cancel)
            if collect_globs and result.failure_reason != "canceled":
                result = replace(result, reports=collect(container, list(collect_globs)))
            if self.after_script is not None and result.failure_reason != "canceled":
                self.after_script(container, result)
            return result
        except ENGINE_UNREACHABLE:
            raise  # said by run()
        except (docker.errors.APIError, OSError) as exc:
            reason = exc.explanation if isinstance(exc, docker.errors.APIError) else str(exc)
            return ExecutionResult(None, f"docker: {reason}")
        finally:
            self._remove(container)

    def _follow(
        self,
        container: Container,
        timeout_seconds: int,
        on_output: Callable[[bytes], None],
        cancel: threading.Event,
    ) -> ExecutionResult:
        stopped_because: list[tuple[str, FailureKind | None]] = []
        done = threading.Event()

        def watchdog() -> None:
            deadline = time.monotonic() + timeout_seconds
            while not done.wait(0.2):
                stop: tuple[str, FailureKind | None] | None = None
                if cancel.is_set():
                    stop = ("canceled", None)
                elif time.monotonic() >= deadline:
                    stop = (f"timed out after {timeout_seconds}s", FailureKind.TIMEOUT)
                if stop is not None:
                    stopped_because.append(stop)
                    with contextlib.suppress(docker.errors.APIError):
                        container.kill()  # fails only if it ended on its own meanwhile
                    return

        guard = threading.Thread(target=watchdog, name=f"watchdog-{container.short_id}")
        guard.start()
        try:
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                on_output(chunk)
            exit_code = int(container.wait()["StatusCode"])
        finally:
            done.set()
            guard.join()
        if stopped_because:
            reason, kind = stopped_because[0]
            return ExecutionResult(exit_code, reason, kind)
        return ExecutionResult(exit_code)

    def _ensure_image(self, image: str) -> str | None:
        try:
            self.client.images.get(image)
            return None
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise ExternalError(f"docker engine: {exc.explanation}") from exc
        try:
            self.client.images.pull(image)
            return None
        except docker.errors.APIError as exc:
            return f"image {image} is not on this runner and could not be pulled: {exc.explanation}"

    def _remove_leftovers(self) -> None:
        """Containers earlier jobs of this runner left, their engine gone before they
        could be removed. A runner runs one job at a time, so none of them is live."""
        try:
            removed = self.reap()
        except ExternalError as exc:
            log.warning("containers earlier jobs left stay for now: %s", exc)
            return
        if removed:
            log.warning("removed %d containers earlier jobs left behind", removed)

    def _remove(self, container: Container) -> None:
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise ExternalError(f"could not remove container {container.short_id}") from exc
        except ENGINE_UNREACHABLE as exc:
            # Nothing to wait for here: the next job's start removes it (reap).
            log.warning("container %s stays for now: %s", container.short_id, exc)

    def reap(self, job_id: int | None = None) -> int:
        """Remove containers a previous life of this runner left behind (or those of
        one job, whose process died)."""
        labels = self.owner.label_filters()
        if job_id is not None:
            labels.append(f"{LABEL_JOB}={job_id}")
        leftovers = self.client.containers.list(all=True, filters={"label": labels})
        for container in leftovers:
            self._remove(container)
        return len(leftovers)
