"""What a job's container receives on its stdin: one tar stream holding the
workspace, the job's script and its environment (variables and secrets), and the
command that unpacks it.

The environment travels in the stream, not in the container's configuration, for
two reasons. Secrets: the environment given to ``docker create`` is kept with the
container and shown in clear by ``docker inspect`` for as long as the container
exists. Pre-started containers (``runners.spares``): a container is created and
started before anyone knows which job it will run, so everything of the job must
arrive after the start. The unpack command reads the environment's file into the
shell that runs the script, and deletes it before the script starts: the script
sees each value as an ordinary variable, and no file in the container holds it.
A container made by this command runs nothing until the tar arrives: it blocks on
its stdin, and a stream that lacks the environment's file runs no script.
"""

from __future__ import annotations

import io
import re
import shlex
import tarfile
import time
from collections.abc import Mapping

from pipelines.errors import InvalidInput

WORKSPACE = "/workspace"
SCRIPT_PATH = "/shipway/script.sh"
ENVIRONMENT_PATH = "/shipway/environment.sh"
# A variable of the unpacking shell only (set by the environment's file, not exported,
# so the script never sees it): the job's end mark, random, which starts the line that
# says how the script ended.
END_MARK_VARIABLE = "SHIPWAY_END_MARK"
# What the container runs: unpack the tar arriving on stdin, take in the environment
# and delete its file, run the job's script with stdin closed (so a script never reads
# the tar's padding), then say how it ended, ``<end mark> out <exit code>`` on stdout
# and ``<end mark> err <exit code>`` on stderr, and exit with its code. The runner
# reports the job once both lines arrived (each stream keeps its order, the two do
# not keep theirs), without waiting for the engine to see the container exit (150-300
# ms on a busy host, measured); a container that never says it (killed, no tar in its
# image) is waited for.
UNPACK_AND_RUN = (
    "command -v tar >/dev/null || { echo 'shipway: the image has no tar' >&2; exit 127; }; "
    f"tar -xf - -C / && . {ENVIRONMENT_PATH} && rm -f {ENVIRONMENT_PATH} "
    f"&& {{ /bin/sh {SCRIPT_PATH} </dev/null; code=$?; "
    f'printf "%s out %s\\n" "${END_MARK_VARIABLE}" "$code"; '
    f'printf "%s err %s\\n" "${END_MARK_VARIABLE}" "$code" >&2; exit "$code"; }}'
)
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def render_script(lines: tuple[str, ...]) -> str:
    """A POSIX shell script that echoes each command, then runs it, and stops at
    the first failure. The commands are the pipeline file's own, by design; no
    other text is put into the script."""
    out = ["set -e"]
    for line in lines:
        shown = "$ " + line
        out.append("printf '%s\\n' '" + shown.replace("'", "'\\''") + "'")
        out.append(line)
    return "\n".join(out) + "\n"


def render_exports(variables: Mapping[str, str]) -> str:
    """Shell that exports each variable. Each value is single-quoted (``shlex.quote``),
    so quotes, ``$``, backslashes, newlines and spaces arrive as they are; each name
    is checked, since it becomes a word of the shell."""
    lines = []
    for name, value in sorted(variables.items()):
        if not _VARIABLE_NAME.fullmatch(name):
            raise InvalidInput(f"{name!r} cannot name an environment variable", "environment")
        lines.append(f"export {name}={shlex.quote(value)}\n")
    return "".join(lines)


def job_tree(
    workspace: bytes,
    script: str,
    environment: Mapping[str, str],
    secrets: Mapping[str, str],
    end_mark: str,
) -> bytes:
    """What the container unpacks at ``/``: the workspace (paths under
    ``workspace/``), the script, and the environment with the secrets and the end
    mark (a file readable by its user only; a secret wins over a variable of the
    same name, and ``END_MARK_VARIABLE`` is Shipway's, as ``SHIPWAY_JOB_ID`` is)."""
    if not re.fullmatch(r"[0-9a-f]{32}", end_mark):
        raise InvalidInput("an end mark is 32 hexadecimal digits", "end_mark")
    variables = {**environment, **secrets}
    variables.pop(END_MARK_VARIABLE, None)
    exports = render_exports(variables) + f"{END_MARK_VARIABLE}={end_mark}\n"
    return with_files(
        workspace,
        {
            SCRIPT_PATH.lstrip("/"): (script.encode(), 0o755),
            ENVIRONMENT_PATH.lstrip("/"): (exports.encode(), 0o600),
        },
    )


def with_file(archive: bytes, name: str, content: bytes, mode: int = 0o755) -> bytes:
    """``archive`` (an uncompressed tar) with one more file appended."""
    return with_files(archive, {name: (content, mode)})


def with_files(archive: bytes, files: Mapping[str, tuple[bytes, int]]) -> bytes:
    """``archive`` (an uncompressed tar) with more files appended: path -> (content,
    mode)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        with tarfile.open(fileobj=io.BytesIO(archive)) as source:
            for member in source:
                out.addfile(member, source.extractfile(member) if member.isfile() else None)
        for name, (content, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = mode
            info.mtime = int(time.time())
            out.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
