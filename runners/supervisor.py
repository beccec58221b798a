"""Keeps the runner's RQ worker serving through Redis and Docker Engine outages of
any length.

RQ's worker waits out Redis by itself only while it waits for a task. Anywhere else
a Redis error ends its loop (a job that ended while Redis was away cannot be
recorded, say), and the runner with it. The supervisor runs one worker at a time:
when a worker's loop ends without a stop being asked for, it waits until Redis
answers, with back-off, clears the old worker's record and starts a new worker on a
new connection. A job needs no Redis (it reports to the server), so the worker
keeps watching a running job while Redis is away (:class:`PatientWorker`). The
:class:`RedisWatch` thread pings Redis every few seconds meanwhile, so the log and
the heartbeat say since when Redis is away, also in the middle of a job.

Every job needs the Docker Engine, so none is taken while it is away: the runner
waits for it before its first worker starts (:meth:`Supervisor.await_engine`), and
the worker asks it before each task it takes (:class:`PatientWorker`). Meanwhile
tasks stay queued, their jobs pending, and the engine's watch (a :class:`Watch` the
runner makes) tells the log and the heartbeat since when the engine is away.

Stops keep RQ's meaning: the first SIGTERM or SIGINT lets a running job finish
(warm), the second kills it (cold). While the supervisor or the worker waits for
Redis or the engine no job runs, so either signal stops it at once.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable
from types import FrameType
from typing import Any

import redis
from redis.client import PubSubWorkerThread
from rq import Queue, Worker
from rq.executions import Execution
from rq.job import Job as RqJob
from rq.serializers import JSONSerializer
from rq.worker import WorkerStatus

from pipelines.model import job_id_of
from runners.outages import MAX_PAUSE_SECONDS, Outages, Watch
from runners.settings import RunnerSettings

log = logging.getLogger(__name__)

REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# A worker whose loop ends sooner than this after it started ended on something
# else than an outage, maybe again and again: the next waits longer each time.
SHORT_LIFE_SECONDS = 30.0

JobProcessDied = Callable[[RqJob, int, int, Any], None]


def redis_address(url: str) -> str:
    """How the log names Redis: its host and port (never its password)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        return f"Redis at {parts.path}"
    return f"Redis at {parts.hostname or '127.0.0.1'}:{parts.port or 6379}"


class PatientWorker(Worker):
    """RQ's worker, whose bookkeeping in Redis while a job runs is best effort: the
    job needs no Redis, so Redis away must not make the worker abandon it."""

    # RQ's longest pause between attempts to reach Redis while it waits for a task
    # is 60 s by default: a runner then took tasks again up to a minute late.
    max_connection_wait_time = MAX_PAUSE_SECONDS
    stop_asked = False  # a SIGTERM or SIGINT came: the loop's end is no failure
    engine: Watch | None = None  # asked before each task is taken; None: not asked

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[RqJob, Queue] | None:
        if self.engine is not None and not self.engine.answers():
            self._wait_for_engine(self.engine)
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def _wait_for_engine(self, engine: Watch) -> None:
        """Take no task until the engine answers: the job would only fail. The
        worker is idle meanwhile, so RQ's stop signals end the wait (and the loop)
        at once."""
        with contextlib.suppress(*REDIS_DOWN):
            self.set_state(WorkerStatus.IDLE)
        self.procline(f"waiting for {engine.where}")  # type: ignore[no-untyped-call]
        pause = 0.5
        while not engine.answers():
            time.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE_SECONDS)
            with contextlib.suppress(*REDIS_DOWN):
                self.heartbeat()  # RQ's record of the worker, kept alive

    # RQ leaves these three untyped, hence the ignores.
    def handle_warm_shutdown_request(self) -> None:
        self.stop_asked = True
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]

    def set_shutdown_requested_date(self) -> None:
        # Only `rq info` shows it; the warm stop itself needs no Redis.
        with contextlib.suppress(*REDIS_DOWN):
            super().set_shutdown_requested_date()  # type: ignore[no-untyped-call]

    def maintain_heartbeats(self, job: RqJob, execution: Execution) -> None:
        # The job goes on without Redis; the watch tells since when it is away.
        with contextlib.suppress(*REDIS_DOWN):
            super().maintain_heartbeats(job, execution)


class RedisWatch(Watch):
    """Pings Redis on a connection of its own."""

    def __init__(self, url: str, outages: Outages) -> None:
        self.connection = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        super().__init__(redis_address(url), outages, self.connection.ping, (redis.RedisError,))

    def stop(self) -> None:
        super().stop()
        self.connection.close()


