"""From a cache as the pipeline file declares it to the key a runner stores it
under, and which workspace paths belong to it. Pure: the runner brings the job's
variables and the commit's files.

Keys as GitLab CI makes them: text with its variables expanded (one that expands to
nothing is ``default``); from files, the digest of their content, after the prefix
(``deps-3f2a...``), or ``default`` after it when none of the files is in the commit.
A key can hold any character once expanded (a branch ``feature/x``), so the file it
is stored in is named by :func:`file_name`, which is distinct for distinct keys.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import string
from collections.abc import Iterable, Mapping

from pipelines.cache_spec import DEFAULT_KEY

_REFERENCE = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})")
_SAFE = frozenset(string.ascii_letters + string.digits + "_.-")
DIGEST_LENGTH = 16  # hex digits of a files key: 64 bits, plenty within one project
MAX_FILE_NAME = 150


def expand(text: str, variables: Mapping[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` replaced by the variable's value (none: nothing)."""
    return _REFERENCE.sub(lambda match: variables.get(match[1] or match[2], ""), text)


def text_key(template: str, variables: Mapping[str, str]) -> str:
    return expand(template, variables) or DEFAULT_KEY


def files_key(prefix: str | None, variables: Mapping[str, str], files: Mapping[str, bytes]) -> str:
    """The key of a cache keyed by ``files`` (workspace path -> content of each file
    the key's paths matched): the same content gives the same key, whatever commit."""
    if files:
        digest = hashlib.sha256()
        for path, content in sorted(files.items()):
            digest.update(f"{path}\0{len(content)}\0".encode())
            digest.update(content)
        part = digest.hexdigest()[:DIGEST_LENGTH]
    else:
        part = DEFAULT_KEY
    expanded = expand(prefix, variables) if prefix else ""
    return f"{expanded}-{part}" if expanded else part


def file_name(key: str) -> str:
    """A file name for ``key``: letters, digits, '_', '-' and '.' kept, anything else
    as ``%XX`` of its UTF-8 bytes ('%' too, so two keys never share a name); a key of
    dots only is escaped whole. A very long key keeps its start and a digest of it."""
    if set(key) <= {"."}:
        encoded = "%2E" * len(key)
    else:
        encoded = "".join(
            char if char in _SAFE else "".join(f"%{byte:02X}" for byte in char.encode())
            for char in key
        )
    if len(encoded) > MAX_FILE_NAME:
        encoded = f"{encoded[:100]}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"
    return encoded


def matches(path: str, pattern: str) -> bool:
    """Whether a workspace path matches a cache path or glob: ``*`` matches any text
    (slashes included, as everywhere in the pipeline file), so ``**`` works as in
    GitLab, and ``**/`` at the start also matches no folder at all."""
    if fnmatch.fnmatchcase(path, pattern):
        return True
    return pattern.startswith("**/") and fnmatch.fnmatchcase(path, pattern[3:])


def in_cache(path: str, patterns: Iterable[str]) -> bool:
    """Whether a workspace path is part of a cache: it, or a folder it is in, matches
    one of the cache's paths (a folder brings everything in it)."""
    parts = path.split("/")
    ancestors = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    return any(matches(candidate, pattern) for pattern in patterns for candidate in ancestors)


def fixed_folder(pattern: str) -> str:
    """Where a cache path's files can be: the path itself, or the folders of a glob
    before its first wildcard ('.' for the whole workspace)."""
    if not any(wildcard in pattern for wildcard in "*?["):
        return pattern
    head = pattern
    for wildcard in "*?[":
        head = head.split(wildcard, 1)[0]
    return head.rpartition("/")[0] or "."


def folders_to_read(patterns: Iterable[str]) -> list[str]:
    """The fewest folders whose content holds every path of the patterns: a folder
    inside another one of the list is read with it."""
    folders = sorted({fixed_folder(pattern) for pattern in patterns})
    if "." in folders:
        return ["."]
    kept: list[str] = []
    for folder in folders:  # sorted, so a folder comes before what is inside it
        if not any(folder.startswith(f"{outer}/") for outer in kept):
            kept.append(folder)
    return kept
