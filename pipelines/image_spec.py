"""The settings of an image job (``kind: image``): three layers, or a Dockerfile.

    jobs:
      image:
        kind: image
        layers:
          os: shipway/debian:bookworm     # a base image the runners have
          middleware:                     # shared by every app declaring the same
            packages: [python3]           # Debian packages (apt-get install)
            run: [useradd --system app]   # more commands, at build time
            env: {PYTHONUNBUFFERED: "1"}
          app:
            copy: [src/, requirements.txt]  # from the commit's tree
            workdir: /app
            command: [python3, -m, src.main]
            expose: [8000]
        runtime_mounts:                   # I4: a large runtime from the host
          - {host: /opt/jdk-17, target: /opt/jdk, environments: [production]}

or ``dockerfile: path/to/Dockerfile`` (with ``context``, default the file's
folder) when the repository brings its own. ``repository`` names the image in the
registry (default: the project's name); the tag is the commit.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

_REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]*(?:=[A-Za-z0-9.+:~-]+)?$")


def _words(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Text = Annotated[str, BeforeValidator(_text)]


def _relative(path: str) -> str:
    if path.startswith("/") or ".." in path.split("/"):
        raise ValueError(f"{path!r} must be a path inside the repository")
    return path


def _absolute(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"{path!r} must be an absolute path")
    return path


class MiddlewareSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    packages: list[str] = Field(default_factory=list)
    run: Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_words)] = Field(
        default_factory=list
    )
    env: dict[str, Text] = Field(default_factory=dict)

    @field_validator("run")
    @classmethod
    def _one_line_each(cls, commands: list[str]) -> list[str]:
        if any("\n" in command for command in commands):
            raise ValueError("each command is one line (they run as one RUN step, in order)")
        return commands

    @field_validator("packages")
    @classmethod
    def _package_names(cls, packages: list[str]) -> list[str]:
        for package in packages:
            if not _PACKAGE.fullmatch(package):
                raise ValueError(f"{package!r} is not a Debian package name")
        return packages


class AppLayerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    copy_paths: Annotated[list[str], BeforeValidator(_words)] = Field(alias="copy", min_length=1)
    workdir: str = "/app"
    command: Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_words)] = Field(
        min_length=1
    )
    expose: list[Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=list)
    env: dict[str, Text] = Field(default_factory=dict)

    _copy = field_validator("copy_paths")(lambda paths: [_relative(p) for p in paths])
    _workdir = field_validator("workdir")(_absolute)


class LayersSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    os: str = Field(min_length=1)
    middleware: MiddlewareSpec = Field(default_factory=MiddlewareSpec)
    app: AppLayerSpec


class RuntimeMountSpec(BaseModel):
    """I4: a runtime too large to bake in, mounted read-only from the host by the
    deploy; ``environments`` says where (absent: everywhere)."""

    model_config = ConfigDict(extra="forbid")

    host: str
    target: str
    environments: list[str] | None = None

    _host = field_validator("host")(_absolute)
    _target = field_validator("target")(_absolute)


def check_repository(repository: str | None) -> str | None:
    if repository is not None and not _REPOSITORY.fullmatch(repository):
        raise ValueError("a repository is lower-case words separated by '/', '.', '_' or '-'")
    return repository


def check_relative(path: str | None) -> str | None:
    return _relative(path) if path is not None else None


def middleware_dockerfile(os_image: str, middleware: dict[str, Any]) -> str:
    """The middleware layer's Dockerfile: one layer on the os image (packages, then
    the commands, in one ``RUN``), shared by every application declaring the same."""
    steps = []
    packages = middleware.get("packages") or []
    if packages:
        steps.append(
            "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
            "--no-install-recommends " + " ".join(packages) + " && rm -rf /var/lib/apt/lists/*"
        )
    steps += [f"({command})" for command in middleware.get("run") or []]
    lines = [f"FROM {os_image}"]
    if steps:
        lines.append("RUN " + " && ".join(steps))
    lines += [
        f"ENV {name}={json.dumps(value)}" for name, value in middleware.get("env", {}).items()
    ]
    return "\n".join(lines) + "\n"


def middleware_tag(base_image_id: str, dockerfile: str) -> str:
    """Tag of a middleware image: a hash of what it is made of, the base image's id
    included, so a rebuilt base makes a new middleware."""
    digest = hashlib.sha256(f"{base_image_id}\n{dockerfile}".encode()).hexdigest()
    return digest[:20]


def app_dockerfile(middleware_image: str, app: dict[str, Any]) -> str:
    """The application layer: the middleware image plus the copied paths, in one
    layer; the rest is image metadata, which adds no layer. No ``LABEL`` lines: each
    is one more builder step (~70 ms with the classic builder, measured), and the
    tag (the commit) and Shipway's records say what they would."""
    workdir = app.get("workdir", "/app")
    sources = " ".join(json.dumps(path) for path in app["copy"])
    lines = [
        f"FROM {middleware_image}",
        f"COPY [{sources.replace(' ', ', ')}, {json.dumps(workdir.rstrip('/') + '/')}]",
        f"WORKDIR {workdir}",
    ]
    lines += [f"ENV {name}={json.dumps(value)}" for name, value in app.get("env", {}).items()]
    lines += [f"EXPOSE {port}" for port in app.get("expose", [])]
    lines.append(f"CMD {json.dumps(app['command'])}")
    return "\n".join(lines) + "\n"
