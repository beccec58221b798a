"""``shipway``: the one command of Shipway.

Exit codes: 0 success; 1 the pipeline or job watched did not succeed; 2 bad input
(usage, or refused by the server); 3 the server or a service is unreachable.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from confd import cli as confd_cli
from pipelines.errors import ShipwayError
from server.cli import commands, release_commands, user_commands
from server.cli.client import ApiClient, ApiError

ApiCommand = Callable[[ApiClient, argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shipway", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("SHIPWAY_URL", "http://127.0.0.1:8080"),
        help="the server (env SHIPWAY_URL)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server (settings from SHIPWAY_* variables)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)

    runner = sub.add_parser("runner", help="run a runner that takes jobs from queues")
    runner.add_argument("--queue", action="append", required=True, help="a queue to serve")
    runner.add_argument("--name", help="unique runner name (default: the host name)")
    runner.add_argument("--burst", action="store_true", help="stop when the queues are empty")

    sub.add_parser("migrate", help="bring the database schema up to date")

    project = sub.add_parser("project", help="register and list projects")
    project_sub = project.add_subparsers(dest="project_command", required=True)
    add = project_sub.add_parser("add", help="register a project")
    add.add_argument("name")
    add.add_argument("--clone-url", required=True)
    add.add_argument("--secret", required=True, help="the webhook secret (16+ characters)")
    add.add_argument("--gitlab-path", help="GitLab's path_with_namespace (default: the name)")
    add.add_argument("--branch", action="append", help="glob of branches that build (repeatable)")
    add.add_argument("--tag", action="append", help="glob of tags that build (repeatable)")
    add.add_argument(
        "--supersede",
        action="store_true",
        help="a new pipeline cancels older ones of its branch that have not started",
    )
    add.set_defaults(api=commands.project_add)
    changed = project_sub.add_parser("set", help="change a project's settings")
    changed.add_argument("name")
    changed.add_argument("--branch", action="append", help="glob of branches that build")
    changed.add_argument("--tag", action="append", help="glob of tags that build")
    changed.add_argument("--supersede", choices=["on", "off"])
    changed.set_defaults(api=commands.project_set)
    project_sub.add_parser("list", help="list projects").set_defaults(api=commands.project_list)

    trigger = sub.add_parser("trigger", help="start a pipeline for a branch, tag or commit")
    trigger.add_argument("project")
    which = trigger.add_mutually_exclusive_group(required=True)
    which.add_argument("--branch")
    which.add_argument("--tag")
    which.add_argument("--commit")
    trigger.add_argument("--wait", action="store_true", help="follow it until it ends")
    trigger.set_defaults(api=commands.trigger)

    listing = sub.add_parser("pipelines", help="list pipelines")
    listing.add_argument("--project")
    listing.add_argument("--status")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(api=commands.pipelines)

    show = sub.add_parser("pipeline", help="show a pipeline and its jobs")
    show.add_argument("pipeline_id", type=int)
    show.add_argument("--wait", action="store_true", help="follow it until it ends")
    show.set_defaults(api=commands.pipeline_show)

    canceled = sub.add_parser("cancel", help="cancel a job, or a whole pipeline")
    target = canceled.add_mutually_exclusive_group(required=True)
    target.add_argument("job_id", type=int, nargs="?")
    target.add_argument("--pipeline", type=int, metavar="ID")
    canceled.set_defaults(api=commands.cancel)

    retried = sub.add_parser("retry", help="retry a failed or canceled job, or a pipeline's")
    target = retried.add_mutually_exclusive_group(required=True)
    target.add_argument("job_id", type=int, nargs="?")
    target.add_argument("--pipeline", type=int, metavar="ID", help="every failed job of it")
    retried.set_defaults(api=commands.retry)

    played = sub.add_parser("play", help="start a manual job")
    played.add_argument("job_id", type=int)
    played.set_defaults(api=commands.play)

    secret = sub.add_parser("secret", help="a project's secret variables")
    secret_sub = secret.add_subparsers(dest="secret_command", required=True)
    put = secret_sub.add_parser("set", help="set a secret; the value is read from stdin")
    put.add_argument("project")
    put.add_argument("secret_name")
    put.add_argument("--environment", default="*", help="the environment it is for (default: *)")
    put.add_argument("--keep-newline", action="store_true", help="keep a final newline")
    put.set_defaults(api=commands.secret_set)
    secret_list = secret_sub.add_parser("list", help="list secret names (never values)")
    secret_list.add_argument("project")
    secret_list.set_defaults(api=commands.secret_list)
    removed = secret_sub.add_parser("delete", help="delete a secret")
    removed.add_argument("project")
    removed.add_argument("secret_name")
    removed.add_argument("--environment", default="*")
    removed.set_defaults(api=commands.secret_delete)

    tested = sub.add_parser("tests", help="a pipeline's test results (exit 1 when one failed)")
    tested.add_argument("pipeline_id", type=int)
    tested.set_defaults(api=commands.tests)

    listed_artifacts = sub.add_parser("artifacts", help="a pipeline's reports and images")
    listed_artifacts.add_argument("pipeline_id", type=int)
    listed_artifacts.set_defaults(api=commands.artifacts)

    fetched = sub.add_parser("artifact", help="download an artifact")
    fetched.add_argument("artifact_id", type=int)
    fetched.add_argument("-o", "--output", type=Path, help="a file (default: standard output)")
    fetched.set_defaults(api=commands.artifact)

    configured = sub.add_parser("config", help="deployment configuration of an environment")
    config_sub = configured.add_subparsers(dest="config_command", required=True)
    config_set = config_sub.add_parser("set", help="store a new version from a YAML file")
    config_set.add_argument("project")
    config_set.add_argument("environment")
    config_set.add_argument("file", type=Path)
    config_set.set_defaults(api=release_commands.config_set)
    config_show = config_sub.add_parser("show", help="the current (or a given) version")
    config_show.add_argument("project")
    config_show.add_argument("environment")
    config_show.add_argument("--version", type=int)
    config_show.set_defaults(api=release_commands.config_show)

    release_commands.add_parser(sub)
    user_commands.add_parsers(sub)

    composed = sub.add_parser("compose", help="the compose file a release of an image would use")
    composed.add_argument("project")
    composed.add_argument("environment")
    composed.add_argument("--image", required=True, help="repository@sha256:... or name:tag")
    composed.add_argument("--version", type=int, help="a configuration version (default: current)")
    composed.add_argument("-o", "--output", type=Path, help="a folder for it and its mounted files")
    composed.set_defaults(api=release_commands.compose)

    instance = sub.add_parser("instance", help="an instance of an application")
    instance_sub = instance.add_subparsers(dest="instance_command", required=True)
    logs = instance_sub.add_parser("logs", help="the last lines its container wrote")
    logs.add_argument("project")
    logs.add_argument("environment")
    logs.add_argument("name", help="the instance, e.g. hello-staging-1")
    logs.add_argument("--tail", type=int, default=100, help="how many lines (default 100)")
    logs.set_defaults(api=release_commands.instance_logs)

    envs = sub.add_parser("environments", help="a project's environments and who holds them")
    envs.add_argument("project")
    envs.set_defaults(api=release_commands.environments)

    listed = sub.add_parser("runners", help="list runners: queues, current job, online or not")
    listed.set_defaults(api=commands.runners)

    log = sub.add_parser("log", help="print a job's log")
    log.add_argument("job_id", type=int)
    log.add_argument("-f", "--follow", action="store_true", help="stream it live until the end")
    log.set_defaults(api=commands.job_log)

    linted = sub.add_parser("lint", help="check a pipeline file (no server needed)")
    linted.add_argument("file", type=Path, nargs="?", default=Path(".shipway.yml"))

    images = sub.add_parser("images", help="build the base images locally (no pull needed)")
    images.add_argument(
        "which",
        choices=["busybox", "debian", "scanners", "registrar", "all"],
        nargs="?",
        default="busybox",
    )

    confd_cli.add_parser(sub)

    hook = sub.add_parser("hook", help="install the post-receive hook in a bare repository")
    hook_sub = hook.add_subparsers(dest="hook_command", required=True)
    install = hook_sub.add_parser("install")
    install.add_argument("repository", type=Path)
    install.add_argument("--project-path", required=True, help="the project's GitLab path")
    install.add_argument("--secret", required=True)
    install.add_argument("--webhook-url", help="default: <--url>/webhooks/gitlab")
    install.add_argument(
        "--patience",
        type=float,
        help="seconds a push waits for a server that is down or without its database (default 60)",
    )
    install.add_argument(
        "--project-name", help="the Shipway project, named in the hook's give-up message"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except ApiError as exc:
        print(f"shipway: {exc}", file=sys.stderr)
        return exc.exit_code
    except ShipwayError as exc:
        print(f"shipway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(args.host, args.port)
    if args.command == "runner":
        return _runner(args.queue, args.name, args.burst)
    if args.command == "migrate":
        from server.settings import Settings
        from server.store import Store

        Store.open(Settings.from_env().database_url).close()
        print("database schema is up to date")
        return 0
    if args.command == "lint":
        return _lint(args.file, args.json)
    if args.command == "images":
        return _images(args.which)
    if args.command == "confd":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        return int(args.func(args))
    if args.command == "hook":
        from server.cli.hook import install_hook

        url = args.webhook_url or f"{args.url.rstrip('/')}/webhooks/gitlab"
        path = install_hook(
            args.repository,
            url,
            args.project_path,
            args.secret,
            patience=args.patience,
            project_name=args.project_name,
        )
        print(f"installed {path} -> {url}")
        return 0
    token = os.environ.get("SHIPWAY_API_TOKEN", "")
    if not token:
        print("shipway: SHIPWAY_API_TOKEN is not set", file=sys.stderr)
        return 2
    api_command: ApiCommand = args.api
    client = ApiClient(args.url, token)
    try:
        return api_command(client, args)
    finally:
        client.close()


def _serve(host: str, port: int) -> int:
    import uvicorn

    from server.app import create_app
    from server.settings import Settings

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(create_app(Settings.from_env()), host=host, port=port, log_level="info")
    return 0


def _lint(path: Path, as_json: bool) -> int:
    """Exit 0 when the file is valid, 1 when it is not, 2 when it cannot be read."""
    import json

    from server.endpoints.lint import lint

    try:
        content = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"shipway: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    answer = lint(content)
    if as_json:
        print(json.dumps(answer, indent=2))
    elif answer["valid"]:
        jobs = ", ".join(f"{job['stage']}/{job['name']}" for job in answer["jobs"])
        print(f"{path}: valid ({jobs})")
    else:
        for error in answer["errors"]:
            where = f"{path}:{error['line']}" if error["line"] else str(path)
            key = f" {error['key']}:" if error["key"] else ""
            print(f"{where}:{key} {error['message']}")
    return 0 if answer["valid"] else 1


def _images(which: str) -> int:
    import docker

    from runners.base_images import ensure_busybox, ensure_debian

    client = docker.from_env()
    try:
        if which in ("busybox", "all"):
            print(f"{ensure_busybox(client)} ready")
        if which in ("debian", "all"):
            print("building with debootstrap when missing (a few minutes, once)...", flush=True)
            print(f"{ensure_debian(client)} ready")
        if which in ("scanners", "all"):
            from runners.tool_images import ensure_scanners

            print("building ruff and bandit on Debian when missing (a minute, once)...", flush=True)
            print(f"{ensure_scanners(client)} ready")
        if which in ("registrar", "all"):
            from runners.tool_images import ensure_registrar

            print("building the registrar sidecar when missing (a minute, once)...", flush=True)
            print(f"{ensure_registrar(client)} ready")
    finally:
        client.close()
    return 0


def _runner(queues: list[str], name: str | None, burst: bool) -> int:
    from runners.settings import RunnerSettings
    from runners.worker import run_worker

    if name:
        os.environ["SHIPWAY_RUNNER_NAME"] = name  # read again by each job's task
    settings = RunnerSettings.from_env()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_worker(settings, queues, burst=burst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
