"""``cache:`` in the pipeline file: what is accepted, what is refused (with its line),
and what a job's runner receives; the keys and paths the runner derives from it."""

from __future__ import annotations

import pytest

from pipelines.cache_keys import (
    expand,
    file_name,
    files_key,
    folders_to_read,
    in_cache,
    text_key,
)
from pipelines.errors import SpecError
from pipelines.plan import plan_jobs
from pipelines.spec import parse_spec


def caches(text: str) -> dict[str, object]:
    """Job name -> the caches its runner receives."""
    return {
        draft.name: (draft.settings or {}).get("caches") for draft in plan_jobs(parse_spec(text))
    }


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(text)
    return [f"line {issue.line}: {issue.key}: {issue.message}" for issue in caught.value.issues]


def test_a_cache_defaults_to_the_shared_key_default_pull_push_on_success() -> None:
    text = "image: i\njobs:\n  unit:\n    script: ls\n    cache: {paths: .venv/}\n"
    assert caches(text) == {
        "unit": [
            {"key": "default", "paths": [".venv"], "policy": "pull-push", "when": "on_success"}
        ]
    }


def test_the_top_level_cache_is_every_script_jobs_unless_it_sets_its_own() -> None:
    text = """\
image: i
cache:
  key: {files: [requirements.lock], prefix: $SHIPWAY_COMMIT_REF_NAME}
  paths: [./.venv]
jobs:
  inherits: {script: ls}
  own: {script: ls, cache: {key: other, paths: [vendor], policy: pull, when: always}}
  none: {script: ls, cache: []}
  image:
    kind: image
    layers: {os: i, app: {copy: [src/], command: [run]}}
"""
    assert caches(text) == {
        "inherits": [
            {
                "key": {"files": ["requirements.lock"], "prefix": "$SHIPWAY_COMMIT_REF_NAME"},
                "paths": [".venv"],
                "policy": "pull-push",
                "when": "on_success",
            }
        ],
        "own": [{"key": "other", "paths": ["vendor"], "policy": "pull", "when": "always"}],
        "none": None,
        "image": None,
    }


def test_a_job_may_keep_up_to_four_caches_under_distinct_keys() -> None:
    text = """\
image: i
jobs:
  unit:
    script: ls
    cache:
      - {key: 1, paths: [a]}
      - {key: {files: [a.lock]}, paths: [b/**/*.whl]}
      - {key: {files: [b.lock]}, paths: [c], policy: push}
"""
    kept = caches(text)["unit"]
    assert isinstance(kept, list)
    assert [cache["key"] for cache in kept] == [
        "1",
        {"files": ["a.lock"], "prefix": None},
        {
            "files": ["b.lock"],
            "prefix": None,
        },
    ]


def test_every_problem_names_its_line_and_key() -> None:
    text = """\
image: i
cache: {paths: [x], key: 1.5}
jobs:
  unit:
    script: ls
    cache:
      key: {files: [], prefx: deps}
      paths: [/etc, ../up, ., vendor/../../x]
      policy: pul
      when: never
      untracked: true
  keys:
    script: ls
    cache:
      - {paths: [x], key: feature/x}
      - {paths: [x], key: "${BROKEN"}
      - {paths: [x], key: ..}
      - {paths: [x], key: {files: [../lock]}}
"""
    assert problems(text) == [
        "line 2: cache.key: a cache key is text, or a mapping of files (and a prefix)",
        "line 7: jobs.unit.cache.key.files: List should have at least 1 item after validation, "
        "not 0",
        "line 7: jobs.unit.cache.key.prefx: unknown key",
        "line 8: jobs.unit.cache.paths[0]: a cache path '/etc' is absolute: give it relative "
        "to the workspace",
        "line 8: jobs.unit.cache.paths[1]: a cache path '../up' leaves the workspace ('..')",
        "line 8: jobs.unit.cache.paths[2]: a cache path '.' is the workspace itself: name what "
        "inside it",
        "line 8: jobs.unit.cache.paths[3]: a cache path 'vendor/../../x' leaves the workspace "
        "('..')",
        "line 9: jobs.unit.cache.policy: Input should be 'pull-push', 'pull' or 'push'",
        "line 10: jobs.unit.cache.when: Input should be 'on_success', 'on_failure' or 'always'",
        "line 11: jobs.unit.cache.untracked: unknown key",
        "line 15: jobs.keys.cache[0].key: a cache key is letters, digits, '.', '_', '-' and "
        "variables ($NAME or ${NAME}), at most 200 characters",
        "line 16: jobs.keys.cache[1].key: a cache key is letters, digits, '.', '_', '-' and "
        "variables ($NAME or ${NAME}), at most 200 characters",
        "line 17: jobs.keys.cache[2].key: a cache key cannot be '.' or '..'",
        "line 18: jobs.keys.cache[3].key.files[0]: a key file '../lock' leaves the workspace "
        "('..')",
    ]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("{key: a, paths: [x]}, {key: a, paths: [y]}", "two caches of a job have the same key"),
        ("{paths: [x]}, {paths: [y]}", "two caches of a job have the same key"),
        (
            "{paths: [a]}, {paths: [b], key: b}, {paths: [c], key: c}, {paths: [d], key: d}, "
            "{paths: [e], key: e}",
            "List should have at most 4 items after validation, not 5",
        ),
    ],
)
def test_caches_of_one_job_are_few_and_distinct(setting: str, message: str) -> None:
    text = f"image: i\njobs:\n  unit:\n    script: ls\n    cache: [{setting}]\n"
    assert problems(text) == [f"line 5: jobs.unit.cache: {message}"]


