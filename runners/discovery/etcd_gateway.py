"""Calls to etcd's JSON gateway through etcd3gw's client, with etcd's failures as
ExternalError (EtcdUnreachable when etcd did not answer at all: refused, reset or
timed out): what the release's traffic steps and the server's traffic weights share.
(The registrar runs alone in its image and the confd agent has its own view, with
its own failure handling.)"""

from __future__ import annotations

import base64
import re
import urllib.parse
from typing import Any

from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import ConnectionFailedError, ConnectionTimeoutError, Etcd3Exception

from pipelines.errors import ExternalError


class EtcdUnreachable(ExternalError):
    """etcd did not answer: an outage to wait out, not an answer. ``cause`` is what
    the connection met, in short (``[Errno 111] Connection refused``)."""

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


def _in_short(detail: str) -> str:
    """The socket error inside requests' long message, when there is one."""
    found = re.search(r"\[Errno -?\d+\] [^'\")]*", detail)
    return found.group(0) if found else detail


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def text(data: str) -> str:
    return base64.b64decode(data).decode()


def prefix_range(prefix: str) -> dict[str, str]:
    """The range of every key starting with ``prefix``."""
    return {"key": b64(prefix), "range_end": b64(prefix[:-1] + chr(ord(prefix[-1]) + 1))}


class EtcdGateway:
    def __init__(self, url: str, timeout: float = 3.0, client: Etcd3Client | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.url = url
        self.client = client or Etcd3Client(
            parts.hostname or "127.0.0.1",
            parts.port or 2379,
            protocol=parts.scheme or "http",
            timeout=timeout,
        )

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST to the gateway (``/kv/range``, ``/kv/put``...); its JSON answer."""
        try:
            answer: dict[str, Any] = self.client.post(self.client.get_url(path), json=payload)
        except (ConnectionFailedError, ConnectionTimeoutError) as exc:
            cause = _in_short(str(exc.detail_text or exc))
            raise EtcdUnreachable(f"etcd at {self.url}: {cause}", cause) from exc
        except Etcd3Exception as exc:
            raise ExternalError(f"etcd at {self.url}: {exc.detail_text or exc}") from exc
        return answer
