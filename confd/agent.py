"""The agent: read every watched prefix, render every resource, then follow etcd's
watch streams and render again on each burst of changes.

Lifecycle (one thread runs ``run``; ``stop`` may be called from any thread)::

    read all prefixes ──fail──> disconnected, back off (0.1 s doubling to 2 s) ──┐
        │ ok                                                                     │
        v                                                                        │
    render all, watch each prefix from the revision after its read               │
        │ changes: wait BATCH_DELAY for more, render all                         │
        │ a grace ends or a failed render is due: render all (no event needed)   │
        │ a stream fails ──> disconnected ───────────────────────────────────────┘
        v
      stop()

A render failure (template error, check or reload refused) leaves the destination
as it was and is retried at the next change or after RETRY_DELAY. While etcd is
away nothing is rendered: the files in place stay, and so does nginx.

An agent with a name reports to etcd, under ``/shipway/agents/<name>``, the revision
its files (and nginx, reloaded) reflect: after every render that a change caused, and
every REPORT_EVERY seconds. A release waits for every live agent to reach the
revision of an instance's deregistration before stopping it (L3). The agent ignores
those keys itself: its own reports never cause a render.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from confd.errors import CommandFailed, EtcdUnavailable, RenderError
from confd.etcd_view import Change, EtcdView, WatchStream, minimal_prefixes
from confd.grace import GraceMemory, apply_grace
from confd.reload import install
from confd.render import Template, under
from confd.resources import Resource
from confd.services import build_services
from confd.status import StatusBoard

log = logging.getLogger(__name__)

BATCH_DELAY = 0.05  # after a first change, how long to wait for the rest of a burst
RETRY_DELAY = 10.0  # a failed render is tried again after this, changes or not
BACKOFF_FIRST = 0.1
BACKOFF_CAP = 2.0
AGENTS_PREFIX = "/shipway/agents/"
REPORT_EVERY = 10.0  # an agent silent for three times this is taken for gone


@dataclass(frozen=True)
class _Changes:
    generation: int
    changes: list[Change]


@dataclass(frozen=True)
class _StreamFailed:
    generation: int
    reason: str


class _Stop:
    pass


_Message = _Changes | _StreamFailed | _Stop


@dataclass
class _ResourceState:
    resource: Resource
    template: Template
    grace: GraceMemory = field(default_factory=GraceMemory)
    warnings: frozenset[str] = frozenset()
    failure: str | None = None


class Agent:
    """Keeps each resource's destination in step with etcd until ``stop``."""

    def __init__(
        self,
        resources: Sequence[Resource],
        view: EtcdView,
        *,
        empty_grace: float = 10.0,
        status: StatusBoard | None = None,
        batch_delay: float = BATCH_DELAY,
        retry_delay: float = RETRY_DELAY,
        clock: Callable[[], float] = time.monotonic,
        name: str | None = None,
    ) -> None:
        self.view = view
        self.name = name  # reports its revision to etcd under this name, when given
        self.status = status or StatusBoard()
        self.empty_grace = empty_grace
        self.batch_delay = batch_delay
        self.retry_delay = retry_delay
        self._clock = clock
        self._states = [_ResourceState(resource, Template(resource)) for resource in resources]
        self._prefixes = minimal_prefixes(key for item in resources for key in item.keys)
        self._kv: dict[str, str] = {}
        self._revisions: dict[str, int] = {}
        self._queue: queue.Queue[_Message] = queue.Queue()
        self._stopping = threading.Event()
        self._generation = 0
        self._retry_at: float | None = None
        self._revision = 0  # the newest etcd revision seen (a read's, or a change's)
        self._report_at: float | None = None  # when a report is due

    def stop(self) -> None:
        self._stopping.set()
        self._queue.put(_Stop())

    def run_once(self) -> None:
        """Read, render and install every resource once; the first error is raised."""
        self._resync()
        errors = self._render_all()
        if errors:
            raise errors[0]

    def run(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stopping.is_set():
            try:
                self._resync()
            except EtcdUnavailable as exc:
                log.warning("etcd unavailable, retrying in %.1fs: %s", delay, exc)
                self.status.disconnected(str(exc))
                self._stopping.wait(delay)
                delay = min(delay * 2, BACKOFF_CAP)
                continue
            if not self._render_all():
                self._report()
            started = self._clock()
            reason = self._follow()
            if reason is None:
                return
            log.warning("etcd watch lost, resyncing: %s", reason)
            self.status.disconnected(reason)
            if self._clock() - started >= BACKOFF_CAP:
                delay = BACKOFF_FIRST  # it had been working: come back quickly
            self._stopping.wait(delay)
            delay = min(delay * 2, BACKOFF_CAP)

    def _resync(self) -> None:
        snapshot = self.view.read(self._prefixes)
        self._kv = {k: v for k, v in snapshot.kv.items() if not k.startswith(AGENTS_PREFIX)}
        self._generation += 1
        self._revisions = snapshot.revisions
        self._revision = max(snapshot.revisions.values(), default=0)
        self._report_at = self._clock()  # report what a first render reflects
        catalogue = build_services(self._kv)
        self.status.connected(len(catalogue.services), catalogue.server_count)
        log.info(
            "read %d keys under %s: %d services",
            len(self._kv),
            ", ".join(self._prefixes),
            len(catalogue.services),
        )

    def _follow(self) -> str | None:
        """Watch until a stream fails (its reason) or ``stop`` (None)."""
        generation = self._generation
        streams: list[WatchStream] = []
        try:
            for prefix, revision in self._revisions.items():
                streams.append(
                    self.view.watch(
                        prefix,
                        revision + 1,
                        on_changes=lambda changes: self._queue.put(_Changes(generation, changes)),
                        on_failure=lambda why: self._queue.put(_StreamFailed(generation, why)),
                    )
                )
            return self._consume(generation)
        except EtcdUnavailable as exc:
            return str(exc)
        finally:
            for stream in streams:
                stream.cancel()

    def _consume(self, generation: int) -> str | None:
        while True:
            wake_at = self._wake_at()
            timeout = None if wake_at is None else max(0.0, wake_at - self._clock())
            try:
                message = self._queue.get(timeout=timeout)
            except queue.Empty:
                # A grace ended, a failed render is due again, or a report.
                if not self._render_all():
                    self._report()
                continue
            deadline = self._clock() + self.batch_delay
            relevant = False
            while True:
                if isinstance(message, _Stop):
                    return None
                if message.generation == generation:
                    if isinstance(message, _StreamFailed):
                        return message.reason
                    relevant = self._apply(message.changes) or relevant
                left = deadline - self._clock()
                if left <= 0:
                    break
                try:
                    message = self._queue.get(timeout=left)
                except queue.Empty:
                    break
            if relevant:
                self._report_at = self._clock()
                if not self._render_all():
                    self._report()

    def _wake_at(self) -> float | None:
        moments = [state.grace.deadline(self.empty_grace) for state in self._states]
        moments.append(self._retry_at)
        if self.name is not None:
            moments.append(self._report_at)
        return min((moment for moment in moments if moment is not None), default=None)

    def _apply(self, changes: list[Change]) -> bool:
        """Take changes in; whether any may change what is rendered."""
        relevant = False
        for change in changes:
            self._revision = max(self._revision, change.revision)
            if change.key.startswith(AGENTS_PREFIX):
                continue
            relevant = True
            if change.value is None:
                self._kv.pop(change.key, None)
            else:
                self._kv[change.key] = change.value
        catalogue = build_services(self._kv)
        self.status.connected(len(catalogue.services), catalogue.server_count)
        return relevant

    def _report(self) -> None:
        """Tell etcd which revision the files reflect, when a report is due."""
        now = self._clock()
        if self.name is None or self._report_at is None or now < self._report_at:
            return
        value = json.dumps({"revision": self._revision, "at": time.time()})
        try:
            self.view.put(f"{AGENTS_PREFIX}{self.name}", value)
        except EtcdUnavailable as exc:
            log.warning("could not report to etcd: %s", exc)
        self._report_at = now + REPORT_EVERY

    def _render_all(self) -> list[RenderError | CommandFailed | OSError]:
        now = self._clock()
        errors: list[RenderError | CommandFailed | OSError] = []
        for state in self._states:
            try:
                self._render(state, now)
            except (RenderError, CommandFailed, OSError) as exc:
                errors.append(exc)
                message = str(exc)
                if message != state.failure:  # the same failure retried is logged once
                    log.error(
                        "%s: %s; %s left as it was",
                        state.resource.name,
                        message,
                        state.resource.dest,
                    )
                state.failure = message
                self.status.failed(state.resource.name, message)
        self._retry_at = now + self.retry_delay if errors else None
        return errors

    def _render(self, state: _ResourceState, now: float) -> None:
        resource = state.resource
        kv = under(self._kv, resource.keys)
        catalogue = build_services(kv)
        for warning in sorted(set(catalogue.warnings) - state.warnings):
            log.warning("%s: %s", resource.name, warning)
        state.warnings = frozenset(catalogue.warnings)
        services, state.grace = apply_grace(catalogue.services, state.grace, now, self.empty_grace)
        text = state.template.render(services, kv)
        installed = install(resource, text)
        servers = sum(len(service.servers) for service in services)
        if installed.changed:
            log.info(
                "%s: wrote %s (%d services, %d servers, sha256 %s)",
                resource.name,
                resource.dest,
                len(services),
                servers,
                installed.sha256[:12],
            )
        if state.failure is not None:
            log.info("%s: rendering works again", resource.name)
            state.failure = None
        self.status.rendered(
            resource.name, str(resource.dest), installed.sha256, len(services), servers
        )
