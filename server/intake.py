"""Webhook intake: a thread that stores deliveries, those waiting together in one
transaction.

The endpoint hands a delivery (headers and body) to :meth:`WebhookIntake.receive`
and awaits its outcome. The thread wakes when one arrives, takes it and every other
one waiting (at most ``max_batch``), checks each, stores those accepted in one
transaction (:func:`server.usecases.receive_webhook.receive_gitlab_webhooks`) and
answers them all once it committed: an answer still means stored. Under load the
deliveries queue here while a transaction runs, so the next one carries many, and
one ``BEGIN``/``COMMIT`` (and one hop between threads) serves them all; alone, a
delivery is stored at once. Nothing is kept outside the database: a server killed
while deliveries wait has answered none of them, and their senders deliver again.

Why a thread of its own rather than the endpoints' threadpool: a hop through anyio's
threadpool cost ~0.2 ms of CPU here, a queue and one ``call_soon_threadsafe`` a batch
~0.03 ms; and one thread is what lets deliveries gather into batches. Storing from the
event loop itself, when the write lock was free, measured no better under load, and
would have held the loop during SQLite's checkpoints (~6 ms every ~350 deliveries).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass

from server.store import Store
from server.usecases.receive_webhook import WebhookOutcome, receive_gitlab_webhooks

log = logging.getLogger(__name__)

# Deliveries one transaction stores at most (a transaction of 64 takes ~10 ms here).
MAX_BATCH = 64


@dataclass(frozen=True)
class _Waiting:
    headers: dict[str, str]
    body: bytes
    loop: asyncio.AbstractEventLoop
    answer: asyncio.Future[WebhookOutcome]


class WebhookIntake:
    def __init__(self, store: Store, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self._waiting: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.batches = 0  # taken so far, each stored in one transaction
        self.taken = 0  # deliveries those batches hold

    @property
    def waiting(self) -> int:
        """Deliveries handed in and not yet taken into a batch."""
        return self._waiting.qsize()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shipway-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Store what waits, then end the thread."""
        self._waiting.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        log.info("intake stored %d webhook deliveries in %d transactions", self.taken, self.batches)

    async def receive(self, headers: dict[str, str], body: bytes) -> WebhookOutcome:
        """The delivery's outcome once stored; raises what refused it (ShipwayError)
        or what failed (the database being away)."""
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("webhook intake is not running")
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[WebhookOutcome] = loop.create_future()
        self._waiting.put(_Waiting(headers, body, loop, answer))
        return await answer

    def _run(self) -> None:
        while True:
            first = self._waiting.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < self.max_batch:
                try:
                    waiting = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if waiting is None:
                    stopping = True
                    break
                batch.append(waiting)
            self.batches += 1
            self.taken += len(batch)
            self._store(batch)
            if stopping:
                return

    def _store(self, batch: list[_Waiting]) -> None:
        results: list[WebhookOutcome | Exception]
        try:
            results = receive_gitlab_webhooks(
                self.store, [(waiting.headers, waiting.body) for waiting in batch]
            )
        except Exception as exc:  # no bug in a batch may end the thread
            log.exception("storing %d webhook deliveries failed", len(batch))
            results = [exc] * len(batch)
        loops: dict[
            asyncio.AbstractEventLoop, list[tuple[_Waiting, WebhookOutcome | Exception]]
        ] = {}
        for waiting, result in zip(batch, results, strict=True):
            loops.setdefault(waiting.loop, []).append((waiting, result))
        for loop, answers in loops.items():
            # One wake-up of the loop for the whole batch, not one a delivery.
            try:
                loop.call_soon_threadsafe(_answer, answers)
            except RuntimeError:  # the loop closed: nobody waits for these answers
                continue


def _answer(answers: list[tuple[_Waiting, WebhookOutcome | Exception]]) -> None:
    for waiting, result in answers:
        if waiting.answer.done():  # the request was cancelled (its client went away)
            continue
        if isinstance(result, WebhookOutcome):
            waiting.answer.set_result(result)
        else:
            waiting.answer.set_exception(result)
