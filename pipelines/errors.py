"""The one exception tree of Shipway.

    ShipwayError
    ├── InvalidInput          bad input from outside; names the field at fault
    │   ├── PayloadError      a webhook or API body is malformed or misses a field
    │   └── SpecError         the pipeline file is invalid; names the line and the key
    ├── Unauthorized          a token is missing or wrong
    ├── Forbidden             the caller is known but their roles do not allow it
    ├── NotFound              a project, pipeline or job does not exist
    ├── Conflict              the request is valid but the current state forbids it
    │   └── IllegalTransition a status change the transition table does not allow
    └── ExternalError         git, Docker, Redis or the server failed; raised at the
                              boundary with ``raise ... from exc``

The server maps InvalidInput to 400, Unauthorized to 401, Forbidden to 403,
NotFound to 404 and Conflict to 409.
"""

from __future__ import annotations

from dataclasses import dataclass


class ShipwayError(Exception):
    """Root of every error Shipway raises on purpose."""


class InvalidInput(ShipwayError):
    """Input from outside is not acceptable; ``field`` names what is wrong."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class PayloadError(InvalidInput):
    """A webhook or API body is malformed or misses a required field."""


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a pipeline file: where it is and what is wrong."""

    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class SpecError(InvalidInput):
    """The pipeline file is invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = issues
        first = issues[0] if issues else SpecIssue(None, "", "invalid pipeline file")
        super().__init__("; ".join(str(issue) for issue in issues), field=first.key or None)


class Unauthorized(ShipwayError):
    """A token is missing or does not match."""


class Forbidden(ShipwayError):
    """The caller is who they say, but none of their roles allows this."""


class NotFound(ShipwayError):
    """The named object does not exist."""


class Conflict(ShipwayError):
    """The request is well formed, but the object's current state forbids it."""


class IllegalTransition(Conflict):
    """A status change that the transition table does not allow."""


class ExternalError(ShipwayError):
    """A service or tool outside Shipway failed (git, Docker, Redis, the server)."""
