"""JUnit reports from a job: parsed, shown, downloadable, and failing the pipeline."""

from __future__ import annotations

import pytest

from tests.e2e.test_push_to_pipeline import SECRET, finished, job_log, pushed_pipeline
from tests.support.git import Repository
from tests.support.services import Deployment, ShipwayProcess

pytestmark = pytest.mark.docker

REPORT = """<testsuites><testsuite name="unit">
<testcase classname="calc" name="test_add" time="0.01"/>
<testcase classname="calc" name="test_div">
<failure message="1 != 2">assert 1 == 2</failure></testcase>
<testcase classname="calc" name="test_big"><skipped/></testcase>
</testsuite></testsuites>
"""

PIPELINE = """
image: shipway/busybox:1
jobs:
  unit:
    reports: {junit: "reports/*.xml"}
    script:
      - mkdir -p reports
      - cp junit.xml reports/unit.xml
      - echo "the test runner itself exits 0"
  other:
    reports: {junit: none/*.xml}
    script: echo "no report written"
"""


def test_a_failing_test_fails_the_job_and_is_shown(
    deployment: Deployment, server: ShipwayProcess, runner: ShipwayProcess, repository: Repository
) -> None:
    deployment.add_project("calc", repository.bare, "team/calc", SECRET)
    repository.commit({".shipway.yml": PIPELINE, "junit.xml": REPORT})
    pipeline = finished(deployment, pushed_pipeline(repository.push()))
    jobs = {job["name"]: job for job in pipeline["jobs"]}
    unit = jobs["unit"]
    assert (unit["status"], unit["exit_code"], unit["failure_kind"]) == (
        "failed",
        0,
        "test_failure",
    )
    assert unit["failure_reason"] == "1 tests failed (report reports/unit.xml)"
    assert pipeline["status"] == "failed"
    assert jobs["other"]["status"] == "success"
    assert "WARNING: no test report matches none/*.xml" in job_log(deployment, jobs["other"]["id"])
    assert "Test report reports/unit.xml: 3 tests, 1 passed, 1 failed, 1 skipped" in job_log(
        deployment, unit["id"]
    )

    with deployment.api() as api:
        shown = api.get(f"/api/pipelines/{pipeline['id']}").json()
        tests = api.get(f"/api/pipelines/{pipeline['id']}/tests").json()
        listed = api.get(f"/api/pipelines/{pipeline['id']}/artifacts").json()
    assert shown["tests"] == {"total": 3, "passed": 1, "failed": 1, "errors": 0, "skipped": 1}
    (failure,) = tests["failures"]
    assert (failure["classname"], failure["name"], failure["message"]) == (
        "calc",
        "test_div",
        "1 != 2\nassert 1 == 2",
    )
    (report,) = listed
    assert (report["kind"], report["name"]) == ("junit", "reports/unit.xml")

    cli = deployment.cli("tests", str(pipeline["id"]))
    assert cli.returncode == 1
    assert "3 tests, 1 passed, 1 failed, 1 skipped" in cli.stdout
    assert "FAILED calc.test_div (job unit)" in cli.stdout
    downloaded = deployment.cli("artifact", str(report["id"]))
    assert downloaded.stdout == REPORT
    assert "junit  reports/unit.xml" in deployment.cli("artifacts", str(pipeline["id"])).stdout
