"""Runs one job's script in a container of the job's image.

Lifecycle of a job's container, whatever happens in between:
take the runner's pre-started container of the image (``runners.spares``: renamed
to the job's container name), or else create one under that name, attach its stdin
and start it -> send the workspace, the script and the job's environment with its
secrets as one tar stream, which the container unpacks with ``tar`` before it runs
the script (``runners.job_files``) -> stream its output until the container says
how the script ended (its end mark's lines; else wait for the container's exit) ->
read the reports -> (the caller reports the result) -> remove -> start the spare for
the next job of the image. Removal waits for the report (:meth:`DockerExecutor.close`):
the result is what the pusher waits for, removing the container is not.

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
import secrets as secrets_module
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import docker
import docker.errors
import requests
import urllib3
from docker.models.containers import Container

from pipelines.errors import ExternalError
from pipelines.model import JobTask
from pipelines.status import FailureKind
from runners.collect import collect
from runners.job_containers import (
    ContainerOwner,
    Listed,
    create_job_container,
    job_container_name,
    list_owned,
)
from runners.job_files import job_tree, render_script
from runners.spares import Spares

log = logging.getLogger(__name__)

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


class DockerExecutor:
    """Executes jobs on the Docker Engine the client talks to, one at a time.

    A context manager: the container of a job it ran lives until :meth:`close`, which
    the caller reaches once it reported the job's result (the other side of the
    ``with``); ``close`` removes it, then starts the spare of that job's image for the
    runner's next job (``spare_images``: how many images keep a spare; 0: none)."""

    def __init__(
        self,
        client: docker.DockerClient,
        owner: ContainerOwner,
        after_script: Callable[[Container, ExecutionResult], None] | None = None,
        spare_images: int = 0,
        runner_alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self.client = client
        self.owner = owner
        # Called with the container once the script ended, before it is removed,
        # unless the job was canceled: dependency caches are saved there
        # (runners.caches).
        self.after_script = after_script
        self.spares = Spares(client, owner, spare_images)
        # Whether the runner this executor works for still runs: a job process outlives
        # a runner killed outright, and must then leave no spare behind it.
        self.runner_alive = runner_alive
        self._ran: list[Container] = []  # removed by close()
        self._next_spare: tuple[str, str] | None = None  # image and its id, for close()

    def __enter__(self) -> DockerExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
        ``workspace`` is called once the container is taken or starting, so a caller
        can fetch the source meanwhile; what it raises propagates. The job's
        environment and ``secrets`` reach the script as environment variables by way
        of the stdin stream, never the container's configuration (see
        ``runners.job_files``).

        Returns when the script ended, timed out or was canceled; the container is
        removed by :meth:`close` (or, when the engine went away, once the next job of
        this runner starts)."""
        try:
            return self._run(task, workspace, on_output, cancel, collect_globs, secrets or {})
        except ENGINE_UNREACHABLE as exc:
            return ExecutionResult(None, f"the Docker Engine became unreachable: {exc}")

    def close(self) -> None:
        """Remove the containers of the jobs run, then start a spare of the last job's
        image, while the runner runs. Neither changes a result already reported, so a
        failure is logged, and what stays is removed before the runner's next job."""
        ran, self._ran = self._ran, []
        next_spare, self._next_spare = self._next_spare, None
        try:
            for container in ran:
                self._remove(str(container.id))
            if next_spare is not None and self.runner_alive():
                self.spares.make(*next_spare)
                if not self.runner_alive():  # it died meanwhile: nobody would remove them
                    self.spares.remove_all()
        except (ExternalError, docker.errors.DockerException, *ENGINE_UNREACHABLE) as exc:
            log.warning("after the job: %s", exc)

    def _run(
        self,
        task: JobTask,
        workspace: Callable[[], bytes],
        on_output: Callable[[bytes], None],
        cancel: threading.Event,
        collect_globs: Sequence[str],
        secrets: Mapping[str, str],
    ) -> ExecutionResult:
        image_id, missing = self._ensure_image(task.image)
        if image_id is None:
            return ExecutionResult(None, missing)
        try:
            container, started = self._container_for(task, image_id)
        except docker.errors.APIError as exc:
            return ExecutionResult(None, f"could not create the container: {exc.explanation}")
        self._ran.append(container)
        self._next_spare = (task.image, image_id)
        try:
            script = render_script(task.script)
            attached = container.attach_socket(params={"stdin": 1, "stream": 1})
            stdin = _raw_socket(attached)
            try:
                if not started:
                    container.start()  # ~0.2 s: the source is fetched meanwhile
                end_mark = secrets_module.token_hex(16)
                tree = job_tree(workspace(), script, task.environment(), secrets, end_mark)
                # A container that ends before reading (no tar, say) breaks the pipe;
                # its output and exit code, collected below, say why.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    stdin.sendall(tree)
                    stdin.shutdown(socket.SHUT_WR)
            finally:
                attached.close()
                stdin.close()
            result = self._follow(container, task.timeout_seconds, on_output, cancel, end_mark)
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

    def _container_for(self, task: JobTask, image_id: str) -> tuple[Container, bool]:
        """The job's container and whether it runs already: the runner's spare of the
        image when there is one, else a new one, created (not started) under the
        job's container name."""
        live = self._remove_leftovers(task.image, image_id)
        spare = self.spares.take(live, task.image, image_id, task.job_id)
        if spare is not None:
            return spare, True
        name = job_container_name(self.owner, task.job_id)
        return create_job_container(self.client, task.image, name, self.owner.labels()), False

    def _follow(
        self,
        container: Container,
        timeout_seconds: int,
        on_output: Callable[[bytes], None],
        cancel: threading.Event,
        end_mark: str,
    ) -> ExecutionResult:
        """Stream the output until the script said how it ended (its end mark's line,
        kept out of the log) or, failing that, the container ended; stop it on cancel
        or timeout."""
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
            exit_code = self._stream_output(container, on_output, end_mark)
            if exit_code is None:  # it never said: killed, say, or no tar in the image
                exit_code = int(container.wait()["StatusCode"])
        finally:
            done.set()
            guard.join()
        if stopped_because:
            reason, kind = stopped_because[0]
            return ExecutionResult(exit_code, reason, kind)
        return ExecutionResult(exit_code)

    @staticmethod
    def _stream_output(
        container: Container, on_output: Callable[[bytes], None], end_mark: str
    ) -> int | None:
        """Pass the container's output on until the end mark's lines of both streams
        arrived (each a line of its own, which a partial last line of the script may
        precede within the same chunk); the exit code they give, or None when the
        output ended without them."""
        unseen = {f"{end_mark} {stream} ".encode() for stream in ("out", "err")}
        code: int | None = None
        output = container.logs(stream=True, follow=True, stdout=True, stderr=True)
        try:
            for chunk in output:
                for mark in unseen:
                    before, found, rest = chunk.partition(mark)
                    said = rest.removesuffix(b"\n")
                    if found and said.isdigit():
                        unseen.discard(mark)
                        code, chunk = int(said), before
                        break
                if chunk:
                    on_output(chunk)
                if not unseen:
                    return code
        finally:
            # The response, not the stream: the SDK's close() of the stream shuts its
            # socket but leaves the response's file open (a ResourceWarning), and it
            # offers no other way to end a stream early.
            cast(Any, output)._response.close()
        return None

    def _ensure_image(self, image: str) -> tuple[str | None, str | None]:
        """The image's id (pulled if missing), or None and why it cannot be had."""
        try:
            return self.client.images.get(image).id, None
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise ExternalError(f"docker engine: {exc.explanation}") from exc
        try:
            return self.client.images.pull(image).id, None
        except docker.errors.APIError as exc:
            reason = f"could not be pulled: {exc.explanation}"
            return None, f"image {image} is not on this runner and {reason}"

    def _remove_leftovers(self, image: str, image_id: str) -> list[Listed]:
        """Remove what earlier jobs of this runner left (their engine gone before they
        could be removed; a runner runs one job at a time, so none of them is live) and
        the spares nothing will take (``Spares.stale``); return the rest."""
        listed = list_owned(self.client, self.owner)
        stale = self.spares.stale(listed, image, image_id)
        for container in stale:
            try:
                self._remove(container.id)
            except ExternalError as exc:
                log.warning("%s stays for now: %s", container.name, exc)
        left_by_jobs = sum(1 for container in stale if container.spare_of is None)
        if left_by_jobs:
            log.warning("removed %d containers earlier jobs left behind", left_by_jobs)
        return [container for container in listed if container not in stale]

    def _remove(self, container_id: str) -> None:
        try:
            self.client.api.remove_container(container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise ExternalError(f"could not remove container {container_id[:12]}") from exc
        except ENGINE_UNREACHABLE as exc:
            # Nothing to wait for here: the next job's start removes it (reap).
            log.warning("container %s stays for now: %s", container_id[:12], exc)

    def reap(self, job_id: int | None = None) -> int:
        """Remove every container a previous life of this runner left behind, spares
        included (or the container of one job, whose process died: made for it or a
        spare it took, found by its name either way)."""
        name = None if job_id is None else job_container_name(self.owner, job_id)
        leftovers = list_owned(self.client, self.owner, name)
        for container in leftovers:
            self._remove(container.id)
        return len(leftovers)

    def remove_spares(self) -> int:
        """Remove the runner's spares (the runner stops); how many there were."""
        return self.spares.remove_all()
