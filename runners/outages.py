"""What a runner waits for: the dependencies it cannot reach, and since when.

Whoever finds a dependency away (a :class:`Watch`, the heartbeat) calls
:meth:`Outages.down`; whoever reaches it again calls :meth:`Outages.up`. Each
outage is logged once when it starts ("Redis at host:port unreachable since ...,
retrying") and once when it ends, and :meth:`Outages.summary` is what the
heartbeat tells the server, so ``shipway runners`` shows it. Thread-safe: the
worker's threads share one.

A :class:`Watch` is a thread of the worker's main process that asks one dependency
(Redis, the Docker Engine) every ``PING_SECONDS`` whether it answers, so an outage
is told when it starts and when it ends, whatever the worker is doing; it dies with
the runner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger(__name__)

PING_SECONDS = 2.0
MAX_PAUSE_SECONDS = 5.0  # the longest pause between attempts to reach a dependency again
# How long a push, a release's pull or a release's traffic step waits for the registry
# or etcd to answer again before it fails naming it (SHIPWAY_OUTAGE_PATIENCE).
DEFAULT_OUTAGE_PATIENCE_SECONDS = 600


@dataclass(frozen=True)
class Outage:
    where: str  # "Redis at 127.0.0.1:6379"
    since: datetime
    started: float  # monotonic, for how long it lasted
    detail: str

    def describe(self) -> str:
        return f"{self.where} unreachable since {self.since:%Y-%m-%d %H:%M:%S} UTC, retrying"


class Outages:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: dict[str, Outage] = {}

    def down(self, where: str, detail: object) -> None:
        """``where`` does not answer (again); logged the first time."""
        with self._lock:
            if where in self._current:
                return
            outage = Outage(where, datetime.now(UTC), time.monotonic(), str(detail))
            self._current[where] = outage
        log.warning("%s (%s)", outage.describe(), outage.detail)

    def up(self, where: str) -> None:
        """``where`` answers; logged when it had been away."""
        with self._lock:
            outage = self._current.pop(where, None)
        if outage is not None:
            lasted = time.monotonic() - outage.started
            log.warning("%s answers again after %.0f s", where, lasted)

    def is_down(self, where: str) -> bool:
        with self._lock:
            return where in self._current

    def summary(self) -> str | None:
        """Every current outage in one line, or None when all answer."""
        with self._lock:
            outages = sorted(self._current.values(), key=lambda outage: outage.since)
        return "; ".join(outage.describe() for outage in outages) or None


class Watch:
    """Pings ``where`` every ``PING_SECONDS`` on a thread of its own. ``ping`` raises
    one of ``unreachable`` when the dependency does not answer; anything else it
    raises is a bug, and ends the thread with a traceback in the log."""

    def __init__(
        self,
        where: str,
        outages: Outages,
        ping: Callable[[], object],
        unreachable: tuple[type[Exception], ...],
    ) -> None:
        self.where = where
        self.outages = outages
        self._ping = ping
        self._unreachable = unreachable
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch {where}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def answers(self) -> bool:
        """Whether it answers now; the outage is recorded (or ended) either way."""
        try:
            self._ping()
        except self._unreachable as exc:
            self.outages.down(self.where, exc)
            return False
        self.outages.up(self.where)
        return True

    def wait(self, stop: threading.Event) -> bool:
        """Until it answers, trying again after pauses growing to
        ``MAX_PAUSE_SECONDS``, or until ``stop`` is set; whether it answers."""
        pause = 0.5
        while not stop.is_set():
            if self.answers():
                return True
            stop.wait(pause)
            pause = min(pause * 2, MAX_PAUSE_SECONDS)
        return False

    def _run(self) -> None:
        while not self._stop.wait(PING_SECONDS):
            self.answers()
