"""Installing a rendered file: atomic, with its mode, only when changed, and the
previous file back when the check or the reload fails. Real files, /bin/sh."""

from __future__ import annotations

from pathlib import Path

import pytest

from confd.errors import CommandFailed
from confd.reload import install, sha256
from confd.resources import Resource


def resource(tmp_path: Path, check: str | None = None, reload: str | None = None) -> Resource:
    (tmp_path / "t.j2").touch()
    return Resource(
        tmp_path / "r.toml",
        tmp_path / "t.j2",
        tmp_path / "site" / "out.conf",
        ("/",),
        mode=0o640,
        check_cmd=check,
        reload_cmd=reload,
    )


def test_a_new_file_with_its_mode(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    target = resource(tmp_path, reload=f"echo reloaded >> {tmp_path / 'reloads'}")
    installed = install(target, "new\n")
    assert installed.changed
    assert installed.sha256 == sha256(b"new\n")
    assert target.dest.read_text() == "new\n"
    assert target.dest.stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "reloads").read_text() == "reloaded\n"
    assert list(target.dest.parent.iterdir()) == [target.dest]


def test_the_same_text_is_not_written_again(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    target = resource(tmp_path, reload=f"echo reloaded >> {tmp_path / 'reloads'}")
    install(target, "same\n")
    inode = target.dest.stat().st_ino
    assert not install(target, "same\n").changed
    assert target.dest.stat().st_ino == inode
    assert (tmp_path / "reloads").read_text() == "reloaded\n"


def test_the_check_sees_the_new_file_and_its_failure_puts_the_old_one_back(
    tmp_path: Path,
) -> None:
    (tmp_path / "site").mkdir()
    install(resource(tmp_path), "good\n")
    # The check reads the destination itself ({{src}}): it refuses "bad".
    target = resource(
        tmp_path, check="! grep -q bad {{src}} || { echo refused >&2; exit 1; }", reload="false"
    )
    with pytest.raises(CommandFailed, match=r"check_cmd exited 1: .*refused"):
        install(target, "bad\n")
    assert target.dest.read_text() == "good\n"
    assert target.dest.stat().st_mode & 0o777 == 0o640
    assert list(target.dest.parent.iterdir()) == [target.dest]


def test_a_failed_reload_puts_the_old_file_back(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    install(resource(tmp_path), "good\n")
    with pytest.raises(CommandFailed, match="reload_cmd exited 3"):
        install(resource(tmp_path, check="true", reload="exit 3"), "newer\n")
    assert resource(tmp_path).dest.read_text() == "good\n"


def test_a_first_file_that_fails_its_check_is_not_left(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    target = resource(tmp_path, check="false")
    with pytest.raises(CommandFailed):
        install(target, "bad\n")
    assert list(target.dest.parent.iterdir()) == []
