"""Jobs in real containers on the Docker Engine."""

from __future__ import annotations

import io
import tarfile
import threading
import time

import docker
import pytest
from docker.models.containers import Container

from pipelines.model import GitRef, JobTask, RefKind
from pipelines.status import FailureKind
from runners.executor import DockerExecutor, ExecutionResult
from runners.job_containers import LABEL_RUNNER, ContainerOwner

pytestmark = pytest.mark.docker


def workspace(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"workspace/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def task(image: str, *script: str, timeout: int = 30, branch: str = "main") -> JobTask:
    return JobTask(
        job_id=42,
        pipeline_id=7,
        project="app",
        clone_url="/unused",
        sha="c" * 40,
        ref=GitRef(RefKind.BRANCH, branch),
        name="unit",
        image=image,
        script=script,
        variables={"GREETING": "hi there"},
        timeout_seconds=timeout,
    )


def run(
    executor: DockerExecutor,
    job: JobTask,
    cancel: threading.Event | None = None,
    collect_globs: tuple[str, ...] | list[str] = (),
) -> tuple[ExecutionResult, str]:
    """Run the job as a task does, closing the executor after (where a task reports
    the result first)."""
    output: list[bytes] = []
    tree = workspace({"README": "read me\n"})
    with executor:
        result = executor.run(
            job, lambda: tree, output.append, cancel or threading.Event(), collect_globs
        )
    return result, b"".join(output).decode()


def leftovers(client: docker.DockerClient, runner: str) -> list[Container]:
    return list(client.containers.list(all=True, filters={"label": f"{LABEL_RUNNER}={runner}"}))


def test_a_script_runs_in_the_workspace_with_its_environment(
    docker_client: docker.DockerClient, busybox: str, runner_name: str, owner: ContainerOwner
) -> None:
    executor = DockerExecutor(docker_client, owner)
    result, log = run(
        executor, task(busybox, "cat README", 'echo "$GREETING from $SHIPWAY_JOB_NAME"', "pwd")
    )
    assert result.succeeded
    assert log.splitlines() == [
        "$ cat README",
        "read me",
        '$ echo "$GREETING from $SHIPWAY_JOB_NAME"',
        "hi there from unit",
        "$ pwd",
        "/workspace",
    ]
    assert leftovers(docker_client, runner_name) == []


def test_the_first_failing_command_ends_the_job_with_its_exit_code(
    docker_client: docker.DockerClient, busybox: str, runner_name: str, owner: ContainerOwner
) -> None:
    executor = DockerExecutor(docker_client, owner)
    result, log = run(executor, task(busybox, "echo before", "echo oops >&2; exit 3", "echo never"))
    assert result.exit_code == 3
    assert not result.succeeded
    assert result.failure is FailureKind.SCRIPT_FAILURE
    assert "oops" in log
    assert "never" not in log.replace("$ echo never", "")
    assert leftovers(docker_client, runner_name) == []


def test_a_job_over_its_timeout_is_killed(
    docker_client: docker.DockerClient, busybox: str, runner_name: str, owner: ContainerOwner
) -> None:
    executor = DockerExecutor(docker_client, owner)
    started = time.monotonic()
    result, _ = run(executor, task(busybox, "sleep 60", timeout=1))
    assert time.monotonic() - started < 45  # killed, not waited for: the script sleeps 60 s
    assert result.failure_reason == "timed out after 1s"
    assert result.failure is FailureKind.TIMEOUT
    assert leftovers(docker_client, runner_name) == []


def test_a_canceled_job_stops(
    docker_client: docker.DockerClient, busybox: str, runner_name: str, owner: ContainerOwner
) -> None:
    executor = DockerExecutor(docker_client, owner)
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    result, _ = run(executor, task(busybox, "sleep 60"), cancel)
    assert result.failure_reason == "canceled"
    assert leftovers(docker_client, runner_name) == []


def test_a_missing_image_fails_with_a_reason(
    docker_client: docker.DockerClient, runner_name: str, owner: ContainerOwner
) -> None:
    result, _ = run(DockerExecutor(docker_client, owner), task("shipway/absent:1", "true"))
    assert result.exit_code is None
    assert "shipway/absent:1 is not on this runner" in (result.failure_reason or "")
    assert result.failure is FailureKind.SYSTEM_FAILURE


def test_branch_names_are_never_executed(
    docker_client: docker.DockerClient, busybox: str, runner_name: str, owner: ContainerOwner
) -> None:
    branch = 'zzz";echo${IFS}"hello";#'
    result, log = run(
        DockerExecutor(docker_client, owner),
        task(busybox, 'echo "branch=$SHIPWAY_COMMIT_BRANCH"', branch=branch),
    )
    assert result.succeeded
    assert f"branch={branch}\n" in log
    assert "hello\n" not in log.splitlines(keepends=True)


def test_reap_removes_what_a_dead_runner_left_and_nothing_of_another_installation(
    docker_client: docker.DockerClient, busybox: str, runner_name: str, owner: ContainerOwner
) -> None:
    docker_client.containers.create(busybox, ["sleep", "60"], labels=owner.labels())
    # Another installation on the same engine whose runner has the same name.
    stranger = ContainerOwner(runner_name, f"{owner.installation}-other")
    theirs = docker_client.containers.create(busybox, ["sleep", "60"], labels=stranger.labels())
    try:
        assert DockerExecutor(docker_client, owner).reap() == 1
        assert [c.id for c in leftovers(docker_client, runner_name)] == [theirs.id]
    finally:
        theirs.remove(force=True)


@pytest.mark.parametrize(
    ("globs", "expected"),
    [
        (["reports/*.xml"], ["reports/a.xml", "reports/deep/b.xml"]),
        (["reports/deep/*.xml", "top.xml"], ["reports/deep/b.xml", "top.xml"]),
        (["*.xml"], ["reports/a.xml", "reports/deep/b.xml", "top.xml"]),
        (["absent/*.xml"], []),
    ],
)
def test_reports_are_collected_before_the_container_goes(
    docker_client: docker.DockerClient,
    busybox: str,
    runner_name: str,
    owner: ContainerOwner,
    globs: list[str],
    expected: list[str],
) -> None:
    executor = DockerExecutor(docker_client, owner)
    job = task(
        busybox,
        "mkdir -p reports/deep",
        "echo '<a/>' > reports/a.xml; echo '<b/>' > reports/deep/b.xml",
        "echo '<t/>' > top.xml; echo no > reports/a.txt; exit 1",
    )
    result, _ = run(executor, job, collect_globs=globs)
    assert result.exit_code == 1  # reports are collected from failed jobs too
    assert sorted(result.reports) == expected
    if "top.xml" in expected:
        assert result.reports["top.xml"] == b"<t/>\n"
    assert leftovers(docker_client, runner_name) == []


def test_the_whole_output_of_both_streams_arrives_before_the_result(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner
) -> None:
    """The result comes from the lines the container prints once the script ended
    (``runners.job_files.UNPACK_AND_RUN``), not from the engine's exit: what the
    script printed last on each stream, even unfinished lines, is in the log, and a
    line that looks like those lines is only output."""
    result, log = run(
        DockerExecutor(docker_client, owner),
        task(
            busybox,
            "seq 1 2000",
            "seq 1 2000 >&2",
            "echo 0123456789abcdef0123456789abcdef out 0",
            "printf 'no newline on stdout'",
            "printf 'no newline on stderr' >&2",
            "exit 5",
        ),
    )
    assert result.exit_code == 5
    assert result.failure is FailureKind.SCRIPT_FAILURE
    assert log.count("\n2000\n") == 2
    assert "0123456789abcdef0123456789abcdef out 0\n" in log
    assert "no newline on stdout" in log
    assert "no newline on stderr" in log
