"""The server's record of its dependencies' outages: logged once down, once back."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from server.dependencies import DependencyBoard

START = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def test_an_outage_is_logged_once_down_and_once_back(caplog: pytest.LogCaptureFixture) -> None:
    clock = [START]
    board = DependencyBoard(lambda: clock[0])
    caplog.set_level(logging.INFO, "server.dependencies")
    assert board.report("redis", None)
    assert board.up_since("redis") == START
    for second in range(1, 61):
        clock[0] = START + timedelta(seconds=second)
        assert not board.report("redis", f"refused ({second})")
    outage = board.outages()["redis"]
    assert (outage.since, outage.error) == (START + timedelta(seconds=1), "refused (60)")
    assert board.down_since("redis") == outage.since
    clock[0] = START + timedelta(seconds=61)
    assert board.report("redis", None)
    assert board.outages() == {}
    assert board.up_since("redis") == clock[0]
    assert [record.getMessage() for record in caplog.records] == [
        "redis unreachable: refused (1); waiting for it",
        "redis reachable again after 60.0s down",
    ]
