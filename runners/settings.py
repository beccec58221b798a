"""A runner's settings, from the environment (the CLI sets them from its flags)."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import InvalidInput
from runners.cache_store import DEFAULT_MAX_BYTES, DEFAULT_TOTAL_BYTES, CacheStore
from runners.job_containers import ContainerOwner
from runners.outages import DEFAULT_OUTAGE_PATIENCE_SECONDS
from runners.reporting import DEFAULT_PATIENCE_SECONDS, ServerClient
from runners.spares import DEFAULT_SPARE_IMAGES

DEFAULT_REGISTRY = "127.0.0.1:5000"


@dataclass(frozen=True)
class RunnerSettings:
    server_url: str
    runner_token: str
    redis_url: str
    name: str
    cache_dir: Path
    registry: str = DEFAULT_REGISTRY  # where image jobs push: host:port
    etcd_url: str | None = None  # where instances register (S1); None: no discovery here
    # The address nginx reaches this host's instances at, and etcd's URL as seen from
    # inside a container (default: etcd's, with a loopback host made the Docker
    # bridge's gateway, where etcd must then listen too).
    advertise_ip: str = "127.0.0.1"
    container_etcd_url: str | None = None
    # Which Shipway installation this runner belongs to, on its job containers: by
    # default one of its own, derived from its cache folder (see ``installation_of``).
    installation: str = ""
    # How long a job's reports (log, result, image, release steps) are retried while
    # the server is away before the runner gives them up: a server down for a few
    # minutes (an upgrade, a database failover) costs no result.
    report_patience_seconds: int = DEFAULT_PATIENCE_SECONDS
    # How long a push, a release's pull or a release's traffic step waits for the
    # registry or etcd to answer again before it fails, naming which is away.
    outage_patience_seconds: int = DEFAULT_OUTAGE_PATIENCE_SECONDS
    # Dependency caches (runners.cache_store): the most one may hold, and all of them
    # on this runner before the least recently used are removed.
    cache_max_bytes: int = DEFAULT_MAX_BYTES
    caches_total_bytes: int = DEFAULT_TOTAL_BYTES
    # How many images the runner keeps a pre-started container of, for its next job
    # of each (``runners.spares``): the images its latest jobs used. 0: none.
    spare_images: int = DEFAULT_SPARE_IMAGES

    @property
    def owner(self) -> ContainerOwner:
        return ContainerOwner(self.name, self.installation or installation_of(self.cache_dir))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RunnerSettings:
        env = os.environ if environ is None else environ
        missing = [
            key for key in ("SHIPWAY_SERVER_URL", "SHIPWAY_RUNNER_TOKEN") if not env.get(key)
        ]
        if missing:
            raise InvalidInput(f"{missing[0]} is not set", missing[0])
        return cls(
            server_url=env["SHIPWAY_SERVER_URL"].rstrip("/"),
            runner_token=env["SHIPWAY_RUNNER_TOKEN"],
            redis_url=env.get("SHIPWAY_REDIS_URL", "redis://127.0.0.1:6379/0"),
            name=env.get("SHIPWAY_RUNNER_NAME") or socket.gethostname(),
            cache_dir=Path(
                env.get("SHIPWAY_RUNNER_CACHE_DIR", str(Path.home() / ".shipway-runner"))
            ),
            registry=env.get("SHIPWAY_REGISTRY") or DEFAULT_REGISTRY,
            etcd_url=env.get("SHIPWAY_ETCD_URL") or None,
            advertise_ip=env.get("SHIPWAY_ADVERTISE_IP") or "127.0.0.1",
            container_etcd_url=env.get("SHIPWAY_CONTAINER_ETCD_URL") or None,
            installation=env.get("SHIPWAY_INSTALLATION", ""),
            report_patience_seconds=_seconds(
                env, "SHIPWAY_REPORT_PATIENCE", DEFAULT_PATIENCE_SECONDS
            ),
            outage_patience_seconds=_seconds(
                env, "SHIPWAY_OUTAGE_PATIENCE", DEFAULT_OUTAGE_PATIENCE_SECONDS
            ),
            cache_max_bytes=_megabytes(env, "SHIPWAY_CACHE_MAX_MB", DEFAULT_MAX_BYTES),
            caches_total_bytes=_megabytes(env, "SHIPWAY_CACHES_TOTAL_MB", DEFAULT_TOTAL_BYTES),
            spare_images=_count(env, "SHIPWAY_SPARE_IMAGES", DEFAULT_SPARE_IMAGES),
        )

    def server_client(self) -> ServerClient:
        return ServerClient(self.server_url, self.runner_token, self.report_patience_seconds)

    def cache_store(self) -> CacheStore:
        """Dependency caches live in the runner's state folder, beside its mirrors."""
        return CacheStore(self.cache_dir / "caches", self.cache_max_bytes, self.caches_total_bytes)


def _seconds(env: Mapping[str, str], key: str, default: int) -> int:
    return _whole_number(env, key, default, "seconds")


def _megabytes(env: Mapping[str, str], key: str, default_bytes: int) -> int:
    return _whole_number(env, key, default_bytes // 1_048_576, "megabytes") * 1_048_576


def _whole_number(env: Mapping[str, str], key: str, default: int, unit: str) -> int:
    raw = env.get(key)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{key} must be a whole number of {unit}, not {raw!r}", key) from None
    if value <= 0:
        raise InvalidInput(f"{key} must be above 0", key)
    return value


def _count(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidInput(f"{key} must be a whole number, 0 or more, not {raw!r}", key)
    return int(raw)


def installation_of(state_folder: Path) -> str:
    """An installation's default name: its state folder's, so that two installations
    on one machine (each with its own folder) never take each other's containers."""
    digest = hashlib.sha256(str(state_folder.resolve()).encode()).hexdigest()
    return f"shipway-{digest[:12]}"
