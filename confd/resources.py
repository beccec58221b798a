"""Resource files: what to render, from which etcd keys, to where, and how to
check and reload it. The format is confd's, in TOML::

    [template]
    src = "nginx-upstreams.conf.j2"     # a file under <confdir>/templates/
    dest = "/etc/nginx/conf.d/shipway-upstreams.conf"
    keys = ["/"]                        # etcd prefixes to read and watch
    mode = "0644"                       # optional, octal
    check_cmd = "nginx -t -q"           # optional; {{src}} = the file checked
    reload_cmd = "nginx -s reload"      # optional

    [vars]                              # optional, passed to the template as vars
    listen = 8080

Every resource is checked when loaded, so a mistake stops the agent at start with
a message naming the file and the key, not at the first etcd change.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confd.errors import ResourceError

_TEMPLATE_KEYS = {"src", "dest", "keys", "mode", "check_cmd", "reload_cmd"}
_MODE = re.compile(r"^0?[0-7]{3}$")


@dataclass(frozen=True)
class Resource:
    """One ``conf.d/*.toml`` file, validated; ``src`` and ``dest`` are absolute."""

    path: Path
    src: Path
    dest: Path
    keys: tuple[str, ...]
    mode: int | None = None
    check_cmd: str | None = None
    reload_cmd: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name


def load_resources(confdir: Path) -> list[Resource]:
    """Every ``<confdir>/conf.d/*.toml``, in name order; at least one must exist."""
    files = sorted((confdir / "conf.d").glob("*.toml"))
    if not files:
        raise ResourceError(str(confdir / "conf.d"), "", "no resource files (*.toml) found")
    return [load_resource(path, confdir / "templates") for path in files]


def load_resource(path: Path, templates: Path) -> Resource:
    where = str(path)
    try:
        document = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ResourceError(where, "", f"cannot be read ({exc.strerror})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ResourceError(where, "", f"is not valid TOML ({exc})") from exc

    unknown = sorted(set(document) - {"template", "vars"})
    if unknown:
        raise ResourceError(where, unknown[0], "unknown table (expected [template] and [vars])")
    table = document.get("template")
    if not isinstance(table, dict):
        raise ResourceError(where, "template", "a [template] table is required")
    unknown = sorted(set(table) - _TEMPLATE_KEYS)
    if unknown:
        raise ResourceError(where, f"template.{unknown[0]}", "unknown key")
    variables = document.get("vars", {})
    if not isinstance(variables, dict):
        raise ResourceError(where, "vars", "must be a table")

    return Resource(
        path=path,
        src=_src(where, table, templates),
        dest=_dest(where, table),
        keys=_keys(where, table),
        mode=_mode(where, table),
        check_cmd=_command(where, table, "check_cmd"),
        reload_cmd=_command(where, table, "reload_cmd"),
        variables=variables,
    )


def _text(where: str, table: dict[str, Any], key: str) -> str:
    if key not in table:
        raise ResourceError(where, f"template.{key}", "is required")
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise ResourceError(where, f"template.{key}", "must be a non-empty string")
    return value


def _src(where: str, table: dict[str, Any], templates: Path) -> Path:
    name = _text(where, table, "src")
    src = (templates / name).resolve()
    if not src.is_relative_to(templates.resolve()):
        raise ResourceError(where, "template.src", f"{name!r} is outside {templates}")
    if not src.is_file():
        raise ResourceError(where, "template.src", f"template {src} does not exist")
    return src


def _dest(where: str, table: dict[str, Any]) -> Path:
    dest = _text(where, table, "dest")
    if not dest.startswith("/") or dest.endswith("/") or ".." in dest.split("/"):
        raise ResourceError(where, "template.dest", f"{dest!r} must be an absolute file path")
    return Path(dest)


def _keys(where: str, table: dict[str, Any]) -> tuple[str, ...]:
    keys = table.get("keys")
    if keys is None:
        raise ResourceError(where, "template.keys", "is required")
    if not isinstance(keys, list) or not keys:
        raise ResourceError(where, "template.keys", "must be a non-empty list of etcd prefixes")
    for key in keys:
        if not isinstance(key, str) or not key.startswith("/"):
            raise ResourceError(where, "template.keys", f"{key!r} must be a string starting with /")
    return tuple(keys)


def _mode(where: str, table: dict[str, Any]) -> int | None:
    mode = table.get("mode")
    if mode is None:
        return None
    if not isinstance(mode, str) or not _MODE.fullmatch(mode):
        raise ResourceError(where, "template.mode", 'must be an octal string like "0644"')
    return int(mode, 8)


def _command(where: str, table: dict[str, Any], key: str) -> str | None:
    if key not in table:
        return None
    return _text(where, table, key)
