"""Secret variables: set, list and delete them; hand them to the job that needs them.

Only names are in the repository (a job's ``secrets:``); values are set through
the API or CLI per project and environment, sealed at rest, listed without their
values, and sent only to the runner that starts a job declaring them.
"""

from __future__ import annotations

import re

from pipelines.errors import InvalidInput, NotFound
from pipelines.masking import MIN_SECRET_LENGTH
from pipelines.model import Job
from server.secret_box import SecretBox
from server.store import Store
from server.store.secrets import ANY_ENVIRONMENT, SecretEntry

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_ENVIRONMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAX_SECRET_BYTES = 64 * 1024


class MissingSecret(NotFound):
    """A job declares a secret that has no value for its project and environment."""


def check_environment(environment: str) -> str:
    if environment != ANY_ENVIRONMENT and not _ENVIRONMENT.fullmatch(environment):
        raise InvalidInput(
            "environment is '*' or 1-63 letters, digits, '.', '_' or '-'", "environment"
        )
    return environment


def set_secret(
    store: Store,
    box: SecretBox,
    project_name: str,
    name: str,
    value: str,
    environment: str,
    actor: str,
) -> bool:
    """Store a secret's value; True when it is new. The value is never logged."""
    if not _NAME.fullmatch(name):
        raise InvalidInput("a secret name is letters, digits and underscores", "name")
    check_environment(environment)
    if len(value) < MIN_SECRET_LENGTH:
        raise InvalidInput(
            f"a secret value has at least {MIN_SECRET_LENGTH} characters, so that masking "
            "it in logs cannot hide ordinary output",
            "value",
        )
    if len(value.encode()) > MAX_SECRET_BYTES:
        raise InvalidInput(f"a secret value is at most {MAX_SECRET_BYTES} bytes", "value")
    if "\x00" in value:
        raise InvalidInput("a secret value cannot hold a NUL character", "value")
    project = store.projects.by_name(project_name)
    created = store.secrets.put(project.id, environment, name, box.seal(value), actor)
    store.audit.record(
        actor,
        "secret.set",
        "created" if created else "replaced",
        f"project {project.name}",
        {"name": name, "environment": environment},
    )
    return created


def list_secrets(store: Store, project_name: str) -> list[SecretEntry]:
    return store.secrets.entries(store.projects.by_name(project_name).id)


def delete_secret(store: Store, project_name: str, name: str, environment: str, actor: str) -> None:
    project = store.projects.by_name(project_name)
    store.secrets.delete(project.id, check_environment(environment), name)
    store.audit.record(
        actor,
        "secret.delete",
        "deleted",
        f"project {project.name}",
        {"name": name, "environment": environment},
    )


def secrets_for(store: Store, box: SecretBox, job: Job) -> dict[str, str]:
    """The values of the secrets the job declares; MissingSecret names any without."""
    if not job.secrets:
        return {}
    project_id = store.jobs.project_of(job.id)
    sealed = store.secrets.sealed_for(project_id, job.environment, job.secrets)
    missing = [name for name in job.secrets if name not in sealed]
    if missing:
        where = f"environment {job.environment}" if job.environment else "every environment"
        raise MissingSecret(
            f"secret {', '.join(missing)} has no value for {where}: "
            "set it with `shipway secret set`"
        )
    return {name: box.open(sealed[name]) for name in job.secrets}
