"""What the app keeps while it runs, opened in the lifespan and closed after it."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field

from starlette.requests import Request

from runners.git_mirror import GitMirrors
from server.discovery import EtcdWeights
from server.engine import Engine
from server.intake import WebhookIntake
from server.queue import RqJobQueue
from server.secret_box import SecretBox
from server.settings import Settings
from server.store import Store


class LogNotifier:
    """Wakes live-log readers of a job when its log grows or the job ends.

    Lives on the event loop; call :meth:`notify` from the loop's thread only."""

    def __init__(self) -> None:
        self._events: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)

    def notify(self, job_id: int) -> None:
        event = self._events.pop(job_id, None)
        if event is not None:
            event.set()

    async def wait(self, job_id: int, timeout: float) -> None:
        event = self._events[job_id]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


@dataclass
class AppState:
    settings: Settings
    store: Store
    queue: RqJobQueue
    sources: GitMirrors
    engine: Engine
    secret_box: SecretBox
    intake: WebhookIntake
    weights: EtcdWeights | None = None  # traffic weights, when etcd is configured
    logs: LogNotifier = field(default_factory=LogNotifier)


def state_of(request: Request) -> AppState:
    state = request.app.state.shipway
    assert isinstance(state, AppState)
    return state
