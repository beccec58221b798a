"""The functions RQ workers run. One task executes one Shipway job."""

from __future__ import annotations

import logging
import os
import threading
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import docker
import docker.errors

from pipelines.errors import Conflict, ExternalError, InvalidInput, ShipwayError
from pipelines.model import JobTask
from pipelines.release import InstanceOutcome
from pipelines.status import FailureKind
from runners.caches import JobCaches
from runners.deploy.docker_engine import DockerEngineDeployer
from runners.discovery.traffic import EtcdTraffic, bridge_gateway
from runners.engine import engine_client, ping_engine
from runners.executor import DockerExecutor, ExecutionResult
from runners.git_mirror import GitMirrors
from runners.images import ImageBuilder
from runners.reporting import LogShipper, ServerClient
from runners.scan_job import run_scan
from runners.settings import RunnerSettings
from runners.tool_images import ensure_registrar

log = logging.getLogger(__name__)


def run_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Execute one job and report it; RQ's record of it keeps the summary."""
    settings = RunnerSettings.from_env()
    task = JobTask.from_json(payload)
    worker = os.getppid()  # the runner's worker, which forked this process
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The source is fetched from the start: while the engine is asked, the job
        # claimed and its container taken (or created and started).
        source = None
        if task.kind != "image":
            mirrors = GitMirrors(settings.cache_dir / "mirrors")
            source = pool.submit(mirrors.archive, task.clone_url, task.sha, "workspace/")
        try:
            # Asked before anything is claimed: unclaimed, the job (or batch) waits and
            # the server queues it again (see ``runners.engine``).
            client = engine_client()
        except ExternalError as exc:
            log.warning("job %s left pending: %s", task.job_id, exc)
            return {"job_id": task.job_id, "executed": False, "reason": str(exc)}
        try:
            with settings.server_client() as server:
                secrets = server.start(task.job_id, settings.name)
                if secrets is None:
                    return {"job_id": task.job_id, "executed": False, "reason": "no longer pending"}
                result = _run_and_report(
                    settings, task, secrets, server, client, source, lambda: os.getppid() == worker
                )
        finally:
            client.close()
    return {
        "job_id": task.job_id,
        "executed": True,
        "exit_code": result.exit_code,
        "failure_reason": result.failure_reason,
    }


def _run_and_report(
    settings: RunnerSettings,
    task: JobTask,
    secrets: dict[str, str],
    server: ServerClient,
    client: docker.DockerClient,
    source: Future[bytes] | None,
    runner_alive: Callable[[], bool],
) -> ExecutionResult:
    """Run the claimed job, report its log and result, then let its container go."""
    canceled = threading.Event()
    shipper = LogShipper(server, task.job_id, canceled, secrets=secrets.values())
    # Secrets reach the job's script as environment variables, by way of its
    # container's stdin (runners.job_files); the task in the queue never holds them,
    # and neither does the container's configuration.
    scripted = source is not None and task.kind not in ("image", "scan")
    caches = (
        JobCaches.of_task(settings.cache_store(), task, shipper.write_text) if scripted else None
    )
    after_script = caches.save if caches is not None else None
    with DockerExecutor(
        client, settings.owner, after_script, settings.spare_images, runner_alive
    ) as executor:
        # Closed once the result is reported: the container is removed, and the next
        # job's spare started, after the report, since the pusher waits for the result.
        try:
            if source is None:  # an image job, which reads the commit's folders itself
                result = _build_image(settings, task, shipper, canceled, server, client)
            elif task.kind == "scan":
                result = _scan(settings, task, secrets, shipper, canceled, server, executor, source)
            else:
                result = _execute(
                    settings, task, secrets, shipper, canceled, executor, source, caches
                )
                result = _upload_reports(task, result, shipper, server)
            _say_result(shipper, result)
        finally:
            shipper.close()
        failure = result.failure.value if result.failure is not None else None
        server.finish(
            task.job_id, result.succeeded, result.exit_code, result.failure_reason, failure
        )
    return result


