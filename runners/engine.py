"""Whether the Docker Engine answers: every job and release batch needs it.

The runner waits for it before it serves (:meth:`runners.supervisor.Supervisor.
await_engine`) and asks it before each task it takes; a :class:`Watch` of it
(:func:`engine_watch`) tells the log and the heartbeat since when it is away. A
task's process asks it once more before it claims its job, since the engine may go
away between the worker's question and the task: a task that finds it away claims
nothing, so its job stays pending and the server queues it again.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

import docker
import docker.errors

from pipelines.errors import ExternalError
from runners.executor import ENGINE_UNREACHABLE
from runners.outages import Outages, Watch

DEFAULT_ENGINE = "unix:///var/run/docker.sock"  # the SDK's, when DOCKER_HOST is unset
PING_TIMEOUT_SECONDS = 5  # an engine that takes longer is away for the runner too
CALL_TIMEOUT_SECONDS = 60  # the SDK's own, for a job's calls (a busy engine is slow)


def engine_address(environ: Mapping[str, str] | None = None) -> str:
    """How the log and the heartbeat name the engine: ``Docker Engine at <host>``."""
    env = os.environ if environ is None else environ
    return f"Docker Engine at {env.get('DOCKER_HOST') or DEFAULT_ENGINE}"


@functools.cache
def engine_api_version() -> str:
    """The API version the runner speaks with its engine, asked once per process: the
    worker asks before it forks, so job processes inherit it. Asking (``GET /version``)
    costs the engine 7-14 ms here, more on a busy host (it asks containerd and runc
    theirs), while a ping costs ~1 ms; a failed ping forgets it (the engine may have
    come back in another version)."""
    client = docker.from_env(timeout=PING_TIMEOUT_SECONDS)
    try:
        return str(client.api.api_version)
    finally:
        client.close()


def engine_client() -> docker.DockerClient:
    """A client of the engine ``DOCKER_HOST`` names, for one job, made once the engine
    answered a ping within ``PING_TIMEOUT_SECONDS``: the job's question whether the
    engine is there (ExternalError when it is not)."""
    try:
        client = docker.from_env(version=engine_api_version(), timeout=PING_TIMEOUT_SECONDS)
    except (docker.errors.DockerException, *ENGINE_UNREACHABLE) as exc:
        raise ExternalError(f"the Docker Engine is unreachable: {exc}") from exc
    try:
        client.ping()
    except (docker.errors.DockerException, *ENGINE_UNREACHABLE) as exc:
        client.close()
        engine_api_version.cache_clear()
        raise ExternalError(f"the Docker Engine is unreachable: {exc}") from exc
    client.api.timeout = CALL_TIMEOUT_SECONDS
    return client


def ping_engine() -> None:
    """Return when the engine ``DOCKER_HOST`` names answers; ExternalError otherwise."""
    engine_client().close()


def engine_watch(outages: Outages) -> Watch:
    return Watch(engine_address(), outages, ping_engine, (ExternalError,))
