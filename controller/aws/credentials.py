"""Each stage's session: the controller assumes the stage's role through STS.

The orchestrator's own credentials come from standard configuration (AWS_PROFILE, the
CodeBuild or instance role, ...). For each stage the controller calls `sts:AssumeRole` on the
stage's `role_arn`, with a session name that names the controller and the commit (so the
stage account's CloudTrail says who deployed what) and the `ExternalId` when one is configured.
The credentials refresh themselves before they expire: an apply that waits for slow endpoints
outlives the one-hour session.

What every stage shares stays in the orchestrator account: the assets bucket (artifacts, the
apply lease, the ledger and promotion records, large templates) and the notification topic.
A stage's session therefore makes its S3 and SNS calls with the orchestrator's credentials,
and a stage's role needs no access to the orchestrator's bucket at all.
"""

from __future__ import annotations

import re
from typing import Any

import botocore.session
from botocore.credentials import CredentialProvider, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from controller.aws.session import Aws
from controller.core.config.model import Stage
from controller.core.errors import AwsError

HOME_SERVICES = frozenset({"s3", "sns"})
"""Services whose resources live in the orchestrator account, whatever the stage."""


class StageUnreachable(AwsError):
    """The stage's role cannot be assumed; the message names the stage, the role and why."""


class StageAws(Aws):
    """A stage account's session: its own clients, and the orchestrator's for HOME_SERVICES."""

    def __init__(self, stage: Stage, home: Aws, botocore_session: Any) -> None:
        super().__init__(region=stage.region, botocore_session=botocore_session)
        self.stage = stage
        self.home = home

    def client(self, service: str) -> Any:
        if service in HOME_SERVICES:
            return self.home.client(service)
        return super().client(service)


def session_name(controller_id: str, commit: str | None) -> str:
    """`<controller_id>@<commit12>`, in the characters and length STS accepts."""
    text = f"{controller_id}@{(commit or 'worktree')[:12]}"
    return re.sub(r"[^\w+=,.@-]", "-", text)[:64]


def assume(stage: Stage, home: Aws, *, controller_id: str, commit: str | None) -> StageAws:
    """The stage's session, with credentials already obtained once (so a role that cannot be
    assumed is reported now, by name, not at the first call that needs it)."""
    request: dict[str, str] = {
        "RoleArn": stage.role_arn,
        "RoleSessionName": session_name(controller_id, commit),
    }
    if stage.external_id:
        request["ExternalId"] = stage.external_id
    sts = home.client("sts")

    def fetch() -> dict[str, str]:
        credentials = sts.assume_role(**request)["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    session = botocore.session.get_session()
    session.get_component("credential_provider").insert_before("env", _AssumedRole(fetch))
    try:
        session.get_credentials()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise StageUnreachable(
            f"stage {stage.name}: cannot assume {stage.role_arn}: "
            f"{error.get('Code', 'Error')}: {error.get('Message', exc)}"
        ) from exc
    except BotoCoreError as exc:
        raise StageUnreachable(
            f"stage {stage.name}: cannot assume {stage.role_arn}: {exc}"
        ) from exc
    return StageAws(stage, home, session)


class _AssumedRole(CredentialProvider):  # type: ignore[misc]
    """botocore's public hook for where credentials come from: here, the stage's role."""

    METHOD = "mlops-stage-role"

    def __init__(self, fetch: Any) -> None:
        super().__init__()
        self._fetch = fetch

    def load(self) -> RefreshableCredentials:
        return RefreshableCredentials.create_from_metadata(
            metadata=self._fetch(), refresh_using=self._fetch, method=self.METHOD
        )
