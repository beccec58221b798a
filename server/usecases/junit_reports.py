"""Test reports a job leaves: stored as artifacts, read into test cases, and a
failing test fails the job even when its script exited 0."""

from __future__ import annotations

from pipelines.errors import Conflict, InvalidInput
from pipelines.junit import Counts, parse_junit
from pipelines.status import Status
from server.store import Store

MAX_REPORT_BYTES = 20 * 1024 * 1024
JUNIT = "junit"


def attach_junit(store: Store, job_id: int, name: str, content: bytes) -> Counts:
    """Raises ReportError (400) for what is not JUnit XML; nothing is stored then."""
    job = store.jobs.get(job_id)
    if job.status is not Status.RUNNING:
        raise Conflict(f"job {job_id} is {job.status}: it reports nothing now")
    if not name or len(name) > 500:
        raise InvalidInput("a report's name is its path in the workspace", "name")
    cases = parse_junit(content)
    store.artifacts.attach(job.pipeline_id, job_id, JUNIT, name, "application/xml", content, cases)
    return Counts.of(cases)


def failed_tests(store: Store, job_id: int) -> str | None:
    """Why the job's tests fail it, or None when none failed."""
    cases = store.artifacts.cases_of_job(job_id)
    counts = Counts.of(cases)
    if not counts.broken:
        return None
    names = [
        f"{case.classname}.{case.name}" if case.classname else case.name
        for case in cases
        if case.outcome.value in ("failed", "error")
    ]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"{counts.broken} of {counts.total} tests failed: {shown}"
