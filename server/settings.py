"""The server's settings, read once from the environment at start.

A missing or malformed value fails at start with a message naming the variable,
never later in the middle of a request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import InvalidInput
from server.store.deployments import DEFAULT_HOST_PORTS

PREFIX = "SHIPWAY_"


class SettingsError(InvalidInput):
    """A setting is missing or malformed."""


def _int(environ: Mapping[str, str], key: str, default: int) -> int:
    raw = environ.get(PREFIX + key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{key} must be a whole number, not {raw!r}", key) from None
    if value <= 0:
        raise SettingsError(f"{PREFIX}{key} must be above 0", key)
    return value


def _port_range(environ: Mapping[str, str], key: str, default: range) -> range:
    raw = environ.get(PREFIX + key)
    if raw is None:
        return default
    first, dash, last = raw.partition("-")
    if not (dash and first.strip().isdigit() and last.strip().isdigit()):
        raise SettingsError(f"{PREFIX}{key} must be a range such as 20000-29999, not {raw!r}", key)
    start, end = int(first), int(last)
    if not 1024 <= start <= end <= 65535:
        raise SettingsError(f"{PREFIX}{key} must lie within 1024-65535, low to high", key)
    return range(start, end + 1)


def _required(environ: Mapping[str, str], key: str) -> str:
    value = environ.get(PREFIX + key, "")
    if not value:
        raise SettingsError(f"{PREFIX}{key} is not set", key)
    return value


@dataclass(frozen=True)
class Settings:
    state_dir: Path  # git mirrors and, by default, the SQLite database
    database_url: str
    redis_url: str
    api_token: str  # bearer token of the API and the CLI
    runner_token: str  # bearer token runners use to report
    secret_key_file: Path  # the key that encrypts secret variables; made when missing
    webhook_max_bytes: int = 5 * 1024 * 1024
    engine_interval_seconds: float = 1.0  # how often the engine looks without being woken
    # A job or release batch waiting this long with no runner of its queue online fails.
    stuck_after_seconds: int = 3600
    etcd_url: str | None = None  # service discovery (S1, L6); None: no traffic weights
    gitlab_url: str | None = None  # where commit statuses and notes go (T5); None: nowhere
    gitlab_token: str | None = None  # a token with the api scope
    public_url: str | None = None  # Shipway's address as GitLab's users reach it
    host_ports: range = DEFAULT_HOST_PORTS  # where instances' host ports are allocated (D4)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        state_dir = Path(env.get(PREFIX + "STATE_DIR", str(Path.home() / ".shipway")))
        return cls(
            state_dir=state_dir,
            database_url=env.get(PREFIX + "DATABASE_URL", f"sqlite:///{state_dir / 'shipway.db'}"),
            redis_url=env.get(PREFIX + "REDIS_URL", "redis://127.0.0.1:6379/0"),
            api_token=_required(env, "API_TOKEN"),
            runner_token=_required(env, "RUNNER_TOKEN"),
            secret_key_file=Path(
                env.get(PREFIX + "SECRET_KEY_FILE", str(state_dir / "secret.key"))
            ),
            webhook_max_bytes=_int(env, "WEBHOOK_MAX_BYTES", 5 * 1024 * 1024),
            stuck_after_seconds=_int(env, "STUCK_AFTER", 3600),
            etcd_url=env.get(PREFIX + "ETCD_URL") or None,
            gitlab_url=env.get(PREFIX + "GITLAB_URL") or None,
            gitlab_token=_required(env, "GITLAB_TOKEN") if env.get(PREFIX + "GITLAB_URL") else None,
            public_url=env.get(PREFIX + "PUBLIC_URL") or None,
            host_ports=_port_range(env, "HOST_PORTS", DEFAULT_HOST_PORTS),
        )

    @property
    def mirrors_dir(self) -> Path:
        return self.state_dir / "mirrors"
