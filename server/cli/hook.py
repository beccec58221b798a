"""``shipway hook install``: put Shipway's post-receive hook into a bare repository."""

from __future__ import annotations

import subprocess
import sys
import uuid
from importlib import resources
from pathlib import Path

from pipelines.errors import InvalidInput

MAX_PATIENCE = 3600  # a push that waits an hour is as good as hung


def install_hook(
    repository: Path,
    url: str,
    project_path: str,
    secret: str,
    patience: float | None = None,
    project_name: str | None = None,
) -> Path:
    """Install the hook and its settings; return the hook's path.

    ``patience``: how many seconds a push waits for a server that is down or without
    its database (the hook's default, 60 s, when None); ``project_name``: the
    Shipway project, named in the command the hook prints when it gives up. Settings
    not given are left as they are.

    The hook file is a copy; ``#!/usr/bin/env python3`` is replaced by the
    interpreter running this command. Copy runners/hooks/post-receive by hand to
    use it on a git host without Shipway installed."""
    if not (repository / "HEAD").exists() or not (repository / "objects").is_dir():
        raise InvalidInput(f"{repository} is not a bare git repository", "repository")
    if patience is not None and not 0 <= patience <= MAX_PATIENCE:
        raise InvalidInput(f"--patience must be 0 to {MAX_PATIENCE} seconds", "patience")
    hook = repository / "hooks" / "post-receive"
    hook.parent.mkdir(exist_ok=True)
    source = resources.files("runners").joinpath("hooks/post-receive").read_text()
    # Pin the interpreter Shipway runs on: no PATH search, no shim (pyenv's costs
    # ~70 ms a push), and -IS because the hook needs only the standard library.
    body = source.split("\n", 1)[1]
    hook.write_text(f"#!{sys.executable} -IS\n{body}")
    hook.chmod(0o755)
    # The webhook's UUID, derived from the URL (the hook would derive the same one at
    # each push, importing uuid for it: ~7 ms of every push).
    webhook_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, url))
    settings = [
        ("shipway.url", url),
        ("shipway.project", project_path),
        ("shipway.secret", secret),
        ("shipway.webhookuuid", webhook_uuid),
    ]
    if patience is not None:
        settings.append(("shipway.patience", f"{patience:g}"))
    if project_name is not None:
        settings.append(("shipway.projectname", project_name))
    for key, value in settings:
        subprocess.run(["git", "--git-dir", str(repository), "config", key, value], check=True)
    return hook
