"""The image registry as image jobs and releases reach it: an outage is waited out.

A push or a pull that fails while the registry does not even accept a connection
meets an outage, not a verdict: the caller says so once (``the registry at HOST:PORT
is unreachable since ..., waiting``), checks every second, then every few (up to
PAUSE_CAP), and tries again as soon as the registry accepts connections, for at most
``patience`` seconds (the runner's SHIPWAY_OUTAGE_PATIENCE). A failure while the
registry answers is the registry's own answer, passed on at once. Giving up raises
:class:`RegistryUnreachable`, whose message names the registry.

Reachability is a TCP connection, not an HTTP request: it holds for a registry on
plain HTTP or TLS alike, and asks nothing of its authentication.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from pipelines.errors import ExternalError

PAUSE_FIRST = 1.0
PAUSE_CAP = 5.0
CONNECT_TIMEOUT = 3.0

T = TypeVar("T")


class RegistryUnreachable(ExternalError):
    """The registry did not accept a connection within the patience."""


def registry_of(reference: str) -> str | None:
    """The registry (``host[:port]``) an image reference names; None for Docker Hub's
    short names (``busybox``, ``library/busybox``), as Docker reads them."""
    first, slash, _ = reference.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def answers(registry: str, timeout: float = CONNECT_TIMEOUT) -> bool:
    """Whether the registry accepts a TCP connection (port 443 when none is named)."""
    host, colon, port = registry.rpartition(":")
    if not colon or not port.isdigit():
        host, port = registry, "443"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def waiting_out_outages(
    registry: str,
    action: Callable[[], T],
    failures: tuple[type[BaseException], ...],
    say: Callable[[str], None],
    patience: float,
    interrupt: Callable[[], None] = lambda: None,
) -> T:
    """``action()``; when it raises one of ``failures`` while ``registry`` accepts no
    connection, wait for the registry and run it again. ``interrupt`` is called at
    each pause and may raise to end the wait (a cancel, the job's deadline)."""
    began: float | None = None
    while True:
        try:
            result = action()
        except failures as exc:
            if answers(registry):
                raise  # the registry said no: its answer stands
            if began is None:
                began = time.monotonic()
                since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
                say(f"the registry at {registry} is unreachable since {since} UTC, waiting: {exc}")
            _wait_for(registry, began, patience, interrupt, exc)
            continue
        if began is not None:
            say(f"the registry at {registry} answers again after {time.monotonic() - began:.0f}s")
        return result


def _wait_for(
    registry: str, began: float, patience: float, interrupt: Callable[[], None], last: object
) -> None:
    pause = PAUSE_FIRST
    while True:
        if time.monotonic() - began >= patience:
            raise RegistryUnreachable(
                f"the registry at {registry} stayed unreachable for {patience:g}s: {last}"
            )
        interrupt()
        time.sleep(pause)
        pause = min(pause * 2, PAUSE_CAP)
        if answers(registry):
            return
