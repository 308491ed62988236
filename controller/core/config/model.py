"""The validated desired state: what the rest of the controller works from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.core.diagnostics import Diagnostic
from controller.core.pipelines import PipelineKind


@dataclass(frozen=True, order=True)
class S3Location:
    bucket: str
    key: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.key else f"s3://{self.bucket}"

    @classmethod
    def parse(cls, text: str, default_bucket: str | None = None) -> S3Location:
        """`bucket/key` or `s3://bucket/key`; with `default_bucket`, a bare key is in it."""
        if text.startswith("s3://"):
            bucket, _, key = text.removeprefix("s3://").partition("/")
        elif default_bucket is not None:
            bucket, key = default_bucket, text
        else:
            bucket, _, key = text.partition("/")
        return cls(bucket, key.rstrip("/"))


@dataclass(frozen=True)
class Settings:
    assets_bucket: str
    region: str
    stack_prefix: str = "mlops-pipeline"
    controller_id: str = "mlops-controller"
    max_deletes: int | None = None
    notification_topic_arn: str | None = None
    deployment_branch: str = "main"
    assets_kms_key_arn: str | None = None
    """The KMS key of the assets bucket: the roles that read from the bucket may decrypt with
    it (a stage account's roles need it in their own policies to read across accounts)."""


@dataclass(frozen=True)
class PromoteAfter:
    """A stage's `promote_after`: what must hold in it before the next stage gets a commit."""

    soak_minutes: int = 0
    alarms: tuple[str, ...] = ()
    """CloudWatch alarms of the stage's account that must stay OK for the whole soak."""
    monitors_clean: bool = False
    """No monitoring execution of the stage's schedules found violations during the soak."""

    def describe(self) -> str:
        """ "soak 60 min, 2 alarms OK, monitors clean": counts, never names, so that it may go
        into a pull-request comment as it is."""
        parts = [f"soak {self.soak_minutes} min"]
        if self.alarms:
            parts.append(f"{len(self.alarms)} alarm{'s' if len(self.alarms) > 1 else ''} OK")
        if self.monitors_clean:
            parts.append("monitors clean")
        return ", ".join(parts)


@dataclass(frozen=True)
class Stage:
    """One account of a multi-account config (`settings.stages`), in promotion order."""

    name: str
    account_id: str
    role_arn: str
    """The role the controller assumes in the stage's account."""
    region: str
    index: int
    """Position in `settings.stages`: the promotion order."""
    manual: bool = False
    """`"approval": "manual"`: a commit waits here until someone approves it for this stage."""
    external_id: str | None = None
    promote_after: PromoteAfter | None = None
    """The verification gate between this stage and the next (None: the next one follows as
    soon as this one applied a commit completely)."""


POLICY_SETTINGS = ("stages", "max_deletes")
"""The settings that judge a commit: the chain (every key of every stage, so a key added to
stages later is policy too) and the delete cap. A commit is judged by the policy in force,
never by its own values of these (see `controller.core.chain`)."""


@dataclass(frozen=True)
class Policy:
    """The promotion policy a commit's file states, as JSON values."""

    settings: Mapping[str, Any] = field(default_factory=dict)
    """The file's values of `POLICY_SETTINGS`, as written."""
    region: str = ""
    """settings.region: a stage without a region of its own deploys there."""
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """Values the controller's environment or flags set (MLOPS_MAX_DELETES, --max-deletes):
    the operator's, not the commit's, so they hold whatever policy is in force."""
    commit: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"commit": self.commit, "region": self.region, "settings": dict(self.settings)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Policy:
        settings = data.get("settings")
        commit = data.get("commit")
        return cls(
            dict(settings) if isinstance(settings, Mapping) else {},
            str(data.get("region") or ""),
            {},
            str(commit) if commit else None,
        )


@dataclass(frozen=True)
class Pipeline:
    kind: PipelineKind
    name: str
    """The original's stack infix: model_name, or image_tag for the image builder."""
    stack_name: str
    index: int
    """Position in the file's pipeline list, so later problems can point back at it."""
    values: Mapping[str, Any]
    """The config keys, normalized: locations as S3Location, counts as int."""

    @property
    def type(self) -> str:
        return self.kind.type

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    @property
    def endpoint_name(self) -> str | None:
        value = self.values.get("endpoint_name")
        return str(value) if value is not None else None


@dataclass(frozen=True)
class Config:
    settings: Settings
    pipelines: tuple[Pipeline, ...]
    source: str
    revision: str | None = None
    warnings: tuple[Diagnostic, ...] = field(default=())
    stage: Stage | None = None
    """The stage this config deploys, for one of `stages`; None for the orchestrator's own."""
    policy: Policy = field(default_factory=Policy)
    """The promotion policy this commit's file states (in force only once applied)."""
    stages: tuple[Config, ...] = ()
    """With `settings.stages`: one config per stage, in promotion order. This config then
    holds only what lives in the orchestrator account (the image builders)."""
