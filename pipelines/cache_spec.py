"""``cache:`` in the pipeline file: workspace paths a script job keeps from one
pipeline to the next, as GitLab CI's ``cache:`` (R4).

    cache:                        # top level: every script job's, unless it sets its own
      key:
        files: [requirements.lock]  # a new key whenever the content of these changes
        prefix: deps
      paths: [.venv]
      policy: pull-push           # pull: restore only; push: save only
      when: on_success            # save only when the script succeeded

A key is text (``default`` unless given; variables such as ``$SHIPWAY_COMMIT_REF_NAME``
make one cache per branch) or ``{files, prefix}``. The runner resolves it
(:mod:`pipelines.cache_keys`): it knows the job's variables and the commit's files.
Up to four caches per job, as a list. Paths are paths or globs inside the workspace.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
)

MAX_CACHES = 4
MAX_KEY_FILES = 4
MAX_PATHS = 32
MAX_KEY_LENGTH = 200
DEFAULT_KEY = "default"

# Literal characters safe in a file name, and variables: $NAME or ${NAME}.
_KEY_TEXT = re.compile(r"(?:[A-Za-z0-9._-]|\$[A-Za-z_][A-Za-z0-9_]*|\$\{[A-Za-z_][A-Za-z0-9_]*\})+")
_KEY_RULE = (
    "a cache key is letters, digits, '.', '_', '-' and variables ($NAME or ${NAME}), "
    f"at most {MAX_KEY_LENGTH} characters"
)


class CachePolicy(StrEnum):
    """What a job does with its cache."""

    PULL_PUSH = "pull-push"  # restore before the script, save after it
    PULL = "pull"  # restore only: jobs that use what another job keeps up to date
    PUSH = "push"  # save only: a job that rebuilds the cache from scratch


class CacheWhen(StrEnum):
    """Given how the script ended, whether the cache is saved."""

    ON_SUCCESS = "on_success"  # the script succeeded
    ON_FAILURE = "on_failure"  # the script failed or timed out
    ALWAYS = "always"  # either (never when the job was canceled)


def _key_text(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("a cache key is text, or a mapping of files (and a prefix)")
    if len(value) > MAX_KEY_LENGTH or not _KEY_TEXT.fullmatch(value):
        raise ValueError(_KEY_RULE)
    if set(value) == {"."}:
        raise ValueError("a cache key cannot be '.' or '..'")
    return value


KeyText = Annotated[str, BeforeValidator(_key_text)]


def _inside_workspace(path: str, what: str) -> str:
    """A workspace-relative path, normalised: no leading './', no trailing '/'."""
    if "\0" in path or "\\" in path:
        raise ValueError(f"{what} {path!r} has a character a path cannot have here")
    if path.startswith("/"):
        raise ValueError(f"{what} {path!r} is absolute: give it relative to the workspace")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{what} {path!r} leaves the workspace ('..')")
    if not parts:
        raise ValueError(f"{what} {path!r} is the workspace itself: name what inside it")
    return "/".join(parts)


def _key_file(path: str) -> str:
    return _inside_workspace(path, "a key file")


def _cache_path(path: str) -> str:
    return _inside_workspace(path, "a cache path")


KeyFile = Annotated[str, Field(min_length=1), AfterValidator(_key_file)]
CachePath = Annotated[str, Field(min_length=1), AfterValidator(_cache_path)]


class CacheKeyFiles(BaseModel):
    """A key from the content of files at the commit (paths or globs), so that a
    changed lock file starts a new cache."""

    model_config = ConfigDict(extra="forbid")

    files: list[KeyFile] = Field(min_length=1, max_length=MAX_KEY_FILES)
    prefix: KeyText | None = None


def _which_key(value: Any) -> str:
    # Called with the file's value when validating, with the model when serialising.
    return "[files]" if isinstance(value, dict | CacheKeyFiles) else "[text]"


# The tags are in brackets so that error messages leave them out of the key's path
# (pipelines.spec drops such pseudo-locations): `cache.key.files`, not
# `cache.key.[files].files`.
CacheKey = Annotated[
    Annotated[KeyText, Tag("[text]")] | Annotated[CacheKeyFiles, Tag("[files]")],
    Discriminator(_which_key),
]


class CacheSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: CacheKey = DEFAULT_KEY
    paths: list[CachePath] = Field(min_length=1, max_length=MAX_PATHS)
    policy: CachePolicy = CachePolicy.PULL_PUSH
    when: CacheWhen = CacheWhen.ON_SUCCESS

    @field_validator("paths", mode="before")
    @classmethod
    def _one_or_many(cls, paths: Any) -> Any:
        return [paths] if isinstance(paths, str) else paths


def _which_setting(value: Any) -> str:
    return "[many]" if isinstance(value, list) else "[one]"


# One cache (a mapping) or a list of up to four; ``[]`` turns the default off.
CacheSetting = Annotated[
    Annotated[CacheSpec, Tag("[one]")]
    | Annotated[
        list[CacheSpec],
        Field(max_length=MAX_CACHES),
        Tag("[many]"),
    ],
    Discriminator(_which_setting),
]


def check_cache_setting(setting: CacheSpec | list[CacheSpec] | None) -> Any:
    """Refuses two caches of one job under the same key: the second would overwrite
    the first."""
    if isinstance(setting, list):
        keys: list[object] = []
        for cache in setting:
            if cache.key in keys:
                raise ValueError("two caches of a job have the same key")
            keys.append(cache.key)
    return setting


def caches_of(setting: CacheSpec | list[CacheSpec] | None) -> list[CacheSpec]:
    if setting is None:
        return []
    return [setting] if isinstance(setting, CacheSpec) else list(setting)


def cache_settings(caches: list[CacheSpec]) -> list[dict[str, Any]]:
    """What a runner receives of each cache (plain JSON, in the job's settings)."""
    return [cache.model_dump(mode="json") for cache in caches]