def _engine_away() -> str | None:
    """Why the Docker Engine cannot take a release batch now, or None. Asked before a
    batch is claimed: unclaimed, it waits and the server hands it out again, and the
    worker takes no task until the engine answers (see ``runners.engine``)."""
    try:
        ping_engine()
    except ExternalError as exc:
        return str(exc)
    return None


def _execute(
    settings: RunnerSettings,
    task: JobTask,
    secrets: dict[str, str],
    shipper: LogShipper,
    canceled: threading.Event,
    executor: DockerExecutor,
    source: Future[bytes],
    caches: JobCaches | None,
) -> ExecutionResult:
    say = shipper.write_text
    say(f"Running on {settings.name}\n")
    say(f"Fetching {task.sha[:12]} of {task.project}; executing in {task.image}\n")

    def workspace() -> bytes:
        tree = source.result()
        return caches.restore(tree) if caches is not None else tree

    try:
        result = executor.run(task, workspace, shipper.write, canceled, junit_globs(task), secrets)
    except (ShipwayError, docker.errors.DockerException) as exc:
        return ExecutionResult(None, str(exc))
    # Said before the report, which waits for a server that may be away: its container
    # stays until the report is done.
    ended = f"exit code {result.exit_code}" if result.exit_code is not None else "no exit code"
    log.info("job %s: its script ended (%s) and all its output was read", task.job_id, ended)
    return result


def _build_image(
    settings: RunnerSettings,
    task: JobTask,
    shipper: LogShipper,
    canceled: threading.Event,
    server: ServerClient,
    client: docker.DockerClient,
) -> ExecutionResult:
    shipper.write_text(f"Running on {settings.name}\n")
    shipper.write_text(f"Building the image of {task.project} at {task.sha[:12]}\n")
    mirrors = GitMirrors(settings.cache_dir / "mirrors")
    try:
        builder = ImageBuilder(
            client,
            settings.registry,
            shipper.write_text,
            canceled,
            settings.outage_patience_seconds,
        )
        result, image = builder.run(
            task, lambda folder: mirrors.archive(task.clone_url, task.sha, "", folder)
        )
        if image is not None:
            server.report_image(task.job_id, image.to_json())
    except (ShipwayError, docker.errors.DockerException) as exc:
        return ExecutionResult(None, str(exc))
    return result


def _scan(
    settings: RunnerSettings,
    task: JobTask,
    secrets: dict[str, str],
    shipper: LogShipper,
    canceled: threading.Event,
    server: ServerClient,
    executor: DockerExecutor,
    source: Future[bytes],
) -> ExecutionResult:
    shipper.write_text(f"Running on {settings.name}\n")
    try:
        workspace = source.result()
        return run_scan(executor, task, secrets, workspace, shipper, canceled, server)
    except (ShipwayError, docker.errors.DockerException) as exc:
        return ExecutionResult(None, str(exc))


def junit_globs(task: JobTask) -> list[str]:
    return list((task.settings or {}).get("reports", {}).get("junit", []))


def _upload_reports(
    task: JobTask, result: ExecutionResult, shipper: LogShipper, server: ServerClient
) -> ExecutionResult:
    """Send the test reports the job wrote; a report that is not JUnit XML fails the
    job, since its tests cannot be told to have passed."""
    globs = junit_globs(task)
    if globs and not result.reports:
        shipper.write_text(f"WARNING: no test report matches {', '.join(globs)}\n")
    for name, content in sorted(result.reports.items()):
        try:
            counts = server.upload_junit(task.job_id, name, content)
        except (ExternalError, Conflict) as exc:
            shipper.write_text(f"ERROR: test report {name}: {exc}\n")
            if result.succeeded:
                result = ExecutionResult(
                    result.exit_code,
                    f"test report {name} was refused: {exc}",
                    FailureKind.SCRIPT_FAILURE,
                )
            continue
        broken = int(counts["failed"]) + int(counts["errors"])
        shipper.write_text(
            f"Test report {name}: {counts['total']} tests, {counts['passed']} passed, "
            f"{broken} failed, {counts['skipped']} skipped\n"
        )
        if broken and result.succeeded:
            reason = f"{broken} tests failed (report {name})"
            result = ExecutionResult(result.exit_code, reason, FailureKind.TEST_FAILURE)
    return result


