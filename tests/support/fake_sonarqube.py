"""A fake of the two SonarQube Web API calls Shipway makes, and nothing more.

Answers as SonarQube's documentation shows (api/ce/task, api/qualitygates/
project_status), over real HTTP on loopback, and records the requests so tests can
check what the client sent. Each task is IN_PROGRESS on its first poll.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.support.json_http import JsonRequest, serving_json


@dataclass
class FakeSonarQube:
    token: str
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> final task
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)  # analysisId -> status
    requests: list[tuple[str, dict[str, list[str]], str]] = field(default_factory=list)
    url: str = ""
    _polled: set[str] = field(default_factory=set)

    def answer(self, path: str, query: dict[str, list[str]], auth: str) -> tuple[int, Any]:
        self.requests.append((path, query, auth))
        if auth != f"Bearer {self.token}":
            return 401, {"errors": [{"msg": "Authentication required"}]}
        if path == "/api/ce/task":
            task_id = query.get("id", [""])[0]
            if task_id not in self.tasks:
                return 404, {"errors": [{"msg": f"No activity found for task '{task_id}'"}]}
            if task_id not in self._polled:
                self._polled.add(task_id)
                return 200, {"task": {"id": task_id, "type": "REPORT", "status": "IN_PROGRESS"}}
            return 200, {"task": {"id": task_id, "type": "REPORT", **self.tasks[task_id]}}
        if path == "/api/qualitygates/project_status":
            analysis = query.get("analysisId", [""])[0]
            if analysis not in self.gates:
                return 404, {"errors": [{"msg": f"Analysis with id '{analysis}' is not found"}]}
            return 200, {"projectStatus": self.gates[analysis]}
        return 404, {"errors": [{"msg": "Unknown url"}]}


@contextmanager
def running(fake: FakeSonarQube) -> Iterator[FakeSonarQube]:
    def answer(request: JsonRequest) -> tuple[int, Any]:
        return fake.answer(request.path, request.query, request.headers.get("Authorization", ""))

    with serving_json(answer, methods=("GET",)) as url:
        fake.url = url
        yield fake
