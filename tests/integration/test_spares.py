"""Pre-started containers (``runners.spares``) on the real engine, driven the way a
task drives its executor: a spare serves one job and holds nothing of the job
before, the job's environment and secrets reach its script through stdin and never
the container's configuration, a spare of an image since rebuilt under its tag is
not taken, a taken spare is found under its job's name, cancel and timeout stop a
job in a spare, and the reaper keeps the live spare and removes the rest."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import docker
import pytest

from pipelines.model import JobTask
from runners.executor import DockerExecutor, ExecutionResult
from runners.job_containers import (
    LABEL_SPARE,
    SPARE_PREFIX,
    ContainerOwner,
    Listed,
    create_job_container,
    job_container_name,
    list_owned,
)
from tests.integration.test_executor import task, workspace
from tests.support.services import wait_until
from tests.support.test_run import unique_name

pytestmark = pytest.mark.docker


def job(image: str, job_id: int, *script: str, timeout: int = 30) -> JobTask:
    return replace(task(image, *script, timeout=timeout), job_id=job_id)


def run_job(
    executor: DockerExecutor,
    ran: JobTask,
    secrets: dict[str, str] | None = None,
    cancel: threading.Event | None = None,
    on_output: Any = None,
) -> tuple[ExecutionResult, str, dict[str, Any]]:
    """Run the job as a task does; also the inspection of its container, made where
    a task reports the result: before ``close`` removes the container."""
    output: list[bytes] = []

    def collected(chunk: bytes) -> None:
        output.append(chunk)
        if on_output is not None:
            on_output(b"".join(output))

    tree = workspace({"README": "read me\n"})
    with executor:
        result = executor.run(
            ran, lambda: tree, collected, cancel or threading.Event(), (), secrets
        )
        seen: dict[str, Any] = executor.client.api.inspect_container(
            job_container_name(executor.owner, ran.job_id)
        )
    return result, b"".join(output).decode(), seen


def spares_of(client: docker.DockerClient, owner: ContainerOwner) -> list[Listed]:
    return [container for container in list_owned(client, owner) if container.spare_of]


def test_a_spare_serves_one_job_and_holds_nothing_of_the_job_before(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner
) -> None:
    executor = DockerExecutor(docker_client, owner, spare_images=1)
    first, log, first_seen = run_job(
        executor, job(busybox, 1, "echo from-job-1 > /tmp/left", "touch left-in-workspace")
    )
    assert first.succeeded, log
    # The first job of an image on a runner has no spare: a container of its own.
    assert LABEL_SPARE not in first_seen["Config"]["Labels"]
    (spare,) = spares_of(docker_client, owner)
    assert spare.running
    assert spare.spare_of == busybox
    assert spare.id != first_seen["Id"]

    second, log, second_seen = run_job(
        executor,
        job(busybox, 2, "test ! -e /tmp/left", "test ! -e left-in-workspace", "cat README"),
    )
    assert second.succeeded, log
    assert "read me" in log
    assert second_seen["Id"] == spare.id  # taken,
    assert second_seen["Name"] == f"/{job_container_name(owner, 2)}"  # renamed after its job
    (next_spare,) = spares_of(docker_client, owner)
    assert next_spare.id not in (spare.id, first_seen["Id"])  # never given back
    # Nothing of either job is left: only the spare for the next one.
    assert [container.id for container in list_owned(docker_client, owner)] == [next_spare.id]


def test_the_environment_and_secrets_reach_a_spare_through_stdin_only(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner
) -> None:
    executor = DockerExecutor(docker_client, owner, spare_images=1)
    run_job(executor, job(busybox, 1, "true"))
    (spare,) = spares_of(docker_client, owner)
    result, log, seen = run_job(
        executor,
        job(
            busybox,
            2,
            'echo "$GREETING from $SHIPWAY_JOB_NAME, job $SHIPWAY_JOB_ID"',
            'echo "on $SHIPWAY_COMMIT_BRANCH"',
            'echo "token of $(printf %s "$DEPLOY_TOKEN" | wc -c) characters"',
            "test ! -e /shipway/environment.sh",
        ),
        secrets={"DEPLOY_TOKEN": "s3cret-value"},
    )
    assert result.succeeded, log
    assert seen["Id"] == spare.id
    assert "hi there from unit, job 2\n" in log
    assert "on main\n" in log
    assert "token of 12 characters\n" in log
    configured = "\n".join(seen["Config"]["Env"] or [])
    for value in ("hi there", "s3cret-value", "SHIPWAY_JOB_ID"):
        assert value not in configured


def test_a_spare_of_an_image_rebuilt_under_its_tag_is_not_taken(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner
) -> None:
    repository = unique_name("-spare-image-")
    tag = f"{repository}:1"
    docker_client.images.get(busybox).tag(repository, "1")
    executor = DockerExecutor(docker_client, owner, spare_images=1)
    try:
        run_job(executor, job(tag, 1, "true"))
        (old,) = spares_of(docker_client, owner)
        base = docker_client.containers.create(busybox, ["true"], labels=owner.labels())
        try:
            rebuilt = base.commit(repository, "1", changes=["LABEL io.shipway.test.rebuilt=1"])
        finally:
            base.remove()
        assert rebuilt.id != old.image_id

        result, log, seen = run_job(executor, job(tag, 2, "true"))
        assert result.succeeded, log
        assert seen["Id"] != old.id
        assert seen["Image"] == rebuilt.id
        assert old.id not in [container.id for container in list_owned(docker_client, owner)]
        (new,) = spares_of(docker_client, owner)
        assert new.image_id == rebuilt.id
    finally:
        DockerExecutor(docker_client, owner).reap()
        docker_client.images.remove(tag)


def test_a_taken_spare_is_found_under_its_jobs_name(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner
) -> None:
    """As RQ's handler does when a job's process died: it knows the job, not the
    container."""
    executor = DockerExecutor(docker_client, owner, spare_images=1)
    run_job(executor, job(busybox, 1, "true"))
    (spare,) = spares_of(docker_client, owner)
    output: list[bytes] = []
    results: list[ExecutionResult] = []
    tree = workspace({})
    held = job(busybox, 2, "echo started", "sleep 60")
    worker = threading.Thread(
        target=lambda: results.append(
            executor.run(held, lambda: tree, output.append, threading.Event())
        )
    )
    worker.start()
    try:
        wait_until(lambda: b"started" in b"".join(output), 30, "the job starting")
        (taken,) = list_owned(docker_client, owner, job_container_name(owner, 2))
        assert taken.id == spare.id
        assert DockerExecutor(docker_client, owner).reap(2) == 1
    finally:
        worker.join(60)
        executor.close()
    assert not results[0].succeeded
    assert list_owned(docker_client, owner, job_container_name(owner, 2)) == []


@pytest.mark.parametrize("stop", ["cancel", "timeout"])
def test_a_job_in_a_spare_is_canceled_or_timed_out(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner, stop: str
) -> None:
    executor = DockerExecutor(docker_client, owner, spare_images=1)
    run_job(executor, job(busybox, 1, "true"))
    (spare,) = spares_of(docker_client, owner)
    cancel = threading.Event()

    def cancel_once_started(output: bytes) -> None:
        if stop == "cancel" and b"started\n" in output:
            cancel.set()

    held = job(busybox, 2, "echo started", "sleep 60", timeout=1 if stop == "timeout" else 60)
    result, _, seen = run_job(executor, held, cancel=cancel, on_output=cancel_once_started)
    assert seen["Id"] == spare.id
    assert result.failure_reason == ("canceled" if stop == "cancel" else "timed out after 1s")
    assert seen["State"]["Running"] is False  # killed, before the result came back
    assert job_container_name(owner, 2) not in [c.name for c in list_owned(docker_client, owner)]


def test_the_reaper_keeps_the_live_spare_and_removes_what_no_job_will_take(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner
) -> None:
    executor = DockerExecutor(docker_client, owner, spare_images=2)
    run_job(executor, job(busybox, 1, "true"))
    (live,) = spares_of(docker_client, owner)
    # A spare that no longer runs (its engine restarted, say), a container a job left
    # when its engine went away, and a spare of an image beyond the images kept.
    spare_labels = {**owner.labels(), LABEL_SPARE: busybox}
    stopped = create_job_container(
        docker_client, busybox, f"{SPARE_PREFIX}{owner.key}-stopped", spare_labels
    )
    left = create_job_container(
        docker_client, busybox, job_container_name(owner, 99), owner.labels()
    )
    result, _, seen = run_job(executor, job(busybox, 2, "true"))
    assert result.succeeded
    assert seen["Id"] == live.id
    remaining = [container.id for container in list_owned(docker_client, owner)]
    assert stopped.id not in remaining
    assert left.id not in remaining
    assert len(spares_of(docker_client, owner)) == 1  # the next job's
    # As the runner stops: its spares go, and only they.
    kept = create_job_container(
        docker_client, busybox, job_container_name(owner, 98), owner.labels()
    )
    assert DockerExecutor(docker_client, owner).remove_spares() == 1
    assert [container.id for container in list_owned(docker_client, owner)] == [kept.id]
    # As a runner of that name starts: everything of an earlier run goes.
    assert DockerExecutor(docker_client, owner).reap() == 1
    assert list_owned(docker_client, owner) == []


def test_no_spare_is_kept_when_the_runner_keeps_none(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner
) -> None:
    executor = DockerExecutor(docker_client, owner, spare_images=0)
    result, _, _ = run_job(executor, job(busybox, 1, "true"))
    assert result.succeeded
    assert list_owned(docker_client, owner) == []


def test_a_job_whose_runner_died_leaves_no_spare(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner
) -> None:
    """A job's process outlives a runner killed outright (kill -9): nobody would take
    or remove a spare it made then."""
    alive = True
    executor = DockerExecutor(docker_client, owner, spare_images=1, runner_alive=lambda: alive)
    run_job(executor, job(busybox, 1, "true"))
    (spare,) = spares_of(docker_client, owner)
    alive = False
    result, _, seen = run_job(executor, job(busybox, 2, "true"))
    assert result.succeeded
    assert seen["Id"] == spare.id
    assert list_owned(docker_client, owner) == []


def test_a_spare_made_as_the_runner_died_is_removed(
    docker_client: docker.DockerClient, busybox: str, owner: ContainerOwner
) -> None:
    answers = iter([True, False])  # alive when the spare is started, dead once it runs
    executor = DockerExecutor(
        docker_client, owner, spare_images=1, runner_alive=lambda: next(answers)
    )
    result, _, _ = run_job(executor, job(busybox, 1, "true"))
    assert result.succeeded
    assert list_owned(docker_client, owner) == []
