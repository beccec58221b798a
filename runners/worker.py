"""``shipway runner``: an RQ worker that serves named queues.

It keeps RQ's shutdown semantics: the first SIGTERM or SIGINT lets the running job
finish (warm stop); a second one kills the job's process at once (cold stop).
Each job runs in a forked child, so a crash in a job never takes the runner down;
the task module is imported before forking, so children start warm.
"""

from __future__ import annotations

import logging

import docker
import redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer

import runners.tasks  # noqa: F401  (imported before forking: children start warm)
from runners.executor import DockerExecutor
from runners.reporting import warm_up
from runners.settings import RunnerSettings

log = logging.getLogger(__name__)


def run_worker(settings: RunnerSettings, queues: list[str], burst: bool = False) -> bool:
    """Serve ``queues`` until stopped (or, with ``burst``, until they are empty)."""
    client = docker.from_env()
    try:
        reaped = DockerExecutor(client, settings.name).reap()
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
    )
    return worker.work(burst=burst, logging_level="INFO")
