"""``shipway hook install``: put Shipway's post-receive hook into a bare repository."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

from pipelines.errors import InvalidInput


def install_hook(repository: Path, url: str, project_path: str, secret: str) -> Path:
    """Install the hook and its settings; return the hook's path.

    The hook file is a copy; ``#!/usr/bin/env python3`` is replaced by the
    interpreter running this command. Copy runners/hooks/post-receive by hand to
    use it on a git host without Shipway installed."""
    if not (repository / "HEAD").exists() or not (repository / "objects").is_dir():
        raise InvalidInput(f"{repository} is not a bare git repository", "repository")
    hook = repository / "hooks" / "post-receive"
    hook.parent.mkdir(exist_ok=True)
    source = resources.files("runners").joinpath("hooks/post-receive").read_text()
    # Pin the interpreter Shipway runs on: no PATH search, no shim (pyenv's costs
    # ~70 ms a push), and -IS because the hook needs only the standard library.
    body = source.split("\n", 1)[1]
    hook.write_text(f"#!{sys.executable} -IS\n{body}")
    hook.chmod(0o755)
    for key, value in (
        ("shipway.url", url),
        ("shipway.project", project_path),
        ("shipway.secret", secret),
    ):
        subprocess.run(["git", "--git-dir", str(repository), "config", key, value], check=True)
    return hook
