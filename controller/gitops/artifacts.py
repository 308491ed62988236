"""What a CI run leaves behind: the plan as text, Markdown and JSON, the apply result, and a
JUnit report that CodeBuild shows as one test case per pipeline.

A chain of one step writes them at the top of the directory; a chain of several also writes
each step's plan in a directory of its own, and one JUnit report with a suite per step.

Presentation lives in `report`; this module only decides file names and builds the JUnit XML.
Every file passes through `redact`: build artifacts are kept and often shared.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from controller.core.chain import ChainPlan, ChainResult, Step, StepPlan
from controller.core.diagnostics import Diagnostic
from controller.core.plan import Action, Plan
from controller.core.redact import redact
from controller.core.results import BAD_OUTCOMES, ApplyResult
from controller.present import Console, report
from controller.present import chain as present

REPORT = "report.xml"


def write_plan(directory: Path, plan: Plan, source: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    report.print_plan(plan, Console(file=text, width=120, color_system=None), source)
    _write(directory / "plan.txt", text.getvalue())
    _write(directory / "plan.md", report.plan_markdown(plan, source))
    _write(directory / "plan.json", report.dumps(report.plan_json(plan)) + "\n")


def write_chain_plan(directory: Path, planned: ChainPlan, label: str) -> None:
    """Every step's plan and the JUnit report of the plan."""
    _write_plans(directory, planned, label)
    suites = [(p.step, junit(p.plan)) for p in planned.steps if p.plan is not None]
    missing = [(p.step, p.problem) for p in planned.steps if p.plan is None and p.problem]
    write_junit(directory, _merged(suites, missing, len(planned.chain.steps)))


def _write_plans(directory: Path, planned: ChainPlan, label: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if len(planned.chain.steps) == 1:
        for only in planned.steps:
            if only.plan is not None:
                write_plan(directory, only.plan, label)
    else:
        for step_plan in planned.steps:
            if step_plan.plan is not None:
                write_plan(directory / step_plan.step.name, step_plan.plan, step_plan.step.name)
        _write(directory / "plan.md", present.plan_markdown(planned, label))
    _write(directory / "plan.json", report.dumps(present.plan_json(planned)) + "\n")


def write_chain_result(directory: Path, done: ChainResult, label: str) -> None:
    """The plan each step applied, the promotion as JSON, and the JUnit report of it."""
    applied = tuple(StepPlan(r.step, r.plan) for r in done.steps if r.plan is not None)
    _write_plans(directory, ChainPlan(done.chain, applied), label)
    _write(directory / "apply.json", report.dumps(present.result_json(done)) + "\n")
    suites = [
        (r.step, junit(r.plan, r.result))
        for r in done.steps
        if r.plan is not None and r.result is not None
    ]
    missing = [(r.step, r.message) for r in done.steps if r.plan is None and r.failed]
    write_junit(directory, _merged(suites, missing, len(done.chain.steps)))


def _merged(
    suites: Sequence[tuple[Step, str]], missing: Sequence[tuple[Step, str]], steps: int
) -> str:
    """One JUnit report: each step's suite (its cases named after the step when there are
    several), and a failed case for each step that could not be planned or applied."""
    if steps == 1 and len(suites) == 1 and not missing:
        return suites[0][1]
    merged = ET.Element("testsuites")
    for step, xml in suites:
        suite = ET.fromstring(xml).find("testsuite")
        assert suite is not None
        suite.set("name", f"{suite.get('name')} [{step.name}]")
        for case in suite.iter("testcase"):
            case.set("classname", f"{step.name}.{case.get('classname')}")
        merged.append(suite)
    for step, problem in missing:
        suite = ET.SubElement(merged, "testsuite", name=f"mlops-controller [{step.name}]")
        case = ET.SubElement(suite, "testcase", name=step.name, classname="stage", time="0")
        ET.SubElement(case, "failure", message=problem).text = problem
        suite.set("tests", "1")
        suite.set("failures", "1")
    ET.indent(merged)
    return ET.tostring(merged, encoding="unicode", xml_declaration=True) + "\n"


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
