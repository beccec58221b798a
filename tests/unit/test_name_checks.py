"""Names are checked whole: Python's ``$`` also matches before a final newline, so a
check with ``re.match`` let "API_KEY\\n" through as a secret or variable name."""

from __future__ import annotations

import pytest

from pipelines.deploy_config import parse_deploy_config
from pipelines.errors import InvalidInput, SpecError
from pipelines.spec import parse_spec
from server.usecases.secrets import check_environment


def test_a_variable_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(SpecError, match="variable"):
        parse_spec('image: i\nvariables: {"API_KEY\\n": x}\njobs:\n  unit:\n    script: echo\n')


def test_an_environment_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidInput):
        check_environment("production\n")
    assert check_environment("production") == "production"


def test_a_configured_variable_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidInput):
        parse_deploy_config({"environment": {"API_KEY\n": "x"}})
    assert parse_deploy_config({"environment": {"API_KEY": "x"}}).environment == {"API_KEY": "x"}
