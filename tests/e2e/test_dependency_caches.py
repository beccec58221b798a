"""``cache:`` from ``git push`` to a second pipeline: a job's cache is saved by the
runner and restored into the next pipeline's workspace; a changed lock file gives a
new cache; ``policy: pull`` restores without saving. Real hook, server, runner and
Docker Engine."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_push_to_pipeline import SECRET, finished, job_log, pushed_pipeline
from tests.support.git import Repository
from tests.support.services import Deployment, ShipwayProcess

pytestmark = pytest.mark.docker

PIPELINE = """\
image: shipway/busybox:1
cache:
  key: {files: [requirements.lock], prefix: deps}
  paths: [deps]
jobs:
  install:
    stage: build
    script:
      - 'test -f deps/installed && echo "found $(cat deps/installed)" || echo "nothing cached"'
      - mkdir -p deps && cp requirements.lock deps/installed
  use:
    stage: test
    cache:
      key: {files: [requirements.lock], prefix: deps}
      paths: [deps]
      policy: pull
    script:
      - 'if [ -f deps/from-use ]; then echo "use saved its cache"; exit 1; fi'
      - echo "use sees $(cat deps/installed)"
      - echo "written by use" > deps/from-use
"""


def logs(deployment: Deployment, repository: Repository) -> dict[str, str]:
    """Push, wait for the pipeline to succeed; job name -> its log."""
    pipeline: dict[str, Any] = finished(deployment, pushed_pipeline(repository.push()))
    found = {job["name"]: job_log(deployment, job["id"]) for job in pipeline["jobs"]}
    assert pipeline["status"] == "success", found
    return found


def test_a_cache_is_restored_in_the_next_pipeline_until_the_lock_file_changes(
    deployment: Deployment,
    server: ShipwayProcess,
    runner: ShipwayProcess,
    repository: Repository,
) -> None:
    deployment.add_project("app", repository.bare, "team/app", SECRET)
    repository.commit(
        {".shipway.yml": PIPELINE, "requirements.lock": "requests==2.32.3\n", "README": "1\n"}
    )
    first = logs(deployment, repository)
    assert "no cache deps-" in first["install"]
    assert "\nnothing cached\n" in first["install"]
    key = first["install"].split("no cache ", 1)[1].split(" yet", 1)[0]
    assert f"Saving cache {key}\n" in first["install"]
    assert f"Restoring cache {key} " in first["use"]
    assert "use sees requests==2.32.3" in first["use"]
    assert "Saving" not in first["use"]  # policy: pull

    repository.commit({"README": "2\n"})  # the lock file unchanged: the same cache
    second = logs(deployment, repository)
    assert f"Restoring cache {key} " in second["install"]
    assert "\nfound requests==2.32.3\n" in second["install"]
    assert "use sees requests==2.32.3" in second["use"]

    repository.commit({"requirements.lock": "requests==2.32.4\n"})
    third = logs(deployment, repository)
    assert f"cache {key}" not in third["install"]
    assert "no cache deps-" in third["install"]
    assert "\nnothing cached\n" in third["install"]  # the old cache's file is not there
    assert "use sees requests==2.32.4" in third["use"]
    new_key = third["install"].split("no cache ", 1)[1].split(" yet", 1)[0]
    caches = deployment.root / "runner-cache" / "caches" / "app"
    assert sorted(path.name for path in caches.iterdir()) == sorted(
        [f"{key}.tar", f"{new_key}.tar"]
    )
