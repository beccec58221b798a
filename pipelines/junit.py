"""JUnit XML test reports, read into test cases.

Reports come from jobs, so they are untrusted input: parsed with defusedxml (no
entity expansion, no external entities) and size-limited by the caller. Both roots
in use are read: ``<testsuites>`` holding ``<testsuite>``s, and a bare
``<testsuite>``. A ``<testcase>`` with ``<failure>`` failed, with ``<error>`` erred,
with ``<skipped>`` was skipped, otherwise passed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # element types only; parsing is defusedxml's
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from defusedxml import ElementTree as SafeElementTree
from defusedxml.common import DefusedXmlException

from pipelines.errors import InvalidInput

MAX_MESSAGE = 4000


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CaseResult:
    suite: str
    classname: str
    name: str
    outcome: Outcome
    seconds: float | None
    message: str | None  # the failure's message and text, shortened


@dataclass(frozen=True)
class Counts:
    total: int
    passed: int
    failed: int
    errors: int
    skipped: int

    @property
    def broken(self) -> int:
        """Tests that did not pass and were not skipped."""
        return self.failed + self.errors

    @classmethod
    def of(cls, cases: Iterable[CaseResult]) -> Counts:
        outcomes = [case.outcome for case in cases]
        return cls(
            total=len(outcomes),
            passed=outcomes.count(Outcome.PASSED),
            failed=outcomes.count(Outcome.FAILED),
            errors=outcomes.count(Outcome.ERROR),
            skipped=outcomes.count(Outcome.SKIPPED),
        )


class ReportError(InvalidInput):
    """A report that is not JUnit XML."""


def parse_junit(content: bytes | str) -> list[CaseResult]:
    try:
        root = SafeElementTree.fromstring(content)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise ReportError(f"not JUnit XML: {exc}", "report") from exc
    if root.tag == "testsuite":
        suites = [root]
    elif root.tag == "testsuites":
        suites = list(root.iter("testsuite"))
    else:
        raise ReportError(f"not JUnit XML: the root element is <{root.tag}>", "report")
    return [_case(suite, case) for suite in suites for case in suite.findall("testcase")]


def _case(suite: ET.Element, case: ET.Element) -> CaseResult:
    outcome, detail = Outcome.PASSED, None
    for tag, kind in (
        ("failure", Outcome.FAILED),
        ("error", Outcome.ERROR),
        ("skipped", Outcome.SKIPPED),
    ):
        found = case.find(tag)
        if found is not None:
            outcome, detail = kind, found
            break
    message = None
    if detail is not None and outcome is not Outcome.SKIPPED:
        parts = [detail.get("message") or "", (detail.text or "").strip()]
        message = "\n".join(part for part in parts if part)[:MAX_MESSAGE] or None
    return CaseResult(
        suite=suite.get("name", ""),
        classname=case.get("classname", ""),
        name=case.get("name", ""),
        outcome=outcome,
        seconds=_seconds(case.get("time")),
        message=message,
    )


def _seconds(value: str | None) -> float | None:
    try:
        return float(value.replace(",", "")) if value else None
    except ValueError:
        return None
