"""The errors of the confd agent, placed in Shipway's one exception tree.

    ShipwayError
    ├── InvalidInput
    │   ├── ResourceError     a resource file is invalid; names the file and the key
    │   └── RenderError       a template failed to render (syntax, undefined name)
    └── ExternalError
        ├── EtcdUnavailable   etcd could not be read, or a watch stream broke
        └── CommandFailed     check_cmd or reload_cmd exited non-zero or timed out

``CommandFailed`` and ``RenderError`` leave the destination file as it was; the
agent records them and keeps running. ``ResourceError`` stops the agent at start.
"""

from __future__ import annotations

from pipelines.errors import ExternalError, InvalidInput


class ResourceError(InvalidInput):
    """A resource file under ``conf.d/`` is invalid; ``field`` is ``file: key``."""

    def __init__(self, path: str, key: str, message: str) -> None:
        super().__init__(f"{path}: {key}: {message}" if key else f"{path}: {message}", key)
        self.path = path


class RenderError(InvalidInput):
    """The template of a resource could not be rendered."""


class EtcdUnavailable(ExternalError):
    """etcd did not answer, answered with an error, or a watch stream ended."""


class CommandFailed(ExternalError):
    """``check_cmd`` or ``reload_cmd`` failed; the message carries its output."""
