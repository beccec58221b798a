"""The systemd units in deploy/systemd: read line by line as systemd reads them, their
commands parsed by Shipway's own CLI parser, and checked by ``systemd-analyze verify``
where it is installed (it works offline; systemd itself cannot run here)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli.main import _parser

UNITS = Path(__file__).parents[2] / "deploy" / "systemd"
INSTALLED_AT = "/opt/shipway/.venv/bin/shipway"
COMMANDS = {
    "shipway-server.service": "serve",
    "shipway-runner@.service": "runner",
    "shipway-confd.service": "confd",
}
# The keys the units may use, per section; a typo would be ignored by systemd
# with a mere warning, so it fails here.
KEYS = {
    "Unit": {"Description", "Documentation", "Wants", "After", "StartLimitIntervalSec"},
    "Service": {
        "Type",
        "User",
        "Group",
        "EnvironmentFile",
        "RuntimeDirectory",
        "ExecStart",
        "Restart",
        "RestartSec",
        "KillMode",
        "TimeoutStopSec",
    },
    "Install": {"WantedBy"},
}
REPEATABLE = {"EnvironmentFile", "Wants", "After"}


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> keys -> values, as systemd reads a unit: comments start with # or
    ;, a key may repeat only where systemd appends (EnvironmentFile, After...)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        where = f"{path.name}:{number}"
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"{where}: no continuation lines, please"
        if line.startswith("["):
            assert line.endswith("]"), where
            name = line[1:-1]
            assert name in KEYS, f"{where}: no section {name} in a unit"
            assert name not in sections, f"{where}: section {name} twice"
            current = sections[name] = {}
            continue
        assert current is not None, f"{where}: a key before any section"
        key, equals, value = line.partition("=")
        key, value = key.strip(), value.strip()
        assert equals, f"{where}: not KEY=value"
        assert value, f"{where}: {key} has no value"
        section = next(name for name, keys in sections.items() if keys is current)
        assert key in KEYS[section], f"{where}: {key} does not belong in [{section}]"
        assert key in REPEATABLE or key not in current, f"{where}: {key} given twice"
        current.setdefault(key, []).append(value)
    return sections


@pytest.mark.parametrize("unit", sorted(COMMANDS))
def test_each_unit_restarts_its_process_and_reads_the_environment_file(unit: str) -> None:
    sections = read_unit(UNITS / unit)
    service = sections["Service"]
    assert service["Restart"] == ["on-failure"]
    assert 1 <= int(service["RestartSec"][0]) <= 30
    assert sections["Unit"]["StartLimitIntervalSec"] == ["0"]  # never gives up
    assert service["EnvironmentFile"][0] == "/etc/shipway/shipway.env"
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]
    (command,) = service["ExecStart"]
    program, *argv = shlex.split(command.replace("%i", "build").replace("%H", "host"))
    assert program == INSTALLED_AT
    args = _parser().parse_args(argv)  # exits (fails the test) on an unknown option
    assert args.command == COMMANDS[unit]


def test_the_runner_stops_warm_and_the_example_environment_names_real_settings() -> None:
    service = read_unit(UNITS / "shipway-runner@.service")["Service"]
    # SIGTERM to the worker alone: RQ lets the job finish; the job's own timeout
    # (an hour by default) passes before systemd kills anything.
    assert service["KillMode"] == ["mixed"]
    assert int(service["TimeoutStopSec"][0]) > 3600
    example = (UNITS / "shipway.env.example").read_text()
    names = [line.split("=", 1)[0] for line in example.splitlines() if line[:1].isalpha()]
    readme = (UNITS.parents[1] / "README.md").read_text()
    for name in names:
        assert f"`{name}`" in readme or f"{name}`" in readme, f"{name} is not in the README"


def test_systemd_analyze_verifies_them(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    shipway = Path(sys.executable).parent / "shipway"
    if not shipway.exists():
        pytest.skip(f"{shipway} is not installed: verify checks the command exists")
    for unit in COMMANDS:
        text = (UNITS / unit).read_text().replace(INSTALLED_AT, str(shipway))
        (tmp_path / unit).write_text(text)
    names = [str(tmp_path / name.replace("@.", "@build.")) for name in COMMANDS]
    checked = subprocess.run(
        [analyze, "verify", *names], capture_output=True, text=True, check=False, timeout=60
    )
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr
