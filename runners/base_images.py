"""Base images built on this machine, since no registry can be pulled from.

- ``shipway/busybox:1``: Debian's static busybox with every applet linked, made
  with ``docker import``. A second or so to build; enough for shell-script jobs.
- ``shipway/debian:bookworm``: a minimal Debian made with ``debootstrap`` from the
  archive apt already uses on this machine. A few minutes to build, once.

Each is built only when missing (``docker images`` is the cache) and labelled with
a digest of what it was made from, so ``ensure`` rebuilds it when the recipe or its
source changes.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker
import docker.errors

from pipelines.errors import ExternalError, InvalidInput

BUSYBOX = "shipway/busybox:1"
DEBIAN = "shipway/debian:bookworm"
RECIPE_LABEL = "io.shipway.base.recipe"
BUSYBOX_BINARY = Path("/bin/busybox")
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def _current_recipe(client: docker.DockerClient, image: str) -> str | None:
    try:
        labels = client.images.get(image).labels or {}
    except docker.errors.ImageNotFound:
        return None
    return labels.get(RECIPE_LABEL)


def _import(client: docker.DockerClient, rootfs_tar: bytes, image: str, recipe: str) -> None:
    repository, tag = image.rsplit(":", 1)
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        'CMD ["/bin/sh"]',
        f"LABEL {RECIPE_LABEL}={recipe}",
    ]
    try:
        client.api.import_image_from_data(
            rootfs_tar, repository=repository, tag=tag, changes=changes
        )
    except docker.errors.APIError as exc:
        raise ExternalError(f"docker import of {image} failed: {exc.explanation}") from exc


def busybox_rootfs(binary: Path = BUSYBOX_BINARY) -> bytes:
    """A tar of /bin/busybox with a link per applet, plus /tmp and /etc basics."""
    if not binary.exists():
        raise InvalidInput(f"{binary} is missing: install Debian's busybox-static", "busybox")
    applets = subprocess.run(
        [str(binary), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory, mode in (("bin", 0o755), ("tmp", 0o1777), ("etc", 0o755), ("root", 0o700)):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(str(binary), arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for name, text in (
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"),
            ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def ensure_busybox(client: docker.DockerClient, image: str = BUSYBOX) -> str:
    """Build the busybox image unless an identical one exists; return its name."""
    digest = hashlib.sha256(BUSYBOX_BINARY.read_bytes()).hexdigest()[:16]
    recipe = f"busybox-v1-{digest}"
    if _current_recipe(client, image) != recipe:
        _import(client, busybox_rootfs(), image, recipe)
    return image


def apt_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The Debian archive this machine's apt uses (first ``deb`` entry)."""
    for path in sources:
        if not path.exists():
            continue
        text = path.read_text()
        match = re.search(r"^URIs:\s*(\S+)", text, re.MULTILINE) or re.search(
            r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.MULTILINE
        )
        if match:
            return match.group(1)
    raise InvalidInput("no Debian archive found in apt's sources", "apt")


def ensure_debian(client: docker.DockerClient, image: str = DEBIAN, suite: str = "bookworm") -> str:
    """Build a minimal Debian image with debootstrap unless one exists (minutes)."""
    mirror = apt_mirror()
    recipe = f"debootstrap-minbase-v1-{suite}"
    if _current_recipe(client, image) == recipe:
        return image
    if shutil.which("debootstrap") is None:
        raise InvalidInput("debootstrap is missing: apt-get install debootstrap", "debootstrap")
    work = Path(tempfile.mkdtemp(prefix="shipway-debootstrap-"))
    try:
        root = work / "rootfs"
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", suite, str(root), mirror],
            capture_output=True,
            text=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            check=False,
        )
        if result.returncode != 0:
            raise ExternalError(f"debootstrap failed: {result.stderr[-2000:]}")
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["tar", "-C", str(root), "--numeric-owner", "-cf", "-", "."],
            capture_output=True,
            check=True,
        ).stdout
        _import(client, archive, image, recipe)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return image
