"""From etcd keys to the services a template renders: pure, no etcd, no clock.

Key layout (written by the registrar and the release code)::

    /<app>_<ENV>/<ip>-<port>                     = "<ip>:<port>"    an instance
    /shipway/weights/<app>_<ENV>/<ip>-<port>     = "0".."100"       absent: 1
    /shipway/routes/<app>_<ENV>                  = {"hosts": [...], "path": "/x/"}

Values go into nginx's configuration verbatim, so each is validated here and a
value that does not fit is left out with a warning rather than rendered.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_SERVICE = r"(?P<app>[a-z0-9][a-z0-9-]*)_(?P<env>[A-Z][A-Z0-9]*)"
INSTANCE_KEY = re.compile(rf"^/{_SERVICE}/(?P<instance>[^/]+)$")
WEIGHT_KEY = re.compile(rf"^/shipway/weights/{_SERVICE}/(?P<instance>[^/]+)$")
ROUTE_KEY = re.compile(rf"^/shipway/routes/{_SERVICE}$")
_HOST = re.compile(r"^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")
_PATH = re.compile(r"^/[A-Za-z0-9._~%/-]*$")
DEFAULT_WEIGHT = 1
MAX_WEIGHT = 100


@dataclass(frozen=True, order=True)
class Server:
    """One upstream server; weight 0 means it takes no traffic (rendered ``down``)."""

    address: str
    weight: int = DEFAULT_WEIGHT


@dataclass(frozen=True)
class Service:
    """An application in one environment, as a template sees it."""

    name: str  # hello_STAGING
    app: str
    env: str
    servers: tuple[Server, ...] = ()
    hosts: tuple[str, ...] = ()
    path: str | None = None

    @property
    def upstream(self) -> str:
        # The name's characters are [a-z0-9-_A-Z] by the key pattern: safe in nginx.
        return self.name

    @property
    def routed(self) -> bool:
        return bool(self.hosts) or self.path is not None


@dataclass(frozen=True)
class Catalogue:
    """The services found under the keys, and what was left out and why."""

    services: tuple[Service, ...]
    warnings: tuple[str, ...] = ()

    @property
    def server_count(self) -> int:
        return sum(len(service.servers) for service in self.services)


@dataclass
class _Draft:
    app: str
    env: str
    addresses: dict[str, str] = field(default_factory=dict)  # instance id -> address
    weights: dict[str, int] = field(default_factory=dict)
    hosts: tuple[str, ...] = ()
    path: str | None = None


def build_services(kv: Mapping[str, str]) -> Catalogue:
    """Services sorted by name, servers by address. A service exists when it has an
    instance or a route; the all-zero weight rule is applied here."""
    drafts: dict[str, _Draft] = {}
    warnings: list[str] = []

    def draft(app: str, env: str) -> _Draft:
        return drafts.setdefault(f"{app}_{env}", _Draft(app, env))

    for key, value in sorted(kv.items()):
        if match := INSTANCE_KEY.fullmatch(key):
            address = parse_address(value)
            if address is None:
                warnings.append(f"{key}: {value!r} is not <ip>:<port>; instance left out")
                continue
            draft(match["app"], match["env"]).addresses[match["instance"]] = address
        elif match := WEIGHT_KEY.fullmatch(key):
            weight = parse_weight(value)
            if weight is None:
                warnings.append(f"{key}: {value!r} is not an integer 0..100; weight 1 used")
                continue
            draft(match["app"], match["env"]).weights[match["instance"]] = weight
        elif match := ROUTE_KEY.fullmatch(key):
            route = parse_route(value)
            if isinstance(route, str):
                warnings.append(f"{key}: {route}; service left without a route")
                continue
            target = draft(match["app"], match["env"])
            target.hosts, target.path = route

    services = [_service(name, draft, warnings) for name, draft in sorted(drafts.items())]
    # A weight-only service (no instance, no route) is not a service.
    services = [service for service in services if service.servers or service.routed]
    return Catalogue(tuple(_unique_paths(services, warnings)), tuple(warnings))


def _service(name: str, draft: _Draft, warnings: list[str]) -> Service:
    servers = sorted(
        Server(address, draft.weights.get(instance, DEFAULT_WEIGHT))
        for instance, address in draft.addresses.items()
    )
    if servers and all(server.weight == 0 for server in servers):
        # Weights set to drain everything would take the whole service down.
        warnings.append(f"{name}: every server has weight 0; all given weight 1 instead")
        servers = [Server(server.address, DEFAULT_WEIGHT) for server in servers]
    return Service(name, draft.app, draft.env, tuple(servers), draft.hosts, draft.path)


def _unique_paths(services: list[Service], warnings: list[str]) -> list[Service]:
    """Two host-less routes on one path would be two identical nginx locations,
    which ``nginx -t`` refuses: the first by name keeps it."""
    taken: set[str] = set()
    kept = []
    for service in services:
        path = service.path
        if not service.hosts and path is not None:
            if path in taken:
                warnings.append(f"{service.name}: path {path} is already routed")
                service = Service(service.name, service.app, service.env, service.servers)
            else:
                taken.add(path)
        kept.append(service)
    return kept


def parse_address(value: str) -> str | None:
    """``ip:port`` (IPv6 as ``[ip]:port``) normalised, or None."""
    host, _, port = value.strip().rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return None
    try:
        if host.startswith("[") and host.endswith("]"):
            return f"[{ipaddress.IPv6Address(host[1:-1])}]:{int(port)}"
        return f"{ipaddress.IPv4Address(host)}:{int(port)}"
    except ValueError:
        return None


def parse_weight(value: str) -> int | None:
    text = value.strip()
    if not text.isdigit() or int(text) > MAX_WEIGHT:
        return None
    return int(text)


def parse_route(value: str) -> tuple[tuple[str, ...], str | None] | str:
    """(hosts, path), or the reason the route is refused."""
    try:
        route = json.loads(value)
    except ValueError:
        return "not JSON"
    if not isinstance(route, dict):
        return "not a JSON object"
    hosts = route.get("hosts", [])
    path = route.get("path")
    if not isinstance(hosts, list) or not all(
        isinstance(host, str) and _HOST.fullmatch(host) for host in hosts
    ):
        return "hosts must be a list of host names"
    if path is not None and not (isinstance(path, str) and _PATH.fullmatch(path)):
        return "path must start with / and hold only URL path characters"
    return tuple(hosts), path
