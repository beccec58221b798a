"""What each API-driving CLI command about projects, pipelines, jobs, secrets and
their reports does. Each returns the process's exit code."""

from __future__ import annotations

import json
import sys
import time
from argparse import Namespace
from typing import Any

from server.cli.client import ApiClient
from server.cli.output import print_json, table

FINISHED = {"success", "failed", "canceled", "skipped"}


def project_add(api: ApiClient, args: Namespace) -> int:
    body: dict[str, Any] = {
        "name": args.name,
        "clone_url": args.clone_url,
        "webhook_secret": args.secret,
    }
    if args.gitlab_path:
        body["gitlab_path"] = args.gitlab_path
    if args.branch:
        body["branches"] = args.branch
    if args.tag is not None:
        body["tags"] = args.tag
    if args.supersede:
        body["supersede"] = True
    project = api.post("/api/projects", body)
    if args.json:
        print_json(project)
    else:
        print(f"project {project['name']} registered (GitLab path {project['gitlab_path']})")
    return 0


def project_list(api: ApiClient, args: Namespace) -> int:
    projects = api.get("/api/projects")
    if args.json:
        print_json(projects)
        return 0
    rows = [
        [p["name"], p["gitlab_path"], ",".join(p["branches"]), p["clone_url"]] for p in projects
    ]
    table(rows, ["NAME", "GITLAB PATH", "BRANCHES", "CLONE URL"])
    return 0


def project_set(api: ApiClient, args: Namespace) -> int:
    body: dict[str, Any] = {}
    if args.branch is not None:
        body["branches"] = args.branch
    if args.tag is not None:
        body["tags"] = args.tag
    if args.supersede is not None:
        body["supersede"] = args.supersede == "on"
    if not body:
        print("shipway: nothing to change: give --branch, --tag or --supersede", file=sys.stderr)
        return 2
    project = api.patch(f"/api/projects/{args.name}", body)
    if args.json:
        print_json(project)
    else:
        supersede = "on" if project["supersede"] else "off"
        print(
            f"project {project['name']}: branches {','.join(project['branches']) or '-'}, "
            f"tags {','.join(project['tags']) or '-'}, supersede {supersede}"
        )
    return 0


def trigger(api: ApiClient, args: Namespace) -> int:
    body = {key: getattr(args, key) for key in ("branch", "tag", "commit") if getattr(args, key)}
    pipeline = api.post(f"/api/projects/{args.project}/pipelines", body)
    if not args.json:
        ref, sha = pipeline["ref"]["name"], pipeline["sha"][:12]
        print(f"pipeline {pipeline['id']} created for {ref} at {sha}")
    if args.wait:
        return watch(api, pipeline["id"], args.json)
    if args.json:
        print_json(pipeline)
    return 0


def pipelines(api: ApiClient, args: Namespace) -> int:
    params = {"limit": args.limit}
    if args.project:
        params["project"] = args.project
    if args.status:
        params["status"] = args.status
    found = api.get("/api/pipelines", **params)
    if args.json:
        print_json(found)
        return 0
    rows = [
        [
            str(p["id"]),
            p["status"],
            f"{p['ref']['kind']} {p['ref']['name']}",
            p["sha"][:12],
            p["source"],
            p["created_at"][:19],
        ]
        for p in found
    ]
    table(rows, ["ID", "STATUS", "REF", "COMMIT", "SOURCE", "CREATED"])
    return 0


def pipeline_show(api: ApiClient, args: Namespace) -> int:
    if args.wait:
        return watch(api, args.pipeline_id, args.json)
    pipeline = api.get(f"/api/pipelines/{args.pipeline_id}")
    if args.json:
        print_json(pipeline)
    else:
        _describe(pipeline)
    return 0 if pipeline["status"] != "failed" else 1


