"""The engine: a background thread that drives pipelines forward.

Each pass fails the jobs (and release batches) of runners that are gone, queues
again the tasks the queue lost, plans new pipelines (reads their file) and advances open ones
(retries, skips, starts, settles). Anything that changes
what the engine should do calls :meth:`Engine.wake`; without a wake-up it still
passes every ``interval_seconds``, so nothing depends on a wake-up being delivered.

All state is in the database, so a server killed at any point resumes where it
stopped: at start the engine re-enqueues pending jobs (the queue ignores those
it still holds) and plans what was not planned.
"""

from __future__ import annotations

import logging
import threading
import time

from pipelines.errors import ExternalError, ShipwayError
from pipelines.ports import JobQueue, SourceRepository
from server.store import Store
from server.store.tables import utcnow
from server.usecases.deploy_jobs import settle_deploy_jobs
from server.usecases.dispatch import advance_pipeline, requeue_lost_tasks, requeue_pending
from server.usecases.plan import plan_pipeline
from server.usecases.releases import advance_releases, recover_lost_batches
from server.usecases.runner_liveness import fail_lost_jobs

log = logging.getLogger(__name__)

QUEUE_CHECK_SECONDS = 3.0


class Engine:
    def __init__(
        self,
        store: Store,
        queue: JobQueue,
        sources: SourceRepository,
        interval_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.queue = queue
        self.sources = sources
        self.interval_seconds = interval_seconds
        self._next_queue_check = 0.0
        # Heartbeats sent while this server was down never arrived: runners are
        # judged only once it has listened long enough (see pipelines.liveness).
        self._listening_since = utcnow()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Ask for a pass soon. Safe from any thread."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shipway-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            requeued = requeue_pending(self.store, self.queue)
            if requeued:
                log.info("re-enqueued %d pending jobs", requeued)
        except ShipwayError:
            log.exception("could not re-enqueue pending jobs")
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except Exception:
                # One bad pass must not stop the engine; the next pass retries.
                log.exception("engine pass failed")
            self._wake.wait(self.interval_seconds)

    def run_once(self) -> None:
        now = utcnow()
        fail_lost_jobs(self.store, now, self._listening_since)  # settled just below
        if time.monotonic() >= self._next_queue_check:
            # A read per pending job: every few seconds is soon enough for tasks
            # that were lost, as a runner that took one had 15 s to claim it.
            self._next_queue_check = time.monotonic() + QUEUE_CHECK_SECONDS
            try:
                requeue_lost_tasks(self.store, self.queue, now)
                recover_lost_batches(self.store, self.queue, now)
            except ExternalError as exc:
                # Redis is away: planning and settling go on; the queue waits for it.
                log.warning("cannot check the queue: %s", exc)
        for pipeline in self.store.pipelines.to_plan():
            plan_pipeline(self.store, self.sources, self.queue, pipeline.id)
        for pipeline_id in self.store.pipelines.open_ids():
            advance_pipeline(self.store, self.queue, pipeline_id)
        advance_releases(self.store, self.queue)
        settle_deploy_jobs(self.store)
