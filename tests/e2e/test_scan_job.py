"""A scan job: ruff and bandit in the scanners image, findings in SonarQube's generic
format, and a quality gate on new high-severity findings."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_push_to_pipeline import SECRET, finished, job_log, pushed_pipeline
from tests.support.git import Repository
from tests.support.services import Deployment, ShipwayProcess

pytestmark = pytest.mark.docker

PIPELINE = """
jobs:
  scan:
    kind: scan
    gate: {new_high: 0}
"""
RISKY = "import subprocess\n\n\ndef run(command):\n    subprocess.call(command, shell=True)\n"


def test_a_new_high_finding_fails_the_gate_and_an_old_one_does_not(
    deployment: Deployment,
    server: ShipwayProcess,
    runner: ShipwayProcess,
    repository: Repository,
    scanners: str,
) -> None:
    deployment.add_project("risky", repository.bare, "team/risky", SECRET)
    repository.commit({".shipway.yml": PIPELINE, "app/tool.py": RISKY})
    first = finished(deployment, pushed_pipeline(repository.push()), timeout=120)
    (scan,) = first["jobs"]
    assert (scan["status"], scan["failure_kind"]) == ("failed", "quality_gate")
    assert scan["failure_reason"] == "quality gate: new high findings: 1, at most 0 allowed"
    log = job_log(deployment, scan["id"])
    assert "Scanning with ruff, bandit" in log
    assert "bandit: 2 findings" in log, log

    with deployment.api() as api:
        listed = api.get(f"/api/pipelines/{first['id']}/artifacts").json()
        combined = next(item for item in listed if item["name"] == "generic-issues.json")
        document = json.loads(api.get(combined["url"]).content)
    (issue,) = [i for i in document["issues"] if i["ruleId"] == "bandit:B602"]
    assert issue["primaryLocation"]["filePath"] == "app/tool.py"
    assert issue["primaryLocation"]["textRange"] == {"startLine": 5}
    rule = next(rule for rule in document["rules"] if rule["id"] == "bandit:B602")
    assert rule["impacts"] == [{"softwareQuality": "SECURITY", "severity": "HIGH"}]

    # The same finding on the next push is not new: the gate passes.
    repository.commit({"app/other.py": "VALUE = 1\n"})
    second = finished(deployment, pushed_pipeline(repository.push()), timeout=120)
    assert second["status"] == "success", job_log(deployment, second["jobs"][0]["id"])


def test_a_repository_no_analyser_fits_is_not_passed_silently(
    deployment: Deployment,
    server: ShipwayProcess,
    runner: ShipwayProcess,
    repository: Repository,
    scanners: str,
) -> None:
    deployment.add_project("docs", repository.bare, "team/docs", SECRET)
    repository.commit({".shipway.yml": PIPELINE, "README.md": "# just text\n"})
    pipeline = finished(deployment, pushed_pipeline(repository.push()), timeout=120)
    (scan,) = pipeline["jobs"]
    assert scan["failure_kind"] == "config_error"
    assert "no analyser fits this repository" in scan["failure_reason"]
