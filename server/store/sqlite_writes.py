"""One writer at a time on a SQLite database, queued in-process on a lock.

SQLite lets one transaction write at a time. A second ``BEGIN IMMEDIATE`` waits in
SQLite's busy handler, which polls: it sleeps 1, 2, 5, 10, 15, 20, 25 ... up to 100 ms
between tries, whether or not the writer ahead of it finished meanwhile. Under a
burst of webhook deliveries that sleep, not the work, set the latency (p99 of 170 to
390 ms for writes that take a millisecond).

So every connection of an engine takes the engine's write lock before it
sends ``BEGIN IMMEDIATE`` and gives it back right after ``COMMIT`` or ``ROLLBACK``
(or when the connection closes while holding it): writers of this process queue on
a lock that hands over the moment it frees, and reach SQLite one at a time. SQLite's
busy timeout still guards against other processes (a CLI command writing beside the
server, a second server on the same file), and the lock's own wait is bounded by the
same timeout, so a thread that opens a second write transaction while it holds one
fails as SQLite would ("database is locked") instead of waiting forever.

Transactions that only read (``BEGIN``, :func:`server.store.database.read_only`)
never take the lock: WAL lets them read beside the writer.
"""

from __future__ import annotations

import sqlite3
import threading


class WriteLockTimeout(Exception):
    """No write transaction of this process ended within the busy timeout."""


class SerializedWritesConnection(sqlite3.Connection):
    """A sqlite3 connection that holds its engine's write lock from ``BEGIN
    IMMEDIATE`` until the transaction ends. The engine's ``connect`` listener gives
    it the lock and the timeout; until then it behaves as a plain connection."""

    write_lock: threading.Lock | None = None
    write_lock_timeout = 30.0
    _holds_lock = False

    def take_write_lock(self) -> None:
        """Called just before ``BEGIN IMMEDIATE``; the lock is held until the
        transaction ends (a ``BEGIN`` that fails must call :meth:`release_write_lock`)."""
        if self.write_lock is None or self._holds_lock:
            return
        if not self.write_lock.acquire(timeout=self.write_lock_timeout):
            raise WriteLockTimeout(
                f"database is locked: no write transaction of this process ended within "
                f"{self.write_lock_timeout:g}s"
            )
        self._holds_lock = True

    def release_write_lock(self) -> None:
        if self._holds_lock:
            self._holds_lock = False
            assert self.write_lock is not None
            self.write_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.release_write_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_write_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_write_lock()


def serialized(dbapi_connection: object) -> SerializedWritesConnection:
    """The connection as this module made it (the engine's ``factory``)."""
    if not isinstance(dbapi_connection, SerializedWritesConnection):
        raise TypeError(f"not a connection of a SQLite engine: {dbapi_connection!r}")
    return dbapi_connection
