"""What the server depends on (its database and Redis), and since when each is down.

The engine checks both at every pass and ``/healthz`` at every call; each check
reports here. A change is logged once (down, with the error; back, with how long it
was away), never at every failed check, so an outage of an hour is two log lines.
``up_since`` tells when a dependency last came back (or when the board was made):
the engine does not count a runner's silence from before the database came back.
Thread-safe: the engine thread and the endpoints' thread pool report concurrently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from server.store.tables import utcnow

log = logging.getLogger(__name__)

DATABASE = "database"
REDIS = "redis"


@dataclass(frozen=True)
class Outage:
    since: datetime  # the first failed check of this outage
    error: str  # what the latest failed check said


class DependencyBoard:
    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._down: dict[str, Outage] = {}
        self._created = clock()
        self._up_since: dict[str, datetime] = {}

    def report(self, name: str, error: str | None) -> bool:
        """Record a check of ``name``: ``error`` is why it failed, None when it answered.
        Returns whether it answered."""
        now = self._clock()
        with self._lock:
            outage = self._down.get(name)
            if error is None:
                if outage is not None:
                    del self._down[name]
                    self._up_since[name] = now
                    away = (now - outage.since).total_seconds()
                    log.warning("%s reachable again after %.1fs down", name, away)
                return True
            if outage is None:
                log.error("%s unreachable: %s; waiting for it", name, error)
                self._down[name] = Outage(now, error)
            else:
                self._down[name] = Outage(outage.since, error)
            return False

    def down_since(self, name: str) -> datetime | None:
        with self._lock:
            outage = self._down.get(name)
        return outage.since if outage is not None else None

    def up_since(self, name: str) -> datetime:
        """When ``name`` last came back, or when the board was made."""
        with self._lock:
            return self._up_since.get(name, self._created)

    def outages(self) -> dict[str, Outage]:
        with self._lock:
            return dict(self._down)
