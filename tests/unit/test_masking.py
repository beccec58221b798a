from __future__ import annotations

import pytest

from pipelines.masking import MASK, Masker

SECRET = "s3cr3t-value"


def stream(masker: Masker, chunks: list[str]) -> str:
    return "".join(masker.feed(chunk) for chunk in chunks) + masker.flush()


def test_a_whole_value_is_masked() -> None:
    assert stream(Masker([SECRET]), [f"token={SECRET}\n"]) == f"token={MASK}\n"


@pytest.mark.parametrize("cut", range(1, len(SECRET)))
def test_a_value_split_across_chunks_is_masked(cut: int) -> None:
    chunks = [f"a {SECRET[:cut]}", f"{SECRET[cut:]} b"]
    assert stream(Masker([SECRET]), chunks) == f"a {MASK} b"


def test_a_value_split_in_single_characters_is_masked() -> None:
    text = f"x{SECRET}y{SECRET}"
    assert stream(Masker([SECRET]), list(text)) == f"x{MASK}y{MASK}"


def test_a_partial_value_is_released_at_the_end() -> None:
    masker = Masker([SECRET])
    assert masker.feed("ends with s3cr") == "ends with "
    assert masker.flush() == "s3cr"


def test_text_that_cannot_start_a_secret_is_not_held() -> None:
    masker = Masker([SECRET])
    assert masker.feed("hello\n") == "hello\n"


def test_the_longest_of_overlapping_values_is_masked_whole() -> None:
    masker = Masker(["password", "password-long"])
    assert stream(masker, ["the password-long and password"]) == f"the {MASK} and {MASK}"


def test_no_secrets_no_change() -> None:
    assert stream(Masker([]), ["plain"]) == "plain"
