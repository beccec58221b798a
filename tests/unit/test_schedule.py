from __future__ import annotations

from datetime import UTC, datetime

from pipelines.model import GitRef, Job, JobTask, Project, RefKind
from pipelines.schedule import next_steps
from pipelines.status import Status

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def job(job_id: int, stage_index: int, status: Status) -> Job:
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
