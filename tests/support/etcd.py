"""A real etcd (Debian's etcd-server) per test, on free loopback ports, with its data
under the test's directory; stopped and removed afterwards, even when a test fails.

    with running_etcd(tmp_path / "etcd") as etcd:
        etcd.client().put("/hello_STAGING/127.0.0.1-20000", "127.0.0.1:20000")
        etcd.stop()      # etcd away: what does the agent do?
        etcd.start()     # back on the same ports and data
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import Etcd3Exception

from tests.support.services import free_port, stop_process

START_TIMEOUT = 15.0


@dataclass
class EtcdServer:
    root: Path
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    also_on: str | None = None  # a second address it listens on, e.g. Docker's bridge

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def client(self) -> Etcd3Client:
        return Etcd3Client("127.0.0.1", self.client_port, timeout=5)

    def start(self) -> None:
        """Start (or start again, on the same ports and data) and wait until it answers."""
        assert self.process is None or self.process.poll() is not None, "etcd already runs"
        self.root.mkdir(parents=True, exist_ok=True)
        client_url = self.url
        listen = client_url
        if self.also_on:
            listen += f",http://{self.also_on}:{self.client_port}"
        peer_url = f"http://127.0.0.1:{self.peer_port}"
        with open(self.root / "etcd.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    "etcd",
                    "--name=test",
                    f"--data-dir={self.root / 'data'}",
                    f"--listen-client-urls={listen}",
                    f"--advertise-client-urls={client_url}",
                    f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}",
                    f"--initial-cluster=test={peer_url}",
                    "--logger=zap",
                    "--log-level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = self.client()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"etcd exited: {(self.root / 'etcd.log').read_text()[-2000:]}")
            try:
                client.status()
                return
            except (Etcd3Exception, requests.RequestException):
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"etcd did not answer within {START_TIMEOUT}s")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@contextmanager
def running_etcd(root: Path, also_on: str | None = None) -> Iterator[EtcdServer]:
    server = EtcdServer(root, also_on=also_on)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
