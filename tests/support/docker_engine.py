"""A Docker Engine of a test's own, to stop and start again under a runner without
disturbing the machine's engine, which other tests share.

It runs in network and mount namespaces of its own. That is not optional: a dockerd
started with ``--bridge none`` deletes the ``docker0`` interface of the network
namespace it starts in, and in the host's that broke every other container on the
machine (seen here). In its own namespaces it sees only its own interfaces, and its
mounts stay out of the host's table. The namespaces are held by a process of their
own (``unshare ... sleep``) and each dockerd enters them (``nsenter``), so a dockerd
started again after a ``kill -9`` finds what the killed one left (containerd's
shims, their containers, their mounts) where a restarted engine on a host finds it,
and cleans it up as such. Its socket, data, exec root and pid file are under one
short folder (unix socket paths are limited to 108 bytes); it never touches
iptables. Its containers have no network, which shell jobs do not need.
"""

from __future__ import annotations

import contextlib
import os
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
    process: subprocess.Popen[bytes] | None = None  # dockerd (nsenter executes it)
    holder: subprocess.Popen[bytes] | None = None  # holds its namespaces: see above

    @property
    def url(self) -> str:
        return f"unix://{self.root}/docker.sock"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url)

    def start(self) -> None:
        """Start it (again, after ``stop``: images and containers stay)."""
        config = self.root / "daemon.json"
        config.write_text("{}\n")  # not the machine's /etc/docker/daemon.json
        holder = self._namespaces()
        with open(self.root / "dockerd.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    *("nsenter", f"--target={holder}", "--net", "--mount", "--"),
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

    def _namespaces(self) -> int:
        """The pid of the process holding the engine's namespaces, started the first
        time. Never the host's namespaces: dockerd starts only once the holder's
        are apart from this process's (``unshare`` made them and executed ``sleep``)."""
        if self.holder is None:
            self.holder = subprocess.Popen(
                [*("unshare", "--net", "--mount", "--propagation", "private"), "sleep", "inf"],
                start_new_session=True,
            )
        holder = self.holder

        def apart() -> bool:
            if holder.poll() is not None:
                raise RuntimeError(f"unshare exited with {holder.returncode}")
            proc = Path(f"/proc/{holder.pid}")
            try:
                executed = (proc / "comm").read_text().strip() == "sleep"
                return executed and all(
                    os.readlink(proc / "ns" / kind) != os.readlink(f"/proc/self/ns/{kind}")
                    for kind in ("net", "mnt")
                )
            except FileNotFoundError:
                return False

        wait_until(apart, 30, "namespaces of the engine's own", pause=0.05)
        return holder.pid

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

    def kill(self) -> None:
        """``kill -9`` dockerd, as a crash or the OOM killer does: the API socket stops
        answering, the job's container and its shim live on. Returns once the
        containerd dockerd started has ended too (the kernel signals it when dockerd
        dies): a dockerd started while it ends finds it and fails to reach it."""
        if self.process is None or self.process.poll() is not None:
            return
        containerd = self.root / "exec" / "containerd" / "containerd.pid"
        pid = int(containerd.read_text()) if containerd.exists() else None
        self.process.kill()
        self.process.wait()
        if pid is not None:
            wait_until(lambda: not Path(f"/proc/{pid}").exists(), 60, "containerd's end")

    def remove(self) -> None:
        """Stop it and remove everything it kept. An engine killed and not started
        again is started and stopped first, so that it ends the containers the
        killed one left running; whatever still lives in its namespaces then is
        killed with them."""
        try:
            if self.process is not None and self.process.poll() is not None:
                self.start()
        finally:
            self.stop()
            if self.holder is not None:
                self._kill_the_rest(self.holder)
            shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def _kill_the_rest(holder: subprocess.Popen[bytes]) -> None:
        """Kill, by pid, each process left in the holder's network namespace (only
        this engine's: its containerd, its shims) and their descendants (the
        containers, each in namespaces of its own), then the holder."""
        namespace = os.readlink(f"/proc/{holder.pid}/ns/net") if holder.poll() is None else None
        # Never the host's: a holder that has not made its namespace yet has no
        # processes of the engine's either.
        if namespace is not None and namespace != os.readlink("/proc/self/ns/net"):
            parents: dict[int, int] = {}
            inside: set[int] = set()
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit() or int(entry.name) == holder.pid:
                    continue
                try:
                    # "pid (comm) state ppid ...", comm may hold spaces and ")".
                    parents[int(entry.name)] = int(
                        (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                    )
                    if os.readlink(entry / "ns" / "net") == namespace:
                        inside.add(int(entry.name))
                except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
                    continue
            doomed = set(inside)
            while True:
                more = {pid for pid, parent in parents.items() if parent in doomed} - doomed
                if not more:
                    break
                doomed |= more
            for pid in doomed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        holder.kill()
        holder.wait()
