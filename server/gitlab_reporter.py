"""A background thread that reports to GitLab (T5), apart from the engine: GitLab
slow or away never delays a pipeline. Like the engine, it keeps nothing in memory:
what was sent is in the database, so a restarted server sends what is still due."""

from __future__ import annotations

import logging
import threading

from pipelines.ports import GitLab
from server.store import Store
from server.store.tables import utcnow
from server.usecases.gitlab_feedback import report_to_gitlab

log = logging.getLogger(__name__)


class GitLabReporter:
    def __init__(
        self,
        store: Store,
        gitlab: GitLab,
        public_url: str | None = None,
        interval_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.gitlab = gitlab
        self.public_url = public_url
        self.interval_seconds = interval_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gitlab-reporter", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                report_to_gitlab(self.store, self.gitlab, utcnow(), self.public_url)
            except Exception:
                log.exception("reporting to GitLab failed; trying again")
            self._wake.wait(self.interval_seconds)
