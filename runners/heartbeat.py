"""The runner's heartbeat: who it is, what it serves, which job it executes, and
what keeps it from working (see :mod:`runners.outages`).

A thread of the worker's main process (not of a job's), so it beats while jobs run
and stops when the runner stops, or dies with it: silence is what tells the server
that the runner is gone. It needs no Redis, so it goes on beating while Redis is
away; a beat the server does not take is an outage of the server, told once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

import httpx

from pipelines.liveness import HEARTBEAT_SECONDS
from runners.outages import Outages
from runners.reporting import ServerClient
from runners.settings import RunnerSettings

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self,
        settings: RunnerSettings,
        queues: list[str],
        current_job_id: Callable[[], int | None],
        outages: Outages,
    ) -> None:
        self.settings = settings
        self.queues = queues
        self.current_job_id = current_job_id
        self.outages = outages
        self.server = f"Shipway server at {settings.server_url}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(HEARTBEAT_SECONDS + 5)

    def _run(self) -> None:
        with self.settings.server_client() as server:
            while True:
                try:
                    self._beat(server)
                except Exception:
                    # A beat that failed oddly must not end the beating: silence
                    # would tell the server this runner is gone.
                    log.exception("heartbeat failed")
                if self._stop.wait(HEARTBEAT_SECONDS):
                    return

    def _beat(self, server: ServerClient) -> None:
        try:
            server.heartbeat(
                self.settings.name,
                self.queues,
                socket.gethostname(),
                os.getpid(),
                self.current_job_id(),
                self.outages.summary(),
            )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code < 500:
                log.error("heartbeat refused by the server: %s", exc.response.text)
                return
            self.outages.down(self.server, exc)
            return
        except httpx.TransportError as exc:
            self.outages.down(self.server, exc)
            return
        self.outages.up(self.server)
