"""The empty grace: a service whose servers all vanish keeps its last servers for
a while, so a redeploy that briefly empties etcd (or a registrar restarting) does
not turn into 503s. Pure: the caller passes the clock and keeps the memory.

Lifecycle of one service name:

    has servers ──(none left)──> in grace: last servers rendered
        ^                           │ grace elapsed
        └──────(servers again)──────┤
                                    v
                            rendered with no servers (503) if it has a route,
                            gone otherwise; forgotten
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from confd.services import Service


@dataclass(frozen=True)
class GraceMemory:
    """What a render remembers for the next one: the last service seen with
    servers, and since when (monotonic seconds) each of them has had none."""

    last: dict[str, Service] = field(default_factory=dict)
    empty_since: dict[str, float] = field(default_factory=dict)

    def deadline(self, grace: float) -> float | None:
        """When the next grace ends: the agent re-renders then without an event."""
        if not self.empty_since:
            return None
        return min(self.empty_since.values()) + grace


def apply_grace(
    services: Sequence[Service], memory: GraceMemory, now: float, grace: float
) -> tuple[list[Service], GraceMemory]:
    current = {service.name: service for service in services}
    last = dict(memory.last)
    empty_since = dict(memory.empty_since)
    result: dict[str, Service] = {}
    for name, service in current.items():
        if service.servers:
            last[name] = service
            empty_since.pop(name, None)
            result[name] = service
    for name, previous in memory.last.items():
        if name in result:
            continue
        started = empty_since.setdefault(name, now)
        if now - started < grace:
            # Route and hosts as they are now; servers as they last were.
            result[name] = replace(current.get(name, previous), servers=previous.servers)
        else:
            del last[name], empty_since[name]
    for name, service in current.items():
        result.setdefault(name, service)
    return [result[name] for name in sorted(result)], GraceMemory(last, empty_since)
