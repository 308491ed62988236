"""The build role in `blueprints/bootstrap.yaml` and the stage role in
`blueprints/stage-role.yaml` may do everything the controller needs in a real account, derived
rather than guessed, and evaluated as IAM would, resources and conditions included:

- for every resource of every rendered variant, every action its CloudFormation handlers
  call (create, update, delete, and read for drift detection), from the provider schemas that
  cfn-lint ships, on the ARN that resource will have (its explicit name, or the name
  CloudFormation generates from the stack's), with the condition keys the request carries (a
  role is created only with its permissions boundary);
- what services check on the caller's behalf and no schema lists (`calls.SERVICE_SIDE`);
- every call of the controller's own (`controller.aws.calls.CALLS`), on its resource (S3 keys
  included), by the role that makes it.

Each role is read as CloudFormation resolves it: its inline policies and the policies attached
to it, with the stack's parameters. moto allows every call, so these checks (and the suite
under IAM enforcement, tests/test_iam_enforced.py) are what say an apply works with the roles.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller.aws import calls
from controller.aws.demo_world import seed
from controller.aws.session import Aws
from controller.cli.main import main
from controller.core import intrinsics as cfn
from controller.core import render
from controller.core.intrinsics import ACCOUNT, REGION
from controller.gitops import bootstrap
from tests import iam, provider_schemas
from tests.aws_calls import count_calls, s3_keys
from tests.conftest import EXAMPLE
from tests.stack_model import DeployedModel
from tests.test_render import STACKS, example_config

CONTROLLER_STACK = "mlops-controller"
ASSETS = "mlops-assets-example"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:{CONTROLLER_STACK}-NotificationTopic-1A2B3C4D5E6F7"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b3d3a80-1e8e-11ef-8d2e-0affd4e0a1b3"
SETTINGS = example_config().settings
STAGE_ACCOUNTS = ("111111111111", "222222222222")


def bootstrap_attribute(logical_id: str, attribute: str | None) -> str:
    values = {
        ("AssetsBucket", None): ASSETS,
        ("AssetsBucket", "Arn"): f"arn:aws:s3:::{ASSETS}",
        ("ControllerKey", "Arn"): KEY,
        ("ControllerKey", None): KEY.rsplit("/", 1)[1],
        ("NotificationTopic", None): TOPIC,
        ("ControllerBuildRole", None): f"{CONTROLLER_STACK}-ControllerBuildRole-1A2B3C4D5E6F7",
    }
    return values.get((logical_id, attribute), f"<{logical_id}.{attribute}>")


def role_policy(
    text: str,
    role: str,
    parameters: Mapping[str, str],
    stack_name: str,
    attribute: Callable[[str, str | None], str],
) -> iam.Policy:
    """A role's statements (inline and attached policies), as CloudFormation would create
    them from the template with these parameter values."""
    template = cfn.load(text)
    context = cfn.Context(parameters, stack_name, attribute, template)
    statements: list[Mapping[str, Any]] = []
    for logical, resource in template["Resources"].items():
        if not context.exists(resource):
            continue
        properties = resource.get("Properties", {})
        if logical == role:
            for policy in properties.get("Policies", []):
                statements += context.resolve(policy["PolicyDocument"])["Statement"]
        elif resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy") and (
            {"Ref": role} in properties.get("Roles", [])
        ):
            statements += context.resolve(properties["PolicyDocument"])["Statement"]
    return iam.Policy.of(statements)


def build_role(**overrides: str) -> iam.Policy:
    """The build role, with stage accounts (so its stage policy is there too)."""
    parameters = {
        "StackPrefix": SETTINGS.stack_prefix,
        "ConfigRepositoryName": "mlops-config",
        "ExistingS3Bucket": "",
        "DeploymentBranch": "main",
        "StageAccountIds": list(STAGE_ACCOUNTS),  # type: ignore[dict-item]
        "StageRoleName": "mlops-controller-stage",
        **overrides,
    }
    text = bootstrap.template_text()
    return role_policy(
        text, "ControllerBuildRole", parameters, CONTROLLER_STACK, bootstrap_attribute
    )


STAGE_ROLE_TEMPLATE = Path(__file__).resolve().parent.parent / "blueprints" / "stage-role.yaml"


def stage_role() -> iam.Policy:
    """The stage role as stage-role.yaml creates it, in the stacks' account and region."""
    parameters = {
        "ControllerRoleArn": f"arn:aws:iam::{ACCOUNT}:role/controller",
        "ExternalId": "",
        "RoleName": "mlops-controller-stage",
        "StackPrefix": SETTINGS.stack_prefix,
    }
    text = STAGE_ROLE_TEMPLATE.read_text()
    return role_policy(text, "StageRole", parameters, "mlops-controller-stage", bootstrap_attribute)


