"""Waiting for SonarQube's quality gate, against a fake of its documented Web API."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.errors import ExternalError
from runners.sonarqube import SonarQube, read_report_task
from tests.support.fake_sonarqube import FakeSonarQube, running

REPORT_TASK = """projectKey=hello
serverUrl=http://sonar.example.com
serverVersion=10.6.0.92116
dashboardUrl=http://sonar.example.com/dashboard?id=hello
ceTaskId=AVAn5RKqYwETbXvgas-I
ceTaskUrl=http://sonar.example.com/api/ce/task?id=AVAn5RKqYwETbXvgas-I
"""


def test_the_report_task_names_the_task() -> None:
    assert read_report_task(REPORT_TASK)["ceTaskId"] == "AVAn5RKqYwETbXvgas-I"


def fake_with(gate: dict[str, Any], task_status: str = "SUCCESS") -> FakeSonarQube:
    fake = FakeSonarQube(token="squ_token")
    fake.tasks["AVAn5RKqYwETbXvgas-I"] = {
        "status": task_status,
        "analysisId": "AU-TpxcA-iU5OvuD2FLz",
        "componentKey": "hello",
        **({"errorMessage": "Fail to extract report"} if task_status == "FAILED" else {}),
    }
    fake.gates["AU-TpxcA-iU5OvuD2FLz"] = gate
    return fake


def test_a_passed_gate_after_the_task_was_processed() -> None:
    with running(fake_with({"status": "OK", "conditions": []})) as fake:
        client = SonarQube(fake.url, "squ_token", poll_seconds=0.05)
        try:
            verdict = client.wait_for_gate("AVAn5RKqYwETbXvgas-I")
        finally:
            client.close()
    assert (verdict.passed, verdict.status) == (True, "OK")
    paths = [path for path, _, _ in fake.requests]
    assert paths == ["/api/ce/task", "/api/ce/task", "/api/qualitygates/project_status"]
    assert fake.requests[-1][1] == {"analysisId": ["AU-TpxcA-iU5OvuD2FLz"]}
    assert {auth for _, _, auth in fake.requests} == {"Bearer squ_token"}


def test_a_failed_gate_names_its_conditions() -> None:
    gate = {
        "status": "ERROR",
        "conditions": [
            {
                "status": "ERROR",
                "metricKey": "new_security_rating",
                "comparator": "GT",
                "errorThreshold": "1",
                "actualValue": "5",
            },
            {"status": "OK", "metricKey": "new_coverage", "comparator": "LT"},
        ],
    }
    with running(fake_with(gate)) as fake:
        verdict = SonarQube(fake.url, "squ_token", poll_seconds=0.05).wait_for_gate(
            "AVAn5RKqYwETbXvgas-I"
        )
    assert not verdict.passed
    assert verdict.conditions == ["new_security_rating is 5 (GT 1)"]


def test_a_failed_analysis_task_fails_with_its_message() -> None:
    with running(fake_with({"status": "OK"}, task_status="FAILED")) as fake:
        verdict = SonarQube(fake.url, "squ_token", poll_seconds=0.05).wait_for_gate(
            "AVAn5RKqYwETbXvgas-I"
        )
    assert (verdict.passed, verdict.conditions) == (False, ["Fail to extract report"])


def test_a_wrong_token_or_task_is_an_external_error() -> None:
    with running(fake_with({"status": "OK"})) as fake:
        with pytest.raises(ExternalError, match="answered 401"):
            SonarQube(fake.url, "wrong").wait_for_gate("AVAn5RKqYwETbXvgas-I")
        with pytest.raises(ExternalError, match="answered 404"):
            SonarQube(fake.url, "squ_token").wait_for_gate("nope")
