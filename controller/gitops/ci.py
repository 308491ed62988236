"""`mlops-controller ci`: the one entry point CodeBuild runs, whatever the event was.

EventBridge starts the build with the event's fields as environment variables (see
blueprints/bootstrap.yaml); this module turns them into a `CiContext` and does what the event
asks: a push to the deployment branch (or the hourly converge run) applies, a push elsewhere
plans, a pull request plans and comments. Delivery is best effort and builds may run late, so
a commit older than the last applied one is never applied: a late build cannot roll back.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import git

from controller.aws import codecommit
from controller.aws.ledger import actor as ledger_actor
from controller.aws.session import Aws
from controller.core import config as config_module
from controller.core import webhook
from controller.core.chain import Chain, ChainPlan
from controller.core.config.settings import AwsDefaults
from controller.core.diagnostics import Diagnostic
from controller.core.errors import UsageError
from controller.core.redact import redact
from controller.gitops import artifacts, reconcile, source
from controller.gitops import chain as use_case
from controller.gitops.providers import CommitStatus, hosts, stage_context
from controller.present import Console, report
from controller.present import chain as present

MARKER = "<!-- mlops-controller plan -->"
"""Hidden in every plan comment, so a later build edits it instead of adding another."""
MAX_COMMENT = 10_240
COMMIT = re.compile(r"^[0-9a-f]{40}$")


class Event(StrEnum):
    PUSH = "push"
    PULL_REQUEST = "pull_request"
    SCHEDULE = "schedule"


class CiContextError(UsageError):
    """The build's environment does not describe a run; the message names each variable."""


@dataclass(frozen=True)
class CiContext:
    event: Event
    commit: str
    """The commit CodeBuild checked out (CODEBUILD_RESOLVED_SOURCE_VERSION)."""
    branch: str | None = None
    repository: str | None = None
    pull_request_id: str | None = None
    destination_commit: str | None = None
    target: hosts.Target | None = None
    """The git host of a connection's repository (`gitops.webhook_ci`); None for CodeCommit."""
    base_branch: str | None = None


@dataclass(frozen=True)
class CiOptions:
    repo_dir: Path = Path(".")
    config_path: str = source.DEFAULT_CONFIG
    artifacts: Path = Path("mlops-artifacts")
    flags: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)
    local_aws: AwsDefaults | None = None
    """`--profile` and what the local AWS configuration says (see `aws.session`)."""
    parallel: int | None = None
    """Operations in flight at most (`--parallel`, `MLOPS_PARALLEL`)."""
    wait_budget_seconds: float | None = None
    """Stop waiting after this long and leave the rest to the next run (`--wait-budget`)."""


def context_from(environ: Mapping[str, str]) -> CiContext:
    """Parse the run context, reporting every missing or inconsistent variable at once."""
    if webhook.is_webhook(environ):
        from controller.gitops import webhook_ci  # it builds on this module

        return webhook_ci.context(environ)
    problems: list[str] = []
    event_name = environ.get("MLOPS_EVENT", "")
    choices = ", ".join(e.value for e in Event)
    if not event_name:
        problems.append(f"MLOPS_EVENT is not set: expected one of {choices}")
    elif event_name not in {e.value for e in Event}:
        problems.append(f"MLOPS_EVENT is {event_name!r}: expected one of {choices}")
    commit = environ.get("CODEBUILD_RESOLVED_SOURCE_VERSION", "")
    if not commit:
        problems.append(
            "CODEBUILD_RESOLVED_SOURCE_VERSION is not set: `ci` runs in CodeBuild; "
            "to try it locally set it to the full commit id to build"
        )
    elif not COMMIT.match(commit):
        problems.append(
            f"CODEBUILD_RESOLVED_SOURCE_VERSION is {commit!r}: expected a 40-character commit id"
        )
    source_commit = environ.get("MLOPS_SOURCE_COMMIT", "")
    if source_commit and commit and source_commit != commit:
        problems.append(
            f"MLOPS_SOURCE_COMMIT is {source_commit[:12]} but the build checked out "
            f"{commit[:12]}: the rule must pass the same commit as sourceVersion"
        )
    required = {
        Event.PUSH.value: ("MLOPS_BRANCH",),
        Event.PULL_REQUEST.value: (
            "MLOPS_PULL_REQUEST_ID",
            "MLOPS_REPOSITORY_NAME",
            "MLOPS_SOURCE_COMMIT",
            "MLOPS_DESTINATION_COMMIT",
        ),
    }.get(event_name, ())
    missing = [name for name in required if not environ.get(name)]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        problems.append(f"a {event_name} run needs {', '.join(missing)}, which {verb} not set")
    if problems:
        raise CiContextError("; ".join(problems))
    branch = environ.get("MLOPS_BRANCH", "").removeprefix("refs/heads/") or None
    return CiContext(
        Event(event_name),
        commit,
        branch,
        environ.get("MLOPS_REPOSITORY_NAME") or None,
        environ.get("MLOPS_PULL_REQUEST_ID") or None,
        environ.get("MLOPS_DESTINATION_COMMIT") or None,
    )


