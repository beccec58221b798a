"""The registrar: registers one instance in etcd while it is healthy (S1).

It runs in a sidecar container that shares the instance's network namespace
(compose's ``network_mode: service:<instance>``), so its health check sees the
instance as its own clients on localhost would, whatever the application's image
holds: it needs no shell, no wget and no Python in the application's image. A
sidecar rather than an entrypoint wrapper baked into the middleware layer for that
reason, and because it runs Shipway's code with a maintained etcd client
(etcd3gw) in an image Shipway builds (``shipway/registrar``).

    key   /<app>_<ENV>/<ip>-<port>     value  <ip>:<port>

The key is bound to a lease with a TTL, kept alive every check while the check
passes; deleted at once when the check fails ``failures`` times in a row and on
SIGTERM (the release engine stops the sidecar first to take the instance out of
traffic); if the sidecar dies, the lease expires within the TTL.

Settings come from the environment (the compose file sets them):
SHIPWAY_ETCD_URL, SHIPWAY_SERVICE (``hello_STAGING``), SHIPWAY_ADVERTISE (``ip:port``
that nginx reaches), SHIPWAY_CHECK (``http://127.0.0.1:8000/healthz`` answered 200, or
``tcp://127.0.0.1:8000`` accepting a connection), SHIPWAY_CHECK_INTERVAL (seconds),
SHIPWAY_CHECK_FAILURES, SHIPWAY_TTL (seconds).

Only the standard library and etcd3gw: the file is copied alone into its image.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import Etcd3Exception

log = logging.getLogger("shipway.registrar")


def instance_key(service: str, advertise: str) -> str:
    host, _, port = advertise.rpartition(":")
    return f"/{service}/{host}-{port}"


@dataclass(frozen=True)
class RegistrarSettings:
    etcd_url: str
    service: str
    advertise: str  # ip:port
    check: str  # http://... or tcp://host:port
    interval: float = 1.0
    failures: int = 2
    ttl: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RegistrarSettings:
        missing = [
            name
            for name in (
                "SHIPWAY_ETCD_URL",
                "SHIPWAY_SERVICE",
                "SHIPWAY_ADVERTISE",
                "SHIPWAY_CHECK",
            )
            if not env.get(name)
        ]
        if missing:
            raise ValueError(f"{', '.join(missing)} not set")
        return cls(
            etcd_url=env["SHIPWAY_ETCD_URL"],
            service=env["SHIPWAY_SERVICE"],
            advertise=env["SHIPWAY_ADVERTISE"],
            check=env["SHIPWAY_CHECK"],
            interval=float(env.get("SHIPWAY_CHECK_INTERVAL", "1")),
            failures=int(env.get("SHIPWAY_CHECK_FAILURES", "2")),
            ttl=int(env.get("SHIPWAY_TTL", "10")),
        )

    @property
    def key(self) -> str:
        return instance_key(self.service, self.advertise)


def etcd_client(url: str, timeout: float = 3.0) -> Etcd3Client:
    parsed = urllib.parse.urlsplit(url)
    return Etcd3Client(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 2379,
        protocol=parsed.scheme or "http",
        timeout=timeout,
    )


def healthy(check: str, timeout: float) -> bool:
    parsed = urllib.parse.urlsplit(check)
    if parsed.scheme == "tcp":
        try:
            with socket.create_connection((parsed.hostname, parsed.port or 80), timeout=timeout):
                return True
        except OSError:
            return False
    try:
        with urllib.request.urlopen(check, timeout=timeout) as answer:  # noqa: S310 - http(s) only
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Registrar:
    def __init__(self, settings: RegistrarSettings, client: Etcd3Client | None = None) -> None:
        self.settings = settings
        self.client = client or etcd_client(settings.etcd_url)
        self.lease: Any = None
        self.stopping = threading.Event()

    def run(self) -> None:
        """Check, register, keep alive, deregister; until SIGTERM (see :meth:`stop`)."""
        failures = 0
        while not self.stopping.is_set():
            if healthy(self.settings.check, timeout=max(self.settings.interval, 1.0)):
                failures = 0
                self._keep_registered()
            else:
                failures += 1
                if failures >= self.settings.failures and self.lease is not None:
                    log.warning("%s: health check failed %d times", self.settings.key, failures)
                    self.deregister()
            self.stopping.wait(self.settings.interval)
        self.deregister()

    def stop(self) -> None:
        self.stopping.set()

    def _keep_registered(self) -> None:
        try:
            if self.lease is not None and self.lease.refresh() > 0:
                return
            self.lease = self.client.lease(ttl=self.settings.ttl)
            host, _, port = self.settings.advertise.rpartition(":")
            self.client.put(self.settings.key, f"{host}:{port}", lease=self.lease)
            log.info("registered %s", self.settings.key)
        except (Etcd3Exception, OSError) as exc:
            # etcd away: try again next check; the lease (if any) expires by itself.
            log.warning("etcd: %s", exc)
            self.lease = None

    def deregister(self) -> None:
        if self.lease is None:
            return
        try:
            self.client.delete(self.settings.key)
            self.lease.revoke()
            log.info("deregistered %s", self.settings.key)
        except (Etcd3Exception, OSError) as exc:
            log.warning("etcd: could not deregister (the lease will expire): %s", exc)
        self.lease = None


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s registrar %(message)s")
    try:
        settings = RegistrarSettings.from_env(os.environ)
    except ValueError as exc:
        print(f"registrar: {exc}", file=sys.stderr)
        return 2
    registrar = Registrar(settings)
    # SIGTERM deregisters at once: the run loop ends and deletes the key.
    signal.signal(signal.SIGTERM, lambda *_: registrar.stop())
    signal.signal(signal.SIGINT, lambda *_: registrar.stop())
    started = time.monotonic()
    registrar.run()
    log.info("stopped after %.0fs", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
