"""`mlops-controller ci` for a config with stages: the same events, every stage.

A push to the deployment branch (and the hourly run) promotes the commit: the orchestrator's
step, then each stage as far as the gates allow, so an approval that arrived since the last
run is acted on by the next one. A pull request is commented with the plan of every stage.
The late-build rule holds as for one account: a commit older than the last one the first
step applied is never applied.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from controller.aws.session import Aws
from controller.core import report, stage_report
from controller.core.config.model import Config
from controller.core.gates import StagePlan, StageRun, steps
from controller.core.redact import redact
from controller.gitops import artifacts, ci, reconcile, source, staged
from controller.gitops.ledger import actor as ledger_actor
from controller.gitops.providers import CommitStatus, stage_context


def run(
    context: ci.CiContext, options: ci.CiOptions, console: Console, aws: Aws, config: Config
) -> int:
    sessions = staged.Sessions(aws, config)
    if context.event is ci.Event.PULL_REQUEST:
        return _pull_request(context, options, console, sessions, config)
    branch = context.branch or config.settings.deployment_branch
    if branch != config.settings.deployment_branch:
        _say(
            console,
            f"Push to {branch}, not to the deployment branch "
            f"{config.settings.deployment_branch}: planning every stage only.",
        )
        return _plan_status(_planned(options, console, sessions, config))
    return _promote(context, options, console, sessions, config)


def _promote(
    context: ci.CiContext,
    options: ci.CiOptions,
    console: Console,
    sessions: staged.Sessions,
    config: Config,
) -> int:
    repo = source.open_repo(options.repo_dir)
    ledger = reconcile.ledger_for(config, sessions.home)
    early = reconcile.stale(ledger, context.commit, repo)
    if early is not None:
        # Only a shortcut that spares planning a late build: apply_plan decides under the lease.
        _say(console, early.message)
        return 0 if early.superseded else 1
    committer = str(repo.commit(context.commit).committer.name or "")
    run = staged.Run(
        commit=context.commit,
        actor=ledger_actor(options.environ, committer),
        options=lambda c: reconcile.options_for(
            c,
            options.parallel,
            wait_budget_seconds=options.wait_budget_seconds,
            on_progress=report.ProgressLine(console),
        ),
        hooks=staged.printing_hooks(console),
        repo=repo,
        detect_drift=context.event is ci.Event.SCHEDULE,
    )
    runs = staged.promote(config, sessions, run)
    _write_runs(options.artifacts, runs)
    stage_report.print_runs(steps(config), runs, console)
    if line := stage_report.stopped(runs):
        _say(console, line)
    return 1 if any(r.failed for r in runs) else 0


def _pull_request(
    context: ci.CiContext,
    options: ci.CiOptions,
    console: Console,
    sessions: staged.Sessions,
    config: Config,
) -> int:
    plans = _planned(options, console, sessions, config)
    diff = ci.pull_request_diff(context, options)
    body = redact(
        ci.comment_body(lambda room: stage_report.plans_markdown(plans, limit=room), diff)
    )
    artifacts.write_comment(options.artifacts, body)
    statuses = (CommitStatus.of(not _plan_status(plans), "Every stage"), *_statuses(plans))
    ci.post_comment(
        sessions.home, context, body, console, environ=options.environ, statuses=statuses
    )
    return _plan_status(plans)


def _statuses(plans: Sequence[StagePlan]) -> tuple[CommitStatus, ...]:
    """One status per stage (`mlops-controller/plan/<stage>`), for a rule that requires one."""
    return tuple(
        CommitStatus.of(
            not _plan_status((planned,)),
            planned.problem
            if planned.plan is None
            else planned.plan.refusal or report.summary(planned.plan),
            stage_context(planned.step.name),
        )
        for planned in plans
    )


def _planned(
    options: ci.CiOptions, console: Console, sessions: staged.Sessions, config: Config
) -> tuple[StagePlan, ...]:
    plans = staged.plan_all(config, sessions)
    stage_report.print_plans(plans, console)
    directory = options.artifacts
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "plan.md").write_text(stage_report.plans_markdown(plans))
    (directory / "plan.json").write_text(report.dumps(stage_report.plans_json(plans)) + "\n")
    for planned in plans:
        if planned.plan is not None:
            artifacts.write_plan(directory / planned.step.name, planned.plan, planned.step.name)
    suites = [(p.step.name, artifacts.junit(p.plan)) for p in plans if p.plan is not None]
    artifacts.write_junit(directory, _junit(suites, [p for p in plans if p.plan is None]))
    return plans


def _write_runs(directory: Path, runs: Sequence[StageRun]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "apply.json").write_text(report.dumps(stage_report.runs_json(runs)) + "\n")
    for done in runs:
        if done.plan is not None:
            artifacts.write_plan(directory / done.step.name, done.plan, done.step.name)
    suites = [
        (r.step.name, artifacts.junit(r.plan, r.result))
        for r in runs
        if r.plan is not None and r.result is not None
    ]
    unreachable = [StagePlan(r.step, None, r.message) for r in runs if r.plan is None and r.failed]
    artifacts.write_junit(directory, _junit(suites, unreachable))


def _junit(suites: Sequence[tuple[str, str]], missing: Sequence[StagePlan]) -> str:
    """One JUnit report: each step's suite, its cases named after the step, and a failed case
    for each stage that could not be planned or applied."""
    merged = ET.Element("testsuites")
    for name, xml in suites:
        suite = ET.fromstring(xml).find("testsuite")
        assert suite is not None
        suite.set("name", f"{suite.get('name')} [{name}]")
        for case in suite.iter("testcase"):
            case.set("classname", f"{name}.{case.get('classname')}")
        merged.append(suite)
    for planned in missing:
        suite = ET.SubElement(merged, "testsuite", name=f"mlops-controller [{planned.step.name}]")
        case = ET.SubElement(suite, "testcase", name=planned.step.name, classname="stage", time="0")
        ET.SubElement(case, "failure", message=planned.problem).text = planned.problem
        suite.set("tests", "1")
        suite.set("failures", "1")
    ET.indent(merged)
    return ET.tostring(merged, encoding="unicode", xml_declaration=True) + "\n"


def _plan_status(plans: Sequence[StagePlan]) -> int:
    """A stage that cannot be planned, or a refused or blocked plan, fails the build."""
    for planned in plans:
        plan = planned.plan
        if plan is None or plan.refusal or plan.blocked:
            return 1
    return 0


def _say(console: Console, text: str) -> None:
    console.print(text, soft_wrap=True, markup=False, highlight=False)