class Supervisor:
    """Runs :class:`PatientWorker` after :class:`PatientWorker` until asked to stop."""

    def __init__(
        self,
        settings: RunnerSettings,
        queues: list[str],
        watch: RedisWatch,
        engine: Watch,
        job_process_died: JobProcessDied,
    ) -> None:
        self.settings = settings
        self.queues = queues
        self.watch = watch
        self.engine = engine
        self.job_process_died = job_process_died
        self._worker: PatientWorker | None = None
        self._stop_asked = threading.Event()
        self._restart_pause = 0.0
        self._waiting_for = ""  # what the supervisor waits for, for the log

    def current_job_id(self) -> int | None:
        """The Shipway job the worker executes now, read without Redis (RQ's own
        ``get_current_job_id`` asks Redis when the worker is idle)."""
        worker = self._worker
        executions = list(worker.executions.values()) if worker is not None else []
        return job_id_of(executions[0].job_id) if executions else None

    def serve(self, burst: bool = False) -> bool:
        """Serve the queues until a stop is asked for (or, with ``burst``, until
        they are empty); whether any task was executed."""
        worked = False
        while not self._stop_asked.is_set():
            connection = redis.Redis.from_url(self.settings.redis_url)
            try:
                worker = self._new_worker(connection)
            except REDIS_DOWN:
                worker = None
            if worker is not None:
                started = time.monotonic()
                self._worker = worker
                trouble: BaseException | None = None
                try:
                    worked = worker.work(burst=burst, logging_level="INFO") or worked
                except REDIS_DOWN as exc:
                    trouble = exc  # RQ could not even record that its loop ended
                if worker.stop_asked or (burst and trouble is None):
                    connection.close()
                    return worked
                log.warning(
                    "the worker's loop ended (%s); a new worker starts once %s answers",
                    trouble or "see above",
                    self.watch.where,
                )
                if time.monotonic() - started < SHORT_LIFE_SECONDS:
                    self._restart_pause = min(max(self._restart_pause * 2, 0.5), 60.0)
                else:
                    self._restart_pause = 0.0
            self._await_redis()
            connection.close()
        return worked

    def _new_worker(self, connection: redis.Redis) -> PatientWorker:
        worker = PatientWorker(
            [Queue(name, connection=connection, serializer=JSONSerializer) for name in self.queues],
            connection=connection,
            name=self.settings.name,
            serializer=JSONSerializer,
            work_horse_killed_handler=self.job_process_died,
        )
        worker.engine = self.engine
        # RQ refuses a worker whose name has a live record. Runner names are unique,
        # so such a record is an earlier worker of this runner: one whose loop ended
        # with Redis away, or a process killed outright (its record lives minutes).
        if connection.exists(worker.key) and not connection.hexists(worker.key, "death"):
            worker.register_death()  # type: ignore[no-untyped-call]
            log.info("cleared the record an earlier worker of %s left in Redis", worker.name)
        return worker

    def await_engine(self) -> bool:
        """Until the Docker Engine answers, before the first worker starts; false
        when a stop was asked for meanwhile. No job runs, so a SIGTERM or SIGINT
        stops at once."""
        if self.engine.answers():
            return True
        log.warning("no job is taken until %s answers", self.engine.where)
        self._await(self.engine)
        return not self._stop_asked.is_set()

    def _await_redis(self) -> None:
        """Until Redis answers or a stop is asked for, trying again after growing
        pauses."""
        self._await(self.watch, pause_first=self._restart_pause)

    def _await(self, watch: Watch, pause_first: float = 0.0) -> None:
        self._waiting_for = watch.where
        signal.signal(signal.SIGTERM, self._ask_to_stop)
        signal.signal(signal.SIGINT, self._ask_to_stop)
        self._end_subscription()
        self._stop_asked.wait(pause_first)  # no loop of quick restarts
        watch.wait(self._stop_asked)

    def _ask_to_stop(self, signum: int, frame: FrameType | None) -> None:
        log.info("stopping on signal %d while waiting for %s", signum, self._waiting_for)
        self._stop_asked.set()

    def _end_subscription(self) -> None:
        """End the old worker's subscription thread, which RQ's teardown could not:
        it would keep trying Redis, and the next worker subscribes anew."""
        worker = self._worker
        if worker is None:
            return
        thread: PubSubWorkerThread | None = worker.pubsub_thread  # RQ types it as None
        if thread is not None:
            thread.stop()  # needs no Redis: it ends at its next turn
            worker.pubsub_thread = None
