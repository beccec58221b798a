"""How an application runs in one environment (D1, D2): the deployment
configuration that the compose file is rendered from.

    type: stateless                  # or stateful: stable names, ordered rollout
    instances: 2
    resources: {cpus: 0.5, memory: 256m}   # over its memory, an instance is killed
    ports: [{container: 8000}]       # a host port per instance is allocated (D4)
    environment: {LOG_LEVEL: info}
    command: [python3, -m, hello]    # instead of the image's start command
    files:                           # text mounted read-only as a file
      - {path: /etc/hello/app.ini, content: "[app]\\ngreeting = hi\\n"}
    directories:                     # host folders mounted (logs, data)
      - {host: /var/log/hello, container: /app/logs}
    health:
      http: {path: /healthz, port: 8000}   # or command: "test -f /tmp/ready"
      interval: 5s
      timeout: 2s
      retries: 3
      start_period: 10s
    hooks:
      post_start: ./warm-cache.sh
      pre_stop: ./drain.sh
    stop_grace_period: 10s           # after SIGTERM (through an init), before SIGKILL
    url: https://hello.staging.example.com/   # what testers open (told on merge requests)
    discovery:                       # S1: registered in etcd, routed by nginx
      port: 8000                     # the container port registered (default: the first)
      hosts: [hello.example.com]     # nginx routes these host names ...
      path: /hello/                  # ... and/or this path prefix to the instances
      drain: 2s                      # in-flight requests' time once out of traffic
      ttl: 10s                       # a registration outlives a dead registrar this long

A configuration is stored as a new version each time it changes; a release uses the
version current when it is made, so a change takes effect only through a release.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipelines.errors import InvalidInput
from pipelines.spec_types import VARIABLE, Duration

_MEMORY = re.compile(r"^(\d+)([kmg]?)b?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
MIN_MEMORY = 6 * 1024**2  # what the Docker Engine accepts at least


class AppType(StrEnum):
    STATELESS = "stateless"  # interchangeable instances, rolled out in batches
    STATEFUL = "stateful"  # stable names and data, rolled out one by one, in order


def parse_memory(value: Any) -> int:
    """Bytes from ``268435456``, ``"256m"``, ``"1g"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (match := _MEMORY.fullmatch(value.strip())):
        size = int(match.group(1)) * _UNITS[match.group(2).lower()]
    else:
        raise ValueError("memory is a number of bytes or text like 256m or 1g")
    if size < MIN_MEMORY:
        raise ValueError("memory is at least 6m")
    return size


def _absolute(path: str) -> str:
    if not path.startswith("/") or ".." in path.split("/"):
        raise ValueError(f"{path!r} must be an absolute path without '..'")
    return path


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cpus: float | None = Field(default=None, gt=0, le=64)
    memory: Annotated[int, BeforeValidator(parse_memory)] | None = None


class Port(BaseModel):
    model_config = ConfigDict(extra="forbid")

    container: int = Field(ge=1, le=65535)


class FileMount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    content: str = Field(max_length=1024 * 1024)

    _path = field_validator("path")(_absolute)


class DirectoryMount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str
    container: str
    read_only: bool = False

    _host = field_validator("host")(_absolute)
    _container = field_validator("container")(_absolute)


class HttpCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # URL characters only: the path is written into the check's shell command.
    path: str = Field(pattern=r"^/[A-Za-z0-9._~%/?&=:+,-]*$")
    port: int = Field(ge=1, le=65535)


class Health(BaseModel):
    """Healthy when the HTTP GET answers 200, or the command exits 0."""

    model_config = ConfigDict(extra="forbid")

    http: HttpCheck | None = None
    command: str | None = Field(default=None, min_length=1)
    interval: Duration = 5
    timeout: Duration = 3
    retries: int = Field(default=3, ge=1, le=100)
    start_period: Annotated[int, Field(ge=0)] | Duration = 0

    @model_validator(mode="after")
    def _one_check(self) -> Health:
        if (self.http is None) == (self.command is None):
            raise ValueError("a health check is either http or command")
        return self


class Hooks(BaseModel):
    model_config = ConfigDict(extra="forbid")

    post_start: str | None = Field(default=None, min_length=1)
    pre_stop: str | None = Field(default=None, min_length=1)
    # A hook still running then is left to the container's stop and the release goes
    # on: a hook that never ends must not hold a release (its runner keeps beating).
    timeout: Duration = 60


class Discovery(BaseModel):
    """The instances register in etcd (a registrar sidecar each) and the confd agent
    routes to them; a release takes each out of traffic before stopping it."""

    model_config = ConfigDict(extra="forbid")

    port: int | None = Field(default=None, ge=1, le=65535)
    hosts: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9*][A-Za-z0-9.*-]*$")]] = Field(
        default_factory=list, max_length=20
    )
    path: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9._~%/-]*$")
    drain: Duration = 2
    ttl: Annotated[int, Field(ge=3, le=300)] | Duration = 10


class DeployConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: AppType = AppType.STATELESS
    instances: int = Field(default=1, ge=1, le=100)
    resources: Resources = Field(default_factory=Resources)
    ports: list[Port] = Field(default_factory=list, max_length=20)
    environment: dict[str, str] = Field(default_factory=dict)
    command: list[Annotated[str, Field(min_length=1)]] | None = None  # else the image's
    files: list[FileMount] = Field(default_factory=list, max_length=50)
    directories: list[DirectoryMount] = Field(default_factory=list, max_length=50)
    health: Health | None = None
    hooks: Hooks = Field(default_factory=Hooks)
    discovery: Discovery | None = None
    stop_grace_period: Duration = 10  # after SIGTERM, how long before SIGKILL
    # The address testers open; merge requests deployed here are told of it (T5).
    url: str | None = Field(default=None, max_length=500, pattern=r"^https?://[^\s]+$")

    @property
    def discovery_port(self) -> int | None:
        """The container port instances register under, when they register."""
        if self.discovery is None:
            return None
        return self.discovery.port or self.ports[0].container

    @field_validator("environment")
    @classmethod
    def _variable_names(cls, environment: dict[str, str]) -> dict[str, str]:
        for name in environment:
            if not VARIABLE.fullmatch(name):
                raise ValueError(f"variable name {name!r} is not letters, digits and underscores")
        return environment

    @model_validator(mode="after")
    def _distinct(self) -> DeployConfig:
        containers = [port.container for port in self.ports]
        if len(set(containers)) != len(containers):
            raise ValueError("a container port is listed twice")
        targets = [mount.path for mount in self.files] + [d.container for d in self.directories]
        if len(set(targets)) != len(targets):
            raise ValueError("two mounts share a path in the container")
        if self.discovery is not None:
            if not self.ports:
                raise ValueError("discovery registers a port: list one under ports")
            if self.discovery.port is not None and self.discovery.port not in containers:
                raise ValueError(f"discovery.port {self.discovery.port} is not under ports")
        return self


def parse_deploy_config(data: Any) -> DeployConfig:
    """Validate a configuration; InvalidInput names the first field at fault."""
    try:
        return DeployConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"] if not _is_tag(part)) or "config"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        raise InvalidInput(f"{field}: {message}", field) from exc


def _is_tag(part: str | int) -> bool:
    return isinstance(part, str) and "[" in part and part.endswith("]")
