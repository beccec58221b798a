"""etcd as the agent sees it: a consistent read of some prefixes, then a watch of
each from the revision after its read, so no change between the two is lost.

This is the one module that talks to etcd. Reads go through ``etcd3gw`` (the JSON
gateway, no gRPC). Watches use the same gateway endpoint with a stream reader of
our own: ``etcd3gw``'s ``watch_prefix`` runs its reader in an executor whose
errors are dropped, so when etcd goes away its iterator just blocks forever and
the agent would never know to resync. Here the end of a stream, for whatever
reason, is reported once through ``on_failure``.

Every error from etcd, requests or the gateway becomes ``EtcdUnavailable``.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import Etcd3Exception

from confd.errors import EtcdUnavailable
from pipelines.errors import InvalidInput

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:2379"
REQUEST_TIMEOUT = 5.0
_ETCD_ERRORS = (Etcd3Exception, requests.RequestException, ValueError, KeyError)


@dataclass(frozen=True)
class Change:
    """One key put (``value`` set) or deleted (``value`` None) at ``revision``."""

    key: str
    value: str | None
    revision: int


@dataclass(frozen=True)
class Snapshot:
    """Every key under the prefixes read, and the revision each prefix was read at."""

    kv: dict[str, str]
    revisions: dict[str, int]


def prefix_end(prefix: str) -> bytes:
    """The first key after every key that starts with ``prefix``."""
    data = bytearray(prefix.encode())
    while data and data[-1] == 0xFF:
        data.pop()
    if not data:
        return b"\0"  # every key
    data[-1] += 1
    return bytes(data)


def minimal_prefixes(prefixes: Iterable[str]) -> list[str]:
    """The prefixes without those another one covers: "/" and "/a/" watch as "/"."""
    result: list[str] = []
    for prefix in sorted(set(prefixes)):
        if not any(prefix.startswith(kept) for kept in result):
            result.append(prefix)
    return result


def describe(exc: BaseException) -> str:
    """etcd3gw's exceptions keep their message in ``detail_text``, not in str()."""
    detail = exc.detail_text if isinstance(exc, Etcd3Exception) else None
    return detail or str(exc) or type(exc).__name__


def _b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _text(data: str) -> str:
    return base64.b64decode(data).decode(errors="replace")


class EtcdView:
    """Reads and watches of one etcd endpoint. Thread-safe for the agent's use:
    reads from the agent thread, one reader thread per watch stream."""

    def __init__(self, url: str = DEFAULT_URL, timeout: float = REQUEST_TIMEOUT) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise InvalidInput(f"etcd URL {url!r} must look like http://host:2379", "etcd")
        try:
            port = parts.port or 2379
        except ValueError as exc:
            raise InvalidInput(f"etcd URL {url!r} has an invalid port", "etcd") from exc
        self.url = url
        self.timeout = timeout
        self.client = Etcd3Client(parts.hostname, port, protocol=parts.scheme, timeout=timeout)

    def close(self) -> None:
        """Close the reads' connections; watch streams are closed by ``cancel``."""
        self.client.session.close()

    def put(self, key: str, value: str) -> int:
        """Write a key; the revision of the write."""
        payload = {"key": _b64(key), "value": _b64(value)}
        try:
            answer = self.client.post(self.client.get_url("/kv/put"), json=payload)
        except _ETCD_ERRORS as exc:
            raise EtcdUnavailable(f"etcd at {self.url}: writing {key}: {describe(exc)}") from exc
        return int(answer["header"]["revision"])

    def read(self, prefixes: Iterable[str]) -> Snapshot:
        kv: dict[str, str] = {}
        revisions: dict[str, int] = {}
        for prefix in minimal_prefixes(prefixes):
            payload = {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))}
            try:
                answer = self.client.post(self.client.get_url("/kv/range"), json=payload)
                revisions[prefix] = int(answer["header"]["revision"])
                for item in answer.get("kvs", []):
                    kv[_text(item["key"])] = _text(item.get("value", ""))
            except _ETCD_ERRORS as exc:
                raise EtcdUnavailable(
                    f"etcd at {self.url}: reading {prefix}: {describe(exc)}"
                ) from exc
        return Snapshot(kv, revisions)

    def watch(
        self,
        prefix: str,
        start_revision: int,
        on_changes: Callable[[list[Change]], None],
        on_failure: Callable[[str], None],
    ) -> WatchStream:
        try:
            url = self.client.get_url("/watch")
        except _ETCD_ERRORS as exc:
            raise EtcdUnavailable(f"etcd at {self.url}: {describe(exc)}") from exc
        return WatchStream(self, url, prefix, start_revision, on_changes, on_failure)


class WatchStream:
    """One gateway watch stream read by a daemon thread. ``on_changes`` gets the
    changes of each response in order; ``on_failure`` is called at most once, when
    the stream ends or fails for any reason other than ``cancel``."""

    def __init__(
        self,
        view: EtcdView,
        url: str,
        prefix: str,
        start_revision: int,
        on_changes: Callable[[list[Change]], None],
        on_failure: Callable[[str], None],
    ) -> None:
        self.prefix = prefix
        self.created = threading.Event()  # etcd confirmed the watch
        self._view = view
        self._url = url
        self._request = {
            "create_request": {
                "key": _b64(prefix),
                "range_end": _b64(prefix_end(prefix)),
                "start_revision": start_revision,
            }
        }
        self._on_changes = on_changes
        self._on_failure = on_failure
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._response: requests.Response | None = None
        self._session = requests.Session()
        self._session.verify = view.client.session.verify
        self._session.cert = view.client.session.cert
        self._thread = threading.Thread(target=self._run, name=f"confd-watch {prefix}", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop reading; returns at once, the thread ends by itself."""
        self._cancelled.set()
        with self._lock:
            response = self._response
        if response is not None:
            _abort(response)

    def _run(self) -> None:
        try:
            response = self._session.post(
                self._url,
                json=self._request,
                stream=True,
                timeout=(self._view.timeout, None),  # a watch is idle for as long as etcd is
            )
            with self._lock:
                self._response = response
            if self._cancelled.is_set():
                _abort(response)
                return
            if response.status_code != 200:
                raise EtcdUnavailable(f"watch answered HTTP {response.status_code}")
            pending = b""
            for chunk in response.iter_content(chunk_size=None):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._handle(json.loads(line))
            raise EtcdUnavailable("watch stream ended")
        except Exception as exc:  # the thread's boundary: every failure is reported
            if not self._cancelled.is_set():
                self._cancelled.set()
                reason = f"etcd at {self._view.url}: watch of {self.prefix}: {describe(exc)}"
                self._on_failure(reason)
        finally:
            self._session.close()

    def _handle(self, message: dict[str, Any]) -> None:
        if "error" in message:
            raise EtcdUnavailable(f"gateway error {message['error']}")
        result = message["result"]
        if result.get("canceled"):
            reason = result.get("cancel_reason") or "no reason given"
            compacted = result.get("compact_revision")
            raise EtcdUnavailable(f"watch cancelled ({reason}, compacted to {compacted})")
        if result.get("created"):
            self.created.set()
        changes = []
        for event in result.get("events", []):
            deleted = event.get("type") == "DELETE"
            value = None if deleted else _text(event["kv"].get("value", ""))
            revision = int(event["kv"]["mod_revision"])
            changes.append(Change(_text(event["kv"]["key"]), value, revision))
        if changes and not self._cancelled.is_set():
            self._on_changes(changes)


def _abort(response: requests.Response) -> None:
    """Unblock a reader stuck in recv(): shut the socket down, then close."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            log.debug("watch socket already closed")
    response.close()
