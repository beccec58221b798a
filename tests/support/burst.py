"""A burst of webhook deliveries: GitLab's Push Hook for each of many pushes."""

from __future__ import annotations

import json
import threading
import uuid

import httpx

from tests.unit.test_events import push_payload


def send_pushes(url: str, project: str, secret: str, shas: list[str], clients: int) -> list[int]:
    """One Push Hook per commit, in order, from ``clients`` threads: the pipeline ids
    answered. The first delivery refused (or not answered) is raised once all end."""
    created: list[int] = []
    failures: list[Exception] = []
    lock = threading.Lock()
    cursor = iter(range(len(shas)))

    def client() -> None:
        try:
            deliver()
        except Exception as exc:  # raised in the caller's thread, below
            failures.append(exc)

    def deliver() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                before = shas[index - 1] if index else "0" * 40
                sha = shas[index]
                payload = push_payload(
                    before=before,
                    after=sha,
                    checkout_sha=sha,
                    commits=[{"id": sha, "message": "change", "title": "change"}],
                    project={"path_with_namespace": project},
                )
                answer = http.post(
                    "/webhooks/gitlab",
                    content=json.dumps(payload).encode(),
                    headers={
                        "Content-Type": "application/json",
                        "X-Gitlab-Event": "Push Hook",
                        "X-Gitlab-Token": secret,
                        "Idempotency-Key": str(uuid.uuid4()),
                    },
                )
                answer.raise_for_status()
                with lock:
                    created.append(int(answer.json()["pipeline_id"]))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return created
