"""Every AWS API call the controller makes, the IAM action it is authorised as, the resource
it touches and the role it is made with: the one list the roles of `blueprints/bootstrap.yaml`
(the build role, in the orchestrator account) and `blueprints/stage-role.yaml` (the stage role,
in each stage account) are evaluated against, resources and conditions included
(`tests/test_permissions.py`), and that docs/permissions.md explains.

A resource is an ARN pattern with `{partition}`, `{region}`, `{account}`, `{assets_bucket}`,
`{stack_prefix}`, `{controller_id}`, `{topic}`, `{repository}`, `{stage_role}`,
`{assets_key}`, `{connection}`, `{token_secret}` and `{stage_account}` (in a condition key's
value: one of the config's stage accounts) to fill in;
`*` stands for the part that varies (a stack's name after the prefix, an S3 key's stamp), so a
role allows the call only if it allows every such name. The S3 keys are those the code writes
(a test records the keys a run of the controller touches and matches each against this list).
The stacks need more: whatever their resources' CloudFormation handlers call, derived from the
provider schemas by the same test, plus `SERVICE_SIDE`.
"""

from __future__ import annotations

from dataclasses import dataclass

ORCHESTRATOR = "orchestrator"
"""The build role of the bootstrap stack, in the orchestrator account."""
STAGE = "stage"
"""The stage role (stage-role.yaml) the controller assumes in a stage account."""


@dataclass(frozen=True)
class ApiCall:
    operation: str
    """`service.Operation` as botocore names it (what `Aws.calls` counts)."""
    action: str
    """The IAM action it is authorised as."""
    resource: str
    why: str
    roles: tuple[str, ...] = (ORCHESTRATOR,)
    """The roles that make it: in the orchestrator account, in stage accounts, or both."""
    context: tuple[tuple[str, str], ...] = ()
    """Condition keys the request carries, for the policies' conditions."""
    when: str = ""
    """A bootstrap choice the call is made under (`connection`: a repository on a git host
    reached through a CodeConnections connection; `token secret`: its token read from Secrets
    Manager; `codecommit`: the repository on CodeCommit); empty for every setup."""


BOTH = (ORCHESTRATOR, STAGE)

BUCKET = "arn:{partition}:s3:::{assets_bucket}"
OWN = BUCKET + "/mlops-controller/{controller_id}"
STACK = "arn:{partition}:cloudformation:{region}:{account}:stack/{stack_prefix}-*/*"
LOCK = OWN + "/lock.json"
LEDGER = OWN + "/ledger/*.json"
INTENT = OWN + "/ledger/intent.json"
STAGE_LEDGER = OWN + "/stages/*/ledger/*.json"
STAGE_INTENT = OWN + "/stages/*/ledger/intent.json"
PROMOTIONS = OWN + "/promotions/*.json"
APPROVALS = OWN + "/approvals/*.json"
MACHINE = "arn:{partition}:states:{region}:{account}:stateMachine:{stack_prefix}-*"
EXECUTION = "arn:{partition}:states:{region}:{account}:execution:{stack_prefix}-*:*"
POLICY = OWN + "/policy.json"
PULL_REQUESTS = "arn:{partition}:codecommit:{region}:{account}:{repository}"
STAGE_ROLE = "arn:{partition}:iam::*:role/{stage_role}"
CONNECTION = "{connection}"
CONNECTION_WHY = "the build's clone of a repository on a git host (CodeBuild, as the build role)"

