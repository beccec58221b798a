"""A Docker Engine of a test's own, to stop and start again under a runner without
disturbing the machine's engine, which other tests share.

It runs in network and mount namespaces of its own (``unshare``). That is not
optional: a dockerd started with ``--bridge none`` deletes the ``docker0``
interface of the network namespace it starts in, and in the host's that broke every
other container on the machine (seen here). In its own namespaces it sees only its
own interfaces, and its mounts stay out of the host's table (they go with it). Its
socket, data, exec root and pid file are under one short folder (unix socket paths
are limited to 108 bytes); it never touches iptables. Its containers have no
network, which shell jobs do not need.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import docker

from tests.support.services import wait_until


@dataclass
class DockerEngine:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sw-d", dir="/tmp")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.root}/docker.sock"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url)

    def start(self) -> None:
        """Start it (again, after ``stop``: images and containers stay)."""
        config = self.root / "daemon.json"
        config.write_text("{}\n")  # not the machine's /etc/docker/daemon.json
        with open(self.root / "dockerd.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    *("unshare", "--net", "--mount", "--propagation", "private", "--"),
                    *("dockerd", "--host", self.url, "--config-file", str(config)),
                    *("--data-root", str(self.root / "data")),
                    *("--exec-root", str(self.root / "exec")),
                    *("--pidfile", str(self.root / "docker.pid")),
                    *("--bridge", "none", "--iptables=false", "--ip-forward=false"),
                    *("--ip-masq=false", "--userland-proxy=false"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._answers, 60, "a dockerd of the test's own", pause=0.2)

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"dockerd exited:\n{(self.root / 'dockerd.log').read_text()}")
        # Plain HTTP on the socket: the SDK's client asks for the API version as it
        # is made, and leaves a socket open when that fails.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(5)
            try:
                connection.connect(str(self.root / "docker.sock"))
                connection.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                answer = connection.recv(64)
            except OSError:
                return False
        return answer.startswith(b"HTTP/1.") and b" 200 " in answer

    def stop(self) -> None:
        """A clean stop, as ``systemctl stop docker`` does: dockerd stops its
        containers (SIGTERM, then SIGKILL after 10 s) and its containerd, then exits."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def remove(self) -> None:
        """Stop it and remove everything it kept."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