def run(context: CiContext, options: CiOptions, console: Console, aws: Aws | None = None) -> int:
    """Exit status: 0 done (or nothing to do), 1 invalid config, refused, blocked or failed.

    A push to the deployment branch (and the hourly run) promotes the commit through the
    chain as far as the gates allow, so an approval that arrived since the last run is acted
    on by the next one; a push elsewhere plans every step; a pull request is commented with
    the plan of every step."""
    repo = source.open_repo(options.repo_dir)
    text = source.read_git(repo.working_dir, context.commit, options.config_path)
    loaded = config_module.load(
        text.raw,
        text.name,
        revision=text.revision,
        flags=options.flags,
        environ=options.environ,
        aws=options.local_aws,
    )
    profile = options.local_aws.profile if options.local_aws else None
    region = loaded.config.settings.region if loaded.config else None
    aws = aws or Aws(region=region, profile=profile)
    if context.target is not None and context.event is Event.PULL_REQUEST:
        from controller.gitops import webhook_ci

        context = webhook_ci.with_base(context, options.repo_dir)
    if loaded.config is None:
        return _invalid(context, options, console, aws, loaded.diagnostics)
    config = loaded.config
    for warning in config.warnings:
        _say(console, warning.format())
    chain = use_case.judged(config, aws)
    sessions = use_case.Sessions(aws, config)
    if context.event is Event.PULL_REQUEST:
        return _pull_request(context, options, console, chain, sessions)
    branch = context.branch or config.settings.deployment_branch
    if branch != config.settings.deployment_branch:
        _say(
            console,
            f"Push to {branch}, not to the deployment branch "
            f"{config.settings.deployment_branch}: planning only.",
        )
        return _plan_status(_planned(options, console, chain, sessions))
    return _promote(context, options, console, chain, sessions, repo)


def _promote(
    context: CiContext,
    options: CiOptions,
    console: Console,
    chain: Chain,
    sessions: use_case.Sessions,
    repo: git.Repo,
) -> int:
    ledger = reconcile.ledger_for(chain.config, sessions.home)
    early = reconcile.stale(ledger, context.commit, repo)
    if early is not None:
        # Only a shortcut that spares planning a late build: apply_plan decides under the lease.
        _say(console, early.message)
        return 0 if early.superseded else 1
    committer = str(repo.commit(context.commit).committer.name or "")
    for line in present.policy_lines(chain):
        _say(console, line)
    request = use_case.PromoteRequest(
        commit=context.commit,
        actor=ledger_actor(options.environ, committer),
        plan=use_case.PlanRequest(detect_drift=context.event is Event.SCHEDULE),
        options=lambda c: reconcile.options_for(
            c,
            options.parallel,
            wait_budget_seconds=options.wait_budget_seconds,
            on_progress=report.ProgressLine(console),
        ),
        hooks=use_case.printing_hooks(console, chain, quiet=len(chain.steps) == 1),
        repo=repo,
    )
    done = use_case.promote(chain, sessions, request)
    if done.superseded:
        for step_result in done.steps:
            for note in step_result.result.notes if step_result.result else ():
                _say(console, f"Note: {note}")
        _say(console, done.superseded)
        return 0
    artifacts.write_chain_result(options.artifacts, done, chain.config.source)
    present.print_result(done, console)
    return 1 if done.failed else 0


def _pull_request(
    context: CiContext,
    options: CiOptions,
    console: Console,
    chain: Chain,
    sessions: use_case.Sessions,
) -> int:
    planned = _planned(options, console, chain, sessions)
    label = chain.config.source
    diff = pull_request_diff(context, options)
    body = redact(
        comment_body(lambda room: present.plan_markdown(planned, label, limit=room), diff)
    )
    artifacts.write_comment(options.artifacts, body)
    post_comment(
        sessions.home,
        context,
        body,
        console,
        environ=options.environ,
        statuses=_statuses(planned),
    )
    return _plan_status(planned)


def _statuses(planned: ChainPlan) -> tuple[CommitStatus, ...]:
    """The commit status of the plan; with stages, also one per stage
    (`mlops-controller/plan/<stage>`), for a rule that requires one."""
    whole = CommitStatus.of(not planned.blocked, _summary(planned))
    if len(planned.chain.steps) == 1:
        return (whole,)
    return (
        CommitStatus.of(not planned.blocked, "Every stage"),
        *(
            CommitStatus.of(
                not ChainPlan(planned.chain, (p,)).blocked,
                p.problem or p.note if p.plan is None else p.plan.refusal or report.summary(p.plan),
                stage_context(p.step.name),
            )
            for p in planned.steps
        ),
    )


