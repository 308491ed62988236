"""Saved plans: `plan --out FILE` writes one, `apply FILE` applies exactly it or refuses.

Like Terraform's plan file, it holds what is needed to compute the same plan again without
git: the config text and the effective settings, and what the plan was made against: the
spec hash of every desired stack and the state of every deployed stack the plan looked at
(id, status, last update, owner, spec hash, run-once job), plus the account. Applying
recomputes the plan from the file; when the config would render differently (another
controller version, an edited file) or a stack moved, it refuses with the reason rather
than apply something that was never reviewed. The format is versioned JSON; pure, no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from controller.core.config.model import Config
from controller.core.config.stages import ORCHESTRATOR
from controller.core.errors import UsageError
from controller.core.plan import Plan
from controller.core.stacks import DeployedStack

FORMAT = "mlops-controller plan"
VERSION = 2
"""2: the digest covers every field (issue 19); a file of format 1 is refused, not trusted."""


class PlanFileError(UsageError):
    """A plan file that cannot be read, or one whose plan no longer holds; says why."""


@dataclass(frozen=True)
class StackState:
    """What the plan saw of one deployed stack; any difference makes the plan stale."""

    name: str
    stack_id: str
    status: str
    last_updated: str | None
    owner: str | None
    spec_hash: str | None
    run: str | None

    @classmethod
    def of(cls, stack: DeployedStack) -> StackState:
        updated = stack.last_updated.isoformat() if stack.last_updated else None
        return cls(
            stack.name,
            stack.stack_id,
            stack.status,
            updated,
            stack.owner,
            stack.spec_hash,
            stack.recorded_run or None,
        )


@dataclass(frozen=True)
class SavedPlan:
    config_name: str
    config_text: str
    source: str
    """The label the plan was shown with (a commit, or uncommitted changes)."""
    revision: str | None
    settings: Mapping[str, Any]
    targets: tuple[str, ...]
    allow_delete_all: bool
    account: str | None
    spec_hashes: Mapping[str, str]
    deployed: tuple[StackState, ...]
    actions: Mapping[str, str]
    """Stack name -> action, of the (targeted) plan that was shown."""
    created: str = ""
    controller_version: str = ""
    step: str = ORCHESTRATOR
    """The step of the chain the plan is of (saved plans are keyed by step)."""


def seen(plan: Plan) -> tuple[StackState, ...]:
    """Every deployed stack the planner looked at: the config's names and the owned ones."""
    stacks = {a.deployed.name: a.deployed for a in plan.actions if a.deployed is not None}
    return tuple(StackState.of(stacks[name]) for name in sorted(stacks))


def spec_hashes(plan: Plan) -> dict[str, str]:
    return {a.stack_name: a.desired.spec_hash for a in plan.actions if a.desired is not None}


