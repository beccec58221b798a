"""Git's ref-name rules (pipelines/refs.py), checked against git itself.

The property test asks the real ``git check-ref-format`` about generated names built
from the characters and parts the rules are about, so every rule is met often."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipelines.errors import PayloadError
from pipelines.model import GitRef, RefKind
from pipelines.refs import MAX_REF_NAME_LENGTH, check_ref, is_valid_refname, refname_problem


def git_accepts(refname: str, allow_onelevel: bool) -> bool:
    flag = "--allow-onelevel" if allow_onelevel else "--no-allow-onelevel"
    result = subprocess.run(
        ["git", "check-ref-format", flag, refname], capture_output=True, check=False
    )
    return result.returncode == 0


# Every character a rule names, a few ordinary ones, and non-ASCII text.
SPECIAL = list("/.@{}~^:?*[]\\ \t\x01\x1f\x7f-_")
ORDINARY = [*"abkloc09", "é", "\u00a0", "\u0085", "\u2028", "😀"]
# Whole parts that trip a rule, or nearly do.
PARTS = ["refs", "heads", "tags", ".x", "x.lock", ".lock", "lock", "..", ".", "@", "@{", "a."]

names = st.lists(
    st.one_of(st.sampled_from(SPECIAL), st.sampled_from(ORDINARY), st.sampled_from(PARTS)),
    max_size=12,
).map("".join)
any_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(st.one_of(names, any_text, names.map(lambda name: "refs/heads/" + name)), st.booleans())
def test_the_rules_are_git_check_ref_format(refname: str, allow_onelevel: bool) -> None:
    # git check-ref-format reads an argument beginning with '-' as an option; ref
    # rules give '-' no meaning, and Shipway's refs begin with refs/ anyway.
    assume(not refname.startswith("-"))
    ours = is_valid_refname(refname, allow_onelevel=allow_onelevel)
    assert ours == git_accepts(refname, allow_onelevel), (refname, ours)


@pytest.mark.parametrize(
    "refname",
    [
        "refs/heads/a~1",
        "refs/heads/a..b",
        "refs/heads/x.lock",
        "refs/heads/x.lock/y",
        "refs/heads/.hidden",
        "refs/heads/a/",
        "refs/heads//a",
        "/refs/heads/a",
        "refs/heads/a.",
        "refs/heads/a@{1}",
        "refs/heads/a^",
        "refs/heads/a:b",
        "refs/heads/a b",
        "refs/heads/a\tb",
        "refs/heads/a?",
        "refs/heads/a*",
        "refs/heads/a[1]",
        "refs/heads/a\\b",
        "refs/heads/a\x7f",
        "main",
        "@",
    ],
)
def test_names_git_refuses(refname: str) -> None:
    assert refname_problem(refname) is not None
    assert not git_accepts(refname, allow_onelevel=False)


@pytest.mark.parametrize(
    "refname",
    ["refs/heads/main", "refs/heads/a./b", "refs/heads/@", "refs/heads/-x", "refs/tags/v1.0"],
)
def test_names_git_accepts(refname: str) -> None:
    assert refname_problem(refname) is None
    assert git_accepts(refname, allow_onelevel=False)


def test_a_nul_byte_or_a_lone_surrogate_is_refused() -> None:
    # Neither can even be handed to git as an argument.
    assert refname_problem("refs/heads/a\x00b") is not None
    assert refname_problem("refs/heads/\ud83d") is not None


def test_check_ref_names_the_field_and_the_rule() -> None:
    with pytest.raises(PayloadError, match=r"branch: 'refs/heads/a\.\.b' .*'\.\.'") as caught:
        check_ref(GitRef(RefKind.BRANCH, "a..b"), "branch")
    assert caught.value.field == "branch"
    assert check_ref(GitRef(RefKind.TAG, "v1.0"), "tag") == GitRef(RefKind.TAG, "v1.0")


@pytest.mark.parametrize(
    "ref",
    [
        GitRef(RefKind.BRANCH, ""),
        GitRef(RefKind.BRANCH, "x" * (MAX_REF_NAME_LENGTH + 1)),
        GitRef(RefKind.COMMIT, "abc"),
        GitRef(RefKind.COMMIT, "g" * 40),
        GitRef(RefKind.COMMIT, "a" * 41),
    ],
)
def test_empty_overlong_and_non_hex_refs_are_refused(ref: GitRef) -> None:
    with pytest.raises(PayloadError):
        check_ref(ref, "ref")


def test_commits_and_long_names_within_the_bound_pass() -> None:
    check_ref(GitRef(RefKind.COMMIT, "0123abc"), "commit")
    check_ref(GitRef(RefKind.BRANCH, "x" * MAX_REF_NAME_LENGTH), "branch")
