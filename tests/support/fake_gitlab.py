"""A fake of the two GitLab API calls Shipway makes through python-gitlab (T5), and
nothing more: commit statuses and merge-request notes.

Answers as GitLab's REST API documents them (``POST /projects/:id/statuses/:sha``,
``POST /projects/:id/merge_requests/:iid/notes``), over real HTTP on loopback, with
GitLab's own refusals: 401 without the right PRIVATE-TOKEN, 404 for an unknown
project, 400 "Cannot transition status" when a commit's status is posted in the
state it has. ``fail_next`` answers 500 that many times (GitLab away).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests.support.json_http import JsonRequest, serving_json

STATES = {"pending", "running", "success", "failed", "canceled", "skipped"}


@dataclass
class FakeGitLab:
    token: str
    projects: set[str]  # paths with namespace, e.g. "team/app"
    statuses: list[dict[str, Any]] = field(default_factory=list)  # as created, in order
    notes: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    url: str = ""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def states(self, project: str, sha: str) -> list[str]:
        return [s["status"] for s in self.statuses if (s["project"], s["sha"]) == (project, sha)]

    def answer(self, path: str, body: dict[str, Any], token: str) -> tuple[int, Any]:
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, {"message": "500 Internal Server Error"}
            if token != self.token:
                return 401, {"message": "401 Unauthorized"}
            parts = path.split("/")
            # /api/v4/projects/<id>/statuses/<sha>, /api/v4/projects/<id>/merge_requests/<iid>/notes
            if len(parts) < 6 or parts[1:4] != ["api", "v4", "projects"]:
                return 404, {"error": "404 Not Found"}
            project = unquote(parts[4])
            if project not in self.projects:
                return 404, {"message": "404 Project Not Found"}
            if len(parts) == 7 and parts[5] == "statuses":
                return self._status(project, parts[6], body)
            if len(parts) == 8 and parts[5] == "merge_requests" and parts[7] == "notes":
                return self._note(project, int(parts[6]), body)
            return 404, {"error": "404 Not Found"}

    def _status(self, project: str, sha: str, body: dict[str, Any]) -> tuple[int, Any]:
        state = body.get("state")
        if state not in STATES:
            return 400, {"error": "state does not have a valid value"}
        name = body.get("name") or "default"
        earlier = [
            s for s in self.statuses if (s["project"], s["sha"], s["name"]) == (project, sha, name)
        ]
        if earlier and earlier[-1]["status"] == state:
            verb = {"running": "run", "pending": "enqueue"}.get(state, state)
            return 400, {"message": f"Cannot transition status via :{verb} from :{state}"}
        status = {
            "id": next(self._ids),
            "project": project,
            "sha": sha,
            "ref": body.get("ref"),
            "status": state,
            "name": name,
            "target_url": body.get("target_url"),
            "description": body.get("description"),
            "created_at": "2026-11-24T12:00:00.000Z",
            "allow_failure": False,
        }
        self.statuses.append(status)
        return 201, status

    def _note(self, project: str, iid: int, body: dict[str, Any]) -> tuple[int, Any]:
        if not body.get("body"):
            return 400, {"error": "body is missing"}
        note = {
            "id": next(self._ids),
            "project": project,
            "body": body["body"],
            "noteable_type": "MergeRequest",
            "noteable_iid": iid,
            "author": {"username": "shipway-bot"},
            "created_at": "2026-11-24T12:00:00.000Z",
        }
        self.notes.append(note)
        return 201, note


@contextmanager
def running(fake: FakeGitLab) -> Iterator[FakeGitLab]:
    def answer(request: JsonRequest) -> tuple[int, Any]:
        return fake.answer(request.path, request.body, request.headers.get("PRIVATE-TOKEN", ""))

    with serving_json(answer, methods=("POST",)) as url:
        fake.url = url
        yield fake
