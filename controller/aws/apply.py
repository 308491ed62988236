"""The applier: the only code that creates, updates or deletes stacks.

It runs a plan's actions as a dependency graph: an action starts as soon as the actions it
depends on have succeeded, a failure skips only its dependents, and unrelated pipelines carry
on. Operations in flight are bounded by a cap, not by threads: a few threads only send
requests, and one `Watcher` waits for every stack at once. Each action is a short sequence of
steps (write, wait, write, wait) written as a generator that yields the operation it waits
for. Every result is a value; nothing here decides what to change.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from controller.aws import runs, verification
from controller.aws.discover import describe, discover
from controller.aws.resend import resent
from controller.aws.schedule import Schedule
from controller.aws.session import Aws
from controller.aws.uploads import put_uploads
from controller.aws.waiting import POLL_SECONDS, TIMEOUT_SECONDS
from controller.aws.watcher import IN_PROGRESS, Operation, Settled, Watcher
from controller.core import render
from controller.core.clarify import Upload
from controller.core.events import EventSink, StackEvent
from controller.core.plan import Action, Plan, PlannedAction, replan
from controller.core.progress import Progress, ProgressSink
from controller.core.render import RenderedStack
from controller.core.results import (
    ActionResult,
    ApplyResult,
    Outcome,
    ResultSink,
)
from controller.core.stacks import SPEC_HASH_PARAMETER, DeployedStack, stack_tags

MAX_TEMPLATE_BODY = 51_200
RECHECK_ONE_BY_ONE = 10
"""Up to this many changed stacks are re-read one by one rather than by listing them all."""
NO_UPDATES = "No updates are to be performed"
DEFAULT_IN_FLIGHT = 100
"""Stack operations in flight at once. 100 lets every independent pipeline of a realistic
config start together, keeps the watcher's listing of in-progress stacks to one page (100
summaries), and stays far below CloudFormation's account limits; while AWS throttles, the cap
halves and each sender's retries back off (session.RETRIES), which slows the writes down."""
PAGE_SECONDS = 0.2
"""The poll interval is at least this per page of the in-progress listing (1000 stacks in
flight: 10 pages, one poll every 2 s), so polling stays near 5 calls a second at most."""
SENDERS = 16
"""Threads that send requests (writes and their re-reads); none of them waits for a stack."""
THROTTLED = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)


@dataclass(frozen=True)
class ApplyOptions:
    controller_id: str
    assets_bucket: str
    parallel: int = DEFAULT_IN_FLIGHT
    """The cap on operations in flight."""
    poll_seconds: float = POLL_SECONDS
    timeout_seconds: float = TIMEOUT_SECONDS
    wait_budget_seconds: float | None = None
    """Stop waiting after this long: operations in flight are left running (and reported as
    waiting), actions not started wait for the next run, which picks them up."""
    on_progress: ProgressSink | None = field(default=None, compare=False)


def _ignore(_: object) -> None:
    return None


WriteGate = Callable[[str], None]
"""Called with the stack's name immediately before every write (CloudFormation or Step
Functions); it raises `WriteRefused` to stop the write, for example when the apply lease
cannot be proved."""


class WriteRefused(Exception):
    """A write gate refused a write: the applier issues no further writes in this run.

    The message names the stack whose write was refused; `reason` says why without naming
    it, which is what every other stack the refusal stops is told (never another's name)."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def moved_since_plan(aws: Aws, plan: Plan) -> str:
    """The plan was made before the lease was taken: if another apply changed a stack this
    plan writes in between, the plan is stale and applying it could undo that."""
    if not plan.has_changes:
        return ""
    now = _current(aws.client("cloudformation"), tuple(a.stack_name for a in plan.changes))
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


class _Moved(Exception):
    """The stack changed since the plan in a way that makes the planned write unsafe."""


Steps = Generator[Operation, Settled, tuple[Outcome, str]]
"""An action's steps: yields each operation it waits for, receives where it settled."""
Waits = Generator[Operation, Settled, DeployedStack]
"""One write and its wait: the stack where it settled."""


