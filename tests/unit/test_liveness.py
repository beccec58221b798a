from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipelines.liveness import OFFLINE_AFTER, is_online, lost_batch, lost_jobs
from pipelines.model import Job, Runner
from pipelines.ports import TaskState
from pipelines.release import Release, ReleaseStatus
from pipelines.rollout import PauseMode
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


def test_no_runner_is_judged_until_the_server_has_listened_long_enough() -> None:
    # The server was down: the heartbeats of a live runner did not arrive.
    silent = {"r1": runner(LONG_AGO, 1)}
    just_started = NOW - timedelta(seconds=3)
    assert lost_jobs([running(1, LONG_AGO)], silent, NOW, heard_since=just_started) == []
    listened = NOW - OFFLINE_AFTER - timedelta(seconds=1)
    (lost,) = lost_jobs([running(1, LONG_AGO)], silent, NOW, heard_since=listened)
    assert lost.reason == "runner lost: no heartbeat from r1"


def test_an_unknown_runner_loses_the_job() -> None:
    assert [lost.job_id for lost in lost_jobs([running(1, LONG_AGO, "ghost")], {}, NOW)] == [1]


def in_flight(runner_name: str | None, claimed: datetime | None) -> Release:
    return Release(
        id=7,
        project_id=1,
        environment="staging",
        image="app:1",
        config_version=1,
        batches=[["a-1"], ["a-2"]],
        beta=False,
        pause_mode=PauseMode.NEVER,
        status=ReleaseStatus.RUNNING,
        next_batch=1,
        batch_in_flight=True,
        created_by="ops",
        created_at=LONG_AGO,
        handouts=2,
        batch_runner=runner_name,
        batch_claimed_at=claimed,
    )


def test_a_batch_whose_runner_went_silent_is_lost() -> None:
    release = in_flight("r1", LONG_AGO)
    reason = lost_batch(release, {"r1": runner(LONG_AGO, None)}, TaskState.STARTED, NOW)
    assert reason == "runner lost: no heartbeat from r1 during batch 2"
    assert release.batch_task_id == "shipway-release-7-batch-1-2"


def test_a_batch_whose_task_ended_without_a_report_is_lost_at_once() -> None:
    release = in_flight("r1", NOW)
    reason = lost_batch(release, {"r1": runner(NOW, None)}, TaskState.ENDED, NOW)
    assert reason == "runner lost: the task of batch 2 on r1 ended without a report"


def test_a_batch_is_not_lost_while_its_runner_beats_or_too_early_to_tell() -> None:
    beating = {"r1": runner(NOW, None)}
    assert lost_batch(in_flight("r1", LONG_AGO), beating, TaskState.STARTED, NOW) is None
    silent = {"r1": runner(LONG_AGO, None)}
    assert lost_batch(in_flight("r1", NOW), silent, TaskState.STARTED, NOW) is None
    # Not claimed yet: the queue's side (needs_requeue) decides, not the runner's.
    assert lost_batch(in_flight(None, None), silent, TaskState.MISSING, NOW) is None


def test_silence_while_the_server_could_not_hear_does_not_lose_a_job() -> None:
    # The database came back just now: the runner's refused heartbeats do not count.
    silent = {"r1": runner(LONG_AGO, 1)}
    back = NOW - timedelta(seconds=3)
    assert lost_jobs([running(1, LONG_AGO)], silent, NOW, heard_since=back) == []
    assert lost_batch(in_flight("r1", LONG_AGO), silent, TaskState.STARTED, NOW, back) is None
    # Heard again for longer than OFFLINE_AFTER and still silent: lost.
    long_back = NOW - OFFLINE_AFTER - timedelta(seconds=1)
    (lost,) = lost_jobs([running(1, LONG_AGO)], silent, NOW, heard_since=long_back)
    assert lost.reason == "runner lost: no heartbeat from r1"


def test_a_claimed_batch_whose_task_redis_forgot_is_judged_by_heartbeats() -> None:
    release = in_flight("r1", LONG_AGO)
    assert lost_batch(release, {"r1": runner(NOW, None)}, TaskState.MISSING, NOW) is None
    silent = {"r1": runner(LONG_AGO, None)}
    reason = lost_batch(release, silent, TaskState.MISSING, NOW)
    assert reason == "runner lost: no heartbeat from r1 during batch 2"