CALLS: tuple[ApiCall, ...] = (
    ApiCall("sts.GetCallerIdentity", "sts:GetCallerIdentity", "*", "which account", BOTH),
    ApiCall(
        "sts.AssumeRole",
        "sts:AssumeRole",
        STAGE_ROLE,
        "each stage's session, in a stage's account only",
        context=(("aws:ResourceAccount", "{stage_account}"),),
    ),
    ApiCall(
        "cloudformation.DescribeStacks", "cloudformation:DescribeStacks", "*", "discover", BOTH
    ),
    ApiCall("cloudformation.ListStacks", "cloudformation:ListStacks", "*", "poll stacks", BOTH),
    ApiCall(
        "cloudformation.DescribeStackEvents",
        "cloudformation:DescribeStackEvents",
        STACK,
        "events",
        BOTH,
    ),
    ApiCall(
        "cloudformation.GetTemplate",
        "cloudformation:GetTemplate",
        STACK,
        "plans and adopt: the resources a template change deletes",
        BOTH,
    ),
    ApiCall("cloudformation.CreateStack", "cloudformation:CreateStack", STACK, "apply", BOTH),
    ApiCall("cloudformation.CreateStack", "cloudformation:TagResource", STACK, "tags", BOTH),
    ApiCall("cloudformation.UpdateStack", "cloudformation:UpdateStack", STACK, "apply", BOTH),
    ApiCall("cloudformation.UpdateStack", "cloudformation:TagResource", STACK, "tags", BOTH),
    ApiCall("cloudformation.DeleteStack", "cloudformation:DeleteStack", STACK, "apply", BOTH),
    ApiCall(
        "cloudformation.DetectStackDrift", "cloudformation:DetectStackDrift", STACK, "drift", BOTH
    ),
    ApiCall(
        "cloudformation.DescribeStackDriftDetectionStatus",
        "cloudformation:DescribeStackDriftDetectionStatus",
        "*",
        "drift",
        BOTH,
    ),
    ApiCall(
        "cloudformation.DescribeStackResourceDrifts",
        "cloudformation:DescribeStackResourceDrifts",
        STACK,
        "drift",
        BOTH,
    ),
    ApiCall("s3.GetObject", "s3:GetObject", LOCK, "the apply lease"),
    ApiCall("s3.PutObject", "s3:PutObject", LOCK, "the apply lease (conditional writes)"),
    ApiCall("s3.DeleteObject", "s3:DeleteObject", LOCK, "releasing the apply lease"),
    ApiCall("s3.GetObject", "s3:GetObject", LEDGER, "the ledger"),
    ApiCall("s3.HeadObject", "s3:GetObject", LEDGER, "the ledger: an interrupted apply's record"),
    ApiCall("s3.PutObject", "s3:PutObject", LEDGER, "the ledger"),
    ApiCall("s3.DeleteObject", "s3:DeleteObject", INTENT, "an apply's intent, once recorded"),
    ApiCall("s3.GetObject", "s3:GetObject", STAGE_LEDGER, "each stage's ledger"),
    ApiCall("s3.HeadObject", "s3:GetObject", STAGE_LEDGER, "each stage's ledger"),
    ApiCall("s3.PutObject", "s3:PutObject", STAGE_LEDGER, "each stage's ledger"),
    ApiCall("s3.DeleteObject", "s3:DeleteObject", STAGE_INTENT, "a stage apply's intent"),
    ApiCall("s3.GetObject", "s3:GetObject", PROMOTIONS, "promotion records"),
    ApiCall("s3.PutObject", "s3:PutObject", PROMOTIONS, "promotion records"),
    ApiCall("s3.GetObject", "s3:GetObject", POLICY, "the promotion policy in force"),
    ApiCall("s3.PutObject", "s3:PutObject", POLICY, "the policy of a completely applied commit"),
    ApiCall("s3.GetObject", "s3:GetObject", APPROVALS, "approvals (never written: people's)"),
    ApiCall("s3.ListObjectsV2", "s3:ListBucket", BUCKET, "history, gates"),
    ApiCall(
        "s3.HeadObject",
        "s3:GetObject",
        BUCKET + "/*",
        "pre-flight: the artifacts a pending change needs exist",
    ),
    ApiCall(
        "s3.PutObject",
        "s3:PutObject",
        BUCKET + "/mlops-controller/templates/{stack_prefix}-*/*.yaml",
        "templates over 51,200 bytes (TemplateURL)",
    ),
    ApiCall(
        "s3.PutObject",
        "s3:PutObject",
        BUCKET + "/mlops-controller/analysis/*.json",
        "Clarify analysis configurations, keyed by their hash",
    ),
    ApiCall(
        "s3.GetObject",
        "s3:GetObject",
        BUCKET + "/mlops-controller/wheels/*/*.whl",
        "the build installs the controller's wheel (aws s3 cp in the buildspec)",
    ),
    ApiCall("s3.GetBucketPolicy", "s3:GetBucketPolicy", BUCKET, "cross-account pre-flight"),
    ApiCall(
        "s3.GetBucketEncryption",
        "s3:GetEncryptionConfiguration",
        BUCKET,
        "cross-account pre-flight",
    ),
    ApiCall(
        "kms.GetKeyPolicy",
        "kms:GetKeyPolicy",
        "{assets_key}",
        "cross-account pre-flight",
    ),
    ApiCall("kms.DescribeKey", "kms:DescribeKey", "{assets_key}", "cross-account pre-flight"),
    ApiCall(
        "ecr.GetRepositoryPolicy",
        "ecr:GetRepositoryPolicy",
        "arn:{partition}:ecr:{region}:{account}:repository/*",
        "cross-account pre-flight",
    ),
    ApiCall("stepfunctions.StartExecution", "states:StartExecution", MACHINE, "run-once", BOTH),
    ApiCall("stepfunctions.DescribeExecution", "states:DescribeExecution", EXECUTION, "runs", BOTH),
    ApiCall(
        "sagemaker.DescribeEndpoint",
        "sagemaker:DescribeEndpoint",
        "arn:{partition}:sagemaker:{region}:{account}:endpoint/*",
        "status",
        BOTH,
    ),
    ApiCall("sns.Publish", "sns:Publish", "{topic}", "notifications"),
    ApiCall(
        "cloudwatch.DescribeAlarms",
        "cloudwatch:DescribeAlarms",
        "arn:{partition}:cloudwatch:{region}:{account}:alarm:churn-5xx",
        "the rollback alarm that stopped an endpoint update; promote_after alarms",
        BOTH,
    ),
    ApiCall(
        "sagemaker.ListMonitoringExecutions",
        "sagemaker:ListMonitoringExecutions",
        "*",
        "promote_after monitors: clean",
        BOTH,
    ),
    ApiCall("codebuild.clone", "codecommit:GitPull", PULL_REQUESTS, "the build's git clone"),
    ApiCall(
        "codecommit.GetCommentsForPullRequest",
        "codecommit:GetCommentsForPullRequest",
        PULL_REQUESTS,
        "find the earlier plan comment",
    ),
    ApiCall(
        "codecommit.PostCommentForPullRequest",
        "codecommit:PostCommentForPullRequest",
        PULL_REQUESTS,
        "the plan on pull requests",
    ),
    ApiCall("codecommit.UpdateComment", "codecommit:UpdateComment", PULL_REQUESTS, "plan"),
    ApiCall(
        "codebuild.clone",
        "codeconnections:GetConnection",
        CONNECTION,
        CONNECTION_WHY,
        when="connection",
    ),
    ApiCall(
        "codebuild.clone",
        "codeconnections:GetConnectionToken",
        CONNECTION,
        CONNECTION_WHY,
        when="connection",
    ),
    ApiCall(
        "codebuild.clone",
        "codeconnections:UseConnection",
        CONNECTION,
        CONNECTION_WHY,
        when="connection",
    ),
    ApiCall(
        "secretsmanager.GetSecretValue",
        "secretsmanager:GetSecretValue",
        "{token_secret}",
        "the git host's token, when not in the environment (providers.hosts)",
        when="token secret",
    ),
)

