"""Every YAML example of docs/pipeline-file.md is a valid pipeline file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.spec import parse_spec

DOC = Path(__file__).parents[2] / "docs" / "pipeline-file.md"
EXAMPLES = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_page_has_examples() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example-{i}" for i in range(len(EXAMPLES))])
def test_each_example_is_a_valid_file(example: str) -> None:
    parse_spec(example)
