"""What the CLI commands about environments do: deployment configurations, compose
files and releases. Each returns the process's exit code."""

from __future__ import annotations

import sys
from argparse import ArgumentParser, Namespace, _SubParsersAction
from typing import Any

from server.cli.client import ApiClient
from server.cli.output import print_json, table


def environments(api: ApiClient, args: Namespace) -> int:
    found = api.get(f"/api/projects/{args.project}/environments")
    if args.json:
        print_json(found)
        return 0
    table(
        [[e["environment"], str(e["held_by_job"])] for e in found], ["ENVIRONMENT", "HELD BY JOB"]
    )
    return 0


def config_set(api: ApiClient, args: Namespace) -> int:
    """The file is YAML (or JSON, which is YAML)."""
    import yaml

    try:
        data = yaml.safe_load(args.file.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        print(f"shipway: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    stored = api.put(f"/api/projects/{args.project}/environments/{args.environment}/config", data)
    if args.json:
        print_json(stored)
    else:
        print(f"{args.project} {args.environment}: configuration version {stored['version']}")
    return 0


def config_show(api: ApiClient, args: Namespace) -> int:
    import yaml

    params = {"version": args.version} if args.version else {}
    stored = api.get(
        f"/api/projects/{args.project}/environments/{args.environment}/config", **params
    )
    if args.json:
        print_json(stored)
    else:
        print(f"# version {stored['version']}, by {stored['created_by']} at {stored['created_at']}")
        print(yaml.safe_dump(stored["config"], sort_keys=False), end="")
    return 0


def compose(api: ApiClient, args: Namespace) -> int:
    params: dict[str, Any] = {"image": args.image}
    if args.version:
        params["version"] = args.version
    answer = api.get(
        f"/api/projects/{args.project}/environments/{args.environment}/compose", **params
    )
    if args.output is None:
        sys.stdout.write(answer["compose"])
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "docker-compose.yml").write_text(answer["compose"])
    for name, content in answer["files"].items():
        (args.output / name).parent.mkdir(parents=True, exist_ok=True)
        (args.output / name).write_text(content)
    print(f"wrote {args.output}/docker-compose.yml and {len(answer['files'])} mounted files")
    return 0


def release_create(api: ApiClient, args: Namespace) -> int:
    body: dict[str, Any] = {"image": args.image, "pause_mode": args.pause, "beta": args.beta}
    if args.grouping:
        body["grouping"] = args.grouping
    else:
        body["batches"] = args.batches
    created = api.post(
        f"/api/projects/{args.project}/environments/{args.environment}/releases", body
    )
    if args.json:
        print_json(created)
    else:
        batches = " | ".join(", ".join(batch) for batch in created["batches"])
        print(f"release {created['id']} of {args.environment}: {batches}")
    return 0


def release_show(api: ApiClient, args: Namespace) -> int:
    found = api.get(f"/api/releases/{args.release_id}")
    if args.json:
        print_json(found)
        return 0
    print(f"release {found['id']} of {found['environment']}: {found['status']} ({found['image']})")
    if found["reason"]:
        print(f"  {found['reason']}")
    if found.get("waiting"):
        print(f"  {found['waiting']}")
    for instance in found["instances"]:
        print(f"  batch {instance['batch'] + 1} {instance['name']}: {instance['status']}")
        for line in instance["log"].splitlines():
            print(f"      {line}")
    return 0


def release_action(api: ApiClient, args: Namespace) -> int:
    path = f"/api/releases/{args.release_id}/{args.release_command}"
    body = {"pause_mode": args.mode} if args.release_command == "mode" else {}
    changed = api.post(path, body)
    if args.json:
        print_json(changed)
    else:
        print(f"release {changed['id']}: {changed['status']} (pause mode {changed['pause_mode']})")
    return 0


def promote(api: ApiClient, args: Namespace) -> int:
    body: dict[str, Any] = {"from": args.source, "to": args.target, "pause_mode": args.pause}
    if args.batches:
        body["batches"] = args.batches
    made = api.post(f"/api/projects/{args.project}/promotions", body)
    if args.json:
        print_json(made)
        return 0
    print(
        f"release {made['id']} of {made['image']} to {made['environment']}: {made['status']}"
        f" ({made['reason']})"
    )
    return 0


def verdict(api: ApiClient, args: Namespace) -> int:
    """A tester's verdict on what the environment runs now."""
    given = api.post(
        f"/api/projects/{args.project}/environments/{args.environment}/verdicts",
        {"passed": args.passed, "comment": args.message},
    )
    if args.json:
        print_json(given)
        return 0
    word = "passed" if given["passed"] else "failed"
    print(f"release {given['release_id']} ({given['image']}) {word} by {given['user']}")
    return 0


def release_decide(api: ApiClient, args: Namespace) -> int:
    """``approve`` or ``reject`` a release awaiting approval."""
    changed = api.post(
        f"/api/releases/{args.release_id}/{args.release_command}", {"comment": args.message}
    )
    if args.json:
        print_json(changed)
        return 0
    approval = changed.get("approval")
    more = f", {approval['needed']} more approval(s) needed" if approval else ""
    print(f"release {changed['id']}: {changed['status']}{more}")
    return 0


def protection_show(api: ApiClient, args: Namespace) -> int:
    found = api.get(f"/api/projects/{args.project}/environments/{args.environment}/protection")
    return _print_protection(found, args)


def protection_set(api: ApiClient, args: Namespace) -> int:
    body: dict[str, Any] = {"protected": not args.unprotected}
    if not args.unprotected:
        body |= {
            "approvals": args.approvals,
            "approver_role": args.role,
            "self_approval": args.allow_self,
            "valid_minutes": args.valid_for,
            "verdict_from": args.verdict_from,
        }
    url = f"/api/projects/{args.project}/environments/{args.environment}/protection"
    return _print_protection(api.put(url, body), args)


def _print_protection(found: dict[str, Any], args: Namespace) -> int:
    if args.json:
        print_json(found)
    elif not found["protected"]:
        print(f"{args.environment}: not protected")
    else:
        valid = f", valid {found['valid_minutes']} min" if found["valid_minutes"] else ""
        if found["verdict_from"]:
            valid += f", after a pass of {found['verdict_from']}'s testers"
        own = "may" if found["self_approval"] else "may not"
        print(
            f"{args.environment}: protected, {found['approvals']} approval(s) by "
            f"{found['approver_role']}{valid}; who asked for a release {own} approve it"
        )
    return 0


def release_list(api: ApiClient, args: Namespace) -> int:
    found = api.get(f"/api/projects/{args.project}/environments/{args.environment}/releases")
    if args.json:
        print_json(found)
        return 0
    print(f"current version: {found['current_version'] or '-'}")
    rows = [
        [str(r["id"]), r["kind"], r["status"], r["image"], r["created_by"], r["created_at"][:19]]
        for r in found["releases"]
    ]
    table(rows, ["ID", "KIND", "STATUS", "IMAGE", "BY", "CREATED"])
    return 0


def release_rollback(api: ApiClient, args: Namespace) -> int:
    body = {"image": args.image, "reason": args.reason, "batches": args.batches}
    created = api.post(
        f"/api/projects/{args.project}/environments/{args.environment}/rollback", body
    )
    if args.json:
        print_json(created)
    else:
        print(f"release {created['id']}: {created['reason']}")
    return 0


def release_restart(api: ApiClient, args: Namespace) -> int:
    body: dict[str, Any] = {"pause_mode": args.pause}
    if args.grouping:
        body["grouping"] = args.grouping
    elif args.batches:
        body["batches"] = args.batches
    created = api.post(
        f"/api/projects/{args.project}/environments/{args.environment}/restart", body
    )
    if args.json:
        print_json(created)
    else:
        batches = " | ".join(", ".join(batch) for batch in created["batches"])
        print(f"release {created['id']} ({created['reason']}): {batches}")
    return 0


def instance_logs(api: ApiClient, args: Namespace) -> int:
    found = api.get(
        f"/api/projects/{args.project}/environments/{args.environment}/instances/{args.name}/logs",
        tail=args.tail,
    )
    if args.json:
        print_json(found)
    else:
        sys.stdout.write(found["logs"])
    return 0


def release_traffic(api: ApiClient, args: Namespace) -> int:
    answer = api.post(f"/api/releases/{args.release_id}/traffic", {"new_share": args.share})
    if args.json:
        print_json(answer)
        return 0
    print(f"release {args.release_id}: the new instances get {args.share}% of the requests")
    for address, weight in sorted(answer["weights"].items()):
        print(f"  {address} weight {weight}")
    return 0


def add_parser(sub: _SubParsersAction[ArgumentParser]) -> None:
    """``shipway release ...`` (order a release, steer it, approve it),
    ``shipway protection ...``, ``shipway promote`` and ``shipway verdict``."""
    released = sub.add_parser("release", help="release an image to an environment, and steer it")
    release_sub = released.add_subparsers(dest="release_command", required=True)
    ordered = release_sub.add_parser("create", help="order a release")
    ordered.add_argument("project")
    ordered.add_argument("environment")
    ordered.add_argument("--image", required=True)
    group = ordered.add_mutually_exclusive_group(required=True)
    group.add_argument("--batches", type=int, help="split the instances into N batches")
    group.add_argument("--grouping", choices=["two_groups", "all_at_once", "one_by_one"])
    ordered.add_argument(
        "--pause", choices=["after_first", "after_every", "never"], default="after_first"
    )
    ordered.add_argument("--beta", action="store_true", help="one instance first, then confirm")
    ordered.set_defaults(api=release_create)
    shown = release_sub.add_parser("show", help="a release, its instances and their steps")
    shown.add_argument("release_id", type=int)
    shown.set_defaults(api=release_show)
    for verb, what in (("approve", "approve a release awaiting approval"), ("reject", "reject it")):
        decided = release_sub.add_parser(verb, help=what)
        decided.add_argument("release_id", type=int)
        decided.add_argument(
            "-m", "--message", default="", help="a comment (a rejection needs one)"
        )
        decided.set_defaults(api=release_decide)
    for action in ("pause", "resume", "close", "retry"):
        acted = release_sub.add_parser(action, help=f"{action} a release")
        acted.add_argument("release_id", type=int)
        acted.set_defaults(api=release_action)
    moded = release_sub.add_parser("mode", help="switch a running release's pause mode")
    moded.add_argument("release_id", type=int)
    moded.add_argument("mode", choices=["after_first", "after_every", "never"])
    moded.set_defaults(api=release_action)
    shared = release_sub.add_parser(
        "traffic", help="give the instances a release replaced so far a share of the requests"
    )
    shared.add_argument("release_id", type=int)
    shared.add_argument("share", type=int, help="percent of the requests, e.g. 10, 50 or 100")
    shared.set_defaults(api=release_traffic)
    rolled = release_sub.add_parser("rollback", help="release again a version once released")
    rolled.add_argument("project")
    rolled.add_argument("environment")
    rolled.add_argument("--image", required=True, help="the version (image) to go back to")
    rolled.add_argument("--reason", required=True)
    rolled.add_argument("--batches", type=int, default=1)
    rolled.set_defaults(api=release_rollback)
    restarted = release_sub.add_parser(
        "restart", help="replace every instance again: same version, same configuration"
    )
    restarted.add_argument("project")
    restarted.add_argument("environment")
    restart_group = restarted.add_mutually_exclusive_group()
    restart_group.add_argument("--batches", type=int, help="split the instances into N batches")
    restart_group.add_argument("--grouping", choices=["two_groups", "all_at_once", "one_by_one"])
    restarted.add_argument(
        "--pause", choices=["after_first", "after_every", "never"], default="never"
    )
    restarted.set_defaults(api=release_restart)
    history = release_sub.add_parser("list", help="an environment's releases, current version")
    history.add_argument("project")
    history.add_argument("environment")
    history.set_defaults(api=release_list)

    protection = sub.add_parser("protection", help="who must approve releases to an environment")
    protection_sub = protection.add_subparsers(dest="protection_command", required=True)
    shown_protection = protection_sub.add_parser("show", help="how an environment is protected")
    shown_protection.add_argument("project")
    shown_protection.add_argument("environment")
    shown_protection.set_defaults(api=protection_show)
    protected = protection_sub.add_parser("set", help="protect an environment (administrators)")
    protected.add_argument("project")
    protected.add_argument("environment")
    protected.add_argument("--approvals", type=int, default=1, help="how many people (default 1)")
    protected.add_argument("--role", choices=["ops", "admin"], default="ops")
    protected.add_argument("--allow-self", action="store_true", help="who asked may approve")
    protected.add_argument("--valid-for", type=int, metavar="MINUTES", help="approvals expire")
    protected.add_argument("--verdict-from", metavar="ENV", help="testers of ENV pass it first")
    protected.add_argument(
        "--unprotected", action="store_true", help="no approvals, even production"
    )
    protected.set_defaults(api=protection_set)

    promoted = sub.add_parser("promote", help="release the digest one environment runs to another")
    promoted.add_argument("project")
    promoted.add_argument("--from", dest="source", default="staging")
    promoted.add_argument("--to", dest="target", default="production")
    promoted.add_argument("--batches", type=int, help="split the instances into N batches")
    promoted.add_argument(
        "--pause", choices=["after_first", "after_every", "never"], default="after_first"
    )
    promoted.set_defaults(api=promote)

    judged = sub.add_parser("verdict", help="say whether what an environment runs passed tests")
    judged.add_argument("project")
    judged.add_argument("--environment", default="staging")
    outcome = judged.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--pass", dest="passed", action="store_true")
    outcome.add_argument("--fail", dest="passed", action="store_false")
    judged.add_argument("-m", "--message", required=True, help="what was tested, what broke")
    judged.set_defaults(api=verdict)
