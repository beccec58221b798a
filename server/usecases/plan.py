"""Read a new pipeline's file at its commit and store its jobs."""

from __future__ import annotations

import logging

from pipelines.errors import ExternalError, NotFound, SpecError
from pipelines.plan import plan_jobs
from pipelines.ports import SourceRepository
from pipelines.spec import FILE_NAME, parse_spec
from server.store import Store

log = logging.getLogger(__name__)


def plan_pipeline(store: Store, sources: SourceRepository, pipeline_id: int) -> bool:
    """Plan one pipeline. Returns False when git could not be reached, so the
    engine tries again later; a missing or invalid file fails the pipeline."""
    pipeline = store.pipelines.get(pipeline_id)
    project = store.projects.get(pipeline.project_id)
    try:
        text = sources.read_file(project.clone_url, pipeline.sha, FILE_NAME)
    except NotFound as exc:
        store.pipelines.fail_unplanned(pipeline_id, str(exc))
        return True
    except ExternalError as exc:
        log.warning("pipeline %s: cannot read %s yet: %s", pipeline_id, FILE_NAME, exc)
        return False
    if text is None:
        store.pipelines.fail_unplanned(pipeline_id, f"{FILE_NAME} not found at {pipeline.sha}")
        return True
    try:
        drafts = plan_jobs(parse_spec(text))
    except SpecError as exc:
        store.pipelines.fail_unplanned(pipeline_id, f"{FILE_NAME}: {exc}")
        return True
    store.pipelines.add_jobs(pipeline_id, drafts)
    return True
