"""A pipeline file is text from outside (pushed, or sent to /api/lint): whatever it
holds, parsing ends with a SpecError naming the problem, never a RecursionError, a
reader error or a tree blown up by aliases (which would fail every pass of the
engine that plans it)."""

from __future__ import annotations

import time

import pytest

from pipelines.errors import SpecError
from pipelines.spec import parse_spec
from pipelines.yaml_lines import MAX_DEPTH, MAX_VALUES

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
    for previous, name in zip("abcdefg", "bcdefgh", strict=True)
)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[" * 5000, f"nested deeper than {MAX_DEPTH} levels"),
        ("{a: " * 3000, f"nested deeper than {MAX_DEPTH} levels"),
        ("- " * 3000 + "x", f"nested deeper than {MAX_DEPTH} levels"),
        ("a: &a [*a]\n", f"nested deeper than {MAX_DEPTH} levels"),
        ("a: &a {b: *a}\n", f"nested deeper than {MAX_DEPTH} levels"),
        (LAUGHS, f"more than {MAX_VALUES} values once aliases are expanded"),
        ("\x1f", "unacceptable character #x001f"),
        ("image: \x00\n", "unacceptable character #x0000"),
    ],
)
def test_a_hostile_file_is_a_spec_error(text: str, words: str) -> None:
    started = time.monotonic()
    with pytest.raises(SpecError, match=words):
        parse_spec(text)
    # Only a hang exceeds this: 5,000 "[" took ~2 s before the composer stopped at
    # the depth limit (more than 5 s with the machine's cores busy), ~0.3 s since.
    assert time.monotonic() - started < 60


def test_nesting_within_the_limit_is_read() -> None:
    nested = "[" * (MAX_DEPTH - 3) + "]" * (MAX_DEPTH - 3)
    with pytest.raises(SpecError) as caught:
        parse_spec(f"image: i\njobs:\n  a: {{script: [x], variables: {{X: {nested}}}}}\n")
    assert "nested deeper" not in str(caught.value)
