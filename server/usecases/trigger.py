"""Start a pipeline by hand for a branch, a tag or a commit (API and CLI)."""

from __future__ import annotations

from pipelines.model import GitRef, Pipeline
from pipelines.ports import SourceRepository
from pipelines.refs import check_ref
from server.store import Store
from server.store.pipelines import NewPipeline


def trigger_pipeline(
    store: Store, sources: SourceRepository, project_name: str, ref: GitRef, actor: str
) -> Pipeline:
    """Resolve the ref in the project's repository and create its pipeline.

    Raises PayloadError, naming ``branch``, ``tag`` or ``commit``, for a name git
    would refuse (its ref-name rules) or that is not a commit id; NotFound when the
    project or the ref does not exist. Branch and tag rules do not apply: a person
    asked for this pipeline."""
    check_ref(ref, ref.kind.value)
    project = store.projects.by_name(project_name)
    sha = sources.resolve(project.clone_url, ref)
    pipeline = store.pipelines.create(NewPipeline(project.id, ref, sha, "api", actor))
    store.audit.record(
        actor,
        "pipeline.trigger",
        "created",
        f"pipeline {pipeline.id}",
        {"project": project.name, "ref": ref.full, "sha": sha},
    )
    return pipeline
