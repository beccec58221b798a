"""How many webhook deliveries Shipway takes in, against a bare Starlette endpoint.

Starts its own Redis and Shipway server (SQLite, as installed by default), and a bare
Starlette endpoint that reads and parses the same JSON and answers, served the same
way (one uvicorn process). Then, for each number of concurrent clients, sends the
same Push Hook deliveries to each, interleaved (bare, Shipway, bare, Shipway...):

- throughput (deliveries a second) and p99 latency of each, and Shipway's throughput
  as a share of the bare endpoint's (goal: at least 0.7x at 8 and 16 clients, p99
  under 100 ms);
- every delivery Shipway answered is stored once: the deliveries in its database
  equal those it acknowledged (zero lost, zero duplicates; each is also sent again
  once, and the redelivery must store nothing).

The deliveries are pushes to a branch the project does not build (GitLab sends every
push; Shipway stores each and starts no pipeline), so what is measured is the intake:
token, body, project, delivery row.

    .venv/bin/python -m bench.webhook_intake [--deliveries 800] [--clients 8 16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.store.tables import webhook_deliveries
from tests.support.git import Repository
from tests.support.services import Deployment, RedisServer, free_port, wait_until
from tests.unit.test_events import push_payload

SECRET = "bench-webhook-secret-0123456789"
PROJECT = "bench/app"


async def bare_webhook(request: Request) -> JSONResponse:
    """The baseline: read the body, parse it, answer."""
    payload = json.loads(await request.body())
    return JSONResponse({"status": "ok", "ref": payload.get("ref")}, status_code=200)


app = Starlette(routes=[Route("/webhooks/gitlab", bare_webhook, methods=["POST"])])


def deliver(
    url: str, payload: bytes, count: int, clients: int, again: bool = False
) -> tuple[float, list[float], list[str]]:
    """``count`` deliveries from ``clients`` threads: seconds taken, each latency, and
    the delivery keys answered 2xx (each sent twice when ``again``)."""
    latencies: list[float] = []
    keys: list[str] = []
    lock = threading.Lock()
    per_client = count // clients

    def client() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            for _ in range(per_client):
                key = str(uuid.uuid4())
                headers = {
                    "Content-Type": "application/json",
                    "X-Gitlab-Event": "Push Hook",
                    "X-Gitlab-Token": SECRET,
                    "Idempotency-Key": key,
                }
                for _ in range(2 if again else 1):
                    started = time.perf_counter()
                    answer = http.post("/webhooks/gitlab", content=payload, headers=headers)
                    took = time.perf_counter() - started
                    with lock:
                        latencies.append(took)
                answer.raise_for_status()
                with lock:
                    keys.append(key)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, keys


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def stored_keys(database: Path) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        keys = [
            str(key) for key in conn.execute(sa.select(webhook_deliveries.c.delivery_key)).scalars()
        ]
    engine.dispose()
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=800)
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    payload = json.dumps(
        push_payload(ref="refs/heads/not-built", project={"path_with_namespace": PROJECT})
    ).encode()
    with tempfile.TemporaryDirectory(prefix="shipway-bench-") as root_text:
        root = Path(root_text)
        redis_server = RedisServer.start(root)
        deployment = Deployment(root=root, redis_url=redis_server.url)
        server = deployment.start_server()
        bare_port = free_port()
        bare = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.webhook_intake:app", "--port", str(bare_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        bare_url = f"http://127.0.0.1:{bare_port}"
        results: dict[int, dict[str, Any]] = {}
        acknowledged: list[str] = []
        try:
            repository = Repository(root / "repo")
            repository.commit({"README": "bench\n"})
            deployment.add_project("bench", repository.bare, PROJECT, SECRET, ["main"])

            def bare_up() -> bool:
                try:
                    return httpx.post(f"{bare_url}/webhooks/gitlab", content=payload).is_success
                except httpx.TransportError:
                    return False

            wait_until(bare_up, 30, "the bare endpoint")
            for clients in args.clients:
                got: dict[str, Any] = {"bare": [], "shipway": [], "bare_lat": [], "lat": []}
                for _ in range(args.rounds):
                    took, latencies, _ = deliver(bare_url, payload, args.deliveries, clients)
                    got["bare"].append(args.deliveries / took)
                    got["bare_lat"] += latencies
                    took, latencies, keys = deliver(
                        deployment.url, payload, args.deliveries, clients
                    )
                    got["shipway"].append(args.deliveries / took)
                    got["lat"] += latencies
                    acknowledged += keys
                results[clients] = got
            _, _, again = deliver(deployment.url, payload, 2 * max(args.clients), 8, again=True)
            acknowledged += again
            stored = stored_keys(root / "server" / "shipway.db")
        finally:
            bare.terminate()
            bare.wait(10)
            server.stop()
            redis_server.stop()
    print(f"webhook intake, {args.deliveries} deliveries a round, {args.rounds} rounds")
    for clients, got in results.items():
        bare_rate, rate = max(got["bare"]), max(got["shipway"])
        print(
            f"  {clients:2d} clients   bare {bare_rate:6.0f}/s p99 "
            f"{percentile(got['bare_lat'], 0.99) * 1000:5.1f} ms   shipway {rate:6.0f}/s p99 "
            f"{percentile(got['lat'], 0.99) * 1000:5.1f} ms   {rate / bare_rate:.2f}x"
            "   goal: at least 0.7x, p99 under 100 ms"
        )
    lost = len(set(acknowledged) - set(stored))
    duplicated = len(stored) - len(set(stored))
    print(
        f"  acknowledged {len(acknowledged)}, stored {len(stored)}: "
        f"{lost} lost, {duplicated} duplicated (each of the last {len(again)} sent twice)"
    )


if __name__ == "__main__":
    main()
