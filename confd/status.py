"""The agent's status, kept in memory and mirrored to a JSON file for operators
and monitoring (``--status-file``)::

    {
      "healthy": true,                  # etcd connected and no resource failing
      "etcd_connected": true,
      "services": 2, "servers": 3,      # what the watched keys hold now
      "last_success_at": "2025-01-01T10:00:00.000+00:00",
      "last_error": {"at": "...", "message": "...", "resource": "nginx.toml"},
      "failing": {"nginx.toml": "check_cmd exited 1: ..."},
      "files": {"/etc/nginx/conf.d/x.conf": {"sha256": "...", "rendered_at": "...",
                                              "services": 2, "servers": 3}},
      "updated_at": "..."
    }

``last_error`` is kept after recovery (it is history); ``failing`` is what is wrong
now. The file is replaced atomically, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class StatusBoard:
    """Updated by the agent thread, read by anyone (``snapshot``) under a lock."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._status: dict[str, Any] = {
            "healthy": False,
            "etcd_connected": False,
            "services": 0,
            "servers": 0,
            "last_success_at": None,
            "last_error": None,
            "failing": {},
            "files": {},
            "updated_at": _now(),
        }

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._status))  # type: ignore[no-any-return]

    def connected(self, services: int, servers: int) -> None:
        self._update(etcd_connected=True, services=services, servers=servers)

    def disconnected(self, message: str) -> None:
        self._update(etcd_connected=False, last_error=self._error(message, None))

    def rendered(self, resource: str, dest: str, sha256: str, services: int, servers: int) -> None:
        with self._lock:
            at = _now()
            self._status["files"][dest] = {
                "sha256": sha256,
                "rendered_at": at,
                "services": services,
                "servers": servers,
            }
            self._status["failing"].pop(resource, None)
            self._status["last_success_at"] = at
        self._update()

    def failed(self, resource: str, message: str) -> None:
        with self._lock:
            self._status["failing"][resource] = message
        self._update(last_error=self._error(message, resource))

    @staticmethod
    def _error(message: str, resource: str | None) -> dict[str, Any]:
        return {"at": _now(), "message": message, "resource": resource}

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._status.update(changes)
            status = self._status
            status["healthy"] = status["etcd_connected"] and not status["failing"]
            status["updated_at"] = _now()
            text = json.dumps(status, indent=2, sort_keys=True) + "\n"
        if self.path is not None:
            try:
                _write_atomically(self.path, text)
            except OSError as exc:
                log.error("cannot write the status file %s: %s", self.path, exc)


def _write_atomically(path: Path, text: str) -> None:
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
            os.fchmod(file.fileno(), 0o644)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
