"""``shipway runner``: an RQ worker that serves named queues.

It keeps RQ's shutdown semantics: the first SIGTERM or SIGINT lets the running job
finish (warm stop); a second one kills the job's process at once (cold stop).
Each job runs in a forked child, so a crash in a job never takes the runner down;
the task module is imported before forking, so children start warm. A heartbeat
thread tells the server every few seconds that the runner lives and which job it
executes (see ``pipelines.liveness``); another answers the server's quick questions,
such as an instance's logs, while a job runs (see ``runners.operations``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import docker
import redis
from rq import Queue, Worker
from rq.job import Job as RqJob
from rq.serializers import JSONSerializer

import runners.tasks  # noqa: F401  (imported before forking: children start warm)
from pipelines.model import job_id_of
from runners.executor import DockerExecutor
from runners.heartbeat import Heartbeat
from runners.operations import OperationsListener
from runners.reporting import ServerClient, warm_up
from runners.settings import RunnerSettings

log = logging.getLogger(__name__)


def _job_process_died(settings: RunnerSettings) -> Callable[[RqJob, int, int, Any], None]:
    """What RQ calls in the worker when a job's process died (killed, out of memory):
    remove the job's container and report the job lost at once."""

    def handle(job: RqJob, pid: int, status: int, usage: Any) -> None:
        job_id = job_id_of(job.id)
        if job_id is None:
            return
        note = f" (signal {os.WTERMSIG(status)})" if os.WIFSIGNALED(status) else ""
        client = docker.from_env()
        try:
            DockerExecutor(client, settings.owner).reap(job_id)
        finally:
            client.close()
        with ServerClient(settings.server_url, settings.runner_token) as server:
            server.finish(
                job_id, False, None, f"runner lost: the job's process died{note}", "runner_lost"
            )

    return handle


def run_worker(settings: RunnerSettings, queues: list[str], burst: bool = False) -> bool:
    """Serve ``queues`` until stopped (or, with ``burst``, until they are empty)."""
    client = docker.from_env()
    try:
        reaped = DockerExecutor(client, settings.owner).reap()
        if reaped:
            log.warning("removed %d containers left by an earlier run of %s", reaped, settings.name)
    finally:
        client.close()
    warm_up()  # made once here, inherited by every job's forked process
    connection = redis.Redis.from_url(settings.redis_url)
    worker = Worker(
        [Queue(name, connection=connection, serializer=JSONSerializer) for name in queues],
        connection=connection,
        name=settings.name,
        serializer=JSONSerializer,
        work_horse_killed_handler=_job_process_died(settings),
    )
    heartbeat = Heartbeat(settings, queues, worker)
    heartbeat.start()
    operations = OperationsListener(settings, queues)
    operations.start()
    try:
        return worker.work(burst=burst, logging_level="INFO")
    finally:
        operations.stop()
        heartbeat.stop()
