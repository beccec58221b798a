"""Job logs, kept as ordered chunks of text.

Appends name the offset they start at (in characters), as GitLab's runner does
with Content-Range: a resend of text already stored is dropped, so a runner can
retry an append after a network error without duplicating lines, and a gap is
refused.
"""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.errors import Conflict, NotFound
from server.store.database import read_only
from server.store.tables import jobs, log_chunks

# PostgreSQL text cannot hold NUL; a job's output can.
_NUL = "\x00"


def _length(conn: sa.Connection, job_id: int) -> int:
    length = conn.execute(
        sa.select(jobs.c.log_length).where(jobs.c.id == job_id)
    ).scalar_one_or_none()
    if length is None:
        raise NotFound(f"job {job_id} does not exist")
    return int(length)


class LogRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.reads = read_only(engine)

    def append(self, job_id: int, offset: int, text: str) -> int:
        """Store ``text`` at ``offset``; return the log's new length."""
        text = text.replace(_NUL, "\N{REPLACEMENT CHARACTER}")
        with self.engine.begin() as conn:
            length = _length(conn, job_id)
            if offset > length:
                raise Conflict(
                    f"log of job {job_id} has {length} characters; {offset} leaves a gap"
                )
            fresh = text[length - offset :]
            if not fresh:
                return length
            conn.execute(log_chunks.insert().values(job_id=job_id, offset=length, content=fresh))
            new_length = length + len(fresh)
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(log_length=new_length))
            return new_length

    def add(self, job_id: int, text: str) -> int:
        """Append ``text`` at the log's end, whatever its length (the server's own
        lines: a deploy job's steps, why a job failed as stuck); the new length."""
        text = text.replace(_NUL, "\N{REPLACEMENT CHARACTER}")
        with self.engine.begin() as conn:
            length = _length(conn, job_id)
            if not text:
                return length
            conn.execute(log_chunks.insert().values(job_id=job_id, offset=length, content=text))
            conn.execute(
                jobs.update().where(jobs.c.id == job_id).values(log_length=length + len(text))
            )
            return length + len(text)

    def length(self, job_id: int) -> int:
        """How many characters the log holds; NotFound when there is no such job."""
        with self.reads.begin() as conn:
            return _length(conn, job_id)

    def read(self, job_id: int, offset: int = 0, limit: int | None = None) -> tuple[str, int]:
        """The log from ``offset`` on, at most ``limit`` characters of it, and the
        offset just past what was returned. Only the chunks that hold the range are
        read, so a range of a log of any size costs what the range holds."""
        with self.reads.begin() as conn:
            length = _length(conn, job_id)
            if offset >= length:
                return "", length
            end = length if limit is None else min(length, offset + limit)
            # The chunk that holds ``offset`` starts at the last start before it;
            # both lookups go by the (job, offset) key, never through the text.
            first = conn.execute(
                sa.select(sa.func.max(log_chunks.c.offset)).where(
                    log_chunks.c.job_id == job_id, log_chunks.c.offset <= offset
                )
            ).scalar_one()
            # Of each chunk, only the part in the range leaves the database (a chunk
            # holds up to an append's 4 MiB; substr counts characters, as offsets do).
            skip = sa.case((log_chunks.c.offset < offset, offset - log_chunks.c.offset), else_=0)
            rows = conn.execute(
                sa.select(
                    sa.func.substr(
                        log_chunks.c.content, skip + 1, end - (log_chunks.c.offset + skip)
                    )
                )
                .where(
                    log_chunks.c.job_id == job_id,
                    log_chunks.c.offset >= (first or 0),
                    log_chunks.c.offset < end,
                )
                .order_by(log_chunks.c.offset)
            ).scalars()
            piece = "".join(rows)
        return piece, offset + len(piece)
