"""What marks this test run's own objects on the machine's shared Docker Engine.

Another installation (the demo, a second clone's suite) may use the same engine at
the same time. Everything a test makes there carries ``RUN_ID``: as the
``io.shipway.installation`` label of its servers and runners (``SHIPWAY_INSTALLATION``),
at the start of its runner, application and image names, and in its registry's port
(:mod:`tests.support.ports`). Clean-ups filter on it and never touch anything else.
"""

from __future__ import annotations

import uuid

RUN_ID = f"t{uuid.uuid4().hex[:7]}"  # a letter first: it starts project names
LABEL = "io.shipway.installation"
RUN_LABELS = {LABEL: RUN_ID}


def unique_name(kind: str = "") -> str:
    """A name of this run's, unique within it: for runners, applications, images."""
    return f"{RUN_ID}{kind}{uuid.uuid4().hex[:6]}"
