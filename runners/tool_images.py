"""Images of Shipway's own tools, made on this machine like the base images:
Debian (``shipway/debian:bookworm``) with Python and pinned packages installed in a
virtualenv from wheels that the host's pip downloads first, so the build itself needs
only the Debian archive (a TLS-intercepting proxy between the build and PyPI cannot
break it). Each is rebuilt when its recipe (versions, files) changes.

- ``shipway/scanners:1``: ruff, bandit and SonarQube's scanner (pysonar), for scan jobs.
- ``shipway/registrar:1``: the registrar sidecar of an instance (etcd3gw and
  ``runners/discovery/registrar.py``), for service registration (S1).
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors

from pipelines.errors import ExternalError
from pipelines.scan import SCANNERS_IMAGE
from runners.base_images import RECIPE_LABEL, ensure_debian

REGISTRAR_IMAGE = "shipway/registrar:1"
REGISTRAR_SOURCE = Path(__file__).resolve().parent / "discovery" / "registrar.py"


@dataclass(frozen=True)
class ToolImage:
    image: str
    pinned: tuple[str, ...]  # installed into /opt/tool
    files: dict[str, Path] = field(default_factory=dict)  # path in the image -> source
    command: tuple[str, ...] = ()

    def recipe(self) -> str:
        digest = hashlib.sha256()
        for name, source in sorted(self.files.items()):
            digest.update(name.encode() + b"\0" + source.read_bytes())
        digest.update(" ".join(self.command).encode())
        return f"{self.image}-" + "-".join(self.pinned) + f"-{digest.hexdigest()[:12]}"

    def dockerfile(self) -> str:
        copies = "".join(f"COPY files/{index} {name}\n" for index, name in enumerate(self.files))
        command = (
            "CMD [" + ", ".join(f'"{part}"' for part in self.command) + "]\n"
            if self.command
            else ""
        )
        return f"""FROM shipway/debian:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
    python3 python3-venv && rm -rf /var/lib/apt/lists/*
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/tool \\
 && /opt/tool/bin/pip install --no-index --find-links /tmp/wheels {" ".join(self.pinned)} \\
 && rm -rf /tmp/wheels
{copies}ENV PATH=/opt/tool/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
{command}LABEL {RECIPE_LABEL}={self.recipe()}
"""


SCANNERS = ToolImage(SCANNERS_IMAGE, ("ruff==0.17.6", "bandit==1.9.4", "pysonar==1.9.0.5762"))
REGISTRAR = ToolImage(
    REGISTRAR_IMAGE,
    ("etcd3gw==2.7.0",),
    files={"/opt/registrar/registrar.py": REGISTRAR_SOURCE},
    command=("/opt/tool/bin/python", "-u", "/opt/registrar/registrar.py"),
)


def ensure_tool_image(client: docker.DockerClient, tool: ToolImage) -> str:
    """Build the image unless one of the same recipe exists (a minute, once)."""
    try:
        if (client.images.get(tool.image).labels or {}).get(RECIPE_LABEL) == tool.recipe():
            return tool.image
    except docker.errors.ImageNotFound:
        pass
    ensure_debian(client)
    with tempfile.TemporaryDirectory(prefix="shipway-tool-") as work:
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
                *tool.pinned,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if downloaded.returncode != 0:
            raise ExternalError(
                f"pip could not download {', '.join(tool.pinned)}: {downloaded.stderr}"
            )
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            tar.add(str(wheels), arcname="wheels")
            for index, source in enumerate(tool.files.values()):
                tar.add(str(source), arcname=f"files/{index}")
            info = tarfile.TarInfo("Dockerfile")
            data = tool.dockerfile().encode()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        context.seek(0)
        errors = [
            str(line["error"])
            for line in client.api.build(
                fileobj=context,
                custom_context=True,
                tag=tool.image,
                rm=True,
                forcerm=True,
                decode=True,
            )
            if "error" in line
        ]
    if errors:
        raise ExternalError(f"building {tool.image} failed: {errors[0]}")
    return tool.image


def ensure_scanners(client: docker.DockerClient) -> str:
    return ensure_tool_image(client, SCANNERS)


def ensure_registrar(client: docker.DockerClient) -> str:
    return ensure_tool_image(client, REGISTRAR)
