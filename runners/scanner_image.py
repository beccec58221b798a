"""``shipway/scanners:1``: the image scan jobs run their analysers in.

Made on this machine, like the base images: Debian (``shipway/debian:bookworm``)
with Python, and ruff, bandit and SonarQube's scanner (pysonar) installed in a
virtualenv from wheels that the host's pip downloads first, so the build itself
needs only the Debian archive (a TLS-intercepting proxy between the build and PyPI
cannot break it). The versions are pinned; the image is rebuilt when they change.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import docker
import docker.errors

from pipelines.errors import ExternalError
from pipelines.scan import SCANNERS_IMAGE
from runners.base_images import RECIPE_LABEL, ensure_debian

SCANNERS = SCANNERS_IMAGE
PINNED = ("ruff==0.17.6", "bandit==1.9.4", "pysonar==1.9.0.5762")
RECIPE = "scanners-v1-" + "-".join(PINNED)
DOCKERFILE = f"""FROM shipway/debian:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
    python3 python3-venv && rm -rf /var/lib/apt/lists/*
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/scanners \\
 && /opt/scanners/bin/pip install --no-index --find-links /tmp/wheels {" ".join(PINNED)} \\
 && rm -rf /tmp/wheels
ENV PATH=/opt/scanners/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL {RECIPE_LABEL}={RECIPE}
"""


def ensure_scanners(client: docker.DockerClient, image: str = SCANNERS) -> str:
    """Build the scanners image unless an identical one exists (a minute, once)."""
    try:
        if (client.images.get(image).labels or {}).get(RECIPE_LABEL) == RECIPE:
            return image
    except docker.errors.ImageNotFound:
        pass
    ensure_debian(client)
    with tempfile.TemporaryDirectory(prefix="shipway-scanners-") as work:
        wheels = Path(work) / "wheels"
        downloaded = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--only-binary",
                ":all:",
                "--python-version",
                "3.11",
                "--dest",
                str(wheels),
                *PINNED,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if downloaded.returncode != 0:
            raise ExternalError(f"pip could not download {', '.join(PINNED)}: {downloaded.stderr}")
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            tar.add(str(wheels), arcname="wheels")
            info = tarfile.TarInfo("Dockerfile")
            data = DOCKERFILE.encode()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        context.seek(0)
        errors = [
            str(line["error"])
            for line in client.api.build(
                fileobj=context, custom_context=True, tag=image, rm=True, forcerm=True, decode=True
            )
            if "error" in line
        ]
    if errors:
        raise ExternalError(f"building {image} failed: {errors[0]}")
    return image
