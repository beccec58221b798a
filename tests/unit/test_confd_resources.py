"""Resource files: the shipped one loads; each mistake is named by file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from confd.cli import CONFDIR, main
from confd.errors import ResourceError
from confd.resources import load_resource, load_resources

VALID = """
[template]
src = "site.j2"
dest = "/etc/nginx/conf.d/site.conf"
keys = ["/", "/shipway/"]
mode = "0640"
check_cmd = "nginx -t -q"
reload_cmd = "nginx -s reload"

[vars]
listen = 8080
"""


@pytest.fixture
def confdir(tmp_path: Path) -> Path:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "site.j2").write_text("")
    return tmp_path


def write(confdir: Path, text: str) -> Path:
    path = confdir / "conf.d" / "site.toml"
    path.write_text(text)
    return path


def test_the_shipped_resource_loads() -> None:
    (resource,) = load_resources(CONFDIR)
    assert resource.src == CONFDIR / "templates" / "nginx-upstreams.conf.j2"
    assert resource.dest == Path("/etc/nginx/conf.d/shipway-upstreams.conf")
    assert resource.keys == ("/",)
    assert resource.variables == {"listen": 8080}


def test_a_valid_resource(confdir: Path) -> None:
    path = write(confdir, VALID)
    resource = load_resource(path, confdir / "templates")
    assert resource.mode == 0o640
    assert resource.keys == ("/", "/shipway/")
    assert resource.check_cmd == "nginx -t -q"
    assert resource.name == "site.toml"


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (("[template]", "[templates]"), "templates", "unknown table"),
        (('src = "site.j2"\n', ""), "template.src", "is required"),
        (('src = "site.j2"', 'src = "other.j2"'), "template.src", "does not exist"),
        (('src = "site.j2"', 'src = "../conf.d/site.toml"'), "template.src", "outside"),
        (('dest = "/etc', 'dest = "etc'), "template.dest", "absolute"),
        (('keys = ["/", "/shipway/"]', "keys = []"), "template.keys", "non-empty list"),
        (('keys = ["/", "/shipway/"]', 'keys = ["shipway"]'), "template.keys", "starting with /"),
        (('mode = "0640"', "mode = 640"), "template.mode", "octal"),
        (('mode = "0640"', 'mode = "0999"'), "template.mode", "octal"),
        (('check_cmd = "nginx -t -q"', 'check_cmd = ""'), "template.check_cmd", "non-empty"),
        (('reload_cmd = "nginx', 'reload_command = "nginx'), "template.reload_command", "unknown"),
    ],
)
def test_a_mistake_names_the_file_and_the_key(
    confdir: Path, change: tuple[str, str], key: str, words: str
) -> None:
    old, new = change
    assert old in VALID
    path = write(confdir, VALID.replace(old, new))
    with pytest.raises(ResourceError) as caught:
        load_resource(path, confdir / "templates")
    where = f"{path}: {key}: " if key else f"{path}: "
    assert str(caught.value).startswith(where)
    assert words in str(caught.value)
    assert caught.value.field == key


def test_vars_must_be_a_table(confdir: Path) -> None:
    text = "vars = 1\n" + VALID.replace("[vars]\nlisten = 8080", "")
    path = write(confdir, text)
    with pytest.raises(ResourceError, match=r"site\.toml: vars: must be a table"):
        load_resource(path, confdir / "templates")


def test_invalid_toml_names_the_file(confdir: Path) -> None:
    path = write(confdir, "[template\n")
    with pytest.raises(ResourceError, match=r"site\.toml: is not valid TOML"):
        load_resource(path, confdir / "templates")


def test_a_confdir_without_resources(tmp_path: Path) -> None:
    with pytest.raises(ResourceError, match="no resource files"):
        load_resources(tmp_path)


def test_the_cli_exits_2_with_the_message(
    confdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(confdir, VALID.replace('mode = "0640"', "mode = 640"))
    assert main(["--confdir", str(confdir), "--onetime"]) == 2
    error = capsys.readouterr().err
    assert "site.toml: template.mode:" in error
