"""Taking a test's own Redis, PostgreSQL or registry away and bringing it back on the
same port:
``kill`` is kill -9 (of every process of the service: a crash, nothing flushed),
``stop`` a clean shutdown. Only services the test started itself are touched."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

from tests.support.services import PostgresServer, RedisServer, RegistryServer, stop_process

How = Literal["kill", "stop"]


@dataclass
class RedisOutage:
    server: RedisServer
    workdir: Path

    def begin(self, how: How) -> None:
        if how == "kill":
            self.server.process.kill()
            self.server.process.wait()
        else:
            stop_process(self.server.process)  # SIGTERM: redis-server shuts down cleanly

    def end(self) -> None:
        """The same port, and no data: the tests' Redis keeps none (no RDB, no AOF),
        the harshest case: every queued task is gone."""
        self.server = RedisServer.start(self.workdir, port=self.server.port)


@dataclass
class PostgresOutage:
    server: PostgresServer

    def _pg_ctl(self, *args: str) -> None:
        command = [str(self.server.bindir / "pg_ctl"), "-D", str(self.server.datadir), *args]
        subprocess.run(PostgresServer._as_postgres(command), check=True, capture_output=True)

    def begin(self, how: How) -> None:
        if how == "stop":
            self._pg_ctl("-m", "fast", "-w", "stop")  # clients cut, a checkpoint, clean
            return
        pid_file = self.server.datadir / "postmaster.pid"
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
        backends = postmaster.children(recursive=True)
        postmaster.kill()
        for process in backends:
            process.kill()
        psutil.wait_procs([postmaster, *backends], timeout=30)

    def end(self) -> None:
        """Start it again on its port (after kill -9, with crash recovery)."""
        options = (
            f"-p {self.server.port} -k {self.server.datadir} "
            "-c listen_addresses=127.0.0.1 -c fsync=off"
        )
        log = str(self.server.datadir / "log")
        self._pg_ctl("-w", "-l", log, "-o", options, "start")


@dataclass
class RegistryOutage:
    server: RegistryServer

    def begin(self, how: How) -> None:
        if how == "kill":
            self.server.process.kill()
            self.server.process.wait()
        else:
            stop_process(self.server.process)  # SIGTERM: the registry drains and exits

    def end(self) -> None:
        """The same port and the same storage: what was pushed before is there."""
        self.server = RegistryServer.start(self.server.root, port=self.server.port)