def test_only_script_jobs_take_a_cache() -> None:
    text = "jobs:\n  scan:\n    kind: scan\n    cache: {paths: [x]}\n"
    assert problems(text) == [
        "line 4: jobs.scan.cache: only a script job (kind: script) takes this key"
    ]


def test_a_text_key_expands_variables_and_is_default_when_empty() -> None:
    variables = {"SHIPWAY_COMMIT_REF_NAME": "feature/x", "JOB": "unit"}
    assert expand("deps-$SHIPWAY_COMMIT_REF_NAME-${JOB}x", variables) == "deps-feature/x-unitx"
    assert text_key("$UNSET", variables) == "default"
    assert text_key("v1-$UNSET", variables) == "v1-"


def test_a_files_key_follows_the_content_of_the_files_only() -> None:
    lock = {"requirements.lock": b"requests==2.32.3\n"}
    key = files_key("deps", {}, lock)
    assert key.startswith("deps-")
    assert len(key) == len("deps-") + 16
    assert files_key("deps", {}, dict(lock)) == key  # another commit, same content
    assert files_key("deps", {}, {"requirements.lock": b"requests==2.32.4\n"}) != key
    assert files_key("deps", {}, {**lock, "b.lock": b""}) != key
    assert files_key(None, {}, lock) == key.removeprefix("deps-")
    assert files_key("$BRANCH", {"BRANCH": "main"}, {}) == "main-default"
    assert files_key(None, {}, {}) == "default"
    # A file's bytes cannot pass for a path and the other way round.
    assert files_key(None, {}, {"a": b"b\0c"}) != files_key(None, {}, {"a\0b": b"c"})


def test_each_key_has_a_file_name_of_its_own() -> None:
    keys = ["feature/x", "feature%2Fx", "feature_x", "feature-x", ".", "..", "ü", "a b", "a+b"]
    names = [file_name(key) for key in keys]
    assert len(set(names)) == len(keys)
    assert names[:2] == ["feature%2Fx", "feature%252Fx"]
    assert all("/" not in name and name not in (".", "..") for name in names)
    long_keys = ["k" * 300, "k" * 299 + "j"]
    long_names = [file_name(key) for key in long_keys]
    assert long_names[0] != long_names[1]
    assert all(len(name) < 200 for name in long_names)


def test_a_cache_path_brings_everything_under_it() -> None:
    assert in_cache(".venv", [".venv"])
    assert in_cache(".venv/lib/python3.11/site.py", [".venv"])
    assert not in_cache(".venv2/x", [".venv"])
    assert in_cache("build/a.o", ["build/*.o"])
    assert in_cache("build/sub/a.o", ["build/*.o"])  # '*' crosses folders, as in every glob
    assert not in_cache("build/a.c", ["build/*.o"])
    assert in_cache("node_modules/x", ["**/node_modules"])  # '**/' also matches no folder
    assert in_cache("web/node_modules/x", ["**/node_modules"])


def test_the_folders_read_from_the_container_cover_every_path_once() -> None:
    assert folders_to_read([".venv", "build/*.o", "build/objects", "a/b/c?"]) == [
        ".venv",
        "a/b",
        "build",
    ]
    assert folders_to_read(["vendor", "*.whl"]) == ["."]
    assert folders_to_read(["a-b", "a", "a/b"]) == ["a", "a-b"]
