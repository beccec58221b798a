from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipelines.liveness import OFFLINE_AFTER, is_online, lost_jobs
from pipelines.model import Job, Runner
from pipelines.status import Status
from tests.unit.test_schedule import job

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
LONG_AGO = NOW - OFFLINE_AFTER - timedelta(seconds=30)


def runner(last_seen: datetime, current_job_id: int | None) -> Runner:
    return Runner("r1", ("build",), "host", 1, current_job_id, LONG_AGO, last_seen)


def running(job_id: int, started: datetime, runner_name: str = "r1") -> Job:
    value = job(job_id, 0, Status.RUNNING)
    value.started_at = started
    value.runner = runner_name
    return value


def test_a_runner_is_online_while_it_beats() -> None:
    assert is_online(runner(NOW - timedelta(seconds=5), None), NOW)
    assert not is_online(runner(NOW - OFFLINE_AFTER - timedelta(seconds=1), None), NOW)


def test_a_silent_runner_loses_its_job() -> None:
    (lost,) = lost_jobs([running(1, LONG_AGO)], {"r1": runner(LONG_AGO, 1)}, NOW)
    assert (lost.job_id, lost.reason) == (1, "runner lost: no heartbeat from r1")


def test_a_live_runner_that_no_longer_names_the_job_loses_it() -> None:
    (lost,) = lost_jobs([running(1, LONG_AGO)], {"r1": runner(NOW, None)}, NOW)
    assert lost.reason == "runner lost: r1 no longer executes the job"


def test_a_job_its_runner_names_is_fine() -> None:
    assert lost_jobs([running(1, LONG_AGO)], {"r1": runner(NOW, 1)}, NOW) == []


def test_a_job_that_just_started_is_given_time() -> None:
    assert lost_jobs([running(1, NOW - timedelta(seconds=2))], {}, NOW) == []


def test_an_unknown_runner_loses_the_job() -> None:
    assert [lost.job_id for lost in lost_jobs([running(1, LONG_AGO, "ghost")], {}, NOW)] == [1]
