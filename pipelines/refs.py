"""Git's ref-name rules, as ``git check-ref-format`` applies them.

Webhooks and the trigger API name refs as text from outside; a ref that git would
refuse (``refs/heads/a~1``, ``a..b``, ``x.lock``, a NUL byte) must never become a
pipeline. :func:`refname_problem` follows ``man git-check-ref-format`` rule by rule
(and git's ``refs.c``, which the manual describes) and is tested against the real
``git check-ref-format`` binary over generated names (tests/unit/test_refs.py).

Git reads a ref name as bytes: every rule is about ASCII, and any byte from 0x80 up
(so any non-ASCII character, in UTF-8) is allowed. Text that is not encodable as
UTF-8 (a lone surrogate) has no bytes git could read, so it is refused too.
"""

from __future__ import annotations

import re

from pipelines.errors import PayloadError
from pipelines.model import GitRef, RefKind

# Not a rule of git's, which has none: the database keeps a branch or tag name in a
# column of 255 characters, and a loose ref's file name is at most 255 bytes.
MAX_REF_NAME_LENGTH = 255
_COMMIT = re.compile(r"[0-9a-f]{7,40}")

# Rule 4: ASCII control characters, space, ~, ^, :. Rule 5: ?, *, [. Rule 10: \.
_FORBIDDEN = frozenset(
    [chr(code) for code in range(0x20)] + ["\x7f", " ", "~", "^", ":", "?", "*", "[", "\\"]
)


def refname_problem(refname: str, *, allow_onelevel: bool = False) -> str | None:
    """Why ``git check-ref-format [--allow-onelevel] <refname>`` would refuse the
    name, or None when git accepts it."""
    try:
        refname.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode text (it holds a lone surrogate)"
    if refname == "@":  # rule 9
        return "it is the single character '@'"
    bad = sorted({character for character in refname if character in _FORBIDDEN})
    if bad:  # rules 4, 5 and 10
        shown = ", ".join(repr(character) for character in bad)
        return f"it contains {shown}, which git does not allow in a ref"
    if ".." in refname:  # rule 3
        return "it contains '..'"
    if "@{" in refname:  # rule 8
        return "it contains '@{'"
    components = refname.split("/")
    if any(not component for component in components):  # rule 6
        return "it begins or ends with '/' or contains '//'"
    for component in components:  # rule 1
        if component.startswith("."):
            return f"its part {component!r} begins with '.'"
        if component.endswith(".lock"):
            return f"its part {component!r} ends with '.lock'"
    if refname.endswith("."):  # rule 7
        return "it ends with '.'"
    if len(components) < 2 and not allow_onelevel:  # rule 2
        return "it has no '/' (a ref is refs/heads/<branch> or refs/tags/<tag>)"
    return None


def is_valid_refname(refname: str, *, allow_onelevel: bool = False) -> bool:
    return refname_problem(refname, allow_onelevel=allow_onelevel) is None


def ref_problem(ref: GitRef) -> str | None:
    """Why a branch, tag or commit named from outside cannot be built, or None."""
    if ref.kind is RefKind.COMMIT:
        if _COMMIT.fullmatch(ref.name) is None:
            return "a commit id is 7 to 40 hexadecimal digits"
        return None
    if not ref.name:
        return f"a {ref.kind} name is not empty"
    if len(ref.name) > MAX_REF_NAME_LENGTH:
        return f"a {ref.kind} name is at most {MAX_REF_NAME_LENGTH} characters"
    problem = refname_problem(ref.full)
    return None if problem is None else f"{ref.full!r} is not a valid git ref: {problem}"


def check_ref(ref: GitRef, field: str) -> GitRef:
    """``ref`` itself, or PayloadError naming ``field`` and what git would object to."""
    problem = ref_problem(ref)
    if problem is not None:
        raise PayloadError(f"{field}: {problem}", field)
    return ref
