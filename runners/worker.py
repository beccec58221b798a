"""``shipway runner``: an RQ worker that serves named queues.

It keeps RQ's shutdown semantics: the first SIGTERM or SIGINT lets the running job
finish (warm stop); a second one kills the job's process at once (cold stop).
Each job runs in a forked child, so a crash in a job never takes the runner down;
the task module is imported before forking, so children start warm. Redis and the
Docker Engine may go away for any time, the engine even before the runner starts:
the runner waits, says so, and goes on (see ``runners.supervisor``). A heartbeat
thread tells the server every few seconds that the runner lives, which job it
executes and what it waits for (see ``pipelines.liveness``); another answers the
server's quick questions, such as an instance's logs, while a job runs (see
``runners.operations``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import docker
import docker.errors
from rq.job import Job as RqJob

import runners.tasks  # noqa: F401  (imported before forking: children start warm)
from pipelines.errors import ExternalError
from pipelines.model import job_id_of
from runners.engine import engine_watch, ping_engine
from runners.executor import ENGINE_UNREACHABLE, DockerExecutor, docker_client
from runners.heartbeat import Heartbeat
from runners.operations import OperationsListener
from runners.outages import Outages
from runners.reporting import warm_up
from runners.settings import RunnerSettings
from runners.supervisor import JobProcessDied, RedisWatch, Supervisor

log = logging.getLogger(__name__)


def _job_process_died(settings: RunnerSettings) -> JobProcessDied:
    """What RQ calls in the worker when a job's process died (killed, out of memory):
    remove the job's container and report the job lost at once."""

    def handle(job: RqJob, pid: int, status: int, usage: Any) -> None:
        job_id = job_id_of(job.id)
        if job_id is None:
            return
        note = f" (signal {os.WTERMSIG(status)})" if os.WIFSIGNALED(status) else ""
        try:
            client = docker.from_env()
            try:
                DockerExecutor(client, settings.owner).reap(job_id)
            finally:
                client.close()
        except (docker.errors.DockerException, ExternalError, OSError) as exc:
            # The next job's start removes it; the report below matters more.
            log.warning("job %s: its container stays for now: %s", job_id, exc)
        with settings.server_client() as server:
            try:
                server.finish(
                    job_id, False, None, f"runner lost: the job's process died{note}", "runner_lost"
                )
            except ExternalError as exc:
                log.error("job %s: its loss was not reported: %s", job_id, exc)

    return handle


def run_worker(settings: RunnerSettings, queues: list[str], burst: bool = False) -> bool:
    """Serve ``queues`` until stopped (or, with ``burst``, until they are empty)."""
    outages = Outages()
    watch = RedisWatch(settings.redis_url, outages)
    engine = engine_watch(outages)
    supervisor = Supervisor(settings, queues, watch, engine, _job_process_died(settings))
    # Beating from the start: a runner waiting for its engine is online, and says why
    # it takes no job.
    heartbeat = Heartbeat(settings, queues, supervisor.current_job_id, outages)
    operations = OperationsListener(settings, queues)
    for thread in (watch, engine, heartbeat, operations):
        thread.start()
    try:
        if not supervisor.await_engine():
            return False
        _remove_leftovers(settings)
        warm_up()  # made once here, inherited by every job's forked process
        with contextlib.suppress(ExternalError):
            ping_engine()  # and the engine's API version (runners.engine), likewise
        return supervisor.serve(burst=burst)
    finally:
        _remove_spares(settings)
        operations.stop()
        heartbeat.stop()
        engine.stop()
        watch.stop()


def _remove_leftovers(settings: RunnerSettings) -> None:
    """The containers an earlier run of this runner left (killed mid-job, say), its
    spares included: one may run an older runner's command."""
    try:
        client = docker_client()
        try:
            reaped = DockerExecutor(client, settings.owner).reap()
        finally:
            client.close()
    except (ExternalError, *ENGINE_UNREACHABLE) as exc:
        # The engine went away again: the first job's start removes them.
        log.warning("containers of an earlier run of %s stay for now: %s", settings.name, exc)
        return
    if reaped:
        log.warning("removed %d containers left by an earlier run of %s", reaped, settings.name)


def _remove_spares(settings: RunnerSettings) -> None:
    """The runner's pre-started containers, as it stops (no job runs then: a warm stop
    waited for it, a cold one killed it and removed its container)."""
    try:
        client = docker_client()
        try:
            removed = DockerExecutor(client, settings.owner).remove_spares()
        finally:
            client.close()
    except (ExternalError, docker.errors.DockerException, *ENGINE_UNREACHABLE) as exc:
        log.warning("the spares of %s stay until it starts again: %s", settings.name, exc)
        return
    if removed:
        log.info("removed %d pre-started containers of %s", removed, settings.name)
