"""The applier: the only code that creates, updates or deletes stacks.

It runs a plan's actions as a dependency graph in a bounded thread pool: an action starts as
soon as the actions it depends on have succeeded, a failure skips only its dependents, and
unrelated pipelines carry on. Every result is a value; nothing here decides what to change.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from controller.aws import runs
from controller.aws.discover import describe, discover
from controller.aws.session import Aws
from controller.aws.waiting import POLL_SECONDS, TIMEOUT_SECONDS, wait_until_settled
from controller.core.events import EventSink
from controller.core.plan import Action, Plan, PlannedAction
from controller.core.render import RenderedStack
from controller.core.results import (
    BAD_OUTCOMES,
    ActionResult,
    ApplyResult,
    Outcome,
    ResultSink,
)
from controller.core.stacks import (
    RUN_TAG,
    DeployedStack,
    stack_tags,
)

MAX_TEMPLATE_BODY = 51_200
RECHECK_ONE_BY_ONE = 10
"""Up to this many changed stacks are re-read one by one rather than by listing them all."""
NO_UPDATES = "No updates are to be performed"


@dataclass(frozen=True)
class ApplyOptions:
    controller_id: str
    assets_bucket: str
    parallel: int = 4
    poll_seconds: float = POLL_SECONDS
    timeout_seconds: float = TIMEOUT_SECONDS


def _ignore(_: object) -> None:
    return None


WriteGate = Callable[[str], None]
"""Called with the stack's name immediately before every write (CloudFormation or Step
Functions); it raises `WriteRefused` to stop the write, for example when the apply lease
cannot be proved."""


class WriteRefused(Exception):
    """A write gate refused a write: the applier issues no further writes in this run."""


def moved_since_plan(cfn: Any, plan: Plan) -> str:
    """The plan was made before the lease was taken: if another apply changed a stack this
    plan writes in between, the plan is stale and applying it could undo that."""
    if not plan.has_changes:
        return ""
    now = _current(cfn, tuple(a.stack_name for a in plan.changes))
    for action in plan.changes:
        before, after = action.deployed, now.get(action.stack_name)
        if _fingerprint(before) != _fingerprint(after):
            state = after.status if after else "absent"
            return (
                f"{action.stack_name} changed since this plan was made (now {state}), "
                "probably by another apply; nothing was changed: run again"
            )
    return ""


def _current(cfn: Any, names: tuple[str, ...]) -> dict[str, DeployedStack]:
    """The named stacks as they are now: one read each when few, one listing otherwise."""
    if len(names) > RECHECK_ONE_BY_ONE:
        return {stack.name: stack for stack in discover(cfn)}
    found = (describe(cfn, name) for name in names)
    return {stack.name: stack for stack in found if stack is not None}


class _StackFailed(Exception):
    pass


class _Busy(Exception):
    """Another operation holds the stack; this run leaves it alone."""


class Applier:
    def __init__(
        self,
        aws: Aws,
        options: ApplyOptions,
        on_event: EventSink = _ignore,
        on_result: ResultSink = _ignore,
        before_write: WriteGate = _ignore,
    ) -> None:
        self.cfn = aws.client("cloudformation")
        self.aws = aws
        self.options = options
        self.on_event = on_event
        self.on_result = on_result
        self.before_write = before_write
        self._nonce = ""

    def apply(self, plan: Plan) -> ApplyResult:
        """Run the plan; the caller holds the controller's lease (gitops.reconcile does)."""
        if plan.refusal:
            return ApplyResult(plan.revision, (), plan.refusal)
        return self._apply(plan)

    def _apply(self, plan: Plan) -> ApplyResult:
        self._nonce = plan.revision or uuid.uuid4().hex
        outcomes: dict[str, ActionResult] = {}
        pending = list(plan.actions)
        running: dict[Future[ActionResult], PlannedAction] = {}
        in_plan = {a.stack_name for a in plan.actions}
        with ThreadPoolExecutor(max_workers=max(1, self.options.parallel)) as pool:
            while pending or running:
                for action in list(pending):
                    deps = [d for d in action.depends_on if d in in_plan]
                    failed = [
                        d
                        for d in deps
                        if d in outcomes and outcomes[d].outcome in BAD_OUTCOMES | {Outcome.WAITING}
                    ]
                    if failed:
                        self._record(outcomes, _skipped(action, failed[0], outcomes[failed[0]]))
                        pending.remove(action)
                    elif all(d in outcomes for d in deps):
                        pending.remove(action)
                        immediate = _without_work(action)
                        if immediate is not None:
                            self._record(outcomes, immediate)
                        else:
                            running[pool.submit(self._timed, action)] = action
                if running:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        running.pop(future)
                        self._record(outcomes, future.result())
        ordered = tuple(outcomes[a.stack_name] for a in plan.actions)
        return ApplyResult(plan.revision, ordered)

    def _record(self, outcomes: dict[str, ActionResult], result: ActionResult) -> None:
        outcomes[result.stack_name] = result
        self.on_result(result)

    def _timed(self, action: PlannedAction) -> ActionResult:
        started = time.monotonic()
        try:
            outcome, message = self._perform(action)
        except _Busy as exc:
            outcome, message = Outcome.WAITING, str(exc)
        except WriteRefused as exc:
            outcome, message = Outcome.SKIPPED, f"not written: {exc}"
        except _StackFailed as exc:
            outcome, message = Outcome.FAILED, str(exc)
        except ClientError as exc:
            outcome, message = Outcome.FAILED, _client_error(exc)
        except (BotoCoreError, ResponseParserError) as exc:
            outcome, message = Outcome.FAILED, f"AWS call failed: {exc}"
        return ActionResult(
            action.stack_name,
            action.pipeline_type,
            action.action,
            outcome,
            message,
            time.monotonic() - started,
        )

    def _perform(self, action: PlannedAction) -> tuple[Outcome, str]:
        if action.action is Action.DELETE:
            assert action.deployed is not None
            self._delete(action.deployed)
            return Outcome.SUCCEEDED, "deleted"
        rendered = action.desired
        assert rendered is not None
        if action.action is Action.CREATE:
            stack = self._create(rendered, None)
        elif action.action is Action.REPLACE:
            assert action.deployed is not None
            self._delete(action.deployed)
            stack = self._create(rendered, action.deployed)
        elif action.action is Action.UPDATE:
            stack = self._update(rendered, action.deployed)
        else:
            assert action.deployed is not None
            stack = action.deployed
        return self._advance_run(rendered, stack, action.action)

    def _create(self, rendered: RenderedStack, previous: DeployedStack | None) -> DeployedStack:
        since = _now()
        token = self._token("create", rendered, previous)
        try:
            self.before_write(rendered.stack_name)
            response = self.cfn.create_stack(
                StackName=rendered.stack_name,
                **self._template(rendered),
                Parameters=rendered.boto_parameters(),
                Capabilities=list(rendered.capabilities),
                Tags=stack_tags(self.options.controller_id, rendered),
                ClientRequestToken=token,
            )
        except ClientError as exc:
            if _code(exc) != "AlreadyExistsException":
                raise
            stack_id = self._our_create(rendered)
            if stack_id is None:
                raise _Busy("created by another run at the same time; next run converges") from exc
        else:
            stack_id = response["StackId"]
        return self._settle(stack_id, rendered.stack_name, since, ok=("CREATE_COMPLETE",))

    def _our_create(self, rendered: RenderedStack) -> str | None:
        """The stack a retried CreateStack collided with, when it is exactly this request's.

        CloudFormation answers a retry carrying the same token with success; an emulator, or a
        retry after the answer was lost, may say "already exists" instead. A stack we own
        with this spec hash is the one we asked for, so we wait for it like any create.
        """
        existing = describe(self.cfn, rendered.stack_name)
        if (
            existing is not None
            and existing.owned_by(self.options.controller_id)
            and existing.spec_hash == rendered.spec_hash
        ):
            return existing.stack_id
        return None

    def _update(
        self, rendered: RenderedStack, deployed: DeployedStack | None, *, run_done: bool = False
    ) -> DeployedStack:
        """Update in place; `run_done` (or a job already done for this spec) opens the gate.

        The run's execution name changes exactly when the job's inputs change, so an update
        that only touches, say, a monitor's schedule keeps its baseline and its schedule.
        """
        assert deployed is not None
        run = rendered.run
        run_done = run_done or (run is not None and deployed.run_done(run.execution_name))
        gate = {run.gate_parameter: "true"} if run and run.gate_parameter and run_done else {}
        since = _now()
        try:
            self.before_write(rendered.stack_name)
            self.cfn.update_stack(
                StackName=deployed.stack_id,
                **self._template(rendered),
                Parameters=rendered.boto_parameters(**gate),
                Capabilities=list(rendered.capabilities),
                Tags=stack_tags(self.options.controller_id, rendered, run_done=run_done),
                ClientRequestToken=self._token("update", rendered, deployed, str(run_done)),
            )
        except ClientError as exc:
            message = _client_error(exc)
            if NO_UPDATES in message:
                return deployed
            if "_IN_PROGRESS state" in message:
                raise _Busy(message) from exc
            raise
        return self._settle(deployed.stack_id, rendered.stack_name, since, ok=("UPDATE_COMPLETE",))

    def _delete(self, deployed: DeployedStack) -> None:
        since = _now()
        kwargs: dict[str, Any] = {"StackName": deployed.stack_id}
        kwargs["ClientRequestToken"] = self._token("delete", None, deployed, deployed.status)
        self.before_write(deployed.name)
        self.cfn.delete_stack(**kwargs)
        settled = wait_until_settled(
            self.cfn,
            deployed.stack_id,
            deployed.name,
            since,
            self.on_event,
            poll_seconds=self.options.poll_seconds,
            timeout_seconds=self.options.timeout_seconds,
        )
        if settled.stack is not None and settled.status != "DELETE_COMPLETE":
            raise _StackFailed(f"{settled.status}: {settled.failure_reason or 'delete failed'}")

    def _settle(
        self, stack_id: str, name: str, since: datetime, ok: tuple[str, ...]
    ) -> DeployedStack:
        settled = wait_until_settled(
            self.cfn,
            stack_id,
            name,
            since,
            self.on_event,
            poll_seconds=self.options.poll_seconds,
            timeout_seconds=self.options.timeout_seconds,
        )
        if settled.timed_out:
            raise _Busy(settled.failure_reason)
        if settled.stack is None or settled.status not in ok:
            reason = settled.failure_reason or "no reason given"
            raise _StackFailed(f"{settled.status}: {reason}")
        return settled.stack

    def _advance_run(
        self, rendered: RenderedStack, stack: DeployedStack, action: Action
    ) -> tuple[Outcome, str]:
        """Start the stack's run-once job if it has one, and record it once it may be."""
        done = Outcome.SUCCEEDED if action is not Action.UNCHANGED else Outcome.UNCHANGED
        run = rendered.run
        if run is None:
            return done, stack.status
        what = run.kind.replace("_", " ")
        if stack.run_done(run.execution_name):
            return done, f"{stack.status}; {what} {run.execution_name} already done"
        machine = stack.outputs.get(run.output_key)
        if not machine:
            raise _StackFailed(f"stack has no output {run.output_key} to start the {what}")
        stepfunctions = self.aws.client("stepfunctions")
        started = runs.status(stepfunctions, machine, run)
        if started.status == runs.NOT_STARTED:
            self.before_write(rendered.stack_name)
            started = runs.start(stepfunctions, machine, run)
        if started.status in runs.FINISHED_BADLY:
            raise _StackFailed(f"{what} {run.execution_name} {started.status}: {started.detail}")
        if run.kind == "baseline" and started.status != "SUCCEEDED":
            return Outcome.WAITING, (
                f"{stack.status}; baseline {run.execution_name} {started.status.lower()}: "
                "the schedule is enabled on a later run, once the baseline is written"
            )
        self._update(rendered, stack, run_done=True)
        verb = "started" if run.kind != "baseline" else "written, schedule enabled"
        return Outcome.SUCCEEDED, f"{stack.status}; {what} {run.execution_name} {verb}"

    def _token(
        self,
        verb: str,
        rendered: RenderedStack | None,
        deployed: DeployedStack | None,
        *extra: str,
    ) -> str:
        """The same request after a crash gets the same token, so CloudFormation runs it once.

        It names the revision being applied and the stack's state (id, last update), so a
        later request that happens to want the same result (a revert, a re-create) is new.
        """
        parts = [
            verb,
            self._nonce,
            rendered.spec_hash if rendered else "",
            deployed.stack_id if deployed else "",
            deployed.last_updated.isoformat() if deployed and deployed.last_updated else "",
            *extra,
        ]
        digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
        return f"mlops-{verb}-{digest}"

    def _template(self, rendered: RenderedStack) -> dict[str, str]:
        body = rendered.template_body
        if len(body.encode()) <= MAX_TEMPLATE_BODY:
            return {"TemplateBody": body}
        key = f"mlops-controller/templates/{rendered.stack_name}/{rendered.spec_hash}.yaml"
        s3 = self.aws.client("s3")
        s3.put_object(Bucket=self.options.assets_bucket, Key=key, Body=body.encode())
        url = s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.options.assets_bucket, "Key": key},
            ExpiresIn=3600,
        )
        return {"TemplateURL": str(url)}


