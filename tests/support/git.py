"""Real git repositories for the tests: a bare one (the "server") and a clone."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip() + result.stderr.strip()


class Repository:
    """A bare repository and a working clone of it."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "app.git"
        self.work = root / "work"
        root.mkdir(parents=True, exist_ok=True)
        git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        git(root, "clone", "-q", str(self.bare), str(self.work))
        git(self.work, "checkout", "-q", "-b", "main")

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        for name, content in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def push(self, ref: str = "HEAD:refs/heads/main") -> str:
        """Push and return what the remote printed (the hook's lines among them)."""
        return git(self.work, "push", "origin", ref)

    def tag(self, name: str, annotated: bool = False) -> None:
        if annotated:
            git(self.work, "tag", "-a", name, "-m", f"release {name}")
        else:
            git(self.work, "tag", name)


def fast_import_commits(bare: Path, count: int, pipeline_file: str) -> list[str]:
    """``count`` commits on main of a bare repository, oldest first, written by one
    ``git fast-import`` (no hook runs): the first adds ``.shipway.yml``, each
    changes ``counter``."""
    stream = []
    for index in range(count):
        stream.append(
            f"commit refs/heads/main\nmark :{index + 1}\n"
            f"committer Dev <dev@example.com> {1_700_000_000 + index} +0000\n"
            f"data 9\nchange {index % 10}\n"
        )
        if index:
            stream.append(f"from :{index}\n")
        else:
            size = len(pipeline_file.encode())
            stream.append(f"M 100644 inline .shipway.yml\ndata {size}\n{pipeline_file}\n")
        content = f"{index}\n"
        stream.append(f"M 100644 inline counter\ndata {len(content)}\n{content}\n")
    subprocess.run(
        ["git", "-C", str(bare), "fast-import", "--quiet"],
        input="".join(stream).encode(),
        check=True,
    )
    return git(bare, "rev-list", "--reverse", "main").split()
