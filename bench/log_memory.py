"""What reading a large job log costs the server in memory.

Starts its own Redis and Shipway server (SQLite), makes a job through a real push,
stores ``--megabytes`` of log through the runner API (as a runner does: appends of at
most what the server takes at once), then reads the log back through the API, whole
(``GET /api/jobs/ID/log``) and as the live stream (``/log/stream``), while sampling
the server's resident memory every 10 ms. Prints the peak above the idle server's
memory, against the size of the log (goal: within a few MB of idle, whatever the
log's size), and checks that what was read is what was stored.

    .venv/bin/python -m bench.log_memory [--megabytes 50]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

from pipelines.job_log import MAX_APPEND_BYTES
from tests.support.git import Repository
from tests.support.services import Deployment, RedisServer, ShipwayProcess

SECRET = "bench-webhook-secret-0123456789"
LINE = "a line of a job's output, with a ✓ in it and enough text to be typical\n"


def peak_while(server: ShipwayProcess, work: Callable[[], None]) -> int:
    """The server's highest resident memory, in bytes, while ``work`` runs."""
    process = psutil.Process(server.process.pid)
    peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=int, default=50)
    size = parser.parse_args().megabytes * 1024 * 1024
    lines_per_append = MAX_APPEND_BYTES // len(LINE.encode()) - 1
    with tempfile.TemporaryDirectory(prefix="shipway-bench-") as root_text:
        root = Path(root_text)
        redis_server = RedisServer.start(root)
        deployment = Deployment(root=root, redis_url=redis_server.url)
        server = deployment.start_server()
        try:
            repository = Repository(root / "repo")
            repository.commit(
                {".shipway.yml": "image: shipway/busybox:1\njobs:\n  loud: {script: [x]}\n"}
            )
            deployment.add_project("bench", repository.bare, "bench/app", SECRET, ["main"])
            match = re.search(r"created pipeline (\d+)", repository.push())
            assert match is not None, "the push made no pipeline"
            runner = httpx.Client(
                base_url=deployment.url,
                headers={"Authorization": f"Bearer {deployment.runner_token}"},
                timeout=60,
            )
            with deployment.api() as api, runner:
                job_id = 0
                while not job_id:
                    jobs = api.get(f"/api/pipelines/{match.group(1)}/jobs").json()
                    job_id = next((j["id"] for j in jobs if j["status"] == "pending"), 0)
                    time.sleep(0.05)
                runner.post(f"/api/runner/jobs/{job_id}/start", json={"runner": "bench"})
                offset, stored = 0, 0
                piece = LINE * lines_per_append
                while stored < size:
                    answer = runner.post(
                        f"/api/runner/jobs/{job_id}/log",
                        params={"offset": offset},
                        content=piece.encode(),
                    )
                    offset = int(answer.raise_for_status().json()["length"])
                    stored += len(piece.encode())
                runner.post(
                    f"/api/runner/jobs/{job_id}/finish", json={"succeeded": True, "exit_code": 0}
                )
                time.sleep(2)  # let the server settle after the appends
                idle = psutil.Process(server.process.pid).memory_info().rss
                read: dict[str, int] = {}

                def whole() -> None:
                    got = 0
                    with api.stream("GET", f"/api/jobs/{job_id}/log") as response:
                        for text in response.iter_text():
                            got += len(text)
                    read["whole"] = got

                def streamed() -> None:
                    got = 0
                    with api.stream("GET", f"/api/jobs/{job_id}/log/stream") as response:
                        for line in response.iter_lines():
                            got += len(line) if line.startswith('data: "') else 0
                    read["stream"] = got

                whole_peak = peak_while(server, whole)
                stream_peak = peak_while(server, streamed)
        finally:
            server.stop()
            redis_server.stop()
    megabytes = stored / 1024 / 1024
    print(f"a log of {megabytes:.0f} MB ({offset} characters), read back through the API")
    print(f"  idle server                 {idle / 1024 / 1024:6.1f} MB resident")
    for name, peak in (("GET /log, whole", whole_peak), ("GET /log/stream", stream_peak)):
        above = (peak - idle) / 1024 / 1024
        print(
            f"  {name:27s} peak {peak / 1024 / 1024:6.1f} MB, {above:+6.1f} MB above idle"
            f" ({above / megabytes:.3f}x the log)   goal: within a few MB of idle"
        )
    assert read["whole"] == offset, (read, offset)


if __name__ == "__main__":
    main()
