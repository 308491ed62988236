"""Pre-flight for a stage: can its account read the orchestrator's assets?

A stage's stacks read model artifacts, Docker zips and baselines from the orchestrator's
assets bucket (decrypting with its KMS key, if the bucket uses one) and pull custom images
from the orchestrator's registry. Without a grant on the orchestrator's side naming the stage
account, the endpoint fails twenty minutes later; here the orchestrator's own policies are
read instead (with the orchestrator's credentials) and a pipeline whose reads are not granted
is blocked with what is missing. A KMS key also needs a statement in the reader's own account:
the blueprints give it to the stacks' roles for `settings.assets_kms_key_arn`, so that setting
must name the bucket's key. Like the artifact check, only pending changes are checked, so a
no-op plan makes no call.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from controller.aws.preflight import NEEDS_ASSETS, required_objects
from controller.aws.session import Aws, account_of
from controller.core import grants
from controller.core.config.model import Pipeline, S3Location, Stage
from controller.core.plan import Plan

AWS_MANAGED_KEY = "alias/aws/s3"
"""The key of SSE-KMS without a key of one's own: its policy cannot name another account."""

NO_POLICY = frozenset(
    {
        "NoSuchBucketPolicy",
        "RepositoryPolicyNotFoundException",
        "ServerSideEncryptionConfigurationNotFoundError",
    }
)