def _fingerprint(stack: DeployedStack | None) -> tuple[str, ...] | None:
    if stack is None:
        return None
    return (stack.stack_id, stack.status, stack.spec_hash or "", stack.tags.get(RUN_TAG, ""))


def _without_work(action: PlannedAction) -> ActionResult | None:
    """Actions that need no AWS call: they are reported as they were planned."""
    immediate = {
        Action.BLOCKED: Outcome.BLOCKED,
        Action.UNCHANGED: Outcome.UNCHANGED,
    }
    if action.action is Action.WAIT and not _is_pending_run(action):
        return ActionResult(
            action.stack_name, action.pipeline_type, action.action, Outcome.WAITING, action.reason
        )
    if action.action in immediate:
        return ActionResult(
            action.stack_name,
            action.pipeline_type,
            action.action,
            immediate[action.action],
            action.reason,
        )
    return None


def _is_pending_run(action: PlannedAction) -> bool:
    """A WAIT on a deployed, settled stack whose run-once job may have finished since."""
    return (
        action.desired is not None
        and action.desired.run is not None
        and action.deployed is not None
        and not action.deployed.status.endswith("_IN_PROGRESS")
    )


_WHICH = {
    Outcome.FAILED: "failed",
    Outcome.SKIPPED: "was skipped",
    Outcome.BLOCKED: "is blocked",
    Outcome.WAITING: "is not ready yet",
}


def _skipped(action: PlannedAction, dependency: str, result: ActionResult) -> ActionResult:
    return ActionResult(
        action.stack_name,
        action.pipeline_type,
        action.action,
        Outcome.SKIPPED,
        f"skipped: depends on {dependency}, which {_WHICH[result.outcome]}",
    )


def _now() -> datetime:
    """A little in the past: the server's clock may be behind ours."""
    return datetime.now(UTC) - timedelta(seconds=5)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _client_error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', str(exc))}"
