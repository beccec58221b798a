"""The job queue on RQ: the only server module that imports rq.

A job is enqueued under the RQ id ``shipway-job-<id>``, so enqueuing it twice (after
a crash between the database write and the enqueue) queues it once. Runners run
``runners.tasks.run_job`` with the task's JSON; the server never imports runner code.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job as RqJob
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from pipelines.errors import ExternalError, NotFound
from pipelines.model import JobTask, queue_id
from pipelines.ports import TaskState

TASK_FUNCTION = "runners.tasks.run_job"
RELEASE_BATCH_FUNCTION = "runners.tasks.run_release_batch"
RELEASE_BATCH_TIMEOUT_SECONDS = 3600
# RQ's own limit is a backstop; the runner enforces the job's timeout itself and
# reports it, so RQ's must be longer than any job's timeout plus clean-up plus the
# time a runner keeps retrying its reports while the server is away (its
# SHIPWAY_REPORT_PATIENCE, 15 minutes by default).
RQ_TIMEOUT_MARGIN_SECONDS = 1200
# Where the runners of a queue pop quick questions (runners.operations).
QUESTIONS_PREFIX = "shipway:ops:"


class RqJobQueue:
    """Implements ``pipelines.ports.JobQueue`` on Redis."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection

    def enqueue(self, queue: str, task: JobTask) -> None:
        job_id = queue_id(task.job_id)
        try:
            if RqJob.exists(job_id, connection=self.connection):
                return
            Queue(queue, connection=self.connection, serializer=JSONSerializer).enqueue(
                TASK_FUNCTION,
                task.to_json(),
                job_id=job_id,
                job_timeout=task.timeout_seconds + RQ_TIMEOUT_MARGIN_SECONDS,
                result_ttl=3600,
                failure_ttl=24 * 3600,
            )
        except redis.RedisError as exc:
            raise ExternalError(f"could not enqueue job {task.job_id}: {exc}") from exc

    def enqueue_release_batch(self, queue: str, task_id: str, payload: dict[str, Any]) -> None:
        try:
            if RqJob.exists(task_id, connection=self.connection):
                return
            Queue(queue, connection=self.connection, serializer=JSONSerializer).enqueue(
                RELEASE_BATCH_FUNCTION,
                payload,
                job_id=task_id,
                job_timeout=RELEASE_BATCH_TIMEOUT_SECONDS,
                result_ttl=3600,
                failure_ttl=24 * 3600,
            )
        except redis.RedisError as exc:
            raise ExternalError(f"could not enqueue {task_id}: {exc}") from exc

    def task_state(self, job_id: int) -> tuple[TaskState, datetime | None]:
        return self._state(queue_id(job_id))

    def release_task_state(self, task_id: str) -> tuple[TaskState, datetime | None]:
        return self._state(task_id)

    def ask(self, queue: str, operation: str, payload: dict[str, Any], timeout: float) -> Any:
        """Ask the runners of ``queue`` through their operations list (see
        ``runners.operations``); the first to pop the question answers it."""
        reply_to = f"shipway:answer:{uuid.uuid4().hex}"
        question = {
            "operation": operation,
            "args": payload,
            "reply_to": reply_to,
            "deadline": time.time() + timeout,
        }
        key = f"{QUESTIONS_PREFIX}{queue}"
        try:
            with self.connection.pipeline() as pipe:
                pipe.rpush(key, json.dumps(question))
                pipe.expire(key, int(timeout) + 60)  # no runner ever: the list goes away
                pipe.execute()
            popped = self.connection.blpop([reply_to], timeout=timeout)
        except redis.RedisError as exc:
            raise ExternalError(f"could not ask the runners of {queue}: {exc}") from exc
        if popped is None:
            raise ExternalError(f"no runner serving the queue {queue} answered within {timeout:g}s")
        reply = json.loads(popped[1])
        if "error" in reply:
            if reply.get("kind") == "NotFound":
                raise NotFound(str(reply["error"]))
            raise ExternalError(str(reply["error"]))
        return reply["result"]

    def _state(self, rq_id: str) -> tuple[TaskState, datetime | None]:
        try:
            task = RqJob.fetch(rq_id, connection=self.connection, serializer=JSONSerializer)
            status = task.get_status(refresh=False)
        except NoSuchJobError:
            return TaskState.MISSING, None
        except redis.RedisError as exc:
            raise ExternalError(f"could not read the task {rq_id}: {exc}") from exc
        if status == JobStatus.STARTED:
            started = task.started_at
            if started is not None and started.tzinfo is None:
                started = started.replace(tzinfo=UTC)  # RQ keeps UTC without saying so
            return TaskState.STARTED, started
        if status in (JobStatus.QUEUED, JobStatus.CREATED, JobStatus.SCHEDULED):
            return TaskState.QUEUED, None
        return TaskState.ENDED, None

    def drop(self, job_id: int) -> None:
        self._delete(queue_id(job_id), f"the task of job {job_id}")

    def drop_release_batch(self, task_id: str) -> None:
        self._delete(task_id, task_id)

    def _delete(self, rq_id: str, what: str) -> None:
        try:
            task = RqJob.fetch(rq_id, connection=self.connection, serializer=JSONSerializer)
            task.delete()  # out of its queue and registries too
        except NoSuchJobError:
            return
        except redis.RedisError as exc:
            raise ExternalError(f"could not drop {what}: {exc}") from exc

    def lengths(self) -> dict[str, int]:
        """Tasks waiting in each queue RQ knows."""
        try:
            return {
                queue.name: queue.count
                for queue in Queue.all(connection=self.connection, serializer=JSONSerializer)
            }
        except redis.RedisError as exc:
            raise ExternalError(f"could not read the queues: {exc}") from exc

    def unreachable(self) -> str | None:
        """Why Redis does not answer a PING; None when it does."""
        try:
            self.connection.ping()
        except redis.RedisError as exc:
            return str(exc) or type(exc).__name__
        return None
