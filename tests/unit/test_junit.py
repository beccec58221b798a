from __future__ import annotations

import pytest

from pipelines.junit import Counts, Outcome, ReportError, parse_junit

REPORT = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites>
  <testsuite name="pytest" tests="4" failures="1" errors="1" skipped="1" time="0.12">
    <testcase classname="tests.test_math" name="test_add" time="0.001"/>
    <testcase classname="tests.test_math" name="test_div" time="0.002">
      <failure message="assert 1 == 2">def test_div():
&gt;       assert 1 == 2</failure>
    </testcase>
    <testcase classname="tests.test_io" name="test_read" time="1,000.5">
      <error message="FileNotFoundError"/>
    </testcase>
    <testcase classname="tests.test_io" name="test_net"><skipped message="offline"/></testcase>
  </testsuite>
</testsuites>
"""


def test_outcomes_messages_and_times() -> None:
    cases = parse_junit(REPORT)
    assert [case.outcome for case in cases] == [
        Outcome.PASSED,
        Outcome.FAILED,
        Outcome.ERROR,
        Outcome.SKIPPED,
    ]
    failed = cases[1]
    assert (failed.suite, failed.classname, failed.name) == (
        "pytest",
        "tests.test_math",
        "test_div",
    )
    assert failed.message == "assert 1 == 2\ndef test_div():\n>       assert 1 == 2"
    assert cases[2].seconds == 1000.5
    assert cases[3].message is None
    summary = Counts.of(cases)
    assert (summary.total, summary.passed, summary.broken, summary.skipped) == (4, 1, 2, 1)


def test_a_bare_testsuite_root() -> None:
    (case,) = parse_junit('<testsuite name="s"><testcase name="t"/></testsuite>')
    assert (case.suite, case.outcome) == ("s", Outcome.PASSED)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not xml at all", "not JUnit XML"),
        ("<html><body/></html>", "the root element is <html>"),
        (
            '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
            "<testsuite><testcase name='&b;'/></testsuite>",
            "not JUnit XML",
        ),
    ],
)
def test_what_is_not_a_report_is_refused(content: str, expected: str) -> None:
    with pytest.raises(ReportError, match=expected):
        parse_junit(content)
