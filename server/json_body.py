"""JSON request bodies, checked at the boundary before anything reads them.

Every JSON body the server accepts (webhooks, the API, the runners' API) is decoded
by :func:`decode_json` and nothing else, which refuses with :class:`PayloadError`
(400, ``field`` naming the place) a body that:

- is not valid UTF-8 (``json.loads`` alone would also guess UTF-16 and UTF-32);
- nests arrays and objects more than :data:`MAX_DEPTH` levels deep (counted before
  parsing, so the parser never recurses deep enough to raise RecursionError);
- is not JSON, or uses ``NaN``/``Infinity`` (not JSON, and no database stores them);
- holds an integer outside 64 bits, which no database column holds either;
- holds a string, key or value, with a lone surrogate (``"\\ud83d"``: not text, and
  no database accepts it) or a NUL character (PostgreSQL cannot store it).

The size of a body is bounded while it is read (``server.http.read_body``); the
length of each field by the schema of the route (pydantic ``max_length``).
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from pipelines.errors import PayloadError

MAX_DEPTH = 32  # GitLab's payloads nest 4 levels; a deployment configuration about 6
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1

# A JSON string, escapes included (the "unrolled loop": linear, no backtracking).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
# What a parsed value needs to hold a NUL, a lone surrogate or an integer over 64 bits:
# JSON writes the first two only as \u escapes (the parser refuses a raw control
# character, the UTF-8 decoder a raw surrogate), and such an integer has 19 digits or
# more. A body without any of them skips the walk over its values (most bodies).
_MAY_HOLD_BAD_VALUE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])|[0-9]{19}")


def decode_json(body: bytes) -> Any:
    """The JSON value in ``body``; PayloadError names what is wrong and where."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(
            f"the body is not valid UTF-8 (byte {exc.start} of the body)", "body"
        ) from exc
    depth = _nesting(text) if text.count("[") + text.count("{") > MAX_DEPTH else 0
    if depth > MAX_DEPTH:
        raise PayloadError(
            f"the body nests {depth} levels deep; at most {MAX_DEPTH} are accepted", "body"
        )
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"the body is not valid JSON: {exc}", "body") from exc
    except ValueError as exc:  # an integer of more digits than Python converts
        raise PayloadError(f"the body is not acceptable JSON: {exc}", "body") from exc
    if _MAY_HOLD_BAD_VALUE.search(text) is not None:
        _check_values(value)
    return value


def decode_json_object(body: bytes) -> dict[str, Any]:
    value = decode_json(body)
    if not isinstance(value, dict):
        raise PayloadError("the body must be a JSON object", "body")
    return value


def _nesting(text: str) -> int:
    """How deep arrays and objects nest, brackets inside strings not counted. For a
    text that is not JSON the count may be off; the parser refuses that text anyway."""
    outside_strings = _STRING.sub("", text)
    steps = (1 if match[0] in "[{" else -1 for match in _BRACKETS.finditer(outside_strings))
    return max(itertools.accumulate(steps, initial=0))


def _refuse_constant(name: str) -> Any:
    raise PayloadError(f"the body is not valid JSON: {name} is not a JSON number", "body")


# Made once: json.loads with an argument makes a decoder per call (a third of its time
# for a webhook's payload).
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _check_values(value: Any) -> None:
    """Walk the parsed value without recursion; the first bad place is named."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        place, item = pending.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                inner = _within(place, key)
                _check_text(key, inner, "key")
                pending.append((inner, child))
        elif isinstance(item, list):
            pending.extend((_within(place, str(index)), child) for index, child in enumerate(item))
        elif isinstance(item, str):
            _check_text(item, place or "body", "value")
        elif isinstance(item, int) and not MIN_INTEGER <= item <= MAX_INTEGER:
            place = place or "body"
            raise PayloadError(f"{place}: the number does not fit in 64 bits", place)


def _within(place: str, key: str) -> str:
    """The dotted path of ``key``; a key that is not text is shown escaped, as the
    error message that names it must itself be text a database can store."""
    shown = key if _NOT_TEXT.search(key) is None else key.encode("unicode_escape").decode()
    return f"{place}.{shown}" if place else shown


def _check_text(text: str, place: str, what: str) -> None:
    found = _NOT_TEXT.search(text)
    if found is None:
        return
    if found[0] == "\x00":
        problem = "holds a NUL character (\\u0000)"
    else:
        problem = f"holds a lone surrogate (\\u{ord(found[0]):04x}), which is not text"
    raise PayloadError(f"{place}: the {what} {problem}", place)
