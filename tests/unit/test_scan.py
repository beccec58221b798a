from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest

from pipelines.scan import (
    Finding,
    ScanReportError,
    from_bandit,
    from_generic,
    from_ruff,
    judge,
    to_generic,
)

# Trimmed from real `ruff check --output-format=json` and `bandit -f json` output.
RUFF = json.dumps(
    [
        {
            "code": "F401",
            "filename": "/workspace/src/app.py",
            "location": {"column": 8, "row": 1},
            "message": "`os` imported but unused",
            "name": "unused-import",
        },
        {
            "code": "E501",
            "filename": "/workspace/src/app.py",
            "location": {"column": 101, "row": 9},
            "message": "Line too long (120 > 100)",
        },
    ]
).encode()
BANDIT = json.dumps(
    {
        "errors": [],
        "results": [
            {
                "filename": "./src/app.py",
                "issue_confidence": "HIGH",
                "issue_severity": "HIGH",
                "issue_text": "subprocess call with shell=True identified, security issue.",
                "line_number": 7,
                "test_id": "B602",
                "test_name": "subprocess_popen_with_shell_equals_true",
            },
            {
                "filename": "./src/app.py",
                "issue_severity": "MEDIUM",
                "issue_text": "Use of possibly insecure function - consider ast.literal_eval.",
                "line_number": 5,
                "test_id": "B307",
            },
        ],
    }
).encode()


def test_analyser_output_becomes_findings() -> None:
    unused, long_line = from_ruff(RUFF)
    assert (unused.path, unused.line, unused.quality) == ("src/app.py", 1, "RELIABILITY")
    assert (long_line.quality, long_line.severity) == ("MAINTAINABILITY", "low")
    shell, unsafe_eval = from_bandit(BANDIT)
    assert (shell.rule, shell.severity, shell.path) == ("B602", "high", "src/app.py")
    assert unsafe_eval.severity == "medium"


def test_the_generic_format_round_trips() -> None:
    findings = from_ruff(RUFF) + from_bandit(BANDIT)
    document = to_generic(findings)
    assert {rule["id"] for rule in document["rules"]} == {
        "ruff:F401",
        "ruff:E501",
        "bandit:B602",
        "bandit:B307",
    }
    shell = next(rule for rule in document["rules"] if rule["id"] == "bandit:B602")
    assert shell["impacts"] == [{"softwareQuality": "SECURITY", "severity": "HIGH"}]
    assert (shell["type"], shell["severity"]) == ("VULNERABILITY", "CRITICAL")
    issue = document["issues"][2]
    assert issue["primaryLocation"] == {
        "message": "subprocess call with shell=True identified, security issue.",
        "filePath": "src/app.py",
        "textRange": {"startLine": 7},
    }
    assert from_generic(json.loads(json.dumps(document))) == findings


def test_the_gate_counts_new_findings_against_the_last_scan() -> None:
    findings = from_bandit(BANDIT)
    first = judge(findings, None, {"new_high": 0})
    assert not first.passed
    assert first.broken == ["new high findings: 1, at most 0 allowed"]
    moved = [replace(finding, line=99) for finding in findings]
    again = judge(moved, findings, {"new_high": 0, "total": 5})
    assert again.passed  # the same findings, moved, are not new
    assert again.counts["high"] == 1
    assert not judge(findings, [], {"medium": 0}).passed


@pytest.mark.parametrize(
    ("reader", "content"), [(from_ruff, b"{}"), (from_ruff, b"nope"), (from_bandit, b"[]")]
)
def test_unreadable_output_is_refused(
    reader: Callable[[bytes], list[Finding]], content: bytes
) -> None:
    with pytest.raises(ScanReportError):
        reader(content)
