"""GitLab's API through python-gitlab (T5): commit statuses and merge-request notes.
Implements ``pipelines.ports.GitLab``."""

from __future__ import annotations

import gitlab
import gitlab.exceptions
import requests

from pipelines.errors import ExternalError, NotFound

TIMEOUT_SECONDS = 10.0


class PythonGitLab:
    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.client = gitlab.Gitlab(url, private_token=token, timeout=TIMEOUT_SECONDS)

    def set_status(
        self,
        project_path: str,
        sha: str,
        state: str,
        *,
        ref: str,
        name: str,
        description: str,
        target_url: str | None,
    ) -> None:
        project = self.client.projects.get(project_path, lazy=True)
        data = {"state": state, "ref": ref, "name": name, "description": description}
        if target_url:
            data["target_url"] = target_url
        try:
            project.commits.get(sha, lazy=True).statuses.create(data)
        except gitlab.exceptions.GitlabCreateError as exc:
            # GitLab refuses a status it has already ("Cannot transition status via
            # :run from :running"): a resend after a lost answer. Nothing to do.
            if exc.response_code == 400 and "Cannot transition" in str(exc.error_message):
                return
            if exc.response_code == 404:
                raise NotFound(f"GitLab at {self.url} has no {project_path} @ {sha[:8]}") from exc
            raise ExternalError(f"GitLab at {self.url}: status of {sha[:8]}: {exc}") from exc
        except (gitlab.exceptions.GitlabError, requests.RequestException) as exc:
            raise ExternalError(f"GitLab at {self.url}: status of {sha[:8]}: {exc}") from exc

    def add_merge_request_note(self, project_path: str, iid: int, body: str) -> None:
        project = self.client.projects.get(project_path, lazy=True)
        try:
            project.mergerequests.get(iid, lazy=True).notes.create({"body": body})
        except gitlab.exceptions.GitlabCreateError as exc:
            if exc.response_code == 404:
                raise NotFound(f"GitLab at {self.url} has no {project_path}!{iid}") from exc
            raise ExternalError(f"GitLab at {self.url}: note on !{iid}: {exc}") from exc
        except (gitlab.exceptions.GitlabError, requests.RequestException) as exc:
            raise ExternalError(f"GitLab at {self.url}: note on !{iid}: {exc}") from exc
