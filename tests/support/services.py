"""Real services for the tests, each started on a port of its own and stopped after.

Nothing here is a mock: Redis, PostgreSQL, the Shipway server and its runners run as
real processes; Docker is the machine's engine (containers the tests make are
labelled and removed).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from tests.support.ports import port_slot
from tests.support.test_run import RUN_ID


def free_port() -> int:
    """A port of this test run's own (see :mod:`tests.support.ports`)."""
    return port_slot().next_port()


def wait_until(check: Callable[[], bool], timeout: float, what: str, pause: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(pause)
    raise TimeoutError(f"{what} did not happen within {timeout}s")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class RedisServer:
    """redis-server without persistence: a restart starts it empty, as after a crash
    of a Redis that kept nothing (the worst case for the queue)."""

    port: int
    process: subprocess.Popen[bytes]
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, workdir: Path, port: int | None = None) -> RedisServer:
        port = port or free_port()
        return cls(port, cls._launch(workdir, port), workdir)

    @staticmethod
    def _launch(workdir: Path, port: int) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=port)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        try:
            wait_until(answers, 60, "redis-server start")
        finally:
            client.close()
        return process

    def stop(self) -> None:
        """A clean stop (SIGTERM: Redis shuts down and closes its connections)."""
        stop_process(self.process)

    def kill(self) -> None:
        """kill -9: connections drop without a word, as when its host dies."""
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        """Start again on the same port, after ``stop`` or ``kill``: clients find it
        where they left it."""
        self.process = self._launch(self.workdir, self.port)


@dataclass
class RegistryServer:
    """Debian's docker-registry on a port of its own, storing under ``root``."""

    port: int
    root: Path
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls, root: Path, port: int | None = None) -> RegistryServer:
        """Start one; given ``port`` (and the same ``root``), start one again where it
        was, with what it stored."""
        port = port or free_port()
        root.mkdir(parents=True, exist_ok=True)
        config = root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
            f"http: {{addr: '127.0.0.1:{port}'}}\n"
        )
        log = open(root / "registry.log", "ab")  # noqa: SIM115 - the process writes to it
        process = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

        def answers() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answers, 60, "docker-registry start")
        return cls(port, root, process)

    def stop(self) -> None:
        stop_process(self.process)


def postgres_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    return None


@dataclass
class PostgresServer:
    port: int
    datadir: Path
    bindir: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def _as_postgres(argv: list[str]) -> list[str]:
        # PostgreSQL refuses to run as root; the Debian package makes a postgres user.
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    @classmethod
    def start(cls) -> PostgresServer:
        bindir = postgres_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
        # Not under pytest's tmp_path: the postgres user cannot enter root's 0700 folders.
        datadir = Path(tempfile.mkdtemp(prefix="shipway-test-pg-"))
        if os.geteuid() == 0:
            shutil.chown(datadir, "postgres")
        subprocess.run(
            cls._as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(datadir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )
        port = free_port()
        subprocess.run(
            cls._as_postgres(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(datadir),
                    "-w",
                    "-l",
                    str(datadir / "log"),
                    "-o",
                    f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        return cls(port, datadir, bindir)

    def stop(self) -> None:
        subprocess.run(
            self._as_postgres(
                [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"]
            ),
            check=False,
            capture_output=True,
        )


@dataclass
class ShipwayProcess:
    """``shipway serve`` or ``shipway runner`` as a real process."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process, timeout=20)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@dataclass
class Deployment:
    """Settings shared by a test's server and runners."""

    root: Path
    redis_url: str
    registry: str = "127.0.0.1:5000"
    port: int = field(default_factory=free_port)
    api_token: str = "test-api-token-0123456789"
    runner_token: str = "test-runner-token-0123456789"
    extra_env: dict[str, str] = field(default_factory=dict)  # for the server and runners

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("SHIPWAY_")}
        env.update(
            SHIPWAY_STATE_DIR=str(self.root / "server"),
            SHIPWAY_REDIS_URL=self.redis_url,
            SHIPWAY_API_TOKEN=self.api_token,
            SHIPWAY_RUNNER_TOKEN=self.runner_token,
            SHIPWAY_URL=self.url,
            SHIPWAY_SERVER_URL=self.url,
            SHIPWAY_RUNNER_CACHE_DIR=str(self.root / "runner-cache"),
            SHIPWAY_REGISTRY=self.registry,
            SHIPWAY_INSTALLATION=RUN_ID,
            SHIPWAY_HOST_PORTS=port_slot().host_ports,
        )
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> ShipwayProcess:
        log_path = self.root / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "server.cli.main", *args],
                env={**self.env(), **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return ShipwayProcess(process, log_path)

    def start_server(self) -> ShipwayProcess:
        server = self._spawn("server", "serve", "--port", str(self.port))

        def healthy() -> bool:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{server.log()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, 60, "server start")
        return server

    def start_runner(
        self, name: str, *queues: str, env: dict[str, str] | None = None
    ) -> ShipwayProcess:
        """``env``: settings of this runner alone (another Docker Engine, say)."""
        args = ["runner", "--name", name]
        for queue in queues or ("build",):
            args += ["--queue", queue]
        return self._spawn(f"runner-{name}", *args, env=env)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.cli_with_input("", *args, timeout=timeout)

    def cli_with_input(
        self, stdin: str, *args: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "server.cli.main", *args],
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def add_project(
        self,
        name: str,
        bare_repository: Path,
        gitlab_path: str,
        secret: str,
        branches: list[str] | None = None,
        hook_options: tuple[str, ...] = (),
        clone_url: str | None = None,
    ) -> None:
        """Register a project through the API and install the hook in its repository
        (``hook_options``: more flags of ``shipway hook install``; ``clone_url``: by
        default the repository's path, which the server reads in place, no mirror)."""
        body: dict[str, object] = {
            "name": name,
            "clone_url": clone_url or str(bare_repository),
            "gitlab_path": gitlab_path,
            "webhook_secret": secret,
        }
        if branches is not None:
            body["branches"] = branches
        with self.api() as api:
            response = api.post("/api/projects", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"project not registered: {response.text}")
        installed = self.cli(
            "hook",
            "install",
            str(bare_repository),
            "--project-path",
            gitlab_path,
            "--secret",
            secret,
            "--project-name",
            name,
            *hook_options,
        )
        if installed.returncode != 0:
            raise RuntimeError(f"hook not installed: {installed.stderr}")

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_token}"}, timeout=10
        )
