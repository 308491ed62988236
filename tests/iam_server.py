"""A moto server of its own, in a process of its own, that authorises as IAM does by resource.

`python -m tests.iam_server PORT` serves the emulator on 127.0.0.1:PORT. Its IAM enforcement
is off until `POST /moto-api/reset-auth` with body `0`; from then on every request is checked
against the caller's identity policies (moto's own evaluation). What moto lacks is emulated
here: it authorises every call of a service other than S3 and STS against the resource `*`,
so a policy scoped to ARNs (every statement of the build and stage roles) would refuse them
all; this names the resource each of the controller's calls acts on, from the request, as
IAM does (the stack, the state machine, the execution, the endpoint, the topic, the key, the
repository). A process of its own, because moto's enforcement switch and its request count
are process-wide: the session's shared server stays without enforcement.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

RESOURCES = {
    # (service prefix, parameter): how the ARN is built from the parameter's value.
    ("cloudformation", "StackName"): "arn:aws:cloudformation:{region}:{account}:stack/{value}/*",
    ("states", "stateMachineArn"): "{value}",
    ("states", "executionArn"): "{value}",
    ("sagemaker", "EndpointName"): "arn:aws:sagemaker:{region}:{account}:endpoint/{lower}",
    ("sns", "TopicArn"): "{value}",
    ("kms", "KeyId"): "arn:aws:kms:{region}:{account}:key/{value}",
    ("ecr", "repositoryName"): "arn:aws:ecr:{region}:{registry}:repository/{value}",
    ("codecommit", "repositoryName"): "arn:aws:codecommit:{region}:{account}:{value}",
}


def resource_of(service: str, params: dict[str, Any], account: str, region: str) -> str:
    """The ARN a request acts on, `*` for a call without resource-level permissions."""
    for (prefix, key), pattern in RESOURCES.items():
        value = params.get(key)
        if prefix != service or not isinstance(value, str) or not value:
            continue
        if value.startswith("arn:"):
            return value
        registry = str(params.get("registryId") or account)
        return pattern.format(
            region=region, account=account, value=value, lower=value.lower(), registry=registry
        )
    return "*"


def _params(response: Any) -> dict[str, Any]:
    if response.headers.get("X-Amz-Target"):
        try:
            loaded = json.loads(response.body or "{}")
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {k: v[0] for k, v in response.querystring.items() if v}


def patch_moto() -> None:
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMPolicy

    # A role's inline policy that moto's CloudFormation created is kept as a dict, which its
    # own evaluator then cannot read: read it as the JSON document IAM would hold.
    read = IAMPolicy.__init__

    def document(self: Any, policy: Any) -> None:
        if isinstance(policy, dict) and "policy_document" not in policy:
            # A statement under `!If [cond, ..., !Ref AWS::NoValue]` is left as null by moto
            # where CloudFormation drops it.
            statements = policy.get("Statement")
            if isinstance(statements, list):
                policy = {**policy, "Statement": [s for s in statements if s is not None]}
            policy = json.dumps(policy)
        read(self, policy)

    IAMPolicy.__init__ = document  # type: ignore[method-assign]

    original = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action

    def by_resource(self: Any, resource: str = "*") -> None:
        if resource == "*":
            service = _service(self)
            resource = resource_of(service, _params(self), self.current_account, self.region)
        original(self, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = by_resource  # type: ignore[method-assign]


def _service(response: Any) -> str:
    """The IAM prefix of the request's service (its signing name)."""
    authorization = response.headers.get("Authorization", "")
    scope = authorization.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    return scope[3] if len(scope) > 3 else ""


def main(port: int) -> None:
    from controller.aws.emulator import moto_server

    patch_moto()
    server = moto_server("127.0.0.1", port)
    server.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(int(sys.argv[1]))
