"""The benchmark's AWS: moto's server in this process, with two fidelity fixes, and seeding.

moto differs from CloudFormation and Step Functions in two ways that would leave the emulator
short of the steady state a real account reaches, so every "no-op" run would still have work:
- moto answers "No updates are to be performed." to an UpdateStack that changes only the
  stack's tags; CloudFormation applies it (tags propagate to resources). The controller
  records a finished run-once job in a tag, so without the fix a batch pipeline would look
  "not started" forever. And moto compares a `Number` parameter it stored as an int with the
  string it is sent, so it updates a stack whose parameters did not change (Sceptre's no-op
  launch would update every monitor); CloudFormation compares the strings.
- moto's Step Functions executions stay RUNNING for ever (it does not run the SageMaker
  jobs); here they finish at once, as if every batch transform and baseline job succeeded.
And moto is not thread-safe: two CreateStack requests at once can fail with a 500 (IAM's
create_role iterates a dict another request thread is growing), so requests are handled one
at a time, which costs little since the GIL serializes them anyway; latency is added by the
proxy in front, in parallel; and moto's pure-Python YAML parse of each template, most of its
time per CreateStack and so in front of every later request, is done by libyaml instead.
These patches change the emulator only, never the controller; they are applied in this
process, where the server runs.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from typing import Any

from bench.generate import ASSETS_BUCKET, DATA_BUCKET
from controller.aws.demo_world import stand_in_artifact

REGION = "us-east-1"
_patched = False


def patches() -> list[tuple[Any, str, Any]]:
    """(class, attribute, replacement) for each fix; tests apply them with monkeypatch."""
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.utils import utcnow
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.stepfunctions.models import Execution

    def validate(self: Any, incoming_params: Any, stack_body: Any, old_stack: Any) -> None:
        if not (incoming_params and stack_body) or old_stack.template != stack_body:
            return
        incoming_tags = {t["Key"]: t["Value"] for t in self._get_param("Tags", [])}
        if incoming_tags and incoming_tags != dict(old_stack.tags or {}):
            return
        new = self._get_param_values(incoming_params, old_stack.stack_parameters)
        if _as_text(new) == _as_text(old_stack.stack_parameters):
            raise ValidationError(old_stack.name, message="No updates are to be performed.")

    init = Execution.__init__

    def finished(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if self.status == "RUNNING":
            self.status = "SUCCEEDED"
            self.stop_date = utcnow()
            self.output = "{}"

    dispatch = DomainDispatcherApplication.__call__
    one_at_a_time = threading.Lock()

    def serialized(self: Any, environ: Any, start_response: Any) -> Any:
        with one_at_a_time:
            return dispatch(self, environ, start_response)

    return [
        (DomainDispatcherApplication, "__call__", serialized),
        (CloudFormationResponse, "_validate_different_update", validate),
        (Execution, "__init__", finished),
    ]


class Hold:
    """How long new stacks stay CREATE_IN_PROGRESS (real endpoint stacks take minutes; moto
    creates at once). `seconds` may change while the server runs; `release()` ends every
    hold now; `only` limits holds to stack names containing it."""

    def __init__(self, seconds: float = 0.0, only: str = "") -> None:
        self.seconds = seconds
        self.only = only
        self.released_at = float("inf")
        self.on_create: Any = None
        """Called with each held stack's name once it is created (tests use it to act
        while a stack is in flight)."""

    def release(self) -> None:
        self.released_at = time.monotonic()


def slow_stack_patches(hold: Hold) -> list[tuple[Any, str, Any]]:
    """New stacks stay CREATE_IN_PROGRESS for `hold.seconds`, then complete with their final
    event stamped at that moment, as CloudFormation reports a stack that took that long."""
    from moto.cloudformation.models import Stack as FakeStack

    create = FakeStack.create_resources

    def create_resources(self: Any) -> None:
        create(self)
        if self.__dict__.get("status") != "CREATE_COMPLETE" or hold.seconds <= 0:
            return
        if hold.only not in self.name:
            return
        self.__dict__["_held_until"] = time.monotonic() + hold.seconds
        self.__dict__["_held_event"] = self.events.pop()
        if hold.on_create is not None:
            hold.on_create(self.name)

    def get_status(self: Any) -> Any:
        until = self.__dict__.get("_held_until")
        if until is not None:
            if time.monotonic() < min(until, hold.released_at):
                return "CREATE_IN_PROGRESS"
            del self.__dict__["_held_until"]
            event = self.__dict__.pop("_held_event")
            event.timestamp = utcnow()
            self.events.append(event)
        return self.__dict__.get("status")

    def set_status(self: Any, value: Any) -> None:
        self.__dict__.pop("_held_until", None)
        self.__dict__["status"] = value

    from moto.core.utils import utcnow

    return [
        (FakeStack, "create_resources", create_resources),
        (FakeStack, "status", property(get_status, set_status)),
    ]


def token_patches() -> list[tuple[Any, str, Any]]:
    """Every event of an operation carries the request's ClientRequestToken, as in
    CloudFormation (moto leaves it empty)."""
    from moto.cloudformation.models import Event
    from moto.cloudformation.responses import CloudFormationResponse

    current = threading.local()
    init = Event.__init__

    def event_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.client_request_token = getattr(current, "token", None)

    def stamped(operation: Any) -> Any:
        def handler(self: Any) -> Any:
            current.token = self._get_param("ClientRequestToken")
            try:
                return operation(self)
            finally:
                current.token = None

        return handler

    return [
        (Event, "__init__", event_init),
        *(
            (CloudFormationResponse, name, stamped(getattr(CloudFormationResponse, name)))
            for name in ("create_stack", "update_stack", "delete_stack")
        ),
    ]


HOLD = Hold()
"""The runner's hold: the benchmark sets it per phase."""


