"""A job's log on its way to the server: a burst larger than the server takes in one
append (``pipelines.job_log.MAX_APPEND_BYTES``) is stored whole, byte-exact.

The server is away (killed, then started again) while the job prints, so that the
runner holds the whole burst when it can send again: Docker's log stream alone is
slower than the runner's appends, so batches would stay small otherwise.
"""

from __future__ import annotations

import docker
import pytest

from pipelines.job_log import MAX_APPEND_BYTES
from tests.e2e.pipeline_helpers import Processes, wait_for_job
from tests.e2e.test_durability import let_go
from tests.e2e.test_push_to_pipeline import SECRET, finished, job_log, pushed_pipeline
from tests.support.git import Repository
from tests.support.services import Deployment, wait_until

pytestmark = pytest.mark.docker

LINES = 450_000
# One command: about 6 MB at once (more than one append), with characters of two and
# three bytes, so that a cut could fall inside one. The server stays away until the
# runner has read all of it: well within the runner's report patience (15 minutes),
# also on a machine with its cores busy (12 MB took it two minutes there).
BURST = f"seq 1 {LINES} | sed 's/$/ ✓ é/'"
UNTIL_LET_GO = "until [ -e /tmp/go ]; do sleep 0.1; done"


def test_a_burst_larger_than_one_append_is_stored_whole(
    deployment: Deployment,
    processes: Processes,
    runner_name: str,
    busybox: str,
    repository: Repository,
    docker_client: docker.DockerClient,
) -> None:
    server = processes.server()
    runner = processes.runner(runner_name)
    deployment.add_project("app", repository.bare, "team/app", SECRET)
    script = f"[echo ready, '{UNTIL_LET_GO}', \"{BURST}\"]"
    repository.commit({".shipway.yml": f"image: {busybox}\njobs:\n  loud: {{script: {script}}}\n"})
    pipeline_id = pushed_pipeline(repository.push())
    job = wait_for_job(deployment, pipeline_id, "loud", "running", timeout=120)
    server.kill()
    let_go(docker_client, job["id"])
    # The runner says so once it has read all the job printed (its container stays
    # until the result is reported).
    said = f"job {job['id']}: its script ended (exit code 0) and all its output was read"
    wait_until(lambda: said in runner.log(), 120, "the runner reading all the job printed")
    processes.server()
    pipeline = finished(deployment, pipeline_id, timeout=180)
    assert pipeline["status"] == "success", pipeline
    expected = "".join(f"{i} ✓ é\n" for i in range(1, LINES + 1))
    assert len(expected.encode()) > MAX_APPEND_BYTES
    log = job_log(deployment, job["id"])
    assert "missing here" not in log, log[-2000:]
    _, echoed, output = log.partition(f"$ {BURST}\n")
    assert echoed, log[:2000]
    assert output == expected + "Job succeeded\n"