def _say_result(shipper: LogShipper, result: ExecutionResult) -> None:
    if result.succeeded:
        shipper.write_text("Job succeeded\n")
    elif result.failure_reason is not None:
        shipper.write_text(f"ERROR: Job failed: {result.failure_reason}\n")
    else:
        shipper.write_text(f"ERROR: Job failed: exit code {result.exit_code}\n")


def run_release_batch(payload: dict[str, Any]) -> dict[str, Any]:
    """Replace the instances of one batch of a release, one after the other, and
    report each step; stop at the first instance that fails."""
    settings = RunnerSettings.from_env()
    release_id, batch = int(payload["release_id"]), int(payload["batch"])
    failure: str | None = None
    away = _engine_away()
    if away is not None:
        log.warning("release %s: batch %s left to hand out again: %s", release_id, batch, away)
        return {"release_id": release_id, "batch": batch, "executed": False, "reason": away}
    with settings.server_client() as server:
        handout = int(payload.get("handout", 0))
        if not server.claim_batch(release_id, batch, handout, settings.name):
            return {"release_id": release_id, "batch": batch, "executed": False}
        client = docker.from_env()
        try:
            deployer = _deployer(settings, client, payload.get("discovery"))
            deployer.prepare(
                payload["project"], payload["environment"], payload["compose"], payload["files"]
            )
            for name in payload["instances"]:

                def on_step(outcome: InstanceOutcome, name: str = name) -> None:
                    server.report_instance(release_id, name, "deploying", "\n".join(outcome.log))

                try:
                    outcome = deployer.replace(
                        payload["project"],
                        payload["environment"],
                        name,
                        payload["config"],
                        on_step,
                    )
                except (RuntimeError, ShipwayError, docker.errors.DockerException) as exc:
                    outcome = InstanceOutcome(
                        name, healthy=False, log=[f"FAILED: {exc}"], reason=f"{name}: {exc}"
                    )
                status = "healthy" if outcome.healthy else "failed"
                server.report_instance(release_id, name, status, "\n".join(outcome.log))
                if not outcome.healthy:
                    failure = outcome.reason or f"{name} failed"
                    break
        except (ShipwayError, docker.errors.DockerException) as exc:
            failure = str(exc)
        finally:
            client.close()
        server.batch_done(release_id, batch, failure)
    return {"release_id": release_id, "batch": batch, "failure": failure}


def _deployer(
    settings: RunnerSettings, client: docker.DockerClient, discovery: dict[str, Any] | None
) -> DockerEngineDeployer:
    """The Docker Engine deployer, with etcd's traffic steps when the instances
    register themselves (their registrar image built when missing)."""
    root = settings.cache_dir / "releases"
    patience = settings.outage_patience_seconds
    if discovery is None:
        return DockerEngineDeployer(client, root, outage_patience=patience)
    if settings.etcd_url is None:
        raise InvalidInput(
            "the configuration registers instances in etcd (discovery), but this runner "
            "has no SHIPWAY_ETCD_URL",
            "discovery",
        )
    ensure_registrar(client)
    traffic = EtcdTraffic(settings.etcd_url, client, discovery, settings.advertise_ip, patience)
    traffic.publish_route()
    compose_env = {
        "SHIPWAY_CONTAINER_ETCD_URL": settings.container_etcd_url
        or container_etcd_url(settings.etcd_url, client),
        "SHIPWAY_ADVERTISE_IP": settings.advertise_ip,
    }
    return DockerEngineDeployer(client, root, traffic, compose_env, patience)


def container_etcd_url(etcd_url: str, client: docker.DockerClient) -> str:
    """etcd's URL as a container reaches it: a loopback host becomes the gateway of
    Docker's bridge network (the host, seen from a container)."""
    parts = urllib.parse.urlsplit(etcd_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return etcd_url
    return parts._replace(netloc=f"{bridge_gateway(client)}:{parts.port or 2379}").geturl()
