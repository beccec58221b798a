from __future__ import annotations

import io
import subprocess
import tarfile

import pytest

from pipelines.errors import InvalidInput
from runners.job_files import job_tree, render_exports

VALUES = {
    "QUOTES": "it's \"quoted\" 'twice'",
    "DOLLARS": "$HOME ${PATH} $(id) `uname`",
    "LINES": "first\nsecond  with  spaces \n\n",
    "BACKSLASHES": "a\\nb\\\\c\\",
}


@pytest.mark.parametrize("name", sorted(VALUES))
def test_each_value_reaches_a_shell_as_it_is(name: str) -> None:
    shown = subprocess.run(
        ["/bin/sh", "-c", f'eval "$0"; printf %s "${name}"', render_exports(VALUES)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == VALUES[name]


@pytest.mark.parametrize("name", ["A B", "X;id", "1ST", "", "NAME=x"])
def test_a_name_that_is_no_variable_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="cannot name an environment variable"):
        render_exports({name: "value-of-it"})


def test_the_end_mark_reaches_the_unpacking_shell_only() -> None:
    """It is set, not exported: the script's own shell never sees it, and a variable
    of the job cannot take its name."""
    mark = "0123456789abcdef" * 2
    tree = job_tree(empty_tar(), "true\n", {"SHIPWAY_END_MARK": "mine"}, {}, mark)
    with tarfile.open(fileobj=io.BytesIO(tree)) as archive:
        environment = archive.extractfile("shipway/environment.sh")
        assert environment is not None
        text = environment.read().decode()
    shown = subprocess.run(
        [
            "/bin/sh",
            "-c",
            f'{text}\nprintf "%s|" "$SHIPWAY_END_MARK"; sh -c \'printf %s "$SHIPWAY_END_MARK"\'',
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == f"{mark}|"


@pytest.mark.parametrize("mark", ["", "0" * 31, "0" * 31 + "g", "0" * 32 + "\n"])
def test_an_end_mark_that_is_not_32_hex_digits_is_refused(mark: str) -> None:
    with pytest.raises(InvalidInput, match="32 hexadecimal digits"):
        job_tree(empty_tar(), "true\n", {}, {}, mark)


def empty_tar() -> bytes:
    buffer = io.BytesIO()
    tarfile.open(fileobj=buffer, mode="w").close()
    return buffer.getvalue()
