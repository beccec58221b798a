"""Traffic weights in etcd (L6): implements ``pipelines.ports.TrafficWeights``.

The server reads which instances of a service are registered and writes their
weights under ``/shipway/weights/<app>_<ENV>/<ip>-<port>``, which the confd agent
renders as nginx ``weight=`` (0: ``down``).
"""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import Etcd3Exception

from pipelines.errors import ExternalError

WEIGHTS_PREFIX = "/shipway/weights/"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class EtcdWeights:
    def __init__(self, url: str, timeout: float = 3.0) -> None:
        parts = urllib.parse.urlsplit(url)
        self.url = url
        self.client = Etcd3Client(
            parts.hostname or "127.0.0.1",
            parts.port or 2379,
            protocol=parts.scheme or "http",
            timeout=timeout,
        )

    def registered(self, service: str) -> list[str]:
        """The addresses (``ip:port``) of the instances registered now."""
        prefix = f"/{service}/"
        answer = self._post(
            "/kv/range", {"key": _b64(prefix), "range_end": _b64(_prefix_end(prefix))}
        )
        return sorted(
            base64.b64decode(item.get("value", "")).decode() for item in answer.get("kvs") or []
        )

    def set_weights(self, service: str, weights: dict[str, int]) -> None:
        """Weights by address, written in one transaction."""
        success = [
            {
                "request_put": {
                    "key": _b64(f"{WEIGHTS_PREFIX}{service}/{address.replace(':', '-')}"),
                    "value": _b64(str(weight)),
                }
            }
            for address, weight in sorted(weights.items())
        ]
        self._post("/kv/txn", {"compare": [], "success": success, "failure": []})

    def clear(self, service: str) -> None:
        """Every instance back to an equal share."""
        prefix = f"{WEIGHTS_PREFIX}{service}/"
        self._post("/kv/deleterange", {"key": _b64(prefix), "range_end": _b64(_prefix_end(prefix))})

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = self.client.post(self.client.get_url(path), json=payload)
        except Etcd3Exception as exc:
            raise ExternalError(f"etcd at {self.url}: {exc.detail_text or exc}") from exc
        return answer
