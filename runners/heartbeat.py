"""The runner's heartbeat: who it is, what it serves, which job it executes.

A thread of the worker's main process (not of a job's), so it beats while jobs run
and stops when the runner stops, or dies with it: silence is what tells the server
that the runner is gone.
"""

from __future__ import annotations

import os
import socket
import threading

from rq import Worker

from pipelines.liveness import HEARTBEAT_SECONDS
from pipelines.model import job_id_of
from runners.reporting import ServerClient
from runners.settings import RunnerSettings


class Heartbeat:
    def __init__(self, settings: RunnerSettings, queues: list[str], worker: Worker) -> None:
        self.settings = settings
        self.queues = queues
        self.worker = worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(HEARTBEAT_SECONDS + 5)

    def current_job_id(self) -> int | None:
        """The Shipway job of the RQ job this worker executes now, if any."""
        return job_id_of(self.worker.get_current_job_id())

    def _run(self) -> None:
        with ServerClient(self.settings.server_url, self.settings.runner_token) as server:
            while True:
                server.heartbeat(
                    self.settings.name,
                    self.queues,
                    socket.gethostname(),
                    os.getpid(),
                    self.current_job_id(),
                )
                if self._stop.wait(HEARTBEAT_SECONDS):
                    return