ROLE = build_role()
ROLE_WITH_EXISTING_BUCKET = build_role(ExistingS3Bucket=ASSETS)
CONNECTION = f"arn:aws:codeconnections:{REGION}:{ACCOUNT}:connection/0b3d3a80-1e8e-11ef-8d2e"
TOKEN_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:mlops/github-token-AbC123"
ON_GITHUB = {
    "GitProvider": "GitHub",
    "ConnectionArn": CONNECTION,
    "GitRepository": "acme/mlops-config",
    "GitTokenSecretArn": TOKEN_SECRET,
}
ROLE_ON_GITHUB = build_role(**ON_GITHUB)
"""A config repository on GitHub, reached through a connection, its token in a secret."""
STAGE = stage_role()
ROLES = {calls.ORCHESTRATOR: ROLE, calls.STAGE: STAGE}
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/{SETTINGS.stack_prefix}-boundary"


# Which resource an action acts on ---------------------------------------------------------


def _get(properties: Mapping[str, Any], path: str) -> Any:
    value: Any = properties
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _has(*paths: str) -> Callable[[Mapping[str, Any]], Any]:
    def found(properties: Mapping[str, Any]) -> Any:
        return next((v for p in paths if (v := _get(properties, p)) is not None), None)

    return found


def _anywhere(node: Any, key: str) -> Any:
    """The value of `key` at any depth (a pipeline action's configuration, say)."""
    if isinstance(node, Mapping):
        if key in node:
            return node[key]
        node = list(node.values())
    if isinstance(node, list):
        return next((v for item in node if (v := _anywhere(item, key)) is not None), None)
    return None


FEATURES: tuple[tuple[str, str, Callable[[Mapping[str, Any]], Any]], ...] = (
    # Actions on something other than the resource itself, which a handler calls only when
    # the resource uses the feature: (action pattern, feature, what in the properties).
    ("kms:*", "a KMS key", _has("KmsKeyId", "KmsKeyArn", "EncryptionConfiguration.KmsKeyId")),
    (
        "s3:GetObject*",
        "code or a definition in S3",
        _has("Code.S3Bucket", "DefinitionS3Location", "BodyS3Location"),
    ),
    ("ec2:*", "a VPC", _has("VpcConfig")),
    ("elasticfilesystem:*", "file systems", _has("FileSystemConfigs")),
    ("s3files:*", "file systems", _has("FileSystemConfigs")),
    (
        "codestar-connections:*",
        "a CodeStar connection source",
        lambda p: _anywhere(p, "ConnectionArn"),
    ),
    ("apigateway:UpdateRestApiPolicy", "a resource policy", _has("Policy")),
    ("lambda:GetLayerVersion", "layers", _has("Layers")),
    ("lambda:GetCodeSigningConfig", "code signing", _has("CodeSigningConfigArn")),
    ("lambda:PassCapacityProvider", "a capacity provider", _has("CapacityProviderConfig")),
    ("iam:AttachRolePolicy", "managed policies", _has("ManagedPolicyArns")),
    ("iam:*RolePermissionsBoundary", "a permissions boundary", _has("PermissionsBoundary")),
    ("iam:*UserPolicy", "users", _has("Users")),
    ("iam:*GroupPolicy", "groups", _has("Groups")),
)


@dataclass(frozen=True)
class Need:
    stack: str
    logical_id: str
    resource_type: str
    handler: str
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return (
            f"{self.action} on {self.resource} ({self.resource_type} {self.logical_id} "
            f"{self.handler} in {self.stack})"
        )

    def allowed_by(self, policy: iam.Policy) -> bool:
        return policy.allows(self.action, self.resource, dict(self.context))


NEVER_GRANTED = {
    "iam:DeleteRolePermissionsBoundary": (
        "the update handler removes a role's boundary only when the template drops it, and "
        "the blueprints always set it: a role without its boundary is what the boundary stops"
    ),
}


