"""Scan jobs' findings: stored in SonarQube's generic issue import format (one
artifact per analyser, and ``generic-issues.json`` with all of them, ready for
``sonar.externalIssuesReportPaths``), and judged by the job's quality gate against
the previous scan of the same project and ref."""

from __future__ import annotations

import json

from pipelines.errors import Conflict, InvalidInput
from pipelines.scan import DEFAULT_GATE, READERS, GateResult, from_generic, judge, to_generic
from pipelines.status import Status
from server.store import Store

SCAN = "scan"
ALL_FINDINGS = "generic-issues.json"
MAX_SCAN_BYTES = 50 * 1024 * 1024


def attach_scan(store: Store, job_id: int, analyser: str, content: bytes) -> int:
    """Read one analyser's output; the number of findings. ScanReportError (400)
    for output that cannot be read; nothing is stored then."""
    job = store.jobs.get(job_id)
    if job.kind != SCAN:
        raise Conflict(f"job {job_id} is a {job.kind} job: it does not scan")
    if job.status is not Status.RUNNING:
        raise Conflict(f"job {job_id} is {job.status}: it reports nothing now")
    reader = READERS.get(analyser)
    if reader is None:
        raise InvalidInput(f"analyser is one of: {', '.join(READERS)}", "analyser")
    findings = reader(content)
    document = json.dumps(to_generic(findings), indent=1).encode()
    store.artifacts.attach(
        job.pipeline_id, job_id, SCAN, f"{analyser}-issues.json", "application/json", document
    )
    return len(findings)


def has_findings(store: Store, job_id: int) -> bool:
    """Whether the job reported local analysers' findings (a SonarQube scan does not:
    SonarQube's own gate decides it)."""
    return any(artifact.kind == SCAN for artifact in store.artifacts.of_job(job_id))


def judge_scan(store: Store, job_id: int) -> GateResult:
    """The gate's verdict on every finding the job reported; the combined report is
    stored as ``generic-issues.json``."""
    job = store.jobs.get(job_id)
    if job.kind != SCAN:
        raise Conflict(f"job {job_id} is a {job.kind} job: it has no quality gate")
    findings = [
        finding
        for artifact in store.artifacts.of_job(job_id)
        if artifact.kind == SCAN and artifact.name != ALL_FINDINGS
        for finding in from_generic(json.loads(store.artifacts.content(artifact.id)[1]))
    ]
    pipeline = store.pipelines.get(job.pipeline_id)
    previous = store.artifacts.previous(pipeline, SCAN, ALL_FINDINGS)
    baseline = from_generic(json.loads(previous)) if previous is not None else None
    gate = (job.settings or {}).get("gate") or DEFAULT_GATE
    store.artifacts.attach(
        job.pipeline_id,
        job_id,
        SCAN,
        ALL_FINDINGS,
        "application/json",
        json.dumps(to_generic(findings), indent=1).encode(),
    )
    return judge(findings, baseline, gate)