def _summary(planned: ChainPlan) -> str:
    first = planned.steps[0].plan if planned.steps else None
    if first is None:
        return planned.steps[0].problem if planned.steps else ""
    return first.refusal or report.summary(first)


def pull_request_diff(context: CiContext, options: CiOptions) -> str | None:
    """The config diff of a pull request; None when its base is not known."""
    if context.destination_commit is None:
        return None
    return source.config_diff(
        options.repo_dir, context.destination_commit, context.commit, options.config_path
    )


def _invalid(
    context: CiContext,
    options: CiOptions,
    console: Console,
    aws: Aws,
    diagnostics: tuple[Diagnostic, ...],
) -> int:
    for diagnostic in diagnostics:
        _say(console, diagnostic.format())
    artifacts.write_junit(options.artifacts, artifacts.junit_invalid(diagnostics))
    if context.event is Event.PULL_REQUEST:
        body = redact(invalid_comment(context.commit, diagnostics))
        status = CommitStatus.of(False, f"The config is invalid ({len(diagnostics)} problems)")
        post_comment(aws, context, body, console, environ=options.environ, statuses=(status,))
    _say(console, f"The config at {context.commit[:12]} is invalid: nothing was planned.")
    return 1


def _planned(
    options: CiOptions, console: Console, chain: Chain, sessions: use_case.Sessions
) -> ChainPlan:
    """Every step's plan, printed and kept as artifacts."""
    planned = use_case.plan(chain, sessions)
    present.print_plan(planned, console, chain.config.source)
    artifacts.write_chain_plan(options.artifacts, planned, chain.config.source)
    return planned


def _plan_status(planned: ChainPlan) -> int:
    """A step that cannot be planned, or a refused or blocked plan, fails the build: merging
    it would not deploy."""
    return 1 if planned.blocked else 0


def comment_body(render: Callable[[int], str], diff: str | None) -> str:
    """A plan rendered to fit in `room` characters, then the config diff when it fits."""
    section = _diff_section(diff)
    room = MAX_COMMENT - len(MARKER) - 1
    body = render(room)
    if len(body) + len(section) + 1 > room:
        lines = (diff or "").count("\n")
        section = (
            f"_The config diff ({lines} lines) does not fit in a comment: "
            "see plan.md in the build artifacts._\n"
        )
        if len(body) + len(section) + 1 > room:
            section = ""
    return f"{MARKER}\n{body}\n{section}".rstrip("\n") + "\n"


def invalid_comment(commit: str, diagnostics: tuple[Diagnostic, ...]) -> str:
    head = f"{MARKER}\n### mlops-controller: the config at `{commit[:12]}` is invalid\n\n"
    text = "\n".join(d.format() for d in diagnostics)
    fence = report.md_fence(text)
    room = MAX_COMMENT - len(head) - 2 * len(fence) - 8
    if len(text) > room:
        text = text[: room - 2] + "\n…"
    return f"{head}{fence}\n{text}\n{fence}\n"


def _diff_section(diff: str | None) -> str:
    if diff is None:
        return ""
    if not diff:
        return "_The config file did not change in this pull request._\n"
    fence = report.md_fence(diff)
    return f"<details><summary>Config diff</summary>\n\n{fence}diff\n{diff}{fence}\n</details>\n"


def post_comment(
    aws: Aws,
    context: CiContext,
    body: str,
    console: Console,
    *,
    environ: Mapping[str, str] | None = None,
    statuses: tuple[CommitStatus, ...] = (),
) -> None:
    """The plan comment, and on a git host the commit statuses (CodeCommit has none); a
    later build edits the comment this controller posted before."""
    if context.target is not None:
        host = hosts.host_for(context.target, environ or {}, aws)
        say = functools.partial(_say, console)
        hosts.publish(
            host, str(context.pull_request_id), context.commit, body, statuses, MARKER, say
        )
        return
    assert context.pull_request_id is not None and context.repository is not None
    assert context.destination_commit is not None
    pull_request = codecommit.PullRequest(
        context.pull_request_id, context.repository, context.destination_commit, context.commit
    )
    if codecommit.post_or_update(aws, pull_request, body, MARKER):
        _say(console, f"Updated the plan comment on pull request {context.pull_request_id}.")
    else:
        _say(console, f"Posted the plan on pull request {context.pull_request_id}.")


def _say(console: Console, text: str) -> None:
    """One unwrapped line: build logs are read and searched, not viewed in a terminal."""
    console.print(redact(text), soft_wrap=True, markup=False, highlight=False)