def dumps(
    *,
    config: Config,
    config_raw: bytes,
    source: str,
    full: Plan,
    shown: Plan,
    targets: Sequence[str],
    allow_delete_all: bool,
    account: str | None,
    created: datetime,
    controller_version: str,
    step: str = ORCHESTRATOR,
) -> str:
    """The file for `shown` (the plan after `--target`) of one step of the chain, made from
    the `full` plan; `config` is the commit's whole config (the step is made again from it)."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "created": created.isoformat(),
        "controller_version": controller_version,
        "revision": config.revision,
        "source": source,
        "step": step,
        "account": account,
        "region": config.settings.region,
        "config": {
            "name": config.source,
            "sha256": hashlib.sha256(config_raw).hexdigest(),
            "text": config_raw.decode("utf-8-sig"),
        },
        "settings": _settings(config),
        "targets": list(targets),
        "allow_delete_all": allow_delete_all,
        "spec_hashes": spec_hashes(full),
        "deployed": [vars(state) for state in seen(full)],
        "actions": {a.stack_name: a.action.value for a in shown.actions},
        "refusal": shown.refusal or None,
    }
    document["digest"] = digest(document)
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def _settings(config: Config) -> dict[str, Any]:
    """The effective settings, to load the config again as it was; the policy settings only
    as the operator overrode them (the policy in force decides the rest when applying)."""
    settings = {k: v for k, v in asdict(config.settings).items() if v is not None}
    settings.pop("max_deletes", None)
    return {**settings, **config.policy.overrides}


def digest(document: Mapping[str, Any]) -> str:
    """The SHA-256 of every field but itself: the config, settings, targets, guards, account,
    revision, label and what the plan saw and showed. Whatever decides what is applied or
    recorded is covered, so a field spliced in from another plan, or edited, is refused. It
    is a check against edits, not a signature: `apply FILE` also checks the revision against
    git and the account against the credentials, and recomputes the plan."""
    fields = {k: v for k, v in document.items() if k != "digest"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def loads(text: str, name: str) -> SavedPlan:
    """Parse a plan file; every problem is a `PlanFileError` naming the file."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanFileError(f"{name}: not a plan file (invalid JSON: {exc.msg})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PlanFileError(f"{name}: not a plan file (written by `plan --out FILE`)")
    if data.get("version") != VERSION:
        raise PlanFileError(
            f"{name}: plan file format {data.get('version')!r}; this mlops-controller reads "
            f"format {VERSION}: make the plan again with this version"
        )
    if data.get("digest") != digest(data):
        raise PlanFileError(
            f"{name}: the plan file was edited since `plan --out` wrote it (its digest does not "
            "match its contents); make the plan again"
        )
    try:
        config = data["config"]
        text_of_config = str(config["text"])
        if hashlib.sha256(text_of_config.encode()).hexdigest() != config["sha256"]:
            raise PlanFileError(f"{name}: the config in the plan file was edited; plan again")
        return SavedPlan(
            config_name=str(config["name"]),
            config_text=text_of_config,
            source=str(data["source"]),
            revision=data["revision"],
            settings=dict(data["settings"]),
            targets=tuple(str(t) for t in data["targets"]),
            allow_delete_all=bool(data["allow_delete_all"]),
            account=data["account"],
            spec_hashes={str(k): str(v) for k, v in data["spec_hashes"].items()},
            deployed=tuple(StackState(**state) for state in data["deployed"]),
            actions={str(k): str(v) for k, v in data["actions"].items()},
            created=str(data.get("created", "")),
            controller_version=str(data.get("controller_version", "")),
            step=str(data.get("step", ORCHESTRATOR)),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise PlanFileError(f"{name}: not a plan file (missing or malformed {exc})") from None


def stale(saved: SavedPlan, full: Plan, shown: Plan, account: str) -> str:
    """Why `saved` may not be applied any more, or "" when the plan is exactly as saved.

    `full` and `shown` are the plan computed again now from the saved config (before and
    after `--target`); `account` is the account the credentials now reach. A plan file
    without an account is refused: a missing account never turns the check off.
    """
    if not saved.account:
        return "the plan file names no account, so it cannot be checked against the credentials"
    if saved.account != account:
        return (
            f"the plan was made for account {saved.account}, but these credentials reach "
            f"account {account}"
        )
    hashes = spec_hashes(full)
    if hashes != dict(saved.spec_hashes):
        changed = sorted(
            n
            for n in set(hashes) | set(saved.spec_hashes)
            if hashes.get(n) != saved.spec_hashes.get(n)
        )
        return (
            f"the config renders differently now ({', '.join(changed)}): another "
            "mlops-controller version or blueprint made the plan"
        )
    before = {s.name: s for s in saved.deployed}
    now = {s.name: s for s in seen(full)}
    for name in sorted(set(before) | set(now)):
        if before.get(name) != now.get(name):
            moved = _moved(before.get(name), now.get(name))
            return f"{name} changed since the plan was made ({moved})"
    actions = {a.stack_name: a.action.value for a in shown.actions}
    if actions != dict(saved.actions):
        changed = sorted(
            n for n in set(actions) | set(saved.actions) if actions.get(n) != saved.actions.get(n)
        )
        described = ", ".join(
            f"{n}: {saved.actions.get(n, 'absent')} -> {actions.get(n, 'absent')}" for n in changed
        )
        return f"the plan would differ now ({described})"
    return ""


def _moved(before: StackState | None, now: StackState | None) -> str:
    if before is None:
        return f"it appeared: {now.status if now else ''}"
    if now is None:
        return f"it was {before.status} and is gone now"
    if before.stack_id != now.stack_id:
        return "it was deleted and created again"
    for label, old, new in (
        ("status", before.status, now.status),
        ("owner", before.owner, now.owner),
        ("last updated", before.last_updated, now.last_updated),
        ("spec hash", before.spec_hash, now.spec_hash),
        ("run-once job", before.run, now.run),
    ):
        if old != new:
            return f"{label} was {old or 'none'}, is {new or 'none'}"
    return "it differs"
