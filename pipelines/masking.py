"""Secret values out of job logs, also when one arrives split across chunks.

A job's output reaches the runner in chunks of any size, so a secret may be cut in
two. The :class:`Masker` replaces every whole occurrence it has seen and holds
back the end of the text when it could be the start of a secret, until the next
chunk says whether it is; :meth:`Masker.flush` releases what is held at the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "[MASKED]"
# Shorter values would mask ordinary words of the output (GitLab's floor too).
MIN_SECRET_LENGTH = 8


class Masker:
    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({value for value in secrets if value}, key=len, reverse=True)
        # Longest first, so a secret that contains another is masked whole.
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None
        self._prefixes = {value[:end] for value in values for end in range(1, len(value))}
        self._longest = len(values[0]) if values else 0
        self._held = ""

    def feed(self, text: str) -> str:
        """The masked text that is safe to show now."""
        if self._pattern is None:
            return text
        data = self._held + text
        out: list[str] = []
        end = 0
        for match in self._pattern.finditer(data):
            out.append(data[end : match.start()])
            out.append(MASK)
            end = match.end()
        tail = data[end:]
        hold = self._partial_secret_at_end(tail)
        self._held = tail[len(tail) - hold :] if hold else ""
        out.append(tail[: len(tail) - hold])
        return "".join(out)

    def flush(self) -> str:
        """What is held back: the output ended, so it was no secret."""
        held, self._held = self._held, ""
        return held

    def _partial_secret_at_end(self, tail: str) -> int:
        for size in range(min(len(tail), self._longest - 1), 0, -1):
            if tail[-size:] in self._prefixes:
                return size
        return 0
