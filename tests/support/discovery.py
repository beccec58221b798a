"""What the service discovery tests and benchmark share: an application that
registers itself, a confd folder for a test's nginx, steady load through nginx
that counts what each request got, and ``shipway confd`` run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from confd.cli import CONFDIR
from tests.support.etcd import EtcdServer
from tests.support.nginx import NginxServer
from tests.support.services import stop_process, wait_until

GRACE = 20.0  # shipway confd's --empty-grace in tests: long beside a check, short for a test


def registering_web(content: str, instances: int = 2) -> dict[str, Any]:
    return {
        "instances": instances,
        "ports": [{"container": 8000}],
        "command": ["httpd", "-f", "-p", "8000", "-h", "/srv/www"],
        "files": [{"path": "/srv/www/index.html", "content": content}],
        "health": {
            "http": {"path": "/", "port": 8000},
            "interval": 1,
            "timeout": 5,  # a busy machine answers slowly: only a hang should fail it
            "retries": 3,
        },
        "discovery": {"path": "/", "drain": 1},
    }


class Load:
    """Requests through nginx, one after the other on fresh connections, from two
    threads, until stopped; what each answered (or why it failed)."""

    def __init__(self, nginx: NginxServer) -> None:
        self.nginx = nginx
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                answer = self.nginx.get("/")
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
                continue
            if answer.status_code == 200:
                self.answers[answer.text] += 1
            else:
                self.failures.append(f"{answer.status_code}: {answer.text[:100]}")


def make_confdir(root: Path, nginx: NginxServer, extra_template: str = "") -> Path:
    """The shipped template, and a resource pointing at this test's nginx."""
    (root / "conf.d").mkdir(parents=True)
    (root / "templates").mkdir()
    shipped = (CONFDIR / "templates" / "nginx-upstreams.conf.j2").read_text()
    (root / "templates" / "upstreams.conf.j2").write_text(shipped + extra_template)
    (root / "conf.d" / "upstreams.toml").write_text(
        "[template]\n"
        'src = "upstreams.conf.j2"\n'
        f"dest = {json.dumps(str(nginx.include))}\n"
        'keys = ["/"]\n'
        'mode = "0640"\n'
        f"check_cmd = {json.dumps(nginx.check_cmd)}\n"
        f"reload_cmd = {json.dumps(nginx.reload_cmd)}\n"
        "[vars]\n"
        f"listen = {json.dumps(nginx.listen)}\n"
    )
    return root


@dataclass
class ConfdProcess:
    """``shipway confd`` as a real process, reporting to etcd as ``name``."""

    process: subprocess.Popen[bytes]
    name: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def running_confd(
    confdir: Path, etcd: EtcdServer, name: str, empty_grace: float, log_path: Path
) -> Iterator[ConfdProcess]:
    """Start the agent and wait for its first report to etcd (it has rendered and
    nginx has reloaded); stopped with SIGTERM after, even when the test fails."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHIPWAY_")}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli.main",
                "confd",
                "--etcd",
                etcd.url,
                "--confdir",
                str(confdir),
                "--name",
                name,
                "--empty-grace",
                f"{empty_grace:g}",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    agent = ConfdProcess(process, name, log_path)
    client = etcd.client()

    def reported() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"shipway confd exited:\n{agent.log()}")
        return bool(client.get(f"/shipway/agents/{name}"))

    try:
        wait_until(reported, 30, "shipway confd's first report to etcd", pause=0.1)
        yield agent
    finally:
        stop_process(process)
