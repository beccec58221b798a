"""The one decoder of JSON request bodies (server/json_body.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipelines.errors import PayloadError
from server.json_body import MAX_DEPTH, decode_json, decode_json_object


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "body", "nests 100000 levels deep"),
        (b'{"a": ' + b"[" * (MAX_DEPTH) + b"]" * MAX_DEPTH + b"}", "body", "nests 33 levels"),
        (b'{"a": {"b": ["\\ud83d"]}}', "a.b.0", "lone surrogate (\\ud83d)"),
        (b'{"a": "\\udc00\\ud83d"}', "a", "lone surrogate"),
        (b'{"\\ud83d": 1}', "\\ud83d", "the key holds a lone surrogate"),
        (b'{"a\\u0000": 1}', "a\\x00", "the key holds a NUL character"),
        (b'["x\\u0000"]', "0", "the value holds a NUL character"),
        (b'{"a": NaN}', "body", "NaN is not a JSON number"),
        (b'{"a": -Infinity}', "body", "-Infinity is not a JSON number"),
        (b'{"a": ' + b"9" * 5000 + b"}", "body", "not acceptable JSON"),
        (b'{"a": 9223372036854775808}', "a", "does not fit in 64 bits"),
        (b'{"a": -9223372036854775809}', "a", "does not fit in 64 bits"),
        (b'{"a": "\xff"}', "body", "not valid UTF-8"),
        (b'{"a": "\xed\xa0\xbd"}', "body", "not valid UTF-8"),  # a surrogate, encoded
        ('{"a": 1}'.encode("utf-16"), "body", "not valid UTF-8"),
        (b"\xef\xbb\xbf{}", "body", "not valid JSON"),  # a byte order mark
        (b'{"a": 1', "body", "not valid JSON"),
        (b"", "body", "not valid JSON"),
    ],
)
def test_hostile_bodies_are_refused_naming_the_place(body: bytes, field: str, words: str) -> None:
    with pytest.raises(PayloadError) as caught:
        decode_json(body)
    assert caught.value.field == field
    assert words in str(caught.value)
    str(caught.value).encode()  # the message itself is text


@pytest.mark.parametrize(
    "value",
    [
        {"a": "😀 é \u2028 \x7f", "b": [1, -(2**63), 2**63 - 1, 1.5e300, True, None]},
        {"brackets in strings": "[[[[{{{{" * 100, "escaped": '\\"[['},
        [[[[]]]],
    ],
)
def test_ordinary_json_passes(value: Any) -> None:
    assert decode_json(json.dumps(value).encode()) == value
    assert decode_json(json.dumps(value, ensure_ascii=False).encode()) == value


def test_a_surrogate_pair_escaped_is_one_character() -> None:
    assert decode_json(b'"\\ud83d\\ude00"') == "😀"


def test_depth_counts_brackets_outside_strings_only() -> None:
    inside = '{"a": "' + "[" * 1000 + '"}'
    assert decode_json(inside.encode()) == {"a": "[" * 1000}
    exact = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert decode_json(exact.encode()) is not None


def test_an_object_is_required_where_asked() -> None:
    assert decode_json_object(b'{"a": 1}') == {"a": 1}
    with pytest.raises(PayloadError, match="must be a JSON object"):
        decode_json_object(b"[1]")