@dataclass
class _Flow:
    action: PlannedAction
    steps: Steps
    height: int = 0
    """Levels of dependants below it: its steps are sent first (`_ApplyLoop.backlog`)."""
    started: float = field(default_factory=time.monotonic)
    deadline: float = 0.0
    wrote: bool = False
    """An operation of this action was started: a refusal after it stops the action midway."""


@dataclass
class _Cap:
    """Operations allowed in flight: halved while AWS throttles most calls, then grown back
    one by one. A throttled call now and then is the retries' business: it says nothing about
    how many operations may run, and halving for it would only delay work."""

    ceiling: int
    limit: int = 0
    attempts: int = 0
    throttles: int = 0

    def __post_init__(self) -> None:
        self.ceiling = max(1, self.ceiling)
        self.limit = self.ceiling

    def count(self, **kwargs: Any) -> None:
        """Every answer (botocore asks after each attempt whether to retry it)."""
        self.attempts += 1
        response = kwargs.get("response")
        if response and response[1].get("Error", {}).get("Code") in THROTTLED:
            self.throttles += 1

    def adapt(self) -> None:
        """Once per poll interval at most: halve when more than half of the answers since the
        last time were throttled, never below a quarter of the ceiling."""
        if self.throttles * 2 > self.attempts:
            self.limit = max(1, self.ceiling // 4, self.limit // 2)
        self.attempts = self.throttles = 0

    def grow(self) -> None:
        self.limit = min(self.ceiling, self.limit + 1)


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
        self._refused = ""
        self._lock = threading.Lock()
        """Guards the refusal and the uploads written, set from the sender threads."""
        self._uploads: dict[str, Future[None]] = {}
        """Each upload key this run wrote or is writing, by the write's outcome."""

    def apply(self, plan: Plan) -> ApplyResult:
        """Run the plan; the caller holds the controller's lease (gitops.reconcile does)."""
        if plan.refusal:
            return ApplyResult(plan.revision, (), plan.refusal)
        return _ApplyLoop(self, plan).run()

    # The steps of each action. They run on the sender threads, one step at a time.

    def steps(self, action: PlannedAction) -> Steps:
        if action.action is Action.WAIT:
            return (yield from self._after_waiting(action))
        if action.action is Action.DELETE:
            assert action.deployed is not None
            yield from self._delete(action.deployed)
            return Outcome.SUCCEEDED, "deleted"
        rendered = action.desired
        assert rendered is not None
        if action.action is Action.CREATE:
            stack = yield from self._create(rendered, None)
        elif action.action is Action.REPLACE:
            assert action.deployed is not None
            yield from self._delete(action.deployed)
            stack = yield from self._create(rendered, action.deployed)
        elif action.action is Action.UPDATE:
            assert action.deployed is not None
            stack = yield from self._update(rendered, action.deployed)
        else:
            assert action.deployed is not None
            stack = action.deployed
        return (yield from self._advance_run(rendered, stack, action.action))

    def _after_waiting(self, action: PlannedAction) -> Steps:
        """A stack that was busy when planned (an operation a stopped run left running, say),
        or one whose dependency was: wait for it to settle, then do what it needs now."""
        now = action.deployed
        adopted = now is not None and now.status in IN_PROGRESS
        if now is not None and adopted:
            settled = yield Operation(now.name, now.stack_id, None, _now())
            if settled.timed_out:
                raise _Busy(settled.failure_reason)
            now = settled.stack
        if action.desired is None:
            if now is None:
                return Outcome.SUCCEEDED, "deleted"
            yield from self._delete(now)
            return Outcome.SUCCEEDED, "deleted"
        fresh = replan(action, now, self.options.controller_id)
        if fresh.action is Action.WAIT:
            if now is None or fresh.desired is None or not _is_pending_run(fresh):
                raise _Busy(fresh.reason)
            return (yield from self._advance_run(fresh.desired, now, Action.WAIT))
        if fresh.action is Action.BLOCKED:
            return Outcome.BLOCKED, fresh.reason
        if fresh.action is Action.UNCHANGED:
            finished = f"{now.status if now else 'absent'} (an operation started earlier)"
            return (Outcome.SUCCEEDED, finished) if adopted else (Outcome.UNCHANGED, fresh.reason)
        return (yield from self.steps(fresh))

    def _create(self, rendered: RenderedStack, previous: DeployedStack | None) -> Waits:
        """CreateStack needs no re-read: CloudFormation refuses a name that exists."""
        since = _now()
        token = self._token("create", rendered, previous)
        try:
            self._gate(rendered.stack_name)
            self._upload(rendered)
            response = resent(
                self.cfn.create_stack,
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
        kind = f"create {rendered.pipeline.type}"
        settled = yield Operation(rendered.stack_name, stack_id, token, since, kind)
        return _settled(settled, ok=("CREATE_COMPLETE",))

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
        self, rendered: RenderedStack, deployed: DeployedStack, *, run_done: bool = False
    ) -> Waits:
        """Update in place; `run_done` (or a job already done for this spec) opens the gate.

        The run's execution name changes exactly when the job's inputs change, so an update
        that only touches, say, a monitor's schedule keeps its baseline and its schedule.
        """
        pause = render.scaling_pause(rendered, deployed.parameters)
        if pause is not None:
            deployed = yield from self._pause_scaling(rendered, deployed, pause)
        run = rendered.run
        run_done = run_done or (run is not None and deployed.run_done(run.execution_name))
        gate = {run.gate_parameter: "true"} if run and run.gate_parameter and run_done else {}
        since = _now()
        token = self._token("update", rendered, deployed, str(run_done))
        try:
            self._gate(rendered.stack_name)
            self._still_ours(deployed)
            self._upload(rendered)
            resent(
                self.cfn.update_stack,
                StackName=deployed.stack_id,
                **self._template(rendered),
                Parameters=rendered.boto_parameters(**gate),
                Capabilities=list(rendered.capabilities),
                Tags=stack_tags(self.options.controller_id, rendered, run_done=run_done),
                ClientRequestToken=token,
            )
        except ClientError as exc:
            message = _client_error(exc)
            if NO_UPDATES in message:
                return deployed
            if "_IN_PROGRESS state" in message:
                raise _Busy(message) from exc
            raise
        # An update that only records a run (same spec) is quicker than one that changes it.
        verb = "record" if deployed.spec_hash == rendered.spec_hash else "update"
        kind = f"{verb} {rendered.pipeline.type}"
        settled = yield Operation(rendered.stack_name, deployed.stack_id, token, since, kind)
        if settled.status != "UPDATE_COMPLETE" and not settled.timed_out:
            alarms = self._rolled_back_by(rendered, since + CLOCK_SKEW)
            if alarms:
                reason = settled.failure_reason or "no reason given"
                raise _StackFailed(
                    f"endpoint update rolled back by alarm {alarms} ({settled.status}: {reason})"
                )
        return _settled(settled, ok=("UPDATE_COMPLETE",))

    def _pause_scaling(
        self, rendered: RenderedStack, deployed: DeployedStack, template: str
    ) -> Waits:
        """Deregister the variant's autoscaling before its instance type changes: the same
        parameters, the template without the scalable target and its policy."""
        since = _now()
        token = self._token("pause-scaling", rendered, deployed)
        values = {**deployed.parameters, SPEC_HASH_PARAMETER: render.SCALING_PAUSED}
        self._gate(rendered.stack_name)
        self._still_ours(deployed)
        try:
            self.cfn.update_stack(
                StackName=deployed.stack_id,
                TemplateBody=template,
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
                Capabilities=list(rendered.capabilities),
                Tags=stack_tags(self.options.controller_id, rendered),
                ClientRequestToken=token,
            )
        except ClientError as exc:
            if NO_UPDATES in _client_error(exc):
                return deployed  # Paused by an earlier run whose second update failed.
            raise
        kind = f"pause autoscaling of {rendered.pipeline.type}"
        settled = yield Operation(rendered.stack_name, deployed.stack_id, token, since, kind)
        return _settled(settled, ok=("UPDATE_COMPLETE",))

    def _rolled_back_by(self, rendered: RenderedStack, sent: datetime) -> str:
        """The rollback alarms that stopped a failed update of an endpoint with deployment
        guardrails: SageMaker rolls it back when one fires, and CloudFormation's reason does
        not reliably name it. An alarm counts when it is in ALARM, or changed state after the
        update was `sent` (it fired and recovered); empty when none did."""
        names = [v for k, v in rendered.parameters if k.startswith(ROLLBACK_ALARM)]
        if not names:
            return ""
        try:
            fired = verification.fired_since(self.aws.client("cloudwatch"), names, sent)
        except ClientError:
            return ""  # The stack's own failure is reported either way.
        return ", ".join(fired)

    def _delete(self, deployed: DeployedStack) -> Generator[Operation, Settled, None]:
        since = _now()
        token = self._token("delete", None, deployed, deployed.status)
        self._gate(deployed.name)
        self._still_ours(deployed)
        resent(self.cfn.delete_stack, StackName=deployed.stack_id, ClientRequestToken=token)
        settled = yield Operation(deployed.name, deployed.stack_id, token, since, "delete")
        if settled.timed_out:
            raise _Busy(settled.failure_reason)
        if settled.stack is not None:
            raise _StackFailed(f"{settled.status}: {settled.failure_reason or 'delete failed'}")

    def _upload(self, rendered: RenderedStack) -> None:
        """Write the stack's uploads once per run: their keys are their content's hash, so an
        upload this run wrote, or another sender is writing (monitors of many endpoints share
        an analysis configuration), is waited for rather than written again. A write that
        failed is forgotten, so a later stack tries it afresh."""
        mine: list[tuple[Upload, Future[None]]] = []
        theirs: list[Future[None]] = []
        with self._lock:
            for upload in rendered.uploads:
                known = self._uploads.get(upload.key)
                if known is None:
                    self._uploads[upload.key] = known = Future()
                    mine.append((upload, known))
                else:
                    theirs.append(known)
        s3 = self.aws.client("s3")
        for i, (upload, written) in enumerate(mine):
            try:
                put_uploads(s3, self.options.assets_bucket, [upload])
            except BaseException as exc:
                with self._lock:
                    for failed, _ in mine[i:]:
                        del self._uploads[failed.key]
                for _, unwritten in mine[i:]:
                    unwritten.set_exception(exc)
                raise
            written.set_result(None)
        for written in theirs:
            written.result()

    def _gate(self, stack_name: str) -> None:
        """The caller's gate (the lease), once refused, refuses every later write too; each
        stack is told why in its own words, never with the name of the stack refused first."""
        if self._refused:
            raise WriteRefused(f"{self._refused}; {stack_name} was not written", self._refused)
        try:
            self.before_write(stack_name)
        except WriteRefused as exc:
            with self._lock:
                self._refused = self._refused or exc.reason or "a write was refused"
            raise

    def _still_ours(self, planned: DeployedStack) -> None:
        """Re-read the stack just before writing it: the plan's view may be minutes old.

        Someone may have taken the stack over (its ownership tag removed or changed), replaced
        it with another of the same name, or started an operation on it since."""
        now = describe(self.cfn, planned.stack_id)
        if now is None or now.status == "DELETE_COMPLETE":
            raise _Moved(f"{planned.name} is gone since the plan was made; nothing was written")
        if not now.owned_by(self.options.controller_id):
            owner = f"managed by {now.owner!r}" if now.owner else "not managed by this controller"
            raise _Moved(
                f"{planned.name} is now {owner} (its ownership changed since the plan was "
                "made); refusing to write it"
            )
        if now.status in IN_PROGRESS:
            raise _Busy(f"{now.status}: another operation started since the plan; next run")

    def _advance_run(self, rendered: RenderedStack, stack: DeployedStack, action: Action) -> Steps:
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
        # A state machine created in this run has no execution yet: no need to ask.
        fresh = action in (Action.CREATE, Action.REPLACE)
        started = (
            runs.RunStatus(runs.NOT_STARTED) if fresh else runs.status(stepfunctions, machine, run)
        )
        if started.status == runs.NOT_STARTED:
            self._gate(rendered.stack_name)
            started = runs.start(stepfunctions, machine, run, describe=run.kind == "baseline")
        if started.status in runs.FINISHED_BADLY:
            raise _StackFailed(f"{what} {run.execution_name} {started.status}: {started.detail}")
        if run.kind == "baseline" and started.status != "SUCCEEDED":
            return Outcome.WAITING, (
                f"{stack.status}; baseline {run.execution_name} {started.status.lower()}: "
                "the schedule is enabled on a later run, once the baseline is written"
            )
        yield from self._update(rendered, stack, run_done=True)
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


class _ApplyLoop:
    """One apply: the schedule, the sender threads, the watcher, and the cap, in one loop.

    The loop itself never waits on AWS: senders make the writes and their re-reads, and the
    watcher's polls run on a thread of their own, so a slow or throttled poll never holds back
    the next write, and a dependant starts as soon as the poll that saw its dependency finish
    returns."""

    def __init__(self, applier: Applier, plan: Plan) -> None:
        self.applier = applier
        self.plan = plan
        self.options = applier.options
        applier._nonce = plan.revision or uuid.uuid4().hex
        self.schedule = Schedule(plan.actions)
        creates = sum(1 for a in plan.actions if a.deployed is None)
        self.events: deque[StackEvent] = deque()
        """Events the watcher's thread found, shown by the loop's thread."""
        self.watcher = Watcher(
            applier.aws.polling_client("cloudformation"),
            self.events.append,
            account_stacks=plan.owned + creates,
        )
        self.cap = _Cap(self.options.parallel)
        self.outcomes: dict[str, ActionResult] = {}
        self.sending: dict[Future[Operation | ActionResult], _Flow] = {}
        self.backlog: list[tuple[int, int, int, _Flow, Settled | None]] = []
        """Steps waiting for a sender, as a heap: the longest chains first, and among equals
        an action's first write (a long wait follows it) before a step that finishes one."""
        self.queued = itertools.count()
        self.parked: dict[str, _Flow] = {}
        self.polling: Future[list[tuple[Operation, Settled]]] | None = None
        self.showing: Future[None] | None = None
        self.began = time.monotonic()
        self.next_poll = self.last_poll = self.began
        self.first_look = math.inf
        """A look soon after an operation starts (updates that record a run take seconds)."""
        self.last_live = -math.inf
        self.stopped = ""
        self._shown: Progress | None = None

    def run(self) -> ApplyResult:
        handler = f"mlops-throttles-{id(self)}"
        clients = (self.applier.cfn, self.watcher.cfn)
        for client in clients:
            client.meta.events.register(
                "needs-retry.cloudformation", self.cap.count, unique_id=handler
            )
        try:
            with (
                ThreadPoolExecutor(max_workers=SENDERS) as senders,
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="watcher") as watching,
            ):
                self._loop(senders, watching)
        finally:
            for client in clients:
                client.meta.events.unregister("needs-retry.cloudformation", unique_id=handler)
        self._show_events()
        self._progress()
        ordered = tuple(self.outcomes[a.stack_name] for a in self.plan.actions)
        return ApplyResult(self.plan.revision, ordered, stopped=self.stopped)

    def _loop(self, senders: ThreadPoolExecutor, watching: ThreadPoolExecutor) -> None:
        while not self.schedule.finished:
            self._start(senders)
            self._dispatch(senders)
            self._progress()
            idle = bool(self.parked) and self.polling is None
            if idle and time.monotonic() >= self._poll_at():
                self._begin_poll(watching)
                idle = False
            pending: set[Future[Any]] = set(self.sending)
            pending.update(f for f in (self.polling, self.showing) if f is not None)
            timeout = max(0.0, self._poll_at() - time.monotonic()) if idle else None
            if pending:
                done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    if future is self.polling:
                        self._polled(senders, future)
                    elif future is self.showing:
                        self.showing = None
                    else:
                        self._stepped(self.sending.pop(future), future.result())
            elif timeout is not None:
                time.sleep(timeout)
            self._show_events()
            self._check_budget()

    def _start(self, senders: ThreadPoolExecutor) -> None:
        if self.stopped:
            return
        room = self.cap.limit - len(self.sending) - len(self.backlog) - len(self.parked)
        while room > 0 and self.schedule.has_ready():
            for action in self.schedule.ready(limit=room):
                immediate = _without_work(action)
                if immediate is not None:
                    self._record(immediate)
                    continue
                height = self.schedule.height(action.stack_name)
                flow = _Flow(action, self.applier.steps(action), height)
                self._send(senders, flow, None)
                room -= 1

    def _send(self, senders: ThreadPoolExecutor, flow: _Flow, value: Settled | None) -> None:
        entry = (-flow.height, value is not None, next(self.queued), flow, value)
        heapq.heappush(self.backlog, entry)
        self._dispatch(senders)

    def _dispatch(self, senders: ThreadPoolExecutor) -> None:
        while self.backlog and len(self.sending) < SENDERS:
            *_, flow, value = heapq.heappop(self.backlog)
            self.sending[senders.submit(self._step, flow, value)] = flow

    def _step(self, flow: _Flow, value: Settled | None) -> Operation | ActionResult:
        """Run the action up to its next wait (on a sender thread); its result once done."""
        outcome: Outcome
        try:
            if value is None:
                return next(flow.steps)
            return flow.steps.send(value)
        except StopIteration as stop:
            outcome, message = stop.value
        except _Busy as exc:
            outcome, message = Outcome.WAITING, str(exc)
        except (_StackFailed, ClientError, BotoCoreError, ResponseParserError) as exc:
            outcome, message = Outcome.FAILED, _failure(exc)
        except _Moved as exc:
            outcome, message = Outcome.SKIPPED, f"skipped: {exc}"
        except WriteRefused as exc:
            outcome, message = _refused_midway(flow, exc)
        action = flow.action
        return ActionResult(
            action.stack_name,
            action.pipeline_type,
            action.action,
            outcome,
            message,
            time.monotonic() - flow.started,
        )

    def _stepped(self, flow: _Flow, result: Operation | ActionResult) -> None:
        if isinstance(result, ActionResult):
            self._record(result)
            return
        flow.wrote = True
        if self.stopped:
            self._record(_left_running(flow, self.stopped))
            return
        flow.deadline = time.monotonic() + self.options.timeout_seconds
        self.parked[result.stack_id] = flow
        self.watcher.track(result)
        look = max(time.monotonic(), self.last_poll + self._quick())
        self.first_look = min(self.first_look, look)

    def _interval(self) -> float:
        """The poll interval, stretched so that listing many pages stays a few calls a second."""
        return max(self.options.poll_seconds, PAGE_SECONDS * self.watcher.pages)

    def _quick(self) -> float:
        """The shortest gap between two polls: a quarter interval, or the listing's pages."""
        return max(self._interval() / 4, PAGE_SECONDS * self.watcher.pages)

    def _poll_at(self) -> float:
        return min(self.next_poll, self.first_look)

    def _begin_poll(self, watching: ThreadPoolExecutor) -> None:
        self.last_poll = time.monotonic()
        self.first_look = math.inf  # this poll looks at every operation started so far
        self.cap.adapt()
        self.polling = watching.submit(self.watcher.poll, False)

    def _polled(self, senders: ThreadPoolExecutor, future: Future[Any]) -> None:
        self.polling = None
        try:
            finished: list[tuple[Operation, Settled]] = future.result()
        except (ClientError, BotoCoreError, ResponseParserError):
            finished = []  # a failed poll is made again at the next interval
        self._show_live(senders)
        interval, quick = self._interval(), self._quick()
        regular = self.last_poll + interval
        due = self.watcher.next_due(self.last_poll + quick, window=interval)
        soonest = time.monotonic() + quick / 2
        self.next_poll = max(soonest, regular if due is None else min(regular, due))
        for operation, settled in finished:
            flow = self.parked.pop(operation.stack_id, None)
            if flow is not None:  # else it timed out, or the run stopped, during the poll
                self._send(senders, flow, settled)
        now = time.monotonic()
        for stack_id, flow in list(self.parked.items()):
            if now > flow.deadline:
                self.watcher.forget(stack_id)
                del self.parked[stack_id]
                reason = f"still in progress after {self.options.timeout_seconds:.0f} s"
                self._send(senders, flow, Settled(flow.action.deployed, reason, True))

    def _show_live(self, senders: ThreadPoolExecutor) -> None:
        """Live events once an interval, however often operations that are due make it poll,
        read on a sender once the finished operations have moved on."""
        now = time.monotonic()
        if self.showing is None and now >= self.last_live + 0.75 * self._interval():
            self.last_live = now
            self.showing = senders.submit(self.watcher.show_live)

    def _show_events(self) -> None:
        while self.events:
            self.applier.on_event(self.events.popleft())

    def _check_budget(self) -> None:
        budget = self.options.wait_budget_seconds
        refused = self.applier._refused
        if not self.stopped and refused:
            self._stop(f"write refused: {refused}", Outcome.SKIPPED)
        elif not self.stopped and budget is not None and time.monotonic() - self.began > budget:
            self._stop(f"wait budget of {budget:g} s spent", Outcome.WAITING)

    def _stop(self, why: str, outcome: Outcome) -> None:
        """No new operation; those in flight are left to CloudFormation, unwatched."""
        self.stopped = why
        verb = "skipped" if outcome is Outcome.SKIPPED else "not started"
        for result in self.schedule.drain(outcome, f"{verb}: {why}; the next run continues"):
            self._publish(result)
        for stack_id, flow in list(self.parked.items()):
            self.watcher.forget(stack_id)
            del self.parked[stack_id]
            self._record(_left_running(flow, why))

    def _record(self, result: ActionResult) -> None:
        if result.stack_name in self.outcomes:
            return
        self._publish(result)
        if result.outcome is Outcome.SUCCEEDED:
            self.cap.grow()
        for cut in self.schedule.finish(result):
            self._publish(cut)

    def _publish(self, result: ActionResult) -> None:
        self.outcomes[result.stack_name] = result
        self.applier.on_result(result)

    def _progress(self) -> None:
        sink = self.options.on_progress
        if sink is None:
            return
        running = len(self.sending) + len(self.backlog) + len(self.parked)
        total = len(self.plan.actions)
        current = Progress(
            total=total,
            done=len(self.outcomes),
            running=running,
            waiting=max(0, total - len(self.outcomes) - running),
            limit=self.cap.limit,
            cap=self.cap.ceiling,
            seconds=time.monotonic() - self.began,
        )
        if not current.same_counts(self._shown):
            self._shown = current
            sink(current)


