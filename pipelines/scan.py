"""Static-analysis findings: read from the analysers' JSON, written in SonarQube's
generic issue import format, and judged by a quality gate.

Analysers run in a container over ``/workspace``; paths are kept relative to the
repository. Severities are Shipway's three (``low``, ``medium``, ``high``) and
qualities SonarQube's (``SECURITY``, ``RELIABILITY``, ``MAINTAINABILITY``). A finding
is *new* when the previous scan of the same project and ref did not have it; it is
recognised by analyser, rule, file and message, not by line, so moving code does
not make old findings new.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.errors import InvalidInput

ANALYSERS = ("ruff", "bandit")
SCANNERS_IMAGE = "shipway/scanners:1"  # built by ``shipway images scanners``
GATE_METRICS = ("new_high", "new_medium", "new_total", "high", "medium", "total")
DEFAULT_GATE = {"new_high": 0}
WORKSPACE_PREFIX = "/workspace/"
_SONAR_SEVERITY = {"high": "CRITICAL", "medium": "MAJOR", "low": "MINOR"}
SEVERITIES = tuple(_SONAR_SEVERITY)
_SONAR_TYPE = {"SECURITY": "VULNERABILITY", "RELIABILITY": "BUG", "MAINTAINABILITY": "CODE_SMELL"}


class ScanReportError(InvalidInput):
    """An analyser's output that cannot be read."""


@dataclass(frozen=True)
class Finding:
    analyser: str
    rule: str
    message: str
    path: str
    line: int
    quality: str  # SECURITY, RELIABILITY or MAINTAINABILITY
    severity: str  # low, medium or high

    @property
    def fingerprint(self) -> tuple[str, str, str, str]:
        return (self.analyser, self.rule, self.path, self.message)


def _relative(path: str) -> str:
    path = path.removeprefix(WORKSPACE_PREFIX).removeprefix("./")
    return path.lstrip("/")


def from_ruff(content: bytes) -> list[Finding]:
    """``ruff check --output-format=json``: pyflakes errors are bugs, ruff's bandit
    rules (S) security, the rest maintainability."""
    entries = _json_list(content, "ruff")
    findings = []
    for entry in entries:
        code = str(entry.get("code") or "ruff")
        if code.startswith("S"):
            quality, severity = "SECURITY", "medium"
        elif code.startswith(("F", "E9")):
            quality, severity = "RELIABILITY", "medium"
        else:
            quality, severity = "MAINTAINABILITY", "low"
        location = entry.get("location") or {}
        if not isinstance(location, dict):
            raise ScanReportError("ruff's output has a location that is not an object", "report")
        findings.append(
            Finding(
                analyser="ruff",
                rule=code,
                message=str(entry.get("message", "")),
                path=_relative(str(entry.get("filename", ""))),
                line=_line(location.get("row"), "ruff"),
                quality=quality,
                severity=severity,
            )
        )
    return findings


def from_bandit(content: bytes) -> list[Finding]:
    """``bandit -f json``: every result is a security finding of its own severity."""
    try:
        data = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScanReportError(f"bandit's output is not JSON: {exc}", "report") from exc
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ScanReportError("bandit's output has no results list", "report")
    findings = []
    for result in data["results"]:
        if not isinstance(result, dict):
            raise ScanReportError("bandit's output has a result that is not an object", "report")
        severity = str(result.get("issue_severity", "LOW")).lower()
        severity = "low" if severity == "undefined" else severity  # bandit's lowest rank
        if severity not in SEVERITIES:
            raise ScanReportError(f"bandit's output has a severity not in {SEVERITIES}", "report")
        findings.append(
            Finding(
                analyser="bandit",
                rule=str(result.get("test_id", "bandit")),
                message=str(result.get("issue_text", "")),
                path=_relative(str(result.get("filename", ""))),
                line=_line(result.get("line_number"), "bandit"),
                quality="SECURITY",
                severity=severity,
            )
        )
    return findings


READERS = {"ruff": from_ruff, "bandit": from_bandit}


def _line(value: Any, analyser: str) -> int:
    """A finding's line: 1 when the analyser gives none."""
    if value is None or value == 0:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ScanReportError(f"{analyser}'s output has a line that is not a number", "report")
    return value


def _json_list(content: bytes, analyser: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScanReportError(f"{analyser}'s output is not JSON: {exc}", "report") from exc
    if not isinstance(data, list):
        raise ScanReportError(f"{analyser}'s output is not a JSON list", "report")
    return [entry for entry in data if isinstance(entry, dict)]


def to_generic(findings: Iterable[Finding]) -> dict[str, Any]:
    """SonarQube's generic issue import format (10.3 and later: rules and issues;
    the older ``type`` and ``severity`` of a rule are given too)."""
    rules: dict[str, dict[str, Any]] = {}
    issues = []
    for finding in findings:
        rule_id = f"{finding.analyser}:{finding.rule}"
        rules.setdefault(
            rule_id,
            {
                "id": rule_id,
                "name": f"{finding.analyser} {finding.rule}",
                "description": f"{finding.analyser} rule {finding.rule}",
                "engineId": finding.analyser,
                "cleanCodeAttribute": "CONVENTIONAL",
                "type": _SONAR_TYPE[finding.quality],
                "severity": _SONAR_SEVERITY[finding.severity],
                "impacts": [
                    {"softwareQuality": finding.quality, "severity": finding.severity.upper()}
                ],
            },
        )
        issues.append(
            {
                "ruleId": rule_id,
                "primaryLocation": {
                    "message": finding.message,
                    "filePath": finding.path,
                    "textRange": {"startLine": finding.line},
                },
            }
        )
    return {"rules": list(rules.values()), "issues": issues}


def from_generic(document: Mapping[str, Any]) -> list[Finding]:
    """Findings back from a stored generic report."""
    rules = {rule["id"]: rule for rule in document.get("rules", [])}
    findings = []
    for issue in document.get("issues", []):
        rule = rules[issue["ruleId"]]
        impact = rule["impacts"][0]
        location = issue["primaryLocation"]
        findings.append(
            Finding(
                analyser=rule["engineId"],
                rule=issue["ruleId"].split(":", 1)[1],
                message=location["message"],
                path=location["filePath"],
                line=int(location["textRange"]["startLine"]),
                quality=impact["softwareQuality"],
                severity=impact["severity"].lower(),
            )
        )
    return findings


@dataclass(frozen=True)
class GateResult:
    passed: bool
    counts: dict[str, int]
    broken: list[str]  # each condition that failed, said plainly


def judge(
    findings: list[Finding], baseline: list[Finding] | None, gate: Mapping[str, int]
) -> GateResult:
    """Count the metrics and compare them with the gate's maximums. Without a
    baseline (a first scan) every finding is new."""
    known = {finding.fingerprint for finding in baseline or []}
    new = [finding for finding in findings if finding.fingerprint not in known]
    counts = {
        "new_high": sum(f.severity == "high" for f in new),
        "new_medium": sum(f.severity == "medium" for f in new),
        "new_total": len(new),
        "high": sum(f.severity == "high" for f in findings),
        "medium": sum(f.severity == "medium" for f in findings),
        "total": len(findings),
    }
    broken = [
        f"{metric.replace('_', ' ')} findings: {counts[metric]}, at most {maximum} allowed"
        for metric, maximum in gate.items()
        if counts[metric] > maximum
    ]
    return GateResult(not broken, counts, broken)
