"""What the CLI commands about people do: users and their roles, one's tokens and
password, who one is, and the audit log of what they did. Each returns the process's exit code."""

from __future__ import annotations

import getpass
import sys
from argparse import ArgumentParser, Namespace, _SubParsersAction
from typing import Any

from server.cli.client import ApiClient
from server.cli.output import print_json, table

ROLE_HELP = "ROLE or ROLE:PROJECT (roles: admin, ops, tester, developer); repeatable"


def _user_row(user: dict[str, Any]) -> list[str]:
    state = "disabled" if user["disabled"] else "active"
    return [user["name"], user["email"] or "-", ", ".join(user["roles"]) or "-", state]


def _show_user(user: dict[str, Any], args: Namespace, said: str) -> int:
    if args.json:
        print_json(user)
    else:
        print(f"user {user['name']} {said}: roles {', '.join(user['roles']) or 'none'}")
    return 0


def user_add(api: ApiClient, args: Namespace) -> int:
    body: dict[str, Any] = {"name": args.name, "roles": args.role or []}
    if args.email:
        body["email"] = args.email
    return _show_user(api.post("/api/users", body), args, "added")


def user_list(api: ApiClient, args: Namespace) -> int:
    users = api.get("/api/users")
    if args.json:
        print_json(users)
        return 0
    table([_user_row(user) for user in users], ["NAME", "EMAIL", "ROLES", "STATE"])
    return 0


def user_roles(api: ApiClient, args: Namespace) -> int:
    body = {"grant": args.grant or [], "revoke": args.revoke or []}
    return _show_user(api.post(f"/api/users/{args.name}/roles", body), args, "changed")


def user_disable(api: ApiClient, args: Namespace) -> int:
    return _show_user(api.post(f"/api/users/{args.name}/disable", {}), args, "disabled")


def user_password(api: ApiClient, args: Namespace) -> int:
    """Read from the terminal without echo, or from standard input when piped; never
    from the command line, where the process list would show it."""
    if sys.stdin.isatty():
        password = getpass.getpass(f"new password of {args.name}: ")
    else:
        password = sys.stdin.read().rstrip("\n")
    api.put(f"/api/users/{args.name}/password", {"password": password})
    print(f"password of {args.name} set")
    return 0


def whoami(api: ApiClient, args: Namespace) -> int:
    me = api.get("/api/me")
    if args.json:
        print_json(me)
    else:
        print(f"{me['name']}: {', '.join(me['roles']) or 'no roles'}")
    return 0


def token_create(api: ApiClient, args: Namespace) -> int:
    body: dict[str, Any] = {"name": args.name, "expires_in_days": args.expires_in_days}
    if args.user:
        body["user"] = args.user
    made = api.post("/api/tokens", body)
    if args.json:
        print_json(made)
        return 0
    print(made["token"])
    print(
        f"token {made['id']} of {made['user']} ({made['name']}), expires {made['expires_at']}:"
        " shown only now, keep it safe",
        file=sys.stderr,
    )
    return 0


def token_list(api: ApiClient, args: Namespace) -> int:
    tokens = api.get("/api/tokens", **({"user": args.user} if args.user else {}))
    if args.json:
        print_json(tokens)
        return 0
    rows = [
        [
            str(token["id"]),
            token["user"],
            token["name"],
            token["expires_at"] or "never",
            token["last_used_at"] or "never",
            "usable" if token["usable"] else ("revoked" if token["revoked_at"] else "expired"),
        ]
        for token in tokens
    ]
    table(rows, ["ID", "USER", "NAME", "EXPIRES", "LAST USED", "STATE"])
    return 0


def token_revoke(api: ApiClient, args: Namespace) -> int:
    api.delete(f"/api/tokens/{args.token_id}")
    print(f"token {args.token_id} revoked")
    return 0