def targets(
    model: DeployedModel, logical: str, rtype: str, properties: dict[str, Any], action: str
) -> list[str]:
    """The ARNs `action` is authorised against for this resource; [] when not reached."""
    for pattern, _, reached in FEATURES:
        if iam.wildcard(pattern, action, case_sensitive=False):
            value = reached(properties)
            if value is None:
                return []
            return [str(value)] if pattern == "kms:*" else [model.arn(logical)]
    if rtype.startswith("AWS::ApplicationAutoScaling::"):
        return autoscaling_targets(model, action, properties)
    service = action.split(":")[0]
    if service == "iam" and rtype != "AWS::IAM::Role":
        # PassRole, GetRole, PutRolePolicy on behalf of another resource: the stack's roles.
        return model.roles()
    if rtype == "AWS::Lambda::Permission":
        return [str(properties["FunctionName"])]
    if rtype == "AWS::ApiGateway::RestApi" and action == "apigateway:POST":
        return [f"arn:aws:apigateway:{REGION}::/restapis"]
    return [model.arn(logical)]


SCALING_ROLE = (
    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


def autoscaling_targets(model: DeployedModel, action: str, properties: dict[str, Any]) -> list[str]:
    """A SageMaker variant's scalable target and policy. Their handlers serve every
    namespace: Lambda's provisioned concurrency only for Lambda targets, PassRole only with a
    RoleARN (without one, the service-linked role for SageMaker endpoints, created on first
    use). Target tracking creates and deletes its own alarms, `TargetTracking-<resource id>-*`.
    Application Auto Scaling's own actions and GetMetricData take no resource ARN known
    before registering: `*`."""
    endpoint = model.attribute("Endpoint", "EndpointName")
    service = action.split(":")[0]
    if service == "lambda" or (action == "iam:PassRole" and "RoleARN" not in properties):
        return []
    if action == "iam:CreateServiceLinkedRole":
        return [SCALING_ROLE]
    if action == "cloudwatch:GetMetricData" or service == "application-autoscaling":
        return ["*"]
    if service == "cloudwatch":
        alarm = f"TargetTracking-endpoint/{endpoint}/variant/AllTraffic-AlarmHigh-1a2b"
        return [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}"]
    return [model.arn("Endpoint")]


CONTEXT = {
    "iam:CreateServiceLinkedRole": {
        "iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"
    }
}
"""The request context of the calls a handler makes with conditions in the role."""

HANDLERS = ("create", "update", "delete", "read")
"""Read too: drift detection calls each resource's read handler with the caller's rights."""


def boundaries(model: DeployedModel) -> dict[str, str]:
    """Each role's ARN -> its permissions boundary: the `iam:PermissionsBoundary` key of any
    request that changes the role (its own handlers', or a policy's that names it)."""
    return {
        model.arn(logical): str(properties["PermissionsBoundary"])
        for logical, rtype, properties in model.existing()
        if rtype == "AWS::IAM::Role" and "PermissionsBoundary" in properties
    }


_NEEDS: dict[str, tuple[Need, ...]] = {}


def needs(stack: render.RenderedStack) -> tuple[Need, ...]:
    """Derived once per stack: the build role and the stage role are judged on the same."""
    if stack.stack_name not in _NEEDS:
        _NEEDS[stack.stack_name] = tuple(_derived(stack))
    return _NEEDS[stack.stack_name]


def _derived(stack: render.RenderedStack) -> Iterator[Need]:
    model = DeployedModel(stack)
    bounded = boundaries(model)
    for logical, rtype, properties in model.existing():
        declared = provider_schemas.handlers(rtype)
        read = provider_schemas.schema(rtype).get("handlers", {}).get("read", {})
        actions = {**declared.all(), "read": tuple(read.get("permissions", ()))}
        for handler in HANDLERS:
            for action in actions[handler]:
                if action in NEVER_GRANTED:
                    continue
                for arn in targets(model, logical, rtype, properties, action):
                    context = (
                        (("iam:PermissionsBoundary", bounded[arn]),)
                        if action.startswith("iam:") and arn in bounded
                        else ()
                    ) + tuple(CONTEXT.get(action, {}).items())
                    yield Need(stack.stack_name, logical, rtype, handler, action, arn, context)
        for side in calls.SERVICE_SIDE:
            if _anywhere(properties, side.when) is not None:
                arn = fill(side.resource)
                yield Need(
                    stack.stack_name, logical, rtype, "service", side.action, arn, side.context
                )


def in_stages(stack: render.RenderedStack) -> bool:
    """Image builders and training run once, in the orchestrator account; the rest in every
    stage."""
    return not stack.pipeline.kind.orchestrator_only


SHAPES = {s.shape: s for s in STACKS}


@pytest.mark.parametrize(
    "stack",
    SHAPES.values(),
    ids=[s.stack_name.removeprefix("mlops-pipeline-") for s in SHAPES.values()],
)
def test_the_build_role_allows_every_action_the_stacks_handlers_call(
    stack: render.RenderedStack,
) -> None:
    missing = sorted({str(n) for n in needs(stack) if not n.allowed_by(ROLE)})
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize(
    "stack",
    [s for s in SHAPES.values() if in_stages(s)],
    ids=[s.stack_name.removeprefix("mlops-pipeline-") for s in SHAPES.values() if in_stages(s)],
)
def test_the_stage_role_allows_every_action_the_stacks_handlers_call(
    stack: render.RenderedStack,
) -> None:
    """Read handlers included: drift detection in a stage account calls them as this role."""
    missing = sorted({str(n) for n in needs(stack) if not n.allowed_by(STAGE)})
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("role", [ROLE, STAGE], ids=["build", "stage"])
def test_a_role_is_created_only_with_the_permissions_boundary(role: iam.Policy) -> None:
    """Neither role may create a role, or change what one may do, without the boundary:
    a role it could create without it could do anything the role itself cannot."""
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{SETTINGS.stack_prefix}-x-Role-1"
    bounded = {"iam:PermissionsBoundary": BOUNDARY}
    other = {"iam:PermissionsBoundary": f"arn:aws:iam::{ACCOUNT}:policy/AdministratorAccess"}
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary"):
        assert role.allows(action, role_arn, bounded), action
        assert not role.allows(action, role_arn, other), action
        assert not role.allows(action, role_arn), action
    assert not role.allows("iam:DeleteRolePermissionsBoundary", role_arn, bounded)
    assert not role.allows("iam:AttachRolePolicy", role_arn, bounded)


def test_every_role_of_every_blueprint_carries_the_boundary() -> None:
    for stack in SHAPES.values():
        model = DeployedModel(stack)
        for logical, rtype, properties in model.existing():
            if rtype == "AWS::IAM::Role":
                assert properties.get("PermissionsBoundary") == BOUNDARY, (
                    stack.stack_name,
                    logical,
                )


def boundary_statements(text: str) -> list[Mapping[str, Any]]:
    template = cfn.load(text)
    parameters = {"StackPrefix": SETTINGS.stack_prefix, "ExistingS3Bucket": ""}
    context = cfn.Context(parameters, CONTROLLER_STACK, bootstrap_attribute, template)
    document = template["Resources"]["PipelineBoundary"]["Properties"]["PolicyDocument"]
    statements: list[Mapping[str, Any]] = context.resolve(document)["Statement"]
    return statements


def test_the_boundary_holds_what_the_blueprints_roles_do_and_never_an_approval() -> None:
    """Every action of every role the blueprints create is inside the boundary (else the
    role could not do its job), the boundary is the same in the orchestrator and in every
    stage account, and no role under it may write an approval, whatever its own policies."""
    here = boundary_statements(bootstrap.template_text())
    assert here == boundary_statements(STAGE_ROLE_TEMPLATE.read_text())
    boundary = iam.Policy.of(here)
    for stack in SHAPES.values():
        for _, rtype, properties in DeployedModel(stack).existing():
            documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
            if rtype == "AWS::IAM::Policy":
                documents.append(properties["PolicyDocument"])
            for document in documents:
                for statement in document["Statement"]:
                    for action in iam._listed(statement["Action"]):
                        for resource in iam._listed(statement.get("Resource", "*")):
                            assert boundary.allows(action, str(resource)), (action, resource)
    approval = f"arn:aws:s3:::{ASSETS}/mlops-controller/c/approvals/prod/{'c' * 40}/AIDA/x.json"
    assert not boundary.allows("s3:PutObject", approval)
    assert not boundary.allows("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/x")
    assert not boundary.allows("states:StartExecution", "*")


def test_the_service_side_needs_are_reached_and_can_fail() -> None:
    """A KMS-encrypted endpoint needs kms:CreateGrant (with GrantIsForAWSResource) from
    whichever role deploys it; without the condition key the grant is refused."""
    kms = [s for s in SHAPES.values() if "KmsKeyArn" in dict(s.parameters)]
    grants = [n for s in kms for n in needs(s) if n.action == "kms:CreateGrant"]
    assert grants
    for need in grants:
        assert need.allowed_by(ROLE) and need.allowed_by(STAGE)
        assert not ROLE.allows(need.action, need.resource)


def test_every_resource_type_of_the_blueprints_has_derived_permissions() -> None:
    """No type slips through with an empty list: each has create and delete actions."""
    types = {rtype for s in SHAPES.values() for _, rtype, _ in DeployedModel(s).existing()}
    assert len(types) >= 15
    for rtype in types:
        found = provider_schemas.handlers(rtype)
        assert found.create and found.delete, rtype


def test_a_role_without_a_handler_action_is_caught() -> None:
    """The check can fail: the update handler of a state machine lists its tags first."""
    batch = next(s for s in STACKS if s.pipeline.type == "byom_batch_builtin")
    need = next(n for n in needs(batch) if n.action == "states:ListTagsForResource")
    trimmed = iam.Policy(
        tuple(
            iam.Statement(
                s.effect,
                tuple(a for a in s.actions if a != "states:ListTagsForResource"),
                s.not_actions,
                s.resources,
                s.not_resources,
                s.condition,
                s.sid,
            )
            for s in ROLE.statements
        )
    )
    assert ROLE.allows(need.action, need.resource)
    assert not trimmed.allows(need.action, need.resource)


def test_every_name_the_blueprints_give_falls_inside_the_role() -> None:
    """Explicit names (state machines, image pipelines, job definitions, schedules) and
    generated ones alike: a resource named outside the role's patterns cannot be created."""
    for stack in SHAPES.values():
        for need in needs(stack):
            arn = need.resource.split(":")
            own = len(arn) > 2 and need.action.split(":")[0] == arn[2]
            if need.handler == "create" and own:
                assert need.allowed_by(ROLE), str(need)


# The controller's own calls ----------------------------------------------------------------


def fill(pattern: str) -> str:
    return pattern.format(
        partition="aws",
        region=REGION,
        account=ACCOUNT,
        assets_bucket=ASSETS,
        stack_prefix=SETTINGS.stack_prefix,
        controller_id=SETTINGS.controller_id,
        topic=TOPIC,
        repository="mlops-config",
        connection=CONNECTION,
        token_secret=TOKEN_SECRET,
        stage_role="mlops-controller-stage",
        assets_key=KEY,
        stage_account=STAGE_ACCOUNTS[0],
    )


NO_PERMISSION_NEEDED = frozenset({"sts:GetCallerIdentity"})
"""Every identity may call these; IAM does not check them."""


ROLE_CALLS = [(role, call) for call in calls.CALLS for role in call.roles]


@pytest.mark.parametrize("setup", ["new-bucket", "existing", "github"])
@pytest.mark.parametrize(
    ("role", "call"),
    ROLE_CALLS,
    ids=[
        f"{role}:{c.operation}:{c.action}:{c.resource.rsplit('/', 1)[-1]}" for role, c in ROLE_CALLS
    ],
)
def test_each_role_allows_every_call_of_the_controller_on_its_resource(
    role: str, call: calls.ApiCall, setup: str
) -> None:
    """A `*` in a listed resource is any name there: the role must allow all of them."""
    if call.action in NO_PERMISSION_NEEDED:
        return
    policy = ROLES[role]
    if role == calls.ORCHESTRATOR:
        policy = {"existing": ROLE_WITH_EXISTING_BUCKET, "github": ROLE_ON_GITHUB}.get(setup, ROLE)
    if call.when and policy is not ROLE_ON_GITHUB:
        # Least privilege: a CodeCommit setup may use no connection and read no secret.
        assert not policy.allows(call.action, fill(call.resource)), call.action
        return
    context = {key: fill(value) for key, value in call.context}
    assert policy.allows(call.action, fill(call.resource), context), (
        f"{role} role: {call.action} on {fill(call.resource)}"
    )


def test_a_git_hosts_role_reads_only_its_token_and_uses_only_its_connection() -> None:
    other_secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/db-password-XyZ789"
    other_connection = CONNECTION.replace("0b3d3a80", "deadbeef")
    assert not ROLE_ON_GITHUB.allows("secretsmanager:GetSecretValue", other_secret)
    assert not ROLE_ON_GITHUB.allows("codeconnections:GetConnectionToken", other_connection)
    given_without_suffix = build_role(**{**ON_GITHUB, "GitTokenSecretArn": TOKEN_SECRET[:-7]})
    assert given_without_suffix.allows("secretsmanager:GetSecretValue", TOKEN_SECRET)
    assert not given_without_suffix.allows("secretsmanager:GetSecretValue", other_secret)
    no_secret = build_role(**{**ON_GITHUB, "GitTokenSecretArn": ""})
    assert not no_secret.allows("secretsmanager:GetSecretValue", TOKEN_SECRET)


def test_the_role_refuses_what_the_controller_must_not_do() -> None:
    """Scoped, not wide open: other stacks, other buckets, other state machines are refused."""
    other_stack = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/prod-database/id"
    assert not ROLE.allows("cloudformation:DeleteStack", other_stack)
    assert not ROLE.allows("cloudformation:UpdateStack", other_stack)
    assert not ROLE.allows("s3:PutObject", "arn:aws:s3:::someone-elses-bucket/x")
    assert not ROLE.allows("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/Admin")
    assert not ROLE.allows("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/Admin")
    assert not ROLE.allows(
        "lambda:UpdateFunctionCode", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:payments"
    )
    assert not ROLE.allows("s3:DeleteObject", f"arn:aws:s3:::{ASSETS}/churn/model.tar.gz")


def test_the_build_role_assumes_the_stage_role_of_a_stage_account_only() -> None:
    """The same role name in an account the config does not name (anyone may create one
    trusting the build role) is not assumed: the stage role's trust alone cannot stop that."""
    for account in STAGE_ACCOUNTS:
        role = f"arn:aws:iam::{account}:role/mlops-controller-stage"
        assert ROLE.allows("sts:AssumeRole", role, {"aws:ResourceAccount": account})
    stranger = "arn:aws:iam::999999999999:role/mlops-controller-stage"
    assert not ROLE.allows("sts:AssumeRole", stranger, {"aws:ResourceAccount": "999999999999"})


def test_the_role_fits_iams_size_limit_for_inline_policies() -> None:
    """A role's inline policies may hold 10,240 characters in all (whitespace not counted)."""
    template = cfn.load(bootstrap.template_text())
    role = template["Resources"]["ControllerBuildRole"]["Properties"]
    context = cfn.Context(
        {"StackPrefix": "x" * 40, **ON_GITHUB},
        CONTROLLER_STACK,
        bootstrap_attribute,
        template=template,
    )
    size = sum(
        len(json.dumps(context.resolve(p["PolicyDocument"]), separators=(",", ":")))
        for p in role.get("Policies", [])
    )
    assert size <= 10_240, size


def test_the_list_holds_every_call_the_controller_makes(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Apply, plan, status and history against the emulator: each API call the controller
    makes is in `calls.CALLS`, so the role is tested against all of them."""
    document = json.loads(EXAMPLE.read_text())
    seed(Aws(region="us-east-1"), document["settings"]["assets_bucket"], document)
    path = tmp_path / "mlops-config.json"
    path.write_text(json.dumps(document))
    made = count_calls(monkeypatch)
    touched = s3_keys(monkeypatch)
    for argv in (
        ["apply", "--auto-approve", "--config", str(path)],
        ["apply", "--auto-approve", "--config", str(path)],
        ["plan", "--config", str(path), "--output", "markdown"],
        ["status", "--config", str(path)],
        ["history", "--config", str(path)],
    ):
        assert main(argv) in (0, 2), capsys.readouterr()
    listed = {c.operation for c in calls.CALLS}
    assert set(made) - listed == set()
    assert {"s3.DeleteObject", "stepfunctions.StartExecution", "s3.PutObject"} <= set(made)
    unlisted = [
        f"{operation} {arn}"
        for operation, arn in sorted(touched)
        if not any(
            c.operation == operation and iam.wildcard(fill(c.resource), arn) for c in calls.CALLS
        )
    ]
    assert unlisted == []
    assert any(
        arn.endswith("/ledger/intent.json") for op, arn in touched if op == "s3.DeleteObject"
    )
