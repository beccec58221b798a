"""How a runner talks to the server: job start, log appends, job end.

Network errors and 5xx answers are retried with a growing pause (up to 5 s) for up
to ``patience_seconds`` (15 minutes unless the runner's SHIPWAY_REPORT_PATIENCE says
otherwise), so a server restarted or upgraded in the middle of a job loses nothing:
appends name their offset and every call is safe to repeat.
"""

from __future__ import annotations

import codecs
import functools
import logging
import ssl
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import httpx

from pipelines.errors import Conflict, ExternalError
from pipelines.job_log import split_for_append
from pipelines.masking import Masker

log = logging.getLogger(__name__)

# How long reports are retried while the server is away (SHIPWAY_REPORT_PATIENCE).
DEFAULT_PATIENCE_SECONDS = 900


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context of runner -> server calls, made once per process.

    Making one loads the CA bundle (~50 ms here); the worker makes it before it
    forks, so each job's process inherits it instead of paying for it."""
    return ssl.create_default_context()


def warm_up() -> None:
    """Pay once, in the worker before it forks, what each job's process would pay
    again: the TLS context and what httpx imports on its first client (~50 ms)."""
    tls_context()
    httpx.Client(verify=tls_context()).close()


class ServerClient:
    def __init__(
        self,
        server_url: str,
        token: str,
        patience_seconds: float = DEFAULT_PATIENCE_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.patience_seconds = patience_seconds
        self.http = httpx.Client(
            base_url=server_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30.0, connect=5.0),
            transport=transport,
            verify=tls_context(),
        )

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.http.close()

    def heartbeat(
        self,
        runner: str,
        queues: list[str],
        host: str,
        pid: int,
        job_id: int | None,
        problem: str | None = None,
    ) -> None:
        """One heartbeat, tried once: the next one comes soon anyway. Raises
        httpx.HTTPError when it was not delivered."""
        body = {
            "runner": runner,
            "queues": queues,
            "host": host,
            "pid": pid,
            "job_id": job_id,
            "problem": problem,
        }
        self.http.post("/api/runner/heartbeat", json=body).raise_for_status()

    def start(self, job_id: int, runner: str) -> dict[str, str] | None:
        """Claim the job: the values of its secrets, or None when the server says
        it is no longer pending (or cannot run), so it must not be executed."""
        try:
            answer = self._post(f"/api/runner/jobs/{job_id}/start", json={"runner": runner})
        except Conflict:
            return None
        return {str(name): str(value) for name, value in answer.get("secrets", {}).items()}

    def report_image(self, job_id: int, image: dict[str, Any]) -> None:
        """The image the job pushed; safe to repeat."""
        self._post(f"/api/runner/jobs/{job_id}/image", json=image)

    def upload_junit(self, job_id: int, name: str, content: bytes) -> dict[str, Any]:
        """A JUnit report; the counts the server read from it. ExternalError names
        what the server refused (a file that is not JUnit XML)."""
        answer: dict[str, Any] = self._post(
            f"/api/runner/jobs/{job_id}/reports/junit",
            params={"name": name},
            content=content,
            headers={"Content-Type": "application/xml"},
        )
        return answer

    def upload_scan(self, job_id: int, analyser: str, content: bytes) -> dict[str, Any]:
        """One analyser's JSON output; how many findings the server read from it."""
        answer: dict[str, Any] = self._post(
            f"/api/runner/jobs/{job_id}/reports/scan",
            params={"analyser": analyser},
            content=content,
            headers={"Content-Type": "application/json"},
        )
        return answer

    def judge_scan(self, job_id: int) -> dict[str, Any]:
        """The quality gate's verdict on the findings uploaded for the job."""
        answer: dict[str, Any] = self._post(f"/api/runner/jobs/{job_id}/gate")
        return answer

    def report_instance(self, release_id: int, name: str, status: str, log: str) -> None:
        self._post(
            f"/api/runner/releases/{release_id}/instances/{name}",
            json={"status": status, "log": log},
        )

    def claim_batch(self, release_id: int, batch: int, handout: int, runner: str) -> bool:
        """False when the release no longer wants this batch (closed, past it, handed
        out again) or another runner claimed it."""
        try:
            self._post(
                f"/api/runner/releases/{release_id}/batches/{batch}/start",
                json={"runner": runner, "handout": handout},
            )
        except Conflict:
            return False
        return True

    def batch_done(self, release_id: int, batch: int, failure: str | None) -> None:
        try:
            self._post(
                f"/api/runner/releases/{release_id}/batches/{batch}/done",
                json={"failure": failure},
            )
        except Conflict:
            log.info("release %s: batch %s report refused (closed?)", release_id, batch)

    def append_log(self, job_id: int, offset: int, text: str) -> int:
        """Raises Conflict once the job's log is closed (the job was canceled)."""
        answer = self._post(
            f"/api/runner/jobs/{job_id}/log",
            params={"offset": offset},
            content=text.encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        return int(answer["length"])

    def finish(
        self,
        job_id: int,
        succeeded: bool,
        exit_code: int | None,
        reason: str | None,
        failure_kind: str | None = None,
    ) -> None:
        body = {
            "succeeded": succeeded,
            "exit_code": exit_code,
            "failure_kind": failure_kind,
            "failure_reason": reason,
        }
        try:
            self._post(f"/api/runner/jobs/{job_id}/finish", json=body)
        except Conflict:
            log.info("job %s ended on the server already (canceled?)", job_id)

    def _post(self, path: str, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self.patience_seconds
        pause = 0.2
        while True:
            try:
                response = self.http.post(path, **kwargs)
            except httpx.TransportError as exc:
                problem: str = f"server unreachable: {exc}"
            else:
                if response.status_code == 409:
                    raise Conflict(response.json().get("error", "conflict"))
                if response.status_code < 500:
                    if response.is_error:
                        raise ExternalError(f"server refused {path}: {response.text}")
                    return response.json()
                problem = f"server answered {response.status_code}"
            if time.monotonic() + pause > deadline:
                raise ExternalError(f"{path}: {problem}; gave up after {self.patience_seconds}s")
            log.warning("%s: %s; retrying in %.1fs", path, problem, pause)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


class LogShipper:
    """Sends a job's output to the server in order, in batches, from one thread.

    ``write`` never blocks on the network. Bytes are decoded as UTF-8 across chunk
    boundaries, and secret values are masked before anything leaves the runner,
    also when a value arrives split across chunks. A batch larger than the server
    takes in one append goes in several (``pipelines.job_log``). Text the server
    refuses is never dropped silently: the log says, where it is missing, how much
    is missing and why. When the server closes the log (the job was canceled),
    ``on_closed`` is set and later output is dropped; a job that prints nothing is
    asked about every ``poll_seconds`` with an empty append, so a cancel reaches it
    within about that long."""

    def __init__(
        self,
        server: ServerClient,
        job_id: int,
        on_closed: threading.Event,
        secrets: Iterable[str] = (),
        interval_seconds: float = 0.2,
        poll_seconds: float = 1.0,
    ) -> None:
        self.server = server
        self.job_id = job_id
        self.on_closed = on_closed
        self.interval_seconds = interval_seconds
        self.poll_seconds = poll_seconds
        self.offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._masker = Masker(secrets)
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._last_call = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"log-{job_id}", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        self.write_text(self._decoder.decode(data))

    def write_text(self, text: str) -> None:
        if text:
            with self._lock:
                self._pending.append(self._masker.feed(text))

    def close(self) -> None:
        """Send everything written so far, then stop."""
        self.write_text(self._decoder.decode(b"", final=True))
        with self._lock:
            self._pending.append(self._masker.flush())
        self._closing = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            closing = self._closing
            self._send()
            if closing:
                return
            self._wake.wait(self.interval_seconds)

    def _send(self) -> None:
        with self._lock:
            text = "".join(self._pending)
            self._pending.clear()
        if self.on_closed.is_set():
            return
        idle = time.monotonic() - self._last_call >= self.poll_seconds
        if not text and not (idle and not self._closing):
            return
        for piece in split_for_append(text) or [""]:
            if not self._append(piece):
                break
        self._last_call = time.monotonic()

    def _append(self, text: str) -> bool:
        """Send one piece at the current offset; False once the log is closed."""
        try:
            self.offset = self.server.append_log(self.job_id, self.offset, text)
        except Conflict:
            self.on_closed.set()
            return False
        except ExternalError as exc:
            log.error("job %s: %d characters of log not stored: %s", self.job_id, len(text), exc)
            return self._mark_gap(len(text), exc)
        return True

    def _mark_gap(self, missing: int, why: ExternalError) -> bool:
        """Put in the log, where text is missing, how much and why."""
        notice = f"\n[shipway: {missing} characters of output are missing here: {why}]\n"
        try:
            self.offset = self.server.append_log(self.job_id, self.offset, notice)
        except Conflict:
            self.on_closed.set()
            return False
        except ExternalError:
            log.exception("job %s: the gap's notice was refused too", self.job_id)
        return True
