"""Opening the database and bringing its schema up to date.

SQLite (the default) runs in WAL mode with a busy timeout, and every transaction
that may write starts with ``BEGIN IMMEDIATE`` so two writers queue instead of failing
on a lock upgrade; writers of one process queue first on an in-process lock, which
wakes the next one at once where SQLite's busy handler would sleep
(:mod:`server.store.sqlite_writes`). A transaction that only reads goes through :func:`read_only`'s
engine and starts with a plain ``BEGIN``: in WAL mode it reads a snapshot without
taking the write lock, so reads (a webhook's project lookup, the engine's queries,
the API's pages) neither wait for writers nor hold them up. PostgreSQL URLs
(``postgresql+psycopg://...``) work unchanged.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from server.store.sqlite_writes import SerializedWritesConnection, WriteLockTimeout, serialized

MIGRATIONS = Path(__file__).parent / "migrations"
# How long a SQLite writer waits for the one ahead of it, in this process (the write
# lock) and in others (SQLite's busy timeout).
BUSY_TIMEOUT_SECONDS = 30.0
# The execution option that marks a transaction as one that only reads.
READ_ONLY = "shipway_read_only"


def read_only(engine: sa.Engine) -> sa.Engine:
    """The same database, for transactions that never write: on SQLite they do not
    take the write lock, so they neither wait for a writer nor hold one up."""
    return engine.execution_options(**{READ_ONLY: True})


def create_engine(url: str, busy_timeout_seconds: float = BUSY_TIMEOUT_SECONDS) -> sa.Engine:
    """``busy_timeout_seconds``: how long a SQLite writer waits for one of another
    process (SQLite's busy timeout); one of this process is waited for up to
    :data:`BUSY_TIMEOUT_SECONDS` on the write lock."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, busy_timeout_seconds)
    # A database that does not answer fails a connection within seconds, instead of
    # holding the engine thread and the requests for the operating system's minutes.
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})


def _sqlite_engine(url: str, busy_timeout_seconds: float) -> sa.Engine:
    engine = sa.create_engine(
        url,
        connect_args={
            "check_same_thread": False,
            "timeout": busy_timeout_seconds,
            "factory": SerializedWritesConnection,
        },
    )
    write_lock = threading.Lock()  # this engine's writers queue on it (sqlite_writes)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself
        dbapi_connection.write_lock = write_lock
        dbapi_connection.write_lock_timeout = BUSY_TIMEOUT_SECONDS
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_seconds * 1000)}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
            return
        dbapi_connection = serialized(connection.connection.dbapi_connection)
        try:
            dbapi_connection.take_write_lock()
        except WriteLockTimeout as exc:
            raise sa.exc.OperationalError("BEGIN IMMEDIATE", None, exc) from exc
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi_connection.release_write_lock()
            raise

    return engine


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine) -> None:
    """Apply every migration not yet applied. Safe to run at each start."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
