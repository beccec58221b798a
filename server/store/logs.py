"""Job logs, kept as ordered chunks of text.

Appends name the offset they start at (in characters), as GitLab's runner does
with Content-Range: a resend of text already stored is dropped, so a runner can
retry an append after a network error without duplicating lines, and a gap is
refused.
"""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.errors import Conflict, NotFound
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

    def read(self, job_id: int, offset: int = 0) -> tuple[str, int]:
        """The log from ``offset`` on, and the offset just past what was returned."""
        with self.engine.begin() as conn:
            length = _length(conn, job_id)
            if offset >= length:
                return "", length
            rows = conn.execute(
                sa.select(log_chunks.c.offset, log_chunks.c.content)
                .where(
                    log_chunks.c.job_id == job_id,
                    log_chunks.c.offset + sa.func.length(log_chunks.c.content) > offset,
                )
                .order_by(log_chunks.c.offset)
            ).all()
        text = "".join(row.content for row in rows)
        start = rows[0].offset if rows else offset
        return text[offset - start :], start + len(text)