def _job_line(job: dict[str, Any]) -> str:
    detail = ""
    if job.get("attempt", 1) > 1:
        detail += f" attempt {job['attempt']}"
    if job["exit_code"] is not None:
        detail += f" exit code {job['exit_code']}"
    if job["failure_reason"]:
        detail += f" ({job['failure_reason']})"
    if job.get("allow_failure") and job["status"] == "failed":
        detail += " [allowed to fail]"
    if job.get("retried"):
        detail += " [retried]"
    if job["status"] == "manual":
        detail += f" [play: shipway play {job['id']}]"
    if job.get("waiting"):
        detail += f" ({job['waiting']})"
    return f"  job {job['id']} {job['stage']}/{job['name']}: {job['status']}{detail}"


def _describe(pipeline: dict[str, Any]) -> None:
    print(
        f"pipeline {pipeline['id']}: {pipeline['status']} "
        f"({pipeline['ref']['kind']} {pipeline['ref']['name']} at {pipeline['sha'][:12]})"
    )
    if pipeline.get("error"):
        print(f"  error: {pipeline['error']}")
    if pipeline.get("waiting"):
        print(f"  waiting: {pipeline['waiting']}")
    for job in pipeline.get("jobs", []):
        print(_job_line(job))
    for image in pipeline.get("images", []):
        print(f"  image {image['repository']}:{image['tag'][:12]} {image['digest']}")
    tests = pipeline.get("tests")
    if tests and tests["total"]:
        broken = tests["failed"] + tests["errors"]
        print(f"  tests: {tests['total']}, {broken} failed (shipway tests {pipeline['id']})")


def watch(api: ApiClient, pipeline_id: int, as_json: bool, interval: float = 0.5) -> int:
    """Print job status changes until the pipeline finishes; exit 1 unless it succeeds."""
    seen: dict[int, str] = {}
    last_status = ""
    while True:
        pipeline = api.get(f"/api/pipelines/{pipeline_id}")
        if not as_json:
            for job in pipeline["jobs"]:
                if seen.get(job["id"]) != job["status"]:
                    seen[job["id"]] = job["status"]
                    print(_job_line(job))
            if pipeline["status"] != last_status:
                last_status = pipeline["status"]
                print(f"pipeline {pipeline_id}: {last_status}")
        if pipeline["status"] in FINISHED or pipeline["status"] == "manual":
            if as_json:
                print_json(pipeline)
            elif pipeline.get("error"):
                print(f"  error: {pipeline['error']}")
            return 0 if pipeline["status"] == "success" else 1
        time.sleep(interval)


def job_log(api: ApiClient, args: Namespace) -> int:
    if not args.follow:
        sys.stdout.write(api.text(f"/api/jobs/{args.job_id}/log"))
        return 0
    status = None
    for event, data in api.events(f"/api/jobs/{args.job_id}/log/stream"):
        if event == "log":
            sys.stdout.write(json.loads(data))
            sys.stdout.flush()
        elif event == "end":
            status = json.loads(data)["status"]
    return 0 if status == "success" else 1


def runners(api: ApiClient, args: Namespace) -> int:
    found = api.get("/api/runners")
    if args.json:
        print_json(found)
        return 0
    rows = [
        [
            r["name"],
            "online" if r["online"] else "offline",
            ",".join(r["queues"]),
            str(r["current_job_id"] or "-"),
            r["host"],
            r["last_seen"][:19],
            r.get("problem") or "-",
        ]
        for r in found
    ]
    table(rows, ["NAME", "STATE", "QUEUES", "JOB", "HOST", "LAST HEARTBEAT", "PROBLEM"])
    return 0


def cancel(api: ApiClient, args: Namespace) -> int:
    if args.pipeline is not None:
        pipeline = api.post(f"/api/pipelines/{args.pipeline}/cancel", {})
        return _show_or_json(pipeline, args.json)
    job = api.post(f"/api/jobs/{args.job_id}/cancel", {})
    print(json.dumps(job, indent=2) if args.json else f"job {job['id']}: {job['status']}")
    return 0


