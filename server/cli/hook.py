"""``shipway hook install``: put Shipway's post-receive hook into a bare repository."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

from pipelines.errors import InvalidInput


def install_hook(repository: Path, url: str, project_path: str, secret: str) -> Path:
    """Install the hook and its settings; return the hook's path."""
    if not (repository / "HEAD").exists() or not (repository / "objects").is_dir():
        raise InvalidInput(f"{repository} is not a bare git repository", "repository")
    hook = repository / "hooks" / "post-receive"
    hook.parent.mkdir(exist_ok=True)
    source = resources.files("runners").joinpath("hooks/post-receive")
    with resources.as_file(source) as path:
        shutil.copyfile(path, hook)
    hook.chmod(0o755)
    for key, value in (
        ("shipway.url", url),
        ("shipway.project", project_path),
        ("shipway.secret", secret),
    ):
        subprocess.run(["git", "--git-dir", str(repository), "config", key, value], check=True)
    return hook