def _refused_midway(flow: _Flow, exc: WriteRefused) -> tuple[Outcome, str]:
    """A refused write of an action that already wrote (a created batch stack whose transform
    was to start next) is not "skipped": its stack changed, and the next run continues it."""
    if not flow.wrote:
        return Outcome.SKIPPED, f"skipped: write refused: {exc}"
    done = flow.action.action.value
    return (
        Outcome.WAITING,
        f"{done} done, then stopped before its next write: {exc.reason}; the next run continues",
    )


def _left_running(flow: _Flow, why: str) -> ActionResult:
    action = flow.action
    return ActionResult(
        action.stack_name,
        action.pipeline_type,
        action.action,
        Outcome.WAITING,
        f"left running ({why}); the next run picks it up",
        time.monotonic() - flow.started,
    )


ROLLBACK_ALARM = "RollbackAlarm"
"""Parameters `RollbackAlarm<n>` of a realtime stack name its rollback alarms."""


def _settled(settled: Settled, ok: tuple[str, ...]) -> DeployedStack:
    if settled.timed_out:
        raise _Busy(settled.failure_reason)
    if settled.stack is None or settled.status not in ok:
        reason = settled.failure_reason or "no reason given"
        raise _StackFailed(f"{settled.status}: {reason}")
    return settled.stack


def _failure(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return _client_error(exc)
    if isinstance(exc, _StackFailed):
        return str(exc)
    return f"AWS call failed: {exc}"


def _fingerprint(stack: DeployedStack | None) -> tuple[str, ...] | None:
    if stack is None:
        return None
    return (stack.stack_id, stack.status, stack.spec_hash or "", stack.recorded_run)


def _without_work(action: PlannedAction) -> ActionResult | None:
    """Actions that need no AWS call: they are reported as they were planned."""
    immediate = {
        Action.BLOCKED: Outcome.BLOCKED,
        Action.UNCHANGED: Outcome.UNCHANGED,
    }
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


CLOCK_SKEW = timedelta(seconds=5)


def _now() -> datetime:
    """A little in the past: the server's clock may be behind ours."""
    return datetime.now(UTC) - CLOCK_SKEW


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _client_error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', str(exc))}"
