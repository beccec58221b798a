"""The engine: a background thread that drives pipelines forward.

Each pass fails the jobs (and release batches) of runners that are gone and what is
stuck waiting for a runner, queues again the tasks the queue lost, plans new pipelines
(reads their file; again every ``PLAN_EVERY_SECONDS`` while it advances, so a burst of
pushes waits for no backlog) and advances the pipelines that changed (retries, skips,
starts, settles): the transaction that changes a job marks its pipeline due
(``pipelines.advance_due``), whichever process made it, and the pass takes the due
ones. A sweep goes round every open pipeline, a slice a pass, as a safety net; so a
pass costs the same with ten thousand pipelines waiting on manual jobs as with none.
Anything that changes what the engine should do calls :meth:`Engine.wake`; without a
wake-up it still passes every ``interval_seconds``, so nothing depends on a wake-up
being delivered.

All state is in the database, so a server killed at any point resumes where it
stopped: the engine re-enqueues pending jobs (the queue ignores those it still holds)
once Redis first answers, and plans what was not planned. While the database does not
answer, a pass does nothing but wait for it; while Redis does not answer, the queue
waits and everything else goes on. Each outage is logged once, down and back
(:class:`server.dependencies.DependencyBoard`), and no pass error ends the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from pipelines.errors import ExternalError
from pipelines.ports import JobQueue, SourceRepository
from server.dependencies import DATABASE, REDIS, DependencyBoard
from server.store import Store
from server.store.tables import utcnow
from server.usecases.deploy_jobs import settle_deploy_jobs
from server.usecases.dispatch import advance_pipeline, requeue_lost_tasks, requeue_pending
from server.usecases.plan import ParsedFiles, plan_pipelines
from server.usecases.releases import advance_releases, recover_lost_batches
from server.usecases.runner_liveness import fail_lost_jobs
from server.usecases.stuck import fail_stuck

log = logging.getLogger(__name__)

QUEUE_CHECK_SECONDS = 3.0
STUCK_AFTER = timedelta(hours=1)  # GitLab's: a job no runner can take fails after an hour
# Open pipelines the sweep advances a pass (about 4 ms each on SQLite here): a round
# of 100 open pipelines takes 50 s, one of 10,000 waiting on manual jobs 83 minutes.
SWEEP_SLICE = 2
# While a pass advances pipelines, new ones are planned at least this often (a burst
# of pushes makes hundreds due, ~8 ms each to advance).
PLAN_EVERY_SECONDS = 0.1


class Engine:
    def __init__(
        self,
        store: Store,
        queue: JobQueue,
        sources: SourceRepository,
        interval_seconds: float = 1.0,
        *,
        stuck_after: timedelta = STUCK_AFTER,
        board: DependencyBoard | None = None,
        sweep_slice: int = SWEEP_SLICE,
    ) -> None:
        self.store = store
        self.queue = queue
        self.sources = sources
        self.interval_seconds = interval_seconds
        self.stuck_after = stuck_after
        self.board = board or DependencyBoard()
        self.sweep_slice = sweep_slice
        self.last_pass: datetime | None = None  # when the last whole pass ended
        self._next_queue_check = 0.0
        self._queue_up_since: datetime | None = None  # Redis's, as this engine last saw it
        self._requeued = False  # pending jobs re-enqueued since this server started
        self._sweep: list[int] = []  # what the sweep's round has yet to advance
        self._retry: set[int] = set()  # pipelines a failed pass did not finish advancing
        self._parsed = ParsedFiles()  # pipeline files, by blob id
        self._next_plan = 0.0  # when advancing stops a moment to plan what arrived
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

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
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except Exception:
                # One bad pass must not stop the engine; the next pass retries. A
                # dependency that went away mid-pass is the board's to log, once.
                if self._reachable():
                    log.exception("engine pass failed")
            self._wake.wait(self.interval_seconds)

    def _reachable(self) -> bool:
        database = self.board.report(DATABASE, self.store.unreachable())
        queue = self.board.report(REDIS, self.queue.unreachable())
        return database and queue

    def run_once(self) -> None:
        if not self.board.report(DATABASE, self.store.unreachable()):
            return  # nothing to do without it: the next pass looks again
        queue_up = self.board.report(REDIS, self.queue.unreachable())
        now = utcnow()
        # Heartbeats refused while the database was away do not make runners lost.
        heard_since = self.board.up_since(DATABASE)
        if queue_up:
            self._queue_back()
        fail_lost_jobs(self.store, now, heard_since)  # their pipelines settle just below
        fail_stuck(self.store, self.queue, now, self.stuck_after, heard_since)
        if queue_up and time.monotonic() >= self._next_queue_check:
            # A read per pending job: every few seconds is soon enough for tasks
            # that were lost, as a runner that took one had 15 s to claim it.
            self._next_queue_check = time.monotonic() + QUEUE_CHECK_SECONDS
            try:
                requeue_lost_tasks(self.store, self.queue, now)
                recover_lost_batches(self.store, self.queue, now, heard_since)
            except ExternalError as exc:
                # Redis went away since the check: the board notes it next pass.
                log.warning("cannot check the queue: %s", exc)
        self._plan()
        for pipeline_id in self._to_advance():
            if time.monotonic() >= self._next_plan:
                # Advancing hundreds of pipelines takes seconds: what arrived
                # meanwhile is planned now, not after them.
                self._plan()
            try:
                self.store.pipelines.clear_due(pipeline_id)
                advance_pipeline(self.store, self.queue, pipeline_id)
            except Exception:
                self._retry.add(pipeline_id)  # the next pass tries again
                raise
            self._retry.discard(pipeline_id)
        advance_releases(self.store, self.queue, hand_out=queue_up)
        settle_deploy_jobs(self.store)
        self.last_pass = utcnow()

    def _plan(self) -> None:
        self._next_plan = time.monotonic() + PLAN_EVERY_SECONDS
        waiting = self.store.pipelines.to_plan()
        if waiting:
            plan_pipelines(self.store, self.sources, self.queue, waiting, self._parsed)

    def _to_advance(self) -> list[int]:
        """The pipelines to advance this pass: those due (one of their jobs changed
        since they were last advanced, or a failed pass did not finish them), and the
        next slice of the sweep, a safety net that goes round every open pipeline,
        ``sweep_slice`` a pass, so that the cost of a pass does not grow with the
        pipelines that wait (on a manual job, say)."""
        due = set(self.store.pipelines.due_ids()) | self._retry
        if self.sweep_slice <= 0:
            return sorted(due)
        if not self._sweep:
            self._sweep = self.store.pipelines.open_ids()  # a new round
        sweep = self._sweep[: self.sweep_slice]
        del self._sweep[: self.sweep_slice]
        return sorted(due | set(sweep))

    def _queue_back(self) -> None:
        """Redis answers: re-enqueue every pending job once per server start (for a
        server that stopped between a database write and its enqueue), and check the
        queue at once when Redis just came back."""
        up_since = self.board.up_since(REDIS)
        if up_since != self._queue_up_since:
            self._queue_up_since = up_since
            self._next_queue_check = 0.0
        if self._requeued:
            return
        try:
            requeued = requeue_pending(self.store, self.queue)
        except ExternalError as exc:
            log.warning("could not re-enqueue pending jobs yet: %s", exc)
            return
        self._requeued = True
        if requeued:
            log.info("re-enqueued %d pending jobs", requeued)
