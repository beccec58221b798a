"""A real nginx per test (Debian's), run in the foreground as a subprocess with its
prefix, pid file, logs and temp files under the test's directory, and tiny HTTP
backends that answer their own name. Everything is stopped and removed after,
even when a test fails.

    with running_nginx(tmp_path / "nginx", include=dest) as nginx:
        subprocess.run(nginx.check_cmd, shell=True)   # what a resource would run
        nginx.get("/hello/", host="hello.staging.example")
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.support.services import free_port, stop_process

START_TIMEOUT = 10.0


@dataclass
class NginxServer:
    """nginx whose ``http {}`` includes ``include``; sites rendered there listen on
    ``listen`` (``127.0.0.1:<port>``)."""

    root: Path
    include: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def listen(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def _command(self) -> list[str]:
        return [
            "nginx",
            "-p",
            str(self.root),
            "-e",
            str(self.root / "error.log"),
            "-c",
            str(self.config),
        ]

    @property
    def check_cmd(self) -> str:
        return shlex.join([*self._command, "-t", "-q"])

    @property
    def reload_cmd(self) -> str:
        return shlex.join([*self._command, "-s", "reload"])

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.include.exists():
            self.include.write_text("")
        temp = self.root / "temp"
        temp.mkdir(exist_ok=True)
        self.config.write_text(
            "daemon off;\n"
            "worker_processes 1;\n"  # one worker: round robin is exact
            f"pid {self.root / 'nginx.pid'};\n"
            f"error_log {self.root / 'error.log'} notice;\n"
            "events { worker_connections 128; }\n"
            "http {\n"
            "    access_log off;\n"
            f"    client_body_temp_path {temp / 'body'};\n"
            f"    proxy_temp_path {temp / 'proxy'};\n"
            f"    fastcgi_temp_path {temp / 'fastcgi'};\n"
            f"    uwsgi_temp_path {temp / 'uwsgi'};\n"
            f"    scgi_temp_path {temp / 'scgi'};\n"
            f"    include {self.include};\n"
            "}\n"
        )
        with open(self.root / "stdout.log", "ab") as log:
            self.process = subprocess.Popen(self._command, stdout=log, stderr=subprocess.STDOUT)
        pid_file = self.root / "nginx.pid"
        deadline = time.monotonic() + START_TIMEOUT
        while not pid_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start: {self.error_log()[-2000:]}")
            time.sleep(0.02)

    def error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text() if path.exists() else ""

    def get(self, path: str, host: str | None = None) -> httpx.Response:
        """A request on a connection of its own (no keep-alive to an old worker)."""
        headers = {"Host": host} if host else {}
        return httpx.get(f"http://{self.listen}{path}", headers=headers, timeout=5)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@contextmanager
def running_nginx(root: Path, include: Path) -> Iterator[NginxServer]:
    server = NginxServer(root, include)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


class _NamedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _NameHandler)
        self.name = name


class _NameHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx's upstream keepalive expects

    def do_GET(self) -> None:
        assert isinstance(self.server, _NamedServer)
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test output is not the place for access logs."""


@dataclass
class Backend:
    """An HTTP server in a thread, on a port the kernel chose, answering ``name``."""

    name: str
    server: _NamedServer
    thread: threading.Thread

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def instance_id(self) -> str:
        return self.address.replace(":", "-")

    @classmethod
    def start(cls, name: str) -> Backend:
        server = _NamedServer(name)
        thread = threading.Thread(target=server.serve_forever, name=f"backend {name}", daemon=True)
        thread.start()
        return cls(name, server, thread)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@contextmanager
def running_backends(*names: str) -> Iterator[list[Backend]]:
    backends: list[Backend] = []
    try:
        for name in names:
            backends.append(Backend.start(name))
        yield backends
    finally:
        for backend in backends:
            backend.stop()
