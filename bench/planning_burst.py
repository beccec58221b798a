"""Whether planning keeps up with a burst of webhook deliveries.

Starts its own Redis and Shipway server (SQLite), makes a repository of ``--pushes``
commits on main (each its own push: a pipeline file with one job, and a changed
file), and sends the Push Hook of each commit from ``--clients`` concurrent clients,
as GitLab would after that many pushes. Every delivery starts a pipeline. Then it
waits until the engine has planned every one (read the pipeline file at the commit
from its mirror, stored the jobs) and prints:

- how long the burst took and how long after its end the last pipeline was planned
  (goal: within a few seconds);
- the time from the burst's start until the last pipeline was planned, against the
  burst's own duration (the baseline: 1.0x is planning that keeps up with intake);
- when every pipeline's job was queued for a runner (dispatch, after planning);
- how many times the server's mirror fetched (one is enough: the first pipeline's
  commit is not there yet, and that fetch brings every other; the clone URL is a
  ``file://`` URL, read through the mirror as a remote repository's is);
- that every delivery was stored once and planned once.

    .venv/bin/python -m bench.planning_burst [--pushes 2000] [--clients 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from server.store.tables import jobs, pipelines, webhook_deliveries
from tests.support.burst import send_pushes
from tests.support.git import Repository, fast_import_commits
from tests.support.services import Deployment, RedisServer

SECRET = "bench-webhook-secret-0123456789"
PROJECT = "bench/app"
PIPELINE_FILE = "image: busybox\njobs:\n  build:\n    script: [echo build]\n"


def counts(engine: sa.Engine) -> tuple[int, int]:
    """Pipelines planned, and jobs queued for a runner (pending: no runner here)."""
    with engine.connect() as conn:
        planned = conn.execute(
            sa.select(sa.func.count()).where(pipelines.c.planned == sa.true())
        ).scalar_one()
        queued = conn.execute(
            sa.select(sa.func.count()).where(jobs.c.status == "pending")
        ).scalar_one()
    return int(planned), int(queued)


def wait_for_all(engine: sa.Engine, total: int) -> tuple[float, float]:
    """When the last pipeline was planned and when the last job was queued, seen
    every 20 ms."""
    seen = (-1, -1)
    changed = [time.monotonic(), time.monotonic()]
    while True:
        now_counts = counts(engine)
        for index in (0, 1):
            if now_counts[index] != seen[index]:
                changed[index] = time.monotonic()
        seen = now_counts
        if min(seen) >= total:
            return changed[0], changed[1]
        if time.monotonic() - max(changed) > 120:
            raise RuntimeError(f"stalled: {seen[0]} planned, {seen[1]} queued of {total}")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pushes", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shipway-bench-") as root_text:
        root = Path(root_text)
        redis_server = RedisServer.start(root)
        deployment = Deployment(root=root, redis_url=redis_server.url)
        server = deployment.start_server()
        try:
            repository = Repository(root / "repo")
            shas = fast_import_commits(repository.bare, args.pushes, PIPELINE_FILE)
            # A URL, as GitLab's are: read through the server's mirror (a path on the
            # server's host would be read in place, with no fetch at all).
            url = f"file://{repository.bare}"
            deployment.add_project(
                "bench", repository.bare, PROJECT, SECRET, ["main"], clone_url=url
            )
            database = sa.create_engine(f"sqlite:///{root / 'server' / 'shipway.db'}")
            started = time.monotonic()
            created = send_pushes(deployment.url, PROJECT, SECRET, shas, args.clients)
            ended = time.monotonic()
            last_planned, last_queued = wait_for_all(database, len(created))
            with database.connect() as conn:
                stored = conn.execute(
                    sa.select(sa.func.count()).select_from(webhook_deliveries)
                ).scalar_one()
                job_count = conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar_one()
            database.dispose()
            fetches = server.log().count("mirror fetched")
        finally:
            server.stop()
            redis_server.stop()
    burst = ended - started
    print(f"planning burst: {len(created)} pushes' deliveries from {args.clients} clients")
    print(f"  burst           {burst:6.2f} s ({len(created) / burst:.0f} deliveries/s)")
    print(
        f"  last planned    {max(0.0, last_planned - ended):6.2f} s after the burst's end, "
        f"{(last_planned - started) / burst:.2f}x the burst's duration"
        "   goal: within a few seconds (1.0x: planning keeps up)"
    )
    print(
        f"  last queued     {max(0.0, last_queued - ended):6.2f} s after the burst's end "
        "(each pipeline's job pending for a runner)"
    )
    print(
        f"  stored {stored} deliveries for {len(created)} answers, {len(set(created))} "
        f"pipelines planned with {job_count} jobs; mirror fetches: {fetches}"
    )


if __name__ == "__main__":
    main()
