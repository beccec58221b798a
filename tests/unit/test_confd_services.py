"""From etcd keys to services: instances, weights (with the all-zero rule), routes,
and the empty grace. Plain dicts and a hand-held clock: no etcd."""

from __future__ import annotations

import json

from confd.grace import GraceMemory, apply_grace
from confd.services import Server, Service, build_services

HELLO = "/hello_STAGING"


def test_instances_become_sorted_services_and_servers() -> None:
    catalogue = build_services(
        {
            f"{HELLO}/127.0.0.1-20001": "127.0.0.1:20001",
            f"{HELLO}/127.0.0.1-20000": "127.0.0.1:20000",
            "/api-2_PRODUCTION/10.0.0.1-80": "10.0.0.1:80",
            "/locks/x": "ignored",
            "/shipway/other": "ignored",
        }
    )
    assert [service.name for service in catalogue.services] == ["api-2_PRODUCTION", "hello_STAGING"]
    hello = catalogue.services[1]
    assert (hello.app, hello.env, hello.upstream) == ("hello", "STAGING", "hello_STAGING")
    assert hello.servers == (Server("127.0.0.1:20000", 1), Server("127.0.0.1:20001", 1))
    assert not hello.routed
    assert catalogue.server_count == 3
    assert catalogue.warnings == ()


def test_an_invalid_address_is_left_out_with_a_warning() -> None:
    catalogue = build_services(
        {f"{HELLO}/a": "127.0.0.1:80; }", f"{HELLO}/b": "[::1]:8080", f"{HELLO}/c": "x:99999"}
    )
    assert catalogue.services[0].servers == (Server("[::1]:8080"),)
    assert len(catalogue.warnings) == 2


def test_weights() -> None:
    kv = {
        f"{HELLO}/127.0.0.1-1": "127.0.0.1:1",
        f"{HELLO}/127.0.0.1-2": "127.0.0.1:2",
        f"{HELLO}/127.0.0.1-3": "127.0.0.1:3",
        f"/shipway/weights{HELLO}/127.0.0.1-1": "30",
        f"/shipway/weights{HELLO}/127.0.0.1-2": "0",
        f"/shipway/weights{HELLO}/127.0.0.1-3": "101",
        "/shipway/weights/other_STAGING/127.0.0.1-9": "5",  # no instance: no service
    }
    catalogue = build_services(kv)
    (service,) = catalogue.services
    assert [server.weight for server in service.servers] == [30, 0, 1]
    assert catalogue.warnings == (
        f"/shipway/weights{HELLO}/127.0.0.1-3: '101' is not an integer 0..100; weight 1 used",
    )


def test_all_zero_weights_become_equal_shares() -> None:
    kv = {
        f"{HELLO}/127.0.0.1-1": "127.0.0.1:1",
        f"{HELLO}/127.0.0.1-2": "127.0.0.1:2",
        f"/shipway/weights{HELLO}/127.0.0.1-1": "0",
        f"/shipway/weights{HELLO}/127.0.0.1-2": "0",
    }
    catalogue = build_services(kv)
    assert [server.weight for server in catalogue.services[0].servers] == [1, 1]
    assert "every server has weight 0" in catalogue.warnings[0]


def test_routes() -> None:
    kv = {
        f"{HELLO}/127.0.0.1-1": "127.0.0.1:1",
        f"/shipway/routes{HELLO}": json.dumps({"hosts": ["hello.staging.example"], "path": "/h/"}),
        "/shipway/routes/web_STAGING": json.dumps({"path": "/web/"}),  # no instance yet
        "/shipway/routes/bad_STAGING": json.dumps({"path": "/x/ { return 200; }"}),
        "/shipway/routes/worse_STAGING": "{not json",
    }
    catalogue = build_services(kv)
    hello, web = catalogue.services
    assert hello.hosts == ("hello.staging.example",)
    assert hello.path == "/h/"
    assert (web.servers, web.hosts, web.path) == ((), (), "/web/")
    assert web.routed
    assert len(catalogue.warnings) == 2  # the bad routes: no service from them


def test_two_hostless_routes_on_one_path_keep_the_first() -> None:
    route = json.dumps({"path": "/same/"})
    catalogue = build_services(
        {"/shipway/routes/a_STAGING": route, "/shipway/routes/b_STAGING": route}
    )
    assert [service.path for service in catalogue.services] == ["/same/", None]
    assert "already routed" in catalogue.warnings[0]


def service(
    servers: tuple[Server, ...] = (Server("10.0.0.1:80"),), path: str | None = None
) -> Service:
    return Service("hello_STAGING", "hello", "STAGING", servers, (), path)


def test_grace_keeps_the_last_servers_until_it_ends() -> None:
    had = service(path="/h/")
    services, memory = apply_grace([had], GraceMemory(), now=100.0, grace=10.0)
    assert services == [had]
    assert memory.deadline(10.0) is None

    emptied = service((), path="/h/")
    services, memory = apply_grace([emptied], memory, now=101.0, grace=10.0)
    assert services == [had]
    assert memory.deadline(10.0) == 111.0

    services, memory = apply_grace([emptied], memory, now=110.9, grace=10.0)
    assert services == [had]

    services, memory = apply_grace([emptied], memory, now=111.0, grace=10.0)
    assert services == [emptied]  # rendered with no servers: the template answers 503
    assert memory == GraceMemory()


def test_grace_covers_a_service_gone_from_etcd_entirely() -> None:
    had = service()
    _, memory = apply_grace([had], GraceMemory(), now=0.0, grace=5.0)
    services, memory = apply_grace([], memory, now=1.0, grace=5.0)
    assert services == [had]
    services, memory = apply_grace([], memory, now=6.0, grace=5.0)
    assert services == []


def test_servers_back_within_the_grace_end_it() -> None:
    had = service()
    _, memory = apply_grace([had], GraceMemory(), now=0.0, grace=5.0)
    _, memory = apply_grace([], memory, now=1.0, grace=5.0)
    back = service((Server("10.0.0.2:80"),))
    services, memory = apply_grace([back], memory, now=2.0, grace=5.0)
    assert services == [back]
    assert memory.deadline(5.0) is None


def test_no_grace() -> None:
    _, memory = apply_grace([service()], GraceMemory(), now=0.0, grace=0.0)
    services, _ = apply_grace([service((), path="/h/")], memory, now=0.0, grace=0.0)
    assert services == [service((), path="/h/")]