def add_parsers(sub: _SubParsersAction[ArgumentParser]) -> None:
    """``shipway user ...``, ``shipway token ...``, ``shipway whoami`` and
    ``shipway audit``."""
    user = sub.add_parser("user", help="users and their roles (administrators)")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    added = user_sub.add_parser("add", help="add a user")
    added.add_argument("name")
    added.add_argument("--email")
    added.add_argument("--role", action="append", help=ROLE_HELP)
    added.set_defaults(api=user_add)
    user_sub.add_parser("list", help="list users").set_defaults(api=user_list)
    roles = user_sub.add_parser("roles", help="grant or revoke roles")
    roles.add_argument("name")
    roles.add_argument("--grant", action="append", help=ROLE_HELP)
    roles.add_argument("--revoke", action="append", help=ROLE_HELP)
    roles.set_defaults(api=user_roles)
    disabled = user_sub.add_parser("disable", help="disable a user: their tokens stop working")
    disabled.add_argument("name")
    disabled.set_defaults(api=user_disable)
    password = user_sub.add_parser("password", help="set a password (read from the terminal)")
    password.add_argument("name")
    password.set_defaults(api=user_password)

    sub.add_parser("whoami", help="who the token is, and their roles").set_defaults(api=whoami)

    token = sub.add_parser("token", help="personal API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    created = token_sub.add_parser("create", help="make a token (printed once)")
    created.add_argument("--name", required=True, help="what it is for, e.g. laptop or ci")
    created.add_argument("--user", help="whose (administrators; default: yours)")
    created.add_argument("--expires-in-days", type=int, default=90, help="1 to 366 (default 90)")
    created.set_defaults(api=token_create)
    listed = token_sub.add_parser("list", help="your tokens (administrators: everyone's)")
    listed.add_argument("--user")
    listed.set_defaults(api=token_list)
    revoked = token_sub.add_parser("revoke", help="revoke a token at once")
    revoked.add_argument("token_id", type=int)
    revoked.set_defaults(api=token_revoke)
    add_audit_parser(sub)
    add_runner_token_parser(sub)


def audit(api: ApiClient, args: Namespace) -> int:
    query = {
        key: value
        for key, value in {
            "user": args.user,
            "project": args.project,
            "environment": args.environment,
            "action": args.action,
            "since": args.since,
            "until": args.until,
            "limit": args.limit,
        }.items()
        if value is not None
    }
    entries = api.get("/api/audit", **query)
    if args.json:
        print_json(entries)
        return 0
    rows = [
        [
            entry["at"][:19].replace("T", " "),
            entry["user"],
            entry["action"],
            entry["target"] or "-",
            entry["project"] or "-",
            entry["environment"] or "-",
            entry["outcome"],
        ]
        for entry in entries
    ]
    table(rows, ["AT (UTC)", "USER", "ACTION", "TARGET", "PROJECT", "ENV", "OUTCOME"])
    return 0


def add_audit_parser(sub: _SubParsersAction[ArgumentParser]) -> None:
    listed = sub.add_parser("audit", help="who did what, newest first (admin and ops)")
    listed.add_argument("--user")
    listed.add_argument("--project")
    listed.add_argument("--environment")
    listed.add_argument("--action", help="an action (release.create) or a kind (release)")
    listed.add_argument("--since", help="ISO 8601, e.g. 2026-12-01 or 2026-12-01T12:00:00Z")
    listed.add_argument("--until", help="ISO 8601")
    listed.add_argument("--limit", type=int)
    listed.set_defaults(api=audit)


def runner_token_create(api: ApiClient, args: Namespace) -> int:
    made = api.post("/api/runner-tokens", {"runner": args.runner})
    if args.json:
        print_json(made)
        return 0
    print(made["token"])
    print(
        f"token {made['id']} of runner {made['runner']}: shown only now; give it to the runner"
        " as SHIPWAY_RUNNER_TOKEN",
        file=sys.stderr,
    )
    return 0


def runner_token_list(api: ApiClient, args: Namespace) -> int:
    tokens = api.get("/api/runner-tokens")
    if args.json:
        print_json(tokens)
        return 0
    rows = [
        [
            str(t["id"]),
            t["runner"],
            t["created_at"][:19],
            "revoked" if t["revoked_at"] else "usable",
        ]
        for t in tokens
    ]
    table(rows, ["ID", "RUNNER", "CREATED", "STATE"])
    return 0


def runner_token_revoke(api: ApiClient, args: Namespace) -> int:
    api.delete(f"/api/runner-tokens/{args.token_id}")
    print(f"runner token {args.token_id} revoked")
    return 0


def add_runner_token_parser(sub: _SubParsersAction[ArgumentParser]) -> None:
    tokens = sub.add_parser("runner-token", help="runners' own tokens (administrators)")
    tokens_sub = tokens.add_subparsers(dest="runner_token_command", required=True)
    created = tokens_sub.add_parser("create", help="make a runner's token (printed once)")
    created.add_argument("runner", help="the runner's name (SHIPWAY_RUNNER_NAME)")
    created.set_defaults(api=runner_token_create)
    tokens_sub.add_parser("list", help="list runners' tokens").set_defaults(api=runner_token_list)
    revoked = tokens_sub.add_parser("revoke", help="revoke a runner's token at once")
    revoked.add_argument("token_id", type=int)
    revoked.set_defaults(api=runner_token_revoke)
