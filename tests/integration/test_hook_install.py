"""``shipway hook install`` on a real bare repository: the hook file and its git
config keys, the optional ones only when given, a patience out of range refused."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from server.cli.main import main


def config(repository: Path) -> dict[str, str]:
    listed = subprocess.run(
        ["git", "--git-dir", str(repository), "config", "--get-regexp", r"^shipway\."],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split(" ", 1) for line in listed.splitlines())


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    repository = tmp_path / "app.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repository)], check=True)
    return repository


def install(bare: Path, *options: str) -> int:
    common = ["--project-path", "team/app", "--secret", "s3cret"]
    return main(["--url", "http://ci:8080", "hook", "install", str(bare), *common, *options])


def test_the_hook_and_its_settings(bare: Path) -> None:
    assert install(bare) == 0
    hook = bare / "hooks" / "post-receive"
    assert hook.read_text().startswith(f"#!{sys.executable} -IS\n")
    assert config(bare) == {
        "shipway.url": "http://ci:8080/webhooks/gitlab",
        "shipway.project": "team/app",
        "shipway.secret": "s3cret",
        # What the hook would derive from the URL, written once instead of each push.
        "shipway.webhookuuid": str(
            uuid.uuid5(uuid.NAMESPACE_URL, "http://ci:8080/webhooks/gitlab")
        ),
    }  # no patience: the hook's default (60 s)
    assert install(bare, "--patience", "90", "--project-name", "app") == 0
    assert config(bare)["shipway.patience"] == "90"
    assert config(bare)["shipway.projectname"] == "app"
    assert install(bare) == 0  # installed again: what was set stays
    assert config(bare)["shipway.patience"] == "90"


@pytest.mark.parametrize("patience", ["-1", "3601", "nan"])
def test_a_patience_out_of_range_is_refused(
    bare: Path, patience: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert install(bare, "--patience", patience) == 2
    assert "--patience must be 0 to 3600 seconds" in capsys.readouterr().err
    assert not (bare / "hooks" / "post-receive").exists()
