"""Telling people what an apply did: one SNS message per apply that changed or failed something.

The message is built from the ledger's `Deployment`, so it says no more than the ledger does
(no parameter values). Applies that changed nothing stay quiet: the hourly converge run would
otherwise mail everyone every hour.
"""

from __future__ import annotations

from controller.aws.session import Aws
from controller.core.config.stages import stage_of_source
from controller.core.records import Deployment
from controller.core.redact import redact

MAX_SUBJECT = 100


def should_notify(deployment: Deployment) -> bool:
    return bool(deployment.changed or not deployment.ok)


def subject(deployment: Deployment, controller_id: str) -> str:
    """SNS subjects are at most 100 printable ASCII characters, on one line. A stage's apply
    starts with its stage, so that the cut of a long subject never loses which account."""
    commit = (deployment.commit or "working tree")[:12]
    verdict = "apply failed" if not deployment.ok else "applied"
    counts = f"{len(deployment.changed)} changed, {len(deployment.failed)} failed"
    stage = stage_of_source(deployment.source)
    text = f"{f'[{stage}] ' if stage else ''}{controller_id}: {verdict} {commit} ({counts})"
    ascii_text = text.encode("ascii", errors="replace").decode().replace("\n", " ")
    return ascii_text if len(ascii_text) <= MAX_SUBJECT else ascii_text[: MAX_SUBJECT - 3] + "..."


def message(deployment: Deployment, controller_id: str) -> str:
    when = deployment.time.strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        f"{controller_id} applied commit {deployment.commit or '(none: a working-tree file)'}",
        f"from {deployment.source} at {when}, by {deployment.actor}.",
        f"Result: {'OK' if deployment.ok else 'FAILED'}",
    ]
    if deployment.refusal:
        lines += ["", f"Refused, nothing was changed: {deployment.refusal}"]
    failed = deployment.failed
    changed = [s for s in deployment.changed if s not in failed]
    if changed:
        lines += ["", "Changed:"]
        lines += [f"  {s.action} {s.stack_name}: {s.outcome} ({s.message})" for s in changed]
    if failed:
        lines += ["", "Failed:"]
        lines += [f"  {s.action} {s.stack_name}: {s.outcome}: {s.message}" for s in failed]
    quiet = len(deployment.stacks) - len(deployment.changed)
    if quiet:
        lines += ["", f"{quiet} pipeline(s) unchanged or waiting."]
    return "\n".join(lines) + "\n"


def publish(aws: Aws, topic_arn: str | None, deployment: Deployment, controller_id: str) -> bool:
    """Publish when a topic is configured and the apply is worth telling; True if sent."""
    if not topic_arn or not should_notify(deployment):
        return False
    aws.client("sns").publish(
        TopicArn=topic_arn,
        Subject=redact(subject(deployment, controller_id)),
        Message=redact(message(deployment, controller_id)),
    )
    return True
