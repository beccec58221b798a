from __future__ import annotations

from typing import Any

import pytest

from pipelines.deploy_config import AppType, parse_deploy_config, parse_memory
from pipelines.errors import InvalidInput


def test_defaults_and_units() -> None:
    config = parse_deploy_config({"resources": {"memory": "256m"}, "health": {"command": "true"}})
    assert (config.type, config.instances) == (AppType.STATELESS, 1)
    assert config.resources.memory == 256 * 1024 * 1024
    assert config.health is not None
    assert (config.health.interval, config.health.retries) == (5, 3)
    assert parse_memory("1g") == 1024**3
    assert parse_memory(8 * 1024 * 1024) == 8 * 1024 * 1024


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"instances": 0}, "instances", "greater than or equal to 1"),
        ({"resources": {"memory": "lots"}}, "resources.memory", "memory is a number of bytes"),
        ({"resources": {"memory": "1m"}}, "resources.memory", "at least 6m"),
        ({"ports": [{"container": 8000}, {"container": 8000}]}, "config", "listed twice"),
        ({"files": [{"path": "relative.ini", "content": ""}]}, "files.0.path", "absolute path"),
        ({"health": {"interval": 5}}, "health", "either http or command"),
        ({"health": {"http": {"path": "/x';reboot'", "port": 80}}}, "health.http.path", "match"),
        ({"environment": {"BAD-NAME": "x"}}, "environment", "variable name 'BAD-NAME'"),
        ({"replicas": 2}, "replicas", "unknown key"),
        ({"type": "serverless"}, "type", "'stateless' or 'stateful'"),
    ],
)
def test_mistakes_are_named(data: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_deploy_config(data)
    assert caught.value.field == field
    assert message in caught.value.message
