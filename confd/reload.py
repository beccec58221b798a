"""Put a rendered file in place: atomically, checked, reloaded, or not at all.

The order is confd's with one change: ``check_cmd`` runs after the new file is
swapped in, because ``nginx -t`` checks the main configuration that *includes*
the destination, not the file alone. When the check or the reload fails the
previous file is swapped back, so the destination only ever holds a file that
passed (a crash between swap and check is the one window where it does not).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from confd.errors import CommandFailed
from confd.resources import Resource

DEFAULT_MODE = 0o644
COMMAND_TIMEOUT = 30.0
_SRC = re.compile(r"\{\{\s*\.?src\s*\}\}")


@dataclass(frozen=True)
class Installed:
    """The destination now holds the text whose digest is ``sha256``."""

    changed: bool
    sha256: str


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def install(resource: Resource, text: str, timeout: float = COMMAND_TIMEOUT) -> Installed:
    """Write ``text`` to ``resource.dest`` unless it is already there; CommandFailed
    (with the file as it was) when the check or the reload fails."""
    dest = resource.dest
    data = text.encode()
    try:
        previous_stat = dest.stat()
        previous = dest.read_bytes()
    except FileNotFoundError:
        previous_stat, previous = None, None
    if previous == data:
        return Installed(changed=False, sha256=sha256(data))

    mode = resource.mode
    if mode is None:
        mode = previous_stat.st_mode & 0o7777 if previous_stat else DEFAULT_MODE
    staged = _write_temporary(dest, data, mode)
    backup = _keep_previous(dest) if previous_stat else None
    try:
        os.replace(staged, dest)
        _sync_directory(dest.parent)
        try:
            if resource.check_cmd:
                command = _SRC.sub(shlex.quote(str(dest)), resource.check_cmd)
                run_command("check_cmd", command, timeout)
            if resource.reload_cmd:
                run_command("reload_cmd", resource.reload_cmd, timeout)
        except CommandFailed:
            _restore(dest, backup)
            raise
    finally:
        for leftover in (staged, backup):
            if leftover is not None:
                leftover.unlink(missing_ok=True)
    return Installed(changed=True, sha256=sha256(data))


def run_command(what: str, command: str, timeout: float) -> None:
    """Run a resource's shell command; CommandFailed with its output otherwise."""
    try:
        result = subprocess.run(
            ["/bin/sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(f"{what} timed out after {timeout:g}s: {command}") from exc
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip())[-2000:]
        raise CommandFailed(f"{what} exited {result.returncode}: {command}: {output}")


def _write_temporary(dest: Path, data: bytes, mode: int) -> Path:
    """A fully written, synced file next to ``dest`` (same filesystem: os.replace
    is then atomic)."""
    handle, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".new", dir=dest.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fchmod(file.fileno(), mode)
            os.fsync(file.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _keep_previous(dest: Path) -> Path:
    """A second name for the current file, to swap back atomically on failure."""
    backup = dest.parent / f".{dest.name}.{secrets.token_hex(6)}.prev"
    try:
        os.link(dest, backup)
    except OSError:
        # A filesystem without hard links: a copy, with the same mode.
        staged = _write_temporary(dest, dest.read_bytes(), dest.stat().st_mode & 0o7777)
        os.replace(staged, backup)
    return backup


def _restore(dest: Path, backup: Path | None) -> None:
    if backup is None:
        dest.unlink(missing_ok=True)
    else:
        os.replace(backup, dest)
    _sync_directory(dest.parent)


def _sync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
