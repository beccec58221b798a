"""The shipped template, and what a failed render raises. nginx itself checks the
output in tests/integration/test_confd_agent.py."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from confd.cli import CONFDIR
from confd.errors import RenderError
from confd.render import Template, under
from confd.resources import Resource, load_resources
from confd.services import Server, Service, build_services


@pytest.fixture
def shipped() -> Template:
    (resource,) = load_resources(CONFDIR)
    return Template(resource)


def test_the_shipped_template(shipped: Template) -> None:
    kv = {
        "/hello_STAGING/127.0.0.1-1": "127.0.0.1:1",
        "/hello_STAGING/127.0.0.1-2": "127.0.0.1:2",
        "/shipway/weights/hello_STAGING/127.0.0.1-2": "0",
        "/shipway/routes/hello_STAGING": json.dumps({"hosts": ["h.example"], "path": "/h/"}),
        "/api_PRODUCTION/127.0.0.1-3": "127.0.0.1:3",
        "/shipway/routes/api_PRODUCTION": json.dumps({"path": "/api/"}),
        "/unrouted_STAGING/127.0.0.1-4": "127.0.0.1:4",
    }
    catalogue = build_services(kv)
    text = shipped.render(catalogue.services, kv)
    assert text.count("\nupstream ") == 3
    assert "server 127.0.0.1:1 weight=1" in text
    assert "server 127.0.0.1:2 down" in text
    assert "server_name h.example;" in text
    assert "location /h/ {" in text
    assert "listen 8080 default_server;" in text
    assert "location /api/ {" in text
    assert text.count("proxy_next_upstream error timeout http_502 http_503;") == 2
    assert "location / {\n        return 404;" in text


def test_a_service_without_servers_gets_a_503_not_an_empty_upstream(shipped: Template) -> None:
    empty = Service("hello_STAGING", "hello", "STAGING", (), ("h.example",), None)
    text = shipped.render([empty], {})
    assert "\nupstream " not in text
    assert "proxy_pass" not in text
    assert "location / {\n        return 503;" in text


def test_an_undefined_name_is_a_render_error(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("{{ vars.listen }} {{ vars.missing }}\n")
    resource = Resource(tmp_path / "r.toml", tmp_path / "t.j2", Path("/x"), ("/",))
    with pytest.raises(RenderError, match=r"t\.j2: .*missing"):
        Template(replace(resource, variables={"listen": 1})).render([], {})


def test_a_syntax_error_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("ok\n{% for x in %}\n")
    resource = Resource(tmp_path / "r.toml", tmp_path / "t.j2", Path("/x"), ("/",))
    with pytest.raises(RenderError, match=r"t\.j2: line 2:"):
        Template(resource).render([], {})


def test_kv_holds_only_the_resource_keys(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("{{ kv | tojson }}")
    resource = Resource(tmp_path / "r.toml", tmp_path / "t.j2", Path("/x"), ("/a/",))
    assert Template(resource).render([], {"/a/1": "x", "/b/1": "y"}) == '{"/a/1": "x"}'
    assert under({"/a/2": "", "/a/1": "", "/ab": ""}, ["/a/"]) == {"/a/1": "", "/a/2": ""}


def test_servers_render_in_order(shipped: Template) -> None:
    servers = (Server("127.0.0.1:1", 5), Server("127.0.0.1:2", 1))
    text = shipped.render([Service("a_X", "a", "X", servers)], {})
    assert text.index("127.0.0.1:1 weight=5") < text.index("127.0.0.1:2 weight=1")