def parse_patches() -> list[tuple[Any, str, Any]]:
    """moto parses every template it is sent with PyYAML's pure-Python loader, and, one
    request at a time, that parse is most of its CreateStack (about 25 ms of a monitor's
    26 ms): a server-side cost that CloudFormation, taking requests in parallel, does not put
    in front of every later request. Here it parses with libyaml (PyYAML's C loader, the same
    constructors and resolver, so the same template), leaving moto's own work as it was."""
    import json

    import yaml
    from moto.cloudformation.models import Stack
    from moto.cloudformation.utils import yaml_tag_constructor
    from yaml.parser import ParserError
    from yaml.scanner import ScannerError

    class Loader(yaml.CLoader):  # type: ignore[misc,name-defined]
        pass

    yaml.add_multi_constructor("", yaml_tag_constructor, Loader=Loader)

    def parse_template(template: str) -> dict[str, Any]:
        try:
            parsed: dict[str, Any] = yaml.load(template, Loader=Loader)
        except (ParserError, ScannerError):
            parsed = json.loads(template)
        return parsed

    return [(Stack, "parse_template", staticmethod(parse_template))]


def patch_moto() -> None:
    """Apply the fixes for the rest of this process (the runner's emulator)."""
    global _patched
    if not _patched:
        fixes = patches() + slow_stack_patches(HOLD) + token_patches() + parse_patches()
        for owner, name, value in fixes:
            setattr(owner, name, value)
        _patched = True


def _as_text(parameters: dict[str, Any]) -> dict[str, str]:
    return {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in parameters.items()}


def widen_listen_backlogs(backlog: int = 2048) -> None:
    """Sceptre opens a thread per stack: at N=1000, a thousand connections arrive at once.
    socketserver's default backlog of 5 (the proxy) and werkzeug's 128 (moto) then refuse or
    drop connections, which a real endpoint would not; this process's servers get a wider one.
    """
    import http.server

    import werkzeug.serving

    http.server.ThreadingHTTPServer.request_queue_size = backlog
    werkzeug.serving.BaseWSGIServer.request_queue_size = backlog


def environment(url: str) -> dict[str, str]:
    """Standard AWS variables that point boto3 (the controller's and Sceptre's) at `url`."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


def reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request) as response:
        response.read()


def seed(url: str, document: dict[str, Any], keys: set[str]) -> None:
    """Buckets and small stand-ins for the assets, straight to the emulator (not measured)."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for bucket in (ASSETS_BUCKET, DATA_BUCKET):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=ASSETS_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for key in sorted(keys):
        s3.put_object(Bucket=ASSETS_BUCKET, Key=key, Body=stand_in_artifact(key))


def stack_count(url: str) -> int:
    """Stacks in the emulator, read past the proxy (for sanity checks, not measured)."""
    import boto3

    cfn = boto3.client(
        "cloudformation",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    pages = cfn.get_paginator("describe_stacks").paginate()
    return sum(len(page["Stacks"]) for page in pages)
