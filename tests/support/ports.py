"""Ports for what a test run starts, never another run's and never a stranger's.

Why not ``bind(("127.0.0.1", 0))``: the kernel picks such a port from the ephemeral
range (``/proc/sys/net/ipv4/ip_local_port_range``, 32768-60999 here), the range every
outgoing connection on the machine takes its local port from. Between a test
choosing a port and its service binding it (or binding it again after a restart), a
connection of anybody may take it. And two test runs on one machine (the suite beside
the demo, or two clones) would each believe a port free that the other is about to bind.

So a test run holds one of ``SLOTS`` slots for its lifetime: an exclusive ``flock`` on
a file under the temporary folder, dropped by the kernel when the process ends, even
on kill -9. A slot owns two blocks of ports below the ephemeral range and above the
demo's fixed ports (12379, 15000, 16379, 18080, 18088):

- service ports (Redis, PostgreSQL, registries, etcd, nginx, Shipway servers), handed
  out in turn from ``30000 + slot * 340``, skipping any that something already binds;
- the host ports that the run's Shipway servers allocate to released instances
  (``SHIPWAY_HOST_PORTS``), ``22000 + slot * 1000`` to ``+ 999``, away from the default
  range's low end (20000-) that an installation with default settings fills first.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
import threading
from pathlib import Path
from typing import IO

SLOTS = 8
SERVICE_PORTS_BASE = 30000
SERVICE_PORTS_PER_SLOT = 340  # 8 slots end at 32720, below the ephemeral range
HOST_PORTS_BASE = 22000
HOST_PORTS_PER_SLOT = 1000
LOCK_FOLDER = Path(tempfile.gettempdir()) / "shipway-test-ports"


class PortSlot:
    """One slot, held by this process until it ends."""

    def __init__(self, number: int, lock: IO[bytes]) -> None:
        self.number = number
        self._lock = lock  # kept open: closing it would drop the flock
        self._next = 0
        self._mutex = threading.Lock()

    @classmethod
    def claim(cls) -> PortSlot:
        LOCK_FOLDER.mkdir(parents=True, exist_ok=True)
        for number in range(SLOTS):
            lock = open(LOCK_FOLDER / f"slot-{number}.lock", "ab")  # noqa: SIM115 - held open
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            lock.truncate(0)
            lock.write(f"{os.getpid()}\n".encode())
            lock.flush()
            return cls(number, lock)
        raise RuntimeError(
            f"all {SLOTS} test port slots are held by other test runs ({LOCK_FOLDER})"
        )

    @property
    def host_port_range(self) -> range:
        """Where this run's servers allocate instances' host ports."""
        start = HOST_PORTS_BASE + self.number * HOST_PORTS_PER_SLOT
        return range(start, start + HOST_PORTS_PER_SLOT)

    @property
    def host_ports(self) -> str:
        """The same, as ``SHIPWAY_HOST_PORTS`` says it."""
        return f"{self.host_port_range.start}-{self.host_port_range.stop - 1}"

    def next_port(self) -> int:
        """The next service port of the slot that nothing binds now. Ports come round
        again after ``SERVICE_PORTS_PER_SLOT`` of them: by then the test that had it
        has stopped its service."""
        base = SERVICE_PORTS_BASE + self.number * SERVICE_PORTS_PER_SLOT
        with self._mutex:
            for _ in range(SERVICE_PORTS_PER_SLOT):
                port = base + self._next
                self._next = (self._next + 1) % SERVICE_PORTS_PER_SLOT
                if _bindable(port):
                    return port
        raise RuntimeError(f"no free port left in {base}-{base + SERVICE_PORTS_PER_SLOT - 1}")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_slot: PortSlot | None = None
_slot_mutex = threading.Lock()


def port_slot() -> PortSlot:
    """This process's slot, claimed on first use."""
    global _slot
    with _slot_mutex:
        if _slot is None:
            _slot = PortSlot.claim()
        return _slot
