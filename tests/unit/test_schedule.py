from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pipelines.model import GitRef, Job, JobTask, Project, RefKind
from pipelines.schedule import next_steps
from pipelines.status import Status

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def job(job_id: int, stage_index: int, status: Status, **declared: Any) -> Job:
    return Job(
        id=job_id,
        pipeline_id=1,
        name=f"job{job_id}",
        stage=f"stage{stage_index}",
        stage_index=stage_index,
        image="img",
        script=("true",),
        variables={},
        timeout_seconds=60,
        queue="build",
        status=status,
        created_at=NOW,
        **declared,
    )


def test_the_first_stage_starts_first() -> None:
    decision = next_steps(
        [job(1, 0, Status.CREATED), job(2, 0, Status.CREATED), job(3, 1, Status.CREATED)]
    )
    assert (decision.start, decision.skip) == ([1, 2], [])


def test_a_stage_waits_for_the_one_before() -> None:
    decision = next_steps(
        [job(1, 0, Status.SUCCESS), job(2, 0, Status.RUNNING), job(3, 1, Status.CREATED)]
    )
    assert (decision.start, decision.skip) == ([], [])


def test_the_next_stage_starts_after_success() -> None:
    decision = next_steps(
        [job(1, 0, Status.SUCCESS), job(3, 1, Status.CREATED), job(4, 2, Status.CREATED)]
    )
    assert (decision.start, decision.skip) == ([3], [])


def test_a_failure_skips_every_later_stage() -> None:
    decision = next_steps(
        [
            job(1, 0, Status.FAILED),
            job(2, 0, Status.SUCCESS),
            job(3, 1, Status.CREATED),
            job(4, 2, Status.CREATED),
        ]
    )
    assert (decision.start, decision.skip) == ([], [3, 4])


def test_nothing_to_do_when_all_finished() -> None:
    decision = next_steps([job(1, 0, Status.SUCCESS), job(2, 1, Status.SUCCESS)])
    assert (decision.start, decision.skip) == ([], [])


def test_project_branch_rules() -> None:
    project = Project(1, "app", "/repo", "g/app", ("main", "release/*"), (), NOW)
    assert project.builds(GitRef(RefKind.BRANCH, "main"))
    assert project.builds(GitRef(RefKind.BRANCH, "release/1.2"))
    assert not project.builds(GitRef(RefKind.BRANCH, "feature/x"))
    assert not project.builds(GitRef(RefKind.TAG, "v1"))
    assert project.builds(GitRef(RefKind.COMMIT, "abc1234"))


def test_webhook_text_reaches_jobs_only_as_environment_values() -> None:
    branch = 'zzz";echo${IFS}"hello";#'
    task = JobTask(
        7, 3, "app", "/repo", "f" * 40, GitRef(RefKind.BRANCH, branch), "unit", "img", ("true",)
    )
    assert task.environment()["SHIPWAY_COMMIT_BRANCH"] == branch
    assert JobTask.from_json(task.to_json()) == task


def test_needs_start_a_job_before_its_stage_is_done() -> None:
    jobs = [
        job(1, 0, Status.SUCCESS),
        job(2, 0, Status.RUNNING),
        job(3, 1, Status.CREATED, needs=("job1",)),
        job(4, 1, Status.CREATED),
        job(5, 2, Status.CREATED, needs=()),
    ]
    assert next_steps(jobs).start == [3, 5]


def test_a_failed_need_skips_its_dependents_in_one_pass() -> None:
    jobs = [
        job(1, 0, Status.FAILED),
        job(2, 1, Status.CREATED, needs=("job1",)),
        job(3, 2, Status.CREATED, needs=("job2",)),
        job(4, 2, Status.CREATED, needs=("job2",), when="always"),
    ]
    decision = next_steps(jobs)
    assert (decision.start, decision.skip) == ([4], [2, 3])


def test_when_on_failure_and_always() -> None:
    failed = [
        job(1, 0, Status.FAILED),
        job(2, 1, Status.CREATED, when="on_failure"),
        job(3, 1, Status.CREATED, when="always"),
        job(4, 1, Status.CREATED),
    ]
    decision = next_steps(failed)
    assert (decision.start, decision.skip) == ([2, 3], [4])
    passed = [job(1, 0, Status.SUCCESS), job(2, 1, Status.CREATED, when="on_failure")]
    assert next_steps(passed).skip == [2]


def test_an_allowed_failure_lets_the_next_stage_run() -> None:
    jobs = [job(1, 0, Status.FAILED, allow_failure=True), job(2, 1, Status.CREATED)]
    assert next_steps(jobs).start == [2]


def test_a_manual_job_waits_to_be_played() -> None:
    waiting = [job(1, 0, Status.SUCCESS), job(2, 1, Status.CREATED, when="manual")]
    assert next_steps(waiting).manual == [2]
    played = [job(1, 0, Status.SUCCESS), job(2, 1, Status.CREATED, when="manual", played_by="x")]
    assert next_steps(played).start == [2]


def test_an_optional_manual_job_blocks_only_what_needs_it() -> None:
    jobs = [
        job(1, 0, Status.MANUAL, when="manual", allow_failure=True),
        job(2, 1, Status.CREATED),
        job(3, 1, Status.CREATED, needs=("job1",)),
    ]
    assert next_steps(jobs).start == [2]
    blocking = [job(1, 0, Status.MANUAL, when="manual"), job(2, 1, Status.CREATED)]
    assert next_steps(blocking).start == []


def test_one_job_per_environment_at_a_time() -> None:
    jobs = [
        job(1, 0, Status.CREATED, environment="staging"),
        job(2, 0, Status.CREATED, environment="staging"),
        job(3, 0, Status.CREATED, environment="production"),
    ]
    assert next_steps(jobs).start == [1, 3]
    assert next_steps(jobs, busy_environments={"staging"}).start == [3]
    running = [job(1, 0, Status.RUNNING, environment="staging"), *jobs[1:]]
    assert next_steps(running).start == [3]


def test_only_the_latest_attempt_counts() -> None:
    second_attempt = replace(job(3, 0, Status.SUCCESS, attempt=2), name="job1")
    jobs = [job(1, 0, Status.FAILED, retried=True), second_attempt, job(2, 1, Status.CREATED)]
    assert next_steps(jobs).start == [2]
