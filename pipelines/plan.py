"""From a validated pipeline file to the jobs of one pipeline.

Rules are applied here, against what the pipeline was started for: a job whose
rules do not match (or match with ``when: never``) is not part of the pipeline at
all, as in GitLab. Everything a job needs to be scheduled is resolved here, so the
scheduler never reads the file again.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipelines.cache_spec import cache_settings, caches_of
from pipelines.errors import SpecError, SpecIssue
from pipelines.events import MERGE_REQUEST
from pipelines.model import GitRef, RefKind
from pipelines.scan import SCANNERS_IMAGE
from pipelines.spec import JobSpec, PipelineSpec
from pipelines.spec_types import JobKind, RuleSpec, RuleWhen, When


@dataclass(frozen=True)
class PipelineContext:
    """What a pipeline was started for; rules are matched against it."""

    ref: GitRef
    source: str  # push, tag_push, api or merge_request

    @property
    def merge_request(self) -> bool:
        return self.source == MERGE_REQUEST


@dataclass(frozen=True)
class JobDraft:
    """A job as the pipeline file declares it for one pipeline, before it is stored."""

    name: str
    stage: str
    stage_index: int
    image: str
    script: tuple[str, ...]
    variables: dict[str, str]
    timeout_seconds: int
    queue: str
    kind: str = "script"
    needs: tuple[str, ...] | None = None  # None: the jobs of every earlier stage
    when: str = When.ON_SUCCESS.value
    allow_failure: bool = False
    retry_max: int = 0
    retry_on: tuple[str, ...] = ()
    environment: str | None = None
    secrets: tuple[str, ...] = ()
    settings: dict[str, Any] | None = None  # what a built-in kind of job needs


def plan_jobs(spec: PipelineSpec, context: PipelineContext | None = None) -> list[JobDraft]:
    """One draft per job the rules keep, in stage order, then in file order.

    Without a context (``shipway lint``) rules are not applied: every job is kept.
    Raises :class:`SpecError` when a kept job needs one the rules left out."""
    drafts = []
    for name, job in spec.jobs.items():
        when = _when(job, context)
        if when is None:
            continue
        drafts.append(_draft(spec, name, job, when))
    kept = {draft.name for draft in drafts}
    issues = [
        SpecIssue(
            None,
            f"jobs.{draft.name}.needs",
            f"{needed!r} is not in this pipeline: its rules leave it out for {_describe(context)}",
        )
        for draft in drafts
        for needed in draft.needs or ()
        if needed not in kept
    ]
    if issues:
        raise SpecError(issues)
    drafts.sort(key=lambda draft: draft.stage_index)
    return drafts


def _draft(spec: PipelineSpec, name: str, job: JobSpec, when: When) -> JobDraft:
    settings = _SETTINGS[job.kind](job)
    if job.kind is JobKind.SCRIPT:
        settings = _with_caches(spec, job, settings)
    if job.kind is JobKind.IMAGE:
        # An image job runs in no image of its own; its column names what it builds from.
        image = _built_from(job)
    elif job.kind is JobKind.SCAN:
        image = job.image or SCANNERS_IMAGE
    elif job.kind is JobKind.DEPLOY:
        image = f"release to {job.environment}"
    elif job.kind is JobKind.PROMOTE:
        image = f"promotion from {job.from_environment} to {job.environment}"
    else:
        image = job.image or spec.image or ""
    allow_failure = job.allow_failure
    if allow_failure is None:
        allow_failure = when is When.MANUAL  # an optional manual job blocks nothing
    return JobDraft(
        name=name,
        stage=job.stage,
        stage_index=spec.stages.index(job.stage),
        image=image,
        script=tuple(job.script or ()),
        variables={**spec.variables, **job.variables},
        timeout_seconds=job.timeout or spec.timeout,
        queue=job.queue,
        kind=job.kind.value,
        needs=tuple(job.needs) if job.needs is not None else None,
        when=when.value,
        allow_failure=allow_failure,
        retry_max=job.retry.max if job.retry else 0,
        retry_on=tuple(job.retry.when) if job.retry else (),
        environment=job.environment,
        secrets=tuple(job.secrets),
        settings=settings,
    )


def _script_settings(job: JobSpec) -> dict[str, Any] | None:
    if job.reports is None:
        return None
    return {"reports": {"junit": list(job.reports.junit)}}


def _with_caches(
    spec: PipelineSpec, job: JobSpec, settings: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The job's caches, or the file's when it sets none (``cache: []`` sets none)."""
    setting = job.cache if "cache" in job.model_fields_set else spec.cache
    caches = caches_of(setting)
    if not caches:
        return settings
    return {**(settings or {}), "caches": cache_settings(caches)}


def _image_settings(job: JobSpec) -> dict[str, Any]:
    return {
        "layers": job.layers.model_dump(by_alias=True) if job.layers else None,
        "dockerfile": job.dockerfile,
        "context": job.context,
        "repository": job.repository,
        "runtime_mounts": [mount.model_dump() for mount in job.runtime_mounts],
    }


def _scan_settings(job: JobSpec) -> dict[str, Any]:
    return {"analysers": job.analysers, "paths": job.paths, "gate": job.gate}


def _deploy_settings(job: JobSpec) -> dict[str, Any]:
    release = job.release.model_dump() if job.release else {"pause_mode": "never", "beta": False}
    if release.get("batches") is None and release.get("grouping") is None:
        release["batches"] = 1
    return {"release": release, "image_job": job.image_job}


def _promote_settings(job: JobSpec) -> dict[str, Any]:
    release = job.release.model_dump() if job.release else {"pause_mode": "never", "beta": False}
    if release.get("batches") is None and release.get("grouping") is None:
        release["grouping"] = "two_groups"
    return {"release": release, "from": job.from_environment}


_SETTINGS: dict[JobKind, Callable[[JobSpec], dict[str, Any] | None]] = {
    JobKind.SCRIPT: _script_settings,
    JobKind.IMAGE: _image_settings,
    JobKind.SCAN: _scan_settings,
    JobKind.DEPLOY: _deploy_settings,
    JobKind.PROMOTE: _promote_settings,
}


def _built_from(job: JobSpec) -> str:
    if job.layers is not None:
        return job.layers.os
    return f"dockerfile:{job.dockerfile}"


def _when(job: JobSpec, context: PipelineContext | None) -> When | None:
    """The job's ``when`` in this pipeline, or None when it is left out."""
    if job.rules is None or context is None:
        return job.when
    for rule in job.rules:
        if matches(rule, context):
            if rule.when is RuleWhen.NEVER:
                return None
            return When(rule.when.value) if rule.when is not None else job.when
    return None


def matches(rule: RuleSpec, context: PipelineContext) -> bool:
    """Each condition the rule names must hold; ``branch`` matches the branch a
    pipeline runs for, a merge request's source branch included."""
    ref = context.ref
    if rule.branch is not None and not (
        ref.kind is RefKind.BRANCH and _any_glob(ref.name, rule.branch)
    ):
        return False
    if rule.tag is not None and not (ref.kind is RefKind.TAG and _any_glob(ref.name, rule.tag)):
        return False
    return rule.merge_request is None or rule.merge_request == context.merge_request


def _any_glob(name: str, globs: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, glob) for glob in globs)


def _describe(context: PipelineContext | None) -> str:
    if context is None:
        return "this pipeline"
    if context.merge_request:
        return f"merge request pipelines of {context.ref.name}"
    return f"{context.ref.kind.value} {context.ref.name}"
