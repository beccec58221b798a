"""Scan jobs (``kind: scan``): the analysers that fit the repository run in the
scanners image over the workspace; their JSON goes to the server, which turns it into
SonarQube's generic issue format and judges the quality gate.

Which analysers fit: those named in the pipeline file, or else, for a repository
with Python files, ruff and bandit. A repository none fits fails the job with
``config_error`` rather than passing a scan that looked at nothing.

When the job has ``SONAR_HOST_URL`` (a variable) and ``SONAR_TOKEN`` (a secret),
SonarQube's own scanner runs instead, and SonarQube's quality gate decides.
"""

from __future__ import annotations

import io
import shlex
import tarfile
import threading
from collections.abc import Mapping
from dataclasses import replace

from pipelines.model import JobTask
from pipelines.status import FailureKind
from runners.executor import DockerExecutor, ExecutionResult
from runners.reporting import LogShipper, ServerClient
from runners.sonarqube import SonarQube, read_report_task

OUTPUT = ".shipway-scan"
COMMANDS = {
    "ruff": "ruff check --output-format=json --exit-zero --no-cache -- {paths} > {out}/ruff.json",
    "bandit": "bandit -r -f json -o {out}/bandit.json --exit-zero -q {paths}",
}


def fitting_analysers(workspace: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(workspace)) as archive:
        names = archive.getnames()
    if any(name.endswith(".py") for name in names):
        return ["ruff", "bandit"]
    return []


def scan_script(analysers: list[str], paths: list[str]) -> tuple[str, ...]:
    quoted = " ".join(shlex.quote(path) for path in paths) or "."
    return (
        f"mkdir -p {OUTPUT}",
        *(COMMANDS[name].format(paths=quoted, out=OUTPUT) for name in analysers),
    )


def sonar_settings(task: JobTask, secrets: Mapping[str, str]) -> tuple[str, str] | None:
    """SonarQube's URL and token, when the job has both (a variable and a secret)."""
    host, token = task.environment().get("SONAR_HOST_URL"), secrets.get("SONAR_TOKEN")
    return (host, token) if host and token else None


def run_sonar_scan(
    executor: DockerExecutor,
    task: JobTask,
    secrets: Mapping[str, str],
    workspace: bytes,
    shipper: LogShipper,
    canceled: threading.Event,
    host: str,
    token: str,
) -> ExecutionResult:
    """Run SonarQube's scanner in the scanners image, then wait for the quality gate
    of the analysis it uploaded. The scanner reads the URL and the token from the
    job's environment (SONAR_HOST_URL, SONAR_TOKEN); they never reach the log."""
    key = task.environment().get("SONAR_PROJECT_KEY") or task.project
    shipper.write_text(f"Scanning with SonarQube at {host} (project {key})\n")
    script = (
        f"mkdir -p {OUTPUT}",
        f"pysonar --sonar-project-key {shlex.quote(key)} "
        f"--sonar-scanner-metadata-filepath {OUTPUT}/report-task.txt",
    )
    result = executor.run(
        replace(task, script=script),
        lambda: workspace,
        shipper.write,
        canceled,
        [f"{OUTPUT}/report-task.txt"],
        secrets,
    )
    if not result.succeeded:
        return result
    report = result.reports.get(f"{OUTPUT}/report-task.txt")
    task_id = read_report_task(report.decode()).get("ceTaskId") if report else None
    if not task_id:
        return ExecutionResult(result.exit_code, "the scanner wrote no ceTaskId")
    sonar = SonarQube(host, token)
    try:
        verdict = sonar.wait_for_gate(task_id)
    finally:
        sonar.close()
    shipper.write_text(f"SonarQube quality gate: {verdict.status}\n")
    for condition in verdict.conditions:
        shipper.write_text(f"  {condition}\n")
    if not verdict.passed:
        reason = "SonarQube quality gate: " + ("; ".join(verdict.conditions) or verdict.status)
        return ExecutionResult(result.exit_code, reason, FailureKind.QUALITY_GATE)
    return result


def run_scan(
    executor: DockerExecutor,
    task: JobTask,
    secrets: Mapping[str, str],
    workspace: bytes,
    shipper: LogShipper,
    canceled: threading.Event,
    server: ServerClient,
) -> ExecutionResult:
    sonar = sonar_settings(task, secrets)
    if sonar is not None:
        host, token = sonar
        return run_sonar_scan(executor, task, secrets, workspace, shipper, canceled, host, token)
    settings = task.settings or {}
    analysers = list(settings.get("analysers") or fitting_analysers(workspace))
    if not analysers:
        return ExecutionResult(
            None,
            "no analyser fits this repository: name them with analysers: [ruff, bandit]",
            FailureKind.CONFIG_ERROR,
        )
    shipper.write_text(f"Scanning with {', '.join(analysers)} in {task.image}\n")
    script = scan_script(analysers, list(settings.get("paths") or []))
    result = executor.run(
        replace(task, script=script),
        lambda: workspace,
        shipper.write,
        canceled,
        [f"{OUTPUT}/*.json"],
        secrets,
    )
    if not result.succeeded:
        return result
    for name in analysers:
        output = result.reports.get(f"{OUTPUT}/{name}.json")
        if output is None:
            return ExecutionResult(result.exit_code, f"{name} wrote no report")
        counts = server.upload_scan(task.job_id, name, output)
        shipper.write_text(f"{name}: {counts['findings']} findings\n")
    gate = server.judge_scan(task.job_id)
    counts = gate["counts"]
    shipper.write_text(
        f"Quality gate: {counts['total']} findings ({counts['high']} high, "
        f"{counts['medium']} medium), {counts['new_total']} new "
        f"({counts['new_high']} high): {'passed' if gate['passed'] else 'FAILED'}\n"
    )
    for condition in gate["broken"]:
        shipper.write_text(f"  {condition}\n")
    if not gate["passed"]:
        reason = "quality gate: " + "; ".join(gate["broken"])
        return ExecutionResult(result.exit_code, reason, FailureKind.QUALITY_GATE)
    return result
