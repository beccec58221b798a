"""Whether a registry still holds an image, asked over the registry's HTTP API.

A promotion releases to production exactly the digest staging runs, never a rebuild:
before it is ordered, the manifest is asked for by digest (``HEAD
/v2/<repository>/manifests/<digest>``), so a digest the registry no longer holds (a
garbage collection, a deleted repository) is refused with a clear message instead of
a release whose every instance fails to pull. A loopback registry is spoken to over
plain HTTP, as Docker does by default; any other over HTTPS.
"""

from __future__ import annotations

import httpx

from pipelines.errors import ExternalError, InvalidInput
from runners.registry import registry_of

MANIFESTS = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def split_digest_reference(reference: str) -> tuple[str, str, str]:
    """``host:port/path@sha256:...`` as (registry, repository, digest)."""
    name, at, digest = reference.partition("@")
    registry = registry_of(name)
    if not at or not digest.startswith("sha256:") or registry is None:
        raise InvalidInput(f"{reference} is not an image digest in a registry", "image")
    return registry, name[len(registry) + 1 :], digest


def holds(reference: str, timeout: float = 10.0) -> bool:
    """Whether the registry still has the image ``reference`` names by digest."""
    registry, repository, digest = split_digest_reference(reference)
    host = registry.rsplit(":", 1)[0]
    scheme = "http" if host in ("localhost", "127.0.0.1", "[::1]") else "https"
    url = f"{scheme}://{registry}/v2/{repository}/manifests/{digest}"
    try:
        answer = httpx.head(url, headers={"Accept": MANIFESTS}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ExternalError(f"the registry {registry} did not answer: {exc}") from exc
    if answer.status_code == 404:
        return False
    if answer.status_code >= 400:
        raise ExternalError(f"the registry {registry} answered {answer.status_code} for {url}")
    return True
