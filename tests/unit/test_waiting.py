"""Why jobs and releases wait, and when waiting for a runner is stuck."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from pipelines.liveness import OFFLINE_AFTER
from pipelines.model import Runner
from pipelines.release import ReleaseStatus
from pipelines.waiting import (
    is_stuck,
    job_wait,
    release_wait,
    runner_wait,
    stamp,
    stuck_reason,
)
from tests.unit.test_liveness import in_flight

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
