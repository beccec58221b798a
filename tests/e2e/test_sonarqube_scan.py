"""A scan job with SonarQube configured: the scanner runs in the job's container,
then the runner waits for SonarQube's quality gate through its Web API.

SonarQube cannot run here. Its Web API is the small fake of tests/support; the
scanner, which only works against a real server, is stood in for by a script that
writes the ``report-task.txt`` a real analysis leaves. Everything of Shipway's runs
for real: the job's environment, the masked token, the collected file, the polling
and the verdict."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

import docker
import pytest

from tests.e2e.test_push_to_pipeline import SECRET, finished, job_log, pushed_pipeline
from tests.support.fake_sonarqube import FakeSonarQube, running
from tests.support.git import Repository
from tests.support.services import Deployment, ShipwayProcess
from tests.support.test_run import RUN_LABELS, unique_name

pytestmark = pytest.mark.docker

TOKEN = "squ_0123456789abcdef"
SCANNER = """#!/bin/sh
# Stands in for pysonar: writes what a real analysis leaves, then says so.
while [ $# -gt 0 ]; do
  case "$1" in
    --sonar-scanner-metadata-filepath) out="$2"; shift ;;
    --sonar-project-key) key="$2"; shift ;;
  esac
  shift
done
echo "INFO: analysis of $key sent to $SONAR_HOST_URL with token $SONAR_TOKEN"
printf 'projectKey=%s\\nserverUrl=%s\\nceTaskId=task-%s\\n' "$key" "$SONAR_HOST_URL" "$key" > "$out"
"""


@pytest.fixture
def scanner_stand_in(docker_client: docker.DockerClient, busybox: str) -> Iterator[str]:
    image = f"shipway/{unique_name('pysonar')}:1"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, content, mode in (
            ("Dockerfile", f"FROM {busybox}\nCOPY pysonar /bin/pysonar\n", 0o644),
            ("pysonar", SCANNER, 0o755),
        ):
            info = tarfile.TarInfo(name)
            data = content.encode()
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    docker_client.images.build(
        fileobj=context, custom_context=True, tag=image, rm=True, labels=RUN_LABELS
    )
    yield image
    docker_client.images.remove(image, force=True)


def test_sonarqubes_gate_decides_the_scan_job(
    deployment: Deployment,
    server: ShipwayProcess,
    runner: ShipwayProcess,
    repository: Repository,
    scanner_stand_in: str,
) -> None:
    fake = FakeSonarQube(token=TOKEN)
    fake.tasks["task-hello"] = {"status": "SUCCESS", "analysisId": "analysis-1"}
    fake.gates["analysis-1"] = {
        "status": "ERROR",
        "conditions": [
            {
                "status": "ERROR",
                "metricKey": "new_security_hotspots_reviewed",
                "comparator": "LT",
                "errorThreshold": "100",
                "actualValue": "0.0",
            }
        ],
    }
    with running(fake):
        deployment.add_project("hello", repository.bare, "team/hello", SECRET)
        stored = deployment.cli_with_input(TOKEN, "secret", "set", "hello", "SONAR_TOKEN")
        assert stored.returncode == 0, stored.stderr
        repository.commit(
            {
                ".shipway.yml": f"""
jobs:
  sonar:
    kind: scan
    image: {scanner_stand_in}
    variables: {{SONAR_HOST_URL: "{fake.url}"}}
    secrets: [SONAR_TOKEN]
""",
                "app.py": "print('hello')\n",
            }
        )
        pipeline = finished(deployment, pushed_pipeline(repository.push()))
    (job,) = pipeline["jobs"]
    assert (job["status"], job["failure_kind"]) == ("failed", "quality_gate")
    assert job["failure_reason"] == (
        "SonarQube quality gate: new_security_hotspots_reviewed is 0.0 (LT 100)"
    )
    log = job_log(deployment, job["id"])
    assert "with token [MASKED]" in log
    assert TOKEN not in log
    assert "SonarQube quality gate: ERROR" in log
    assert [path for path, _, _ in fake.requests][-1] == "/api/qualitygates/project_status"
    assert {auth for _, _, auth in fake.requests} == {f"Bearer {TOKEN}"}