def retry(api: ApiClient, args: Namespace) -> int:
    if args.pipeline is not None:
        pipeline = api.post(f"/api/pipelines/{args.pipeline}/retry", {})
        return _show_or_json(pipeline, args.json)
    job = api.post(f"/api/jobs/{args.job_id}/retry", {})
    if args.json:
        print_json(job)
    else:
        print(f"job {args.job_id} retried as job {job['id']} (attempt {job['attempt']})")
    return 0


def play(api: ApiClient, args: Namespace) -> int:
    job = api.post(f"/api/jobs/{args.job_id}/play", {})
    if args.json:
        print_json(job)
    else:
        print(f"job {job['id']} {job['name']} played: it starts when its turn comes")
    return 0


def _show_or_json(pipeline: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print_json(pipeline)
    else:
        _describe(pipeline)
    return 0


def secret_set(api: ApiClient, args: Namespace) -> int:
    """The value is read from standard input, never from the command line, where
    other users of the machine could read it in the process list."""
    if sys.stdin.isatty():
        print(f"value of {args.secret_name} (end with Ctrl-D): ", end="", file=sys.stderr)
    value = sys.stdin.read()
    if value.endswith("\n") and not args.keep_newline:
        value = value[:-1]
    answer = api.put(
        f"/api/projects/{args.project}/secrets/{args.secret_name}",
        {"value": value, "environment": args.environment},
    )
    if args.json:
        print_json(answer)
    else:
        verb = "set" if answer["created"] else "replaced"
        print(f"secret {answer['name']} ({answer['environment']}) {verb}")
    return 0


def secret_list(api: ApiClient, args: Namespace) -> int:
    found = api.get(f"/api/projects/{args.project}/secrets")
    if args.json:
        print_json(found)
        return 0
    rows = [[s["name"], s["environment"], s["updated_by"], s["updated_at"][:19]] for s in found]
    table(rows, ["NAME", "ENVIRONMENT", "SET BY", "SET AT"])
    return 0


def secret_delete(api: ApiClient, args: Namespace) -> int:
    api.delete(
        f"/api/projects/{args.project}/secrets/{args.secret_name}", environment=args.environment
    )
    if not args.json:
        print(f"secret {args.secret_name} ({args.environment}) deleted")
    return 0


def tests(api: ApiClient, args: Namespace) -> int:
    """Exit 1 when a test failed."""
    found = api.get(f"/api/pipelines/{args.pipeline_id}/tests")
    if args.json:
        print_json(found)
    else:
        broken = found["failed"] + found["errors"]
        print(
            f"pipeline {args.pipeline_id}: {found['total']} tests, {found['passed']} passed, "
            f"{broken} failed, {found['skipped']} skipped"
        )
        for failure in found["failures"]:
            where = ".".join(part for part in (failure["classname"], failure["name"]) if part)
            print(f"  {failure['outcome'].upper()} {where} (job {failure['job']})")
            for line in (failure["message"] or "").splitlines()[:10]:
                print(f"      {line}")
    return 1 if found["failed"] + found["errors"] else 0


def artifacts(api: ApiClient, args: Namespace) -> int:
    found = api.get(f"/api/pipelines/{args.pipeline_id}/artifacts")
    if args.json:
        print_json(found)
        return 0
    rows = []
    for item in found:
        if item["kind"] == "image":
            rows.append(["-", "image", f"{item['repository']}:{item['tag'][:12]}", item["digest"]])
        else:
            rows.append([str(item["id"]), item["kind"], item["name"], f"{item['size']} bytes"])
    table(rows, ["ID", "KIND", "NAME", "DETAIL"])
    return 0


def artifact(api: ApiClient, args: Namespace) -> int:
    content = api.raw(f"/api/artifacts/{args.artifact_id}")
    if args.output is None:
        sys.stdout.buffer.write(content)
    else:
        args.output.write_bytes(content)
        print(f"saved {len(content)} bytes to {args.output}")
    return 0