BUMP_CALLS: tuple[ApiCall, ...] = (
    ApiCall("sagemaker.ListModelPackages", "sagemaker:ListModelPackages", "*", "Approved versions"),
    ApiCall(
        "codebuild.clone",
        "codecommit:GitPull",
        PULL_REQUESTS,
        "the build's git clone",
        when="codecommit",
    ),
    ApiCall("git.push", "codecommit:GitPush", PULL_REQUESTS, "the bump branch", when="codecommit"),
    ApiCall(
        "codecommit.CreatePullRequest",
        "codecommit:CreatePullRequest",
        PULL_REQUESTS,
        "the pull request that pins the approved version (providers.codecommit)",
        when="codecommit",
    ),
    *(
        ApiCall("codebuild.clone", action, CONNECTION, CONNECTION_WHY, when="connection")
        for action in (
            "codeconnections:GetConnection",
            "codeconnections:GetConnectionToken",
            "codeconnections:UseConnection",
        )
    ),
    ApiCall(
        "secretsmanager.GetSecretValue",
        "secretsmanager:GetSecretValue",
        "{token_secret}",
        "the token bump pushes and opens its pull request with, on a git host (providers.hosts)",
        when="token secret",
    ),
    ApiCall(
        "s3.GetObject",
        "s3:GetObject",
        "arn:{partition}:s3:::{assets_bucket}/mlops-controller/wheels/0123abcd/c-1-py3-none-any.whl",
        "the build installs the controller's wheel",
    ),
)
"""What `mlops-controller bump` calls, in its own build (`BumpProject`, `BumpBuildRole`)."""


@dataclass(frozen=True)
class ServiceSide:
    """A permission a service checks on the caller's behalf, which no provider schema lists:
    needed by the role that deploys a stack whose template has `when`."""

    action: str
    resource: str
    when: str
    why: str
    context: tuple[tuple[str, str], ...] = ()


SERVICE_SIDE: tuple[ServiceSide, ...] = (
    ServiceSide(
        "kms:CreateGrant",
        "arn:{partition}:kms:{region}:{account}:key/*",
        "KmsKeyId",
        "CreateEndpoint and UpdateEndpoint grant SageMaker the endpoint configuration's key",
        (("kms:GrantIsForAWSResource", "true"),),
    ),
    ServiceSide(
        "iam:PassRole",
        "arn:{partition}:iam::{account}:role/{stack_prefix}-*",
        "RoleArn",
        "a resource that runs as a role (a model, a state machine, a project) passes it",
    ),
)
