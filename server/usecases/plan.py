"""Read new pipelines' file at their commit and store their jobs.

The engine plans every pipeline waiting for it at once, a project at a time, so that a
burst of pushes costs little more than one: one read of the mirror for all of a
project's commits (a fetch only when one of them is not in it yet, and then one), each
distinct pipeline file parsed once (:class:`ParsedFiles`, by git's blob id), and the
jobs stored a slice of pipelines to a transaction. With ``supersede`` on, the newest
pipeline of a branch that has jobs cancels the older ones: those not planned yet end
without their file being read.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict
from collections.abc import Sequence

from pipelines.errors import Conflict, ExternalError, SpecError, SpecIssue
from pipelines.model import Pipeline, Project, RefKind
from pipelines.plan import JobDraft, PipelineContext, plan_jobs
from pipelines.ports import FileAtCommit, JobQueue, SourceRepository
from pipelines.spec import FILE_NAME, PipelineSpec, parse_spec
from pipelines.status import Status
from server.store import Store
from server.usecases.cancel import cancel_pipeline

log = logging.getLogger(__name__)

# Pipelines whose jobs one transaction stores: each transaction holds the database's
# write lock, which webhook deliveries wait for meanwhile (~6 ms for 50 here).
PLANS_PER_TRANSACTION = 50


class ParsedFiles:
    """Pipeline files parsed, by blob id (the same id, the same bytes): a project's
    pushes mostly share one file, which is then parsed once. Keeps the ``size``
    used last; an invalid file is kept with its error."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._parsed: OrderedDict[str, PipelineSpec | SpecError] = OrderedDict()
        self.parses = 0  # files parsed: fewer than looked up when the cache helps

    def parse(self, file: FileAtCommit) -> PipelineSpec:
        """The file's spec; SpecError when it is not valid."""
        parsed = self._parsed.get(file.blob)
        if parsed is None:
            self.parses += 1
            parsed = _parse(file.content)
            self._parsed[file.blob] = parsed
            if len(self._parsed) > self.size:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(file.blob)
        if isinstance(parsed, SpecError):
            raise SpecError(parsed.issues)  # a new one: a raise adds to its traceback
        return parsed


def _parse(content: bytes) -> PipelineSpec | SpecError:
    try:
        text = content.decode()
    except UnicodeDecodeError as exc:
        return SpecError([SpecIssue(None, "", f"the file is not UTF-8 text (byte {exc.start})")])
    try:
        return parse_spec(text)
    except SpecError as exc:
        return SpecError(exc.issues)  # kept without the frames of its traceback


def plan_pipelines(
    store: Store,
    sources: SourceRepository,
    queue: JobQueue,
    waiting: Sequence[Pipeline],
    parsed: ParsedFiles,
) -> int:
    """Plan the pipelines waiting for it; returns how many ended planned. A project
    whose repository cannot be reached is left for the next pass; a missing or
    invalid file fails its pipeline, and one whose rules keep no job is skipped."""
    by_project: defaultdict[int, list[Pipeline]] = defaultdict(list)
    for pipeline in waiting:
        by_project[pipeline.project_id].append(pipeline)
    done = 0
    for project_id, pipelines in by_project.items():
        project = store.projects.get(project_id)
        try:
            done += _plan_project(store, sources, queue, project, pipelines, parsed)
        except ExternalError as exc:
            log.warning("%s: cannot read %s yet: %s", project.name, FILE_NAME, exc)
    return done


def _plan_project(
    store: Store,
    sources: SourceRepository,
    queue: JobQueue,
    project: Project,
    pipelines: list[Pipeline],
    parsed: ParsedFiles,
) -> int:
    files = sources.read_files(project.clone_url, [p.sha for p in pipelines], FILE_NAME)
    plans: dict[int, list[JobDraft]] = {}
    superseding: dict[str, Pipeline] = {}  # branch -> its newest pipeline with jobs
    # Newest first: with supersede on, the older pipelines of a branch whose newest
    # has jobs are canceled without being planned.
    for pipeline in sorted(pipelines, key=lambda p: p.id, reverse=True):
        branch = pipeline.ref.name if pipeline.ref.kind is RefKind.BRANCH else None
        newer = superseding.get(branch) if project.supersede and branch else None
        if newer is not None:
            _supersede_unplanned(store, pipeline, newer)
            continue
        drafts = _drafts(store, project, pipeline, files, parsed)
        if drafts:
            plans[pipeline.id] = drafts
            if branch is not None:
                superseding[branch] = pipeline
    ordered = sorted(plans.items())
    for start in range(0, len(ordered), PLANS_PER_TRANSACTION):
        store.pipelines.add_jobs_together(dict(ordered[start : start + PLANS_PER_TRANSACTION]))
    if project.supersede:
        for newest in superseding.values():
            supersede_older(store, queue, newest)
    return len(pipelines)


def _drafts(
    store: Store,
    project: Project,
    pipeline: Pipeline,
    files: dict[str, FileAtCommit | None],
    parsed: ParsedFiles,
) -> list[JobDraft]:
    """The pipeline's jobs; none when it ended here (failed or skipped)."""
    if pipeline.sha not in files:
        error = f"commit {pipeline.sha} is not in {project.clone_url}"
        store.pipelines.end_unplanned(pipeline.id, Status.FAILED, error)
        return []
    file = files[pipeline.sha]
    if file is None:
        error = f"{FILE_NAME} not found at {pipeline.sha}"
        store.pipelines.end_unplanned(pipeline.id, Status.FAILED, error)
        return []
    try:
        drafts = plan_jobs(parsed.parse(file), PipelineContext(pipeline.ref, pipeline.source))
    except SpecError as exc:
        store.pipelines.end_unplanned(pipeline.id, Status.FAILED, f"{FILE_NAME}: {exc}")
        return []
    if not drafts:
        store.pipelines.end_unplanned(
            pipeline.id, Status.SKIPPED, f"the rules of {FILE_NAME} keep no job for this pipeline"
        )
    return drafts


def _supersede_unplanned(store: Store, older: Pipeline, newer: Pipeline) -> None:
    reason = f"superseded by pipeline {newer.id}"
    store.pipelines.end_unplanned(older.id, Status.CANCELED, reason)
    store.audit.record(
        "engine", "pipeline.cancel", "canceled", f"pipeline {older.id}", {"reason": reason}
    )


def supersede_older(store: Store, queue: JobQueue, newer: Pipeline) -> list[int]:
    """Cancel the older pipelines of the same branch that have not started a job."""
    canceled = []
    for older in store.pipelines.older_open(newer):
        jobs = store.jobs.of_pipeline(older.id)
        if any(job.status is Status.RUNNING or job.started_at is not None for job in jobs):
            continue  # it started: let it finish
        try:
            cancel_pipeline(store, queue, older.id, "engine", f"superseded by pipeline {newer.id}")
        except Conflict:
            continue
        canceled.append(older.id)
    return canceled
