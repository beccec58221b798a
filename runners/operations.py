"""Quick questions the server asks the runner of an environment, answered at once.

An RQ worker runs one task at a time, so a question queued behind a release batch
would wait minutes for an answer. Questions (today: an instance's container logs)
go instead to a Redis list per queue, ``shipway:ops:<queue>``, that a thread of the
runner's main process pops; the answer goes to the list the question names. Such a
question reads and never changes anything, so one answered twice or not at all
does no harm: the server gives up after its timeout and says so.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
import redis

from pipelines.errors import ShipwayError
from runners.deploy.docker_engine import DockerEngineDeployer
from runners.settings import RunnerSettings

log = logging.getLogger(__name__)

QUESTIONS_PREFIX = "shipway:ops:"
ANSWER_TTL_SECONDS = 60
MAX_LOG_LINES = 10_000


def questions_key(queue: str) -> str:
    return f"{QUESTIONS_PREFIX}{queue}"


def container_logs(settings: RunnerSettings, args: dict[str, Any]) -> dict[str, Any]:
    tail = min(max(int(args.get("tail", 100)), 1), MAX_LOG_LINES)
    client = docker.from_env()
    try:
        deployer = DockerEngineDeployer(client, settings.cache_dir / "releases")
        return {"logs": deployer.logs(str(args["name"]), tail)}
    finally:
        client.close()


OPERATIONS: dict[str, Callable[[RunnerSettings, dict[str, Any]], dict[str, Any]]] = {
    "logs": container_logs,
}


def answer(settings: RunnerSettings, question: dict[str, Any]) -> dict[str, Any]:
    """The answer to one question: its result, or an error the server shows as is."""
    operation = OPERATIONS.get(str(question.get("operation")))
    if operation is None:
        return {"error": f"this runner does not know the operation {question.get('operation')}"}
    try:
        return {"result": operation(settings, dict(question.get("args") or {}))}
    except ShipwayError as exc:
        return {"error": str(exc), "kind": type(exc).__name__}
    except (docker.errors.DockerException, KeyError, ValueError) as exc:
        return {"error": f"{settings.name}: {exc}"}


class OperationsListener:
    """A thread of the runner's main process: dies with the runner, like the heartbeat."""

    def __init__(self, settings: RunnerSettings, queues: list[str]) -> None:
        self.settings = settings
        self.keys = [questions_key(queue) for queue in queues]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="operations", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        connection = redis.Redis.from_url(self.settings.redis_url)
        while not self._stop.is_set():
            try:
                popped = connection.blpop(self.keys, timeout=1)
            except redis.RedisError as exc:
                # Said once, with since when, by the runner's Redis watch.
                log.debug("operations: Redis is unreachable: %s", exc)
                self._stop.wait(1)
                continue
            if popped is None:
                continue
            try:
                question = json.loads(popped[1])
                if float(question["deadline"]) < time.time():
                    continue  # the server gave up on it already
                reply = answer(self.settings, question)
                key = str(question["reply_to"])
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("operations: a malformed question was dropped: %s", exc)
                continue
            try:
                with connection.pipeline() as pipe:
                    pipe.rpush(key, json.dumps(reply))
                    pipe.expire(key, ANSWER_TTL_SECONDS)
                    pipe.execute()
            except redis.RedisError as exc:
                log.warning("operations: could not answer: %s", exc)
