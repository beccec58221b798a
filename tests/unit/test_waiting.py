"""Why jobs and releases wait, and when waiting for a runner is stuck."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from pipelines.liveness import OFFLINE_AFTER
from pipelines.model import Runner
from pipelines.release import ReleaseStatus
from pipelines.status import Status
from pipelines.waiting import (
    is_stuck,
    job_wait,
    release_wait,
    runner_wait,
    stamp,
    stuck_reason,
    upstream_wait,
)
from tests.unit.test_liveness import in_flight
from tests.unit.test_schedule import job

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def runner(name: str, queues: tuple[str, ...], last_seen: datetime, job: int | None) -> Runner:
    return Runner(name, queues, "host", 1, job, last_seen - HOUR, last_seen)


def test_no_runner_ever_served_the_queue() -> None:
    wait = runner_wait("build", [runner("r1", ("deploy",), NOW, None)], NOW)
    assert wait.reason == (
        "waiting for a runner serving queue build; no runner has ever served queue build"
    )


def test_the_last_runner_of_the_queue_went_offline() -> None:
    gone = NOW - timedelta(minutes=20, seconds=0.4)
    runners = [runner("r1", ("build",), gone, None), runner("r2", ("build",), gone - HOUR, 3)]
    wait = runner_wait("build", runners, NOW)
    assert (wait.online, wait.last_seen) == (0, gone)
    assert wait.reason == (
        "waiting for a runner serving queue build; none online since 2026-12-02T02:39:59Z"
    )


def test_runners_online_say_how_many_and_whether_all_are_busy() -> None:
    busy = [runner("r1", ("build",), NOW, 4), runner("r2", ("build", "x"), NOW, 5)]
    assert runner_wait("build", busy, NOW).reason.endswith("; 2 online, all busy")
    idle = [*busy, runner("r3", ("build",), NOW, None)]
    assert runner_wait("build", idle, NOW).reason.endswith("; 3 online")


def test_idle_runners_say_what_keeps_them_from_taking_the_job() -> None:
    away = "Docker Engine at unix:///var/run/docker.sock unreachable since 2026-12-02 02:59:00 UTC"
    runners = [
        replace(runner("r2", ("build",), NOW, None), problem=away),
        replace(runner("r1", ("build",), NOW, 4), problem="Redis at 127.0.0.1:6379 unreachable"),
        runner("r3", ("build",), NOW, None),
    ]
    assert runner_wait("build", runners, NOW).reason == (
        f"waiting for a runner serving queue build; 3 online; r2: {away}"
    )


def test_stuck_once_no_runner_was_online_for_the_stuck_time() -> None:
    never = runner_wait("build", [], NOW)
    assert is_stuck(never, NOW - HOUR, NOW, HOUR)
    assert not is_stuck(never, NOW - HOUR + timedelta(seconds=1), NOW, HOUR)
    # The clock starts when the last runner was heard of, if that is later.
    recent = runner_wait("build", [runner("r1", ("build",), NOW - 2 * OFFLINE_AFTER, None)], NOW)
    assert not is_stuck(recent, NOW - 5 * HOUR, NOW, HOUR)
    # A server that just got its database back gives runners time to be heard.
    assert not is_stuck(never, NOW - 5 * HOUR, NOW, HOUR, heard_since=NOW - timedelta(minutes=1))


def test_never_stuck_while_a_runner_of_the_queue_is_online() -> None:
    busy = runner_wait("build", [runner("r1", ("build",), NOW, 9)], NOW)
    assert not is_stuck(busy, NOW - 10 * HOUR, NOW, HOUR)


def test_texts() -> None:
    wait = runner_wait("build", [], NOW)
    assert stuck_reason(wait.reason, timedelta(seconds=5)).startswith(
        "stuck for 5s: waiting for a runner serving queue build;"
    )
    assert stamp(datetime(2026, 12, 2, 4, 40, tzinfo=timezone(timedelta(hours=2)))) == (
        "2026-12-02T02:40:00Z"
    )
    assert job_wait(wait, NOW).endswith(
        "; not queued yet: Redis unreachable since 2026-12-02T03:00:00Z"
    )


def test_release_waits() -> None:
    staging = runner_wait("staging", [], NOW)
    claimed = in_flight("r1", NOW)
    assert release_wait(claimed, None) == "batch 2 of 2 running on r1"
    unclaimed = in_flight(None, None)
    assert release_wait(unclaimed, staging) == (
        "batch 2 of 2 waiting for a runner serving queue staging; "
        "no runner has ever served queue staging"
    )
    between = replace(unclaimed, batch_in_flight=False)
    assert release_wait(between, None) == "batch 2 of 2 about to be handed out"
    assert release_wait(between, None, NOW) == (
        "batch 2 of 2 not queued yet: Redis unreachable since 2026-12-02T03:00:00Z"
    )
    paused = replace(between, status=ReleaseStatus.PAUSED)
    assert release_wait(paused, None) == "paused before batch 2: waits for a person to resume it"
    assert release_wait(replace(between, status=ReleaseStatus.SUCCESS), None) is None


def test_a_created_job_names_the_unfinished_jobs_of_earlier_stages() -> None:
    compile_job = replace(job(1, 0, Status.RUNNING), name="compile")
    unit = replace(job(2, 1, Status.PENDING), name="unit")
    lint = replace(job(3, 1, Status.SUCCESS), name="lint")
    package = replace(job(4, 2, Status.CREATED), name="package")
    jobs = [package, lint, unit, compile_job]  # named in pipeline order, whatever given
    assert upstream_wait(package, jobs) == "waiting for compile, unit"
    assert upstream_wait(unit, jobs) is None  # not created: its wait is its runner's


def test_a_created_job_with_needs_names_only_those() -> None:
    jobs = [
        job(1, 0, Status.RUNNING),
        job(2, 0, Status.SUCCESS),
        job(3, 1, Status.CREATED, needs=("job2",)),  # about to start
        job(4, 1, Status.CREATED, needs=("job1", "job2")),
        job(5, 1, Status.CREATED, needs=()),
    ]
    assert [upstream_wait(each, jobs) for each in jobs[2:]] == [None, "waiting for job1", None]


def test_a_manual_job_nobody_played_is_named_as_such() -> None:
    blocking = [job(1, 0, Status.MANUAL, when="manual"), job(2, 1, Status.CREATED)]
    assert upstream_wait(blocking[1], blocking) == "waiting for job1 (manual, not played yet)"
    optional = [
        job(1, 0, Status.MANUAL, when="manual", allow_failure=True),
        job(2, 1, Status.CREATED),
    ]
    assert upstream_wait(optional[1], optional) is None  # it blocks nothing
    named = [*optional[:1], job(3, 1, Status.CREATED, needs=("job1",))]
    assert upstream_wait(named[1], named) == "waiting for job1 (manual, not played yet)"


def test_only_the_latest_attempt_is_waited_for() -> None:
    retried = job(1, 0, Status.FAILED, retried=True)
    again = replace(job(2, 0, Status.PENDING, attempt=2), name="job1")
    later = job(3, 1, Status.CREATED)
    assert upstream_wait(later, [retried, again, later]) == "waiting for job1"


def test_many_jobs_waited_for_are_counted_past_the_first_few() -> None:
    jobs = [job(index, 0, Status.RUNNING) for index in range(1, 9)]
    last = job(9, 1, Status.CREATED)
    assert upstream_wait(last, [*jobs, last]) == (
        "waiting for job1, job2, job3, job4, job5 and 3 more"
    )
