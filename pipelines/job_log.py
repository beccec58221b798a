"""A job's log as runner and server exchange it: appends, and how big one may be.

The runner sends the log in appends (text at a character offset); the server
refuses an append whose body is over ``MAX_APPEND_BYTES`` of UTF-8, so the runner
cuts what it has to send with :func:`split_for_append` first. Pure: both sides
import it.
"""

from __future__ import annotations

MAX_APPEND_BYTES = 4 * 1024 * 1024


def split_for_append(text: str, limit: int = MAX_APPEND_BYTES) -> list[str]:
    """``text`` cut into pieces of at most ``limit`` bytes of UTF-8 each, in order,
    never inside a character; nothing for empty text."""
    if limit < 4:
        raise ValueError("a piece must hold any character: at least 4 bytes")
    data = text.encode()
    pieces = []
    start = 0
    while start < len(data):
        end = min(start + limit, len(data))
        # Back off to the first byte of a character: continuation bytes are 10xxxxxx.
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        pieces.append(data[start:end].decode())
        start = end
    return pieces
