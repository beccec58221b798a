"""What a runner waits for: the dependencies it cannot reach, and since when.

Whoever finds a dependency away (the Redis watch, the heartbeat) calls
:meth:`Outages.down`; whoever reaches it again calls :meth:`Outages.up`. Each
outage is logged once when it starts ("Redis at host:port unreachable since ...,
retrying") and once when it ends, and :meth:`Outages.summary` is what the
heartbeat tells the server, so ``shipway runners`` shows it. Thread-safe: the
worker's threads share one.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger(__name__)

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
