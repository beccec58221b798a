"""Waiting for SonarQube's verdict on an analysis, through its Web API.

The scanner (``pysonar``) uploads the analysis and writes ``report-task.txt``,
whose ``ceTaskId`` names the server-side task that processes it. Shipway then polls
``GET api/ce/task?id=`` until the task ends, and reads the quality gate of the
analysis it produced with ``GET api/qualitygates/project_status?analysisId=``.
The token is sent as a bearer token (SonarQube 10 and later).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from pipelines.errors import ExternalError

PENDING = ("PENDING", "IN_PROGRESS")


@dataclass(frozen=True)
class SonarVerdict:
    passed: bool
    status: str  # OK, WARN, ERROR or NONE; or the task's FAILED or CANCELED
    conditions: list[str]  # each failed condition, said plainly


def read_report_task(text: str) -> dict[str, str]:
    """``key=value`` lines, as the scanner writes them."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[key.strip()] = value.strip()
    return values


class SonarQube:
    def __init__(
        self,
        host_url: str,
        token: str,
        poll_seconds: float = 1.0,
        patience_seconds: float = 600.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.poll_seconds = poll_seconds
        self.patience_seconds = patience_seconds
        self.http = httpx.Client(
            base_url=host_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30.0,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def wait_for_gate(self, ce_task_id: str) -> SonarVerdict:
        deadline = time.monotonic() + self.patience_seconds
        while True:
            task = self._get("/api/ce/task", id=ce_task_id)["task"]
            status = str(task["status"])
            if status not in PENDING:
                break
            if time.monotonic() > deadline:
                raise ExternalError(
                    f"SonarQube did not process task {ce_task_id} in {self.patience_seconds}s"
                )
            time.sleep(self.poll_seconds)
        if status != "SUCCESS":
            reason = task.get("errorMessage") or f"the analysis task ended {status}"
            return SonarVerdict(False, status, [str(reason)])
        project = self._get("/api/qualitygates/project_status", analysisId=task["analysisId"])
        gate = project["projectStatus"]
        failed = [
            f"{condition['metricKey']} is {condition.get('actualValue', '?')} "
            f"({condition.get('comparator', '')} {condition.get('errorThreshold', '')})".strip()
            for condition in gate.get("conditions", [])
            if condition.get("status") == "ERROR"
        ]
        return SonarVerdict(gate["status"] in ("OK", "WARN", "NONE"), str(gate["status"]), failed)

    def _get(self, path: str, **params: str) -> dict[str, Any]:
        try:
            response = self.http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise ExternalError(f"SonarQube unreachable: {exc}") from exc
        if response.is_error:
            raise ExternalError(f"SonarQube answered {response.status_code} to {path}")
        answer: dict[str, Any] = response.json()
        return answer
