"""``shipway confd`` as a real process through 60 s of etcd killed (kill -9): nginx
keeps serving what it served, the status file says etcd is away, and once etcd is
back on its port the agent reads again and follows new changes, never restarted."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.integration.test_confd_agent import ROUTE, SERVICE, register, routed_to
from tests.support.discovery import make_confdir
from tests.support.etcd import EtcdServer
from tests.support.nginx import NginxServer, running_backends
from tests.support.services import stop_process, wait_until

OUTAGE_SECONDS = 60
ROUTED = 30.0  # generous bound of every wait for nginx to serve what etcd holds


def status(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {}  # not written yet, or being replaced


def test_the_agent_process_waits_out_etcd_killed_for_a_minute(
    tmp_path: Path, etcd: EtcdServer, nginx: NginxServer
) -> None:
    status_file = tmp_path / "status.json"
    confdir = make_confdir(tmp_path / "confd", nginx)
    with running_backends("one", "two") as (one, two):
        etcd.client().put(f"/shipway/routes/{SERVICE}", ROUTE)
        register(etcd, one)
        log_path = tmp_path / "confd.log"
        command = [sys.executable, "-m", "server.cli.main", "confd", "--etcd", etcd.url]
        command += ["--confdir", str(confdir), "--status-file", str(status_file)]
        with open(log_path, "ab") as log:
            agent = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(lambda: routed_to(nginx, {"one"}), ROUTED, "one routed")
            assert etcd.process is not None
            etcd.process.kill()  # kill -9: no goodbye to the watch streams
            etcd.process.wait()
            began = time.monotonic()
            wait_until(
                lambda: status(status_file).get("etcd_connected") is False,
                ROUTED,
                "the status saying etcd is away",
            )
            while time.monotonic() - began < OUTAGE_SECONDS:  # the outage itself
                assert routed_to(nginx, {"one"}), "nginx stopped serving during the outage"
                assert agent.poll() is None, log_path.read_text()
                time.sleep(5)
            etcd.start()
            back = time.monotonic()
            register(etcd, two)
            wait_until(lambda: routed_to(nginx, {"one", "two"}), ROUTED, "a change after it")
            recovered = time.monotonic() - back
            wait_until(
                lambda: status(status_file).get("etcd_connected") is True, ROUTED, "connected"
            )
            assert agent.poll() is None, log_path.read_text()
            assert "etcd unavailable" in log_path.read_text()
            print(f"etcd away {OUTAGE_SECONDS}s: routed a new instance {recovered:.1f}s after")
        finally:
            stop_process(agent)
