from __future__ import annotations

import subprocess

import pytest

from pipelines.errors import InvalidInput
from runners.job_files import render_exports

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
