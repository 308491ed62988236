"""Every AWS API call the controller makes in CodeBuild, and the IAM action and resource each
needs: the one list that the build role in `blueprints/bootstrap.yaml` is tested against
(`tests/test_permissions.py`) and that SECURITY.md's table shows.

A resource is an ARN pattern with `{partition}`, `{region}`, `{account}`, `{assets_bucket}`,
`{stack_prefix}`, `{controller_id}`, `{topic}`, `{repository}`, `{connection}` and
`{token_secret}` to fill in; `*` where the action has no resource-level permission. The
stacks themselves need more: whatever their resources' CloudFormation handlers call, derived
from the provider schemas by the same test.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiCall:
    operation: str
    """`service.Operation` as botocore names it (what `Aws.calls` counts)."""
    action: str
    """The IAM action it is authorised as."""
    resource: str
    why: str
    when: str = ""
    """A bootstrap choice the call is made under (`connection`: a repository on a git host
    reached through a CodeConnections connection; `token secret`: its token read from Secrets
    Manager); empty for every setup."""


STACK = "arn:{partition}:cloudformation:{region}:{account}:stack/{stack_prefix}-example/id"
STATE = "arn:{partition}:s3:::{assets_bucket}/mlops-controller/{controller_id}/lock.json"
LEDGER = "arn:{partition}:s3:::{assets_bucket}/mlops-controller/{controller_id}/ledger/x.json"
POLICY = "arn:{partition}:s3:::{assets_bucket}/mlops-controller/{controller_id}/policy.json"
MACHINE = "arn:{partition}:states:{region}:{account}:stateMachine:{stack_prefix}-example-1a2b"
EXECUTION = "arn:{partition}:states:{region}:{account}:execution:{stack_prefix}-example-1a2b:x"
PULL_REQUESTS = "arn:{partition}:codecommit:{region}:{account}:{repository}"
CONNECTION = "{connection}"
CONNECTION_WHY = "the build's clone of a repository on a git host (CodeBuild, as the build role)"

CALLS: tuple[ApiCall, ...] = (
    ApiCall("sts.GetCallerIdentity", "sts:GetCallerIdentity", "*", "which account this is"),
    ApiCall("cloudformation.DescribeStacks", "cloudformation:DescribeStacks", "*", "discover"),
    ApiCall("cloudformation.ListStacks", "cloudformation:ListStacks", "*", "poll stack states"),
    ApiCall(
        "cloudformation.DescribeStackEvents", "cloudformation:DescribeStackEvents", STACK, "events"
    ),
    ApiCall(
        "cloudformation.GetTemplate",
        "cloudformation:GetTemplate",
        STACK,
        "plans and adopt: the resources a template change deletes",
    ),
    ApiCall("cloudformation.CreateStack", "cloudformation:CreateStack", STACK, "apply"),
    ApiCall("cloudformation.CreateStack", "cloudformation:TagResource", STACK, "ownership tags"),
    ApiCall("cloudformation.UpdateStack", "cloudformation:UpdateStack", STACK, "apply"),
    ApiCall("cloudformation.UpdateStack", "cloudformation:TagResource", STACK, "ownership tags"),
    ApiCall("cloudformation.DeleteStack", "cloudformation:DeleteStack", STACK, "apply"),
    ApiCall("cloudformation.DetectStackDrift", "cloudformation:DetectStackDrift", STACK, "drift"),
    ApiCall(
        "cloudformation.DescribeStackDriftDetectionStatus",
        "cloudformation:DescribeStackDriftDetectionStatus",
        "*",
        "drift",
    ),
    ApiCall(
        "cloudformation.DescribeStackResourceDrifts",
        "cloudformation:DescribeStackResourceDrifts",
        STACK,
        "drift",
    ),
    ApiCall("s3.GetObject", "s3:GetObject", STATE, "the apply lease"),
    ApiCall("s3.PutObject", "s3:PutObject", STATE, "the apply lease (conditional writes)"),
    ApiCall("s3.DeleteObject", "s3:DeleteObject", STATE, "releasing the apply lease"),
    ApiCall("s3.GetObject", "s3:GetObject", LEDGER, "the ledger"),
    ApiCall("s3.PutObject", "s3:PutObject", LEDGER, "the ledger"),
    ApiCall("s3.GetObject", "s3:GetObject", POLICY, "the promotion policy in force"),
    ApiCall("s3.PutObject", "s3:PutObject", POLICY, "the policy of a completely applied commit"),
    ApiCall("s3.ListObjectsV2", "s3:ListBucket", "arn:{partition}:s3:::{assets_bucket}", "history"),
    ApiCall(
        "s3.HeadObject",
        "s3:GetObject",
        "arn:{partition}:s3:::{assets_bucket}/churn/model.tar.gz",
        "pre-flight: the artifacts a pending change needs exist",
    ),
    ApiCall(
        "s3.PutObject",
        "s3:PutObject",
        "arn:{partition}:s3:::{assets_bucket}/mlops-controller/templates/{stack_prefix}-x/h.yaml",
        "templates over 51,200 bytes (TemplateURL)",
    ),
    ApiCall(
        "s3.PutObject",
        "s3:PutObject",
        "arn:{partition}:s3:::{assets_bucket}/mlops-controller/analysis/0123abcd.json",
        "Clarify analysis configurations, keyed by their hash",
    ),
    ApiCall(
        "s3.GetObject",
        "s3:GetObject",
        "arn:{partition}:s3:::{assets_bucket}/mlops-controller/wheels/0123abcd/c-1-py3-none-any.whl",
        "the build installs the controller's wheel (aws s3 cp in the buildspec)",
    ),
    ApiCall("stepfunctions.StartExecution", "states:StartExecution", MACHINE, "run-once jobs"),
    ApiCall("stepfunctions.DescribeExecution", "states:DescribeExecution", EXECUTION, "runs"),
    ApiCall(
        "sagemaker.DescribeEndpoint",
        "sagemaker:DescribeEndpoint",
        "arn:{partition}:sagemaker:{region}:{account}:endpoint/churn-endpoint",
        "status",
    ),
    ApiCall("sns.Publish", "sns:Publish", "{topic}", "notifications"),
    ApiCall(
        "cloudwatch.DescribeAlarms",
        "cloudwatch:DescribeAlarms",
        "arn:{partition}:cloudwatch:{region}:{account}:alarm:churn-5xx",
        "the rollback alarm that stopped an endpoint update; promote_after alarms",
    ),
    ApiCall(
        "sagemaker.ListMonitoringExecutions",
        "sagemaker:ListMonitoringExecutions",
        "*",
        "promote_after monitors: clean",
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
        "codecommit.CreatePullRequest",
        "codecommit:CreatePullRequest",
        PULL_REQUESTS,
        "bump's pull requests (providers.codecommit)",
    ),
    ApiCall(
        "codebuild.clone", "codeconnections:GetConnection", CONNECTION, CONNECTION_WHY, "connection"
    ),
    ApiCall(
        "codebuild.clone",
        "codeconnections:GetConnectionToken",
        CONNECTION,
        CONNECTION_WHY,
        "connection",
    ),
    ApiCall(
        "codebuild.clone", "codeconnections:UseConnection", CONNECTION, CONNECTION_WHY, "connection"
    ),
    ApiCall(
        "secretsmanager.GetSecretValue",
        "secretsmanager:GetSecretValue",
        "{token_secret}",
        "the git host's token, when not in the environment (providers.hosts)",
        "token secret",
    ),
)

BUMP_CALLS: tuple[ApiCall, ...] = (
    ApiCall("sagemaker.ListModelPackages", "sagemaker:ListModelPackages", "*", "Approved versions"),
    ApiCall("codebuild.clone", "codecommit:GitPull", PULL_REQUESTS, "the build's git clone"),
    ApiCall("git.push", "codecommit:GitPush", PULL_REQUESTS, "the bump branch"),
    ApiCall(
        "codecommit.CreatePullRequest",
        "codecommit:CreatePullRequest",
        PULL_REQUESTS,
        "the pull request that pins the approved version",
    ),
    ApiCall(
        "s3.GetObject",
        "s3:GetObject",
        "arn:{partition}:s3:::{assets_bucket}/mlops-controller/wheels/0123abcd/c-1-py3-none-any.whl",
        "the build installs the controller's wheel",
    ),
)
"""What `mlops-controller bump` calls, in its own build (`BumpProject`, `BumpBuildRole`)."""