@dataclass
class _Policies:
    """Each policy read at most once per check."""

    home: Aws
    built: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Repository -> the accounts the image builder pushing to it grants the pull."""
    read: dict[tuple[str, ...], tuple[Any, str]] = field(default_factory=dict)
    account: str = ""

    def home_account(self) -> str:
        if not self.account:
            self.account = account_of(self.home)
        return self.account

    def get(self, what: tuple[str, ...]) -> tuple[Any, str]:
        """(the policy or None when there is none, a problem reading it or "")."""
        if what not in self.read:
            self.read[what] = self._fetch(what)
        return self.read[what]

    def _fetch(self, what: tuple[str, ...]) -> tuple[Any, str]:
        kind, *args = what
        try:
            if kind == "bucket":
                answer = self.home.client("s3").get_bucket_policy(Bucket=args[0])
                return answer["Policy"], ""
            if kind == "encryption":
                answer = self.home.client("s3").get_bucket_encryption(Bucket=args[0])
                rules = answer["ServerSideEncryptionConfiguration"]["Rules"]
                default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
                key = default.get("KMSMasterKeyID") or AWS_MANAGED_KEY
                return (key if default.get("SSEAlgorithm") == "aws:kms" else None), ""
            if kind == "arn":
                key = args[0]
                if re.fullmatch(r"arn:[^:]+:kms:[^:]+:[0-9]+:key/.+", key):
                    return key, ""
                return self.home.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"], ""
            if kind == "key":
                kms = self.home.client("kms")
                key = args[0]
                if "alias/" in key:
                    key = kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
                return kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"], ""
            registry, repository = args
            answer = self.home.client("ecr").get_repository_policy(
                registryId=registry, repositoryName=repository
            )
            return answer["policyText"], ""
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in NO_POLICY:
                return None, ""
            return None, f"{code}: {error.get('Message', exc)}"
        except BotoCoreError as exc:
            return None, str(exc)


def check(
    plan: Plan,
    stage: Stage,
    home: Aws,
    assets_bucket: str,
    assets_key: str | None = None,
    built: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, str]:
    """Stack name -> what the stage account may not read, for each pending change;
    `assets_key` is `settings.assets_kms_key_arn`, the key the stacks' roles are granted;
    `built` what the config's image builders grant (`render.image_grants`): their builds set
    the repositories' policies, so an image they push is not checked against a policy the
    first build may not have written yet."""
    policies = _Policies(home, built or {})
    failures: dict[str, str] = {}
    for action in plan.actions:
        if action.action not in NEEDS_ASSETS or action.desired is None:
            continue
        pipeline = action.desired.pipeline
        # Each object of a bucket meets the same key: say it once.
        problems = list(
            dict.fromkeys(_problems(pipeline, stage, assets_bucket, assets_key, policies))
        )
        if problems:
            failures[action.stack_name] = "; ".join(problems)
    return failures


def _problems(
    pipeline: Pipeline,
    stage: Stage,
    assets_bucket: str,
    assets_key: str | None,
    policies: _Policies,
) -> Iterator[str]:
    account = stage.account_id
    for key, location in required_objects(pipeline):
        if location.bucket != assets_bucket:
            continue
        resource = f"arn:aws:s3:::{location.bucket}/{location.key}"
        policy, trouble = policies.get(("bucket", location.bucket))
        if trouble:
            yield f"cross-account: cannot read the policy of s3://{location.bucket}: {trouble}"
        elif not grants.allows(policy, account, grants.READ_OBJECTS, resource):
            yield (
                f"cross-account: the bucket policy of s3://{location.bucket} does not let "
                f"account {account} (stage {stage.name}) read {key} {location.uri}; add the "
                "statement `mlops-controller grants` prints (or deploy the bootstrap with "
                "StageAccountIds)"
            )
        yield from _decrypt_problems(location.bucket, stage, assets_key, policies)
    yield from _listing_problems(pipeline, stage, assets_bucket, policies)
    image = pipeline.get("custom_image_uri")
    if isinstance(image, str):
        yield from _image_problems(image, stage, policies)


LISTED = ("baseline_data", "baseline_job_output_location")
"""Keys whose jobs read an S3 prefix (a baseline, a Clarify dataset), so list the bucket."""


def _listing_problems(
    pipeline: Pipeline, stage: Stage, assets_bucket: str, policies: _Policies
) -> Iterator[str]:
    listed = [pipeline.get(key) for key in LISTED]
    if not any(isinstance(at, S3Location) and at.bucket == assets_bucket for at in listed):
        return
    policy, trouble = policies.get(("bucket", assets_bucket))
    if not trouble and not grants.allows(
        policy, stage.account_id, grants.LIST_OBJECTS, f"arn:aws:s3:::{assets_bucket}"
    ):
        yield (
            f"cross-account: the bucket policy of s3://{assets_bucket} does not let account "
            f"{stage.account_id} (stage {stage.name}) list it, which reading a baseline or a "
            "Clarify dataset (an S3 prefix) takes; add the statement `mlops-controller grants` "
            "prints (or deploy the bootstrap with StageAccountIds)"
        )


def _decrypt_problems(
    bucket: str, stage: Stage, assets_key: str | None, policies: _Policies
) -> Iterator[str]:
    """The key must let the stage account decrypt (its key policy), and the stacks' roles
    must be granted that very key (settings.assets_kms_key_arn is the bucket's key)."""
    encrypted, trouble = policies.get(("encryption", bucket))
    if trouble or encrypted is None:
        encrypted = None  # no KMS key, or none the orchestrator can see: the setting's, if any
    elif encrypted == AWS_MANAGED_KEY:
        yield (
            f"cross-account: s3://{bucket} is encrypted with the AWS managed key aws/s3, which "
            f"no other account, such as {stage.account_id} (stage {stage.name}), may use; "
            "encrypt it with a key of your own (the bootstrap's) and grant that"
        )
        return
    else:
        yield from _wrong_key(bucket, str(encrypted), stage, assets_key, policies)
    key_id = assets_key or encrypted
    if key_id is None:
        return
    policy, trouble = policies.get(("key", str(key_id)))
    if trouble:
        yield f"cross-account: cannot read the policy of KMS key {key_id}: {trouble}"
    elif not grants.allows(policy, stage.account_id, ("kms:Decrypt",), "*"):
        yield (
            f"cross-account: KMS key {key_id} of s3://{bucket} does not let account "
            f"{stage.account_id} (stage {stage.name}) decrypt; add the key statement "
            "`mlops-controller grants` prints"
        )


def _wrong_key(
    bucket: str, encrypted: str, stage: Stage, assets_key: str | None, policies: _Policies
) -> Iterator[str]:
    if assets_key is None:
        yield (
            f"cross-account: s3://{bucket} is encrypted with KMS key {encrypted}, which the "
            f"roles of stage {stage.name}'s stacks are not granted; set "
            "settings.assets_kms_key_arn (MLOPS_ASSETS_KMS_KEY_ARN) to that key's ARN"
        )
        return
    arn, trouble = policies.get(("arn", encrypted))
    if trouble:
        yield f"cross-account: cannot describe KMS key {encrypted} of s3://{bucket}: {trouble}"
    elif arn != assets_key:
        yield (
            f"cross-account: s3://{bucket} is encrypted with KMS key {arn}, not with "
            f"settings.assets_kms_key_arn {assets_key}, the key the roles of stage "
            f"{stage.name}'s stacks are granted"
        )


def _image_problems(image: str, stage: Stage, policies: _Policies) -> Iterator[str]:
    host, _, path = image.partition("/")
    registry, _, rest = host.partition(".dkr.ecr.")
    region = rest.partition(".")[0]
    repository = path.split("@")[0].rpartition(":")[0] if ":" in path else path.split("@")[0]
    if registry == stage.account_id or region != policies.home.region:
        return  # the stage's own registry, or one the orchestrator's session does not reach
    if stage.account_id in policies.built.get(repository, ()) and (
        registry == policies.home_account()
    ):
        return  # the orchestrator's image builder pushes it, and its build grants the pull
    policy, trouble = policies.get(("repository", registry, repository))
    if trouble.startswith("AccessDenied"):
        return  # another account's registry: only its owner can see its policy
    if trouble:
        yield f"cross-account: image {image}: {trouble}"
    elif not grants.allows(policy, stage.account_id, grants.PULL_IMAGES, "*"):
        yield (
            f"cross-account: the repository policy of {registry}/{repository} does not let "
            f"account {stage.account_id} (stage {stage.name}) pull {image}; add the "
            "repository statement `mlops-controller grants` prints"
        )
