"""What a CI run leaves behind: the plan as text, Markdown and JSON, the apply result, and a
JUnit report that CodeBuild shows as one test case per pipeline.

Presentation lives in `report`; this module only decides file names and builds the JUnit XML.
Every file passes through `redact`: build artifacts are kept and often shared.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from controller.core import report
from controller.core.diagnostics import Diagnostic
from controller.core.plan import Action, Plan
from controller.core.redact import redact
from controller.core.results import BAD_OUTCOMES, ApplyResult

REPORT = "report.xml"


def write_plan(directory: Path, plan: Plan, source: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    report.print_plan(plan, Console(file=text, width=120, color_system=None), source)
    _write(directory / "plan.txt", text.getvalue())
    _write(directory / "plan.md", report.plan_markdown(plan, source))
    _write(directory / "plan.json", report.dumps(report.plan_json(plan)) + "\n")


def write_apply(directory: Path, result: ApplyResult) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory / "apply.json", report.dumps(report.apply_json(result)) + "\n")


def write_comment(directory: Path, body: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory / "comment.md", body)


def write_junit(directory: Path, xml: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / REPORT
    _write(path, xml)
    return path


def _write(path: Path, text: str) -> None:
    path.write_text(redact(text))


def junit(plan: Plan, result: ApplyResult | None = None) -> str:
    """One test case per pipeline: an apply's failures, or a plan's blocked pipelines."""
    suite = _suite("mlops-controller apply" if result is not None else "mlops-controller plan")
    outcomes = {r.stack_name: r for r in result.results} if result is not None else {}
    refusal = plan.refusal or (result.refusal if result is not None else "")
    if refusal:
        _case(suite, "safety-guards", "plan", f"refused: {refusal}")
    for action in plan.actions:
        done = outcomes.get(action.stack_name)
        if done is not None:
            detail = f"{action.action.value}: {done.outcome.value}: {done.message}"
            failure = detail if done.outcome in BAD_OUTCOMES else ""
        else:
            failure = f"blocked: {action.reason}" if action.action is Action.BLOCKED else ""
            detail = f"{action.action.value}: {action.reason}"
        _case(suite, action.stack_name, action.pipeline_type, failure, detail)
    return _xml(suite)


def junit_invalid(diagnostics: Sequence[Diagnostic]) -> str:
    suite = _suite("mlops-controller config")
    _case(suite, "mlops-config.json", "config", "\n".join(d.format() for d in diagnostics))
    return _xml(suite)


def _suite(name: str) -> ET.Element:
    return ET.Element("testsuite", name=name)


def _case(suite: ET.Element, name: str, classname: str, failure: str, detail: str = "") -> None:
    case = ET.SubElement(suite, "testcase", name=name, classname=classname, time="0")
    if failure:
        ET.SubElement(case, "failure", message=failure.splitlines()[0]).text = failure
    if detail:
        ET.SubElement(case, "system-out").text = detail


def _xml(suite: ET.Element) -> str:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
