from __future__ import annotations

import pytest

from pipelines.job_log import MAX_APPEND_BYTES, split_for_append

# One to four bytes of UTF-8 each, so that cuts fall inside characters.
MIXED = "a" + "é" + "€" + "𝄞"


def test_text_within_the_limit_is_one_piece() -> None:
    assert split_for_append("hello\n") == ["hello\n"]
    assert split_for_append("") == []


@pytest.mark.parametrize("limit", [4, 5, 6, 7, 9, 10, 64])
def test_pieces_keep_to_the_limit_and_never_cut_a_character(limit: int) -> None:
    text = MIXED * 50
    pieces = split_for_append(text, limit)
    assert "".join(pieces) == text
    assert all(0 < len(piece.encode()) <= limit for piece in pieces)


def test_the_servers_limit_cuts_a_large_burst_in_order() -> None:
    text = "".join(f"{i} ✓\n" for i in range(800_000))  # about 8.7 MB of UTF-8
    pieces = split_for_append(text)
    assert len(pieces) == 3
    assert "".join(pieces) == text
    assert all(len(piece.encode()) <= MAX_APPEND_BYTES for piece in pieces)


def test_a_limit_that_cannot_hold_a_character_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 4 bytes"):
        split_for_append("x", 3)
