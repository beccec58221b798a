"""Tell GitLab what became of its pushes (T5): each pipeline's status on its commit
(pending, running, success, failed, canceled, skipped), and a note on the merge
request once its pipeline deployed to an environment, with the address testers open.

Each report is recorded; one GitLab did not take is tried again with a growing
back-off, and given up after GIVE_UP_AFTER attempts, or at once when GitLab does
not know the project or commit. Only pipelines of the last REPORT_WINDOW are looked at.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pipelines.errors import ExternalError, NotFound
from pipelines.gitlab_feedback import (
    DESCRIPTIONS,
    GIVE_UP_AFTER,
    STATUS_NAME,
    Delivery,
    after_failure,
    deployed_note,
    gitlab_state,
    is_due,
)
from pipelines.ports import GitLab
from server.store import Store
from server.store.gitlab_reports import STATUS, note_subject

log = logging.getLogger(__name__)

REPORT_WINDOW = timedelta(days=7)


def report_to_gitlab(
    store: Store, gitlab: GitLab, now: datetime, public_url: str | None = None
) -> int:
    """Send what is due; how many reports GitLab took."""
    return _statuses(store, gitlab, now, public_url) + _notes(store, gitlab, now)


def _failed(delivery: Delivery | None, exc: ExternalError | NotFound, now: datetime) -> Delivery:
    failed = after_failure(delivery, str(exc), now)
    if isinstance(exc, NotFound):  # retrying cannot help
        return Delivery(failed.sent, GIVE_UP_AFTER, None, failed.error)
    return failed


def _statuses(store: Store, gitlab: GitLab, now: datetime, public_url: str | None) -> int:
    sent = 0
    for item in store.gitlab_reports.statuses_to_report(now - REPORT_WINDOW):
        pipeline = item.pipeline
        state = gitlab_state(pipeline.status)
        if item.delivery is not None and item.delivery.sent == state:
            # created -> pending, say: GitLab shows that state already.
            store.gitlab_reports.record(pipeline.id, STATUS, item.delivery, pipeline.status.value)
            continue
        if not is_due(state, item.delivery, now):
            continue
        project = store.projects.get(pipeline.project_id)
        try:
            gitlab.set_status(
                project.gitlab_path,
                pipeline.sha,
                state,
                ref=pipeline.ref.name,
                name=STATUS_NAME,
                description=f"pipeline {pipeline.id} {DESCRIPTIONS[pipeline.status]}",
                target_url=f"{public_url.rstrip('/')}/api/pipelines/{pipeline.id}"
                if public_url
                else None,
            )
        except (ExternalError, NotFound) as exc:
            log.warning("pipeline %s: status not reported: %s", pipeline.id, exc)
            failed = _failed(item.delivery, exc, now)
            store.gitlab_reports.record(pipeline.id, STATUS, failed, item.for_status)
            continue
        store.gitlab_reports.record(pipeline.id, STATUS, Delivery(state), pipeline.status.value)
        sent += 1
    return sent


def _notes(store: Store, gitlab: GitLab, now: datetime) -> int:
    sent = 0
    for pipeline, job, delivery in store.gitlab_reports.deploys_to_note(now - REPORT_WINDOW):
        subject = note_subject(job.id)
        if not is_due("sent", delivery, now) or pipeline.merge_request_iid is None:
            continue
        release = store.releases.of_job(job.id)
        if release is None:
            continue
        config = store.deployments.config(
            release.project_id, release.environment, release.config_version
        )
        url = config.config.get("url")
        body = deployed_note(release.environment, pipeline.sha, release.id, url)
        project = store.projects.get(pipeline.project_id)
        try:
            gitlab.add_merge_request_note(project.gitlab_path, pipeline.merge_request_iid, body)
        except (ExternalError, NotFound) as exc:
            log.warning("pipeline %s: merge request note not sent: %s", pipeline.id, exc)
            store.gitlab_reports.record(pipeline.id, subject, _failed(delivery, exc, now))
            continue
        store.gitlab_reports.record(pipeline.id, subject, Delivery("sent"))
        sent += 1
    return sent
