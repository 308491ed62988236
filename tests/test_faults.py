"""AWS faults over real HTTP: bench.proxy in front of the moto server.

The first tests pin the proxy itself (it answers exactly as AWS does, so botocore retries it
as AWS); the rest run the controller through it and through emulated CloudFormation failures.
"""

from __future__ import annotations

import copy
import http.client
import json
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from botocore.retries.standard import ExponentialBackoff

from bench.proxy import FaultProxy
from controller.aws import resend
from controller.aws import session as aws_module
from controller.aws.demo_world import seed
from controller.cli.main import main
from tests.emulated_faults import fail_creates, fail_deletes, stick_updates
from tests.test_config_invalid import EXAMPLE_DATA

NO_RETRIES = BotoConfig(retries={"mode": "standard", "total_max_attempts": 1})


def _client(service: str, url: str, config: BotoConfig = NO_RETRIES) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=url, config=config)


@pytest.fixture
def proxy(aws: str) -> Iterator[FaultProxy]:
    with FaultProxy(aws, seed=7) as running:
        yield running


def test_the_proxy_forwards_every_protocol_unchanged(proxy, aws):
    s3 = _client("s3", proxy.url)
    s3.create_bucket(Bucket="through-the-proxy")
    s3.put_object(Bucket="through-the-proxy", Key="a/b.txt", Body=b"\x00\xffbytes")
    assert s3.get_object(Bucket="through-the-proxy", Key="a/b.txt")["Body"].read() == (
        b"\x00\xffbytes"
    )
    assert s3.head_object(Bucket="through-the-proxy", Key="a/b.txt")["ContentLength"] == 7
    s3.delete_object(Bucket="through-the-proxy", Key="a/b.txt")
    cfn = _client("cloudformation", proxy.url)
    template = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    cfn.create_stack(StackName="via-proxy", TemplateBody=template)
    direct = _client("cloudformation", aws)
    assert [s["StackName"] for s in direct.describe_stacks()["Stacks"]] == ["via-proxy"]
    sfn = _client("stepfunctions", proxy.url)
    assert sfn.list_state_machines()["stateMachines"] == []
    assert proxy.stats["requests"] == proxy.stats["forwarded"] == 7
    assert proxy.operations["cloudformation.CreateStack"] == 1
    assert proxy.operations["states.ListStateMachines"] == 1


@pytest.mark.parametrize(
    ("service", "call", "status", "code"),
    [
        ("cloudformation", lambda c: c.describe_stacks(), 400, "Throttling"),
        ("stepfunctions", lambda c: c.list_state_machines(), 400, "ThrottlingException"),
        ("s3", lambda c: c.list_objects_v2(Bucket="any"), 503, "SlowDown"),
    ],
)
def test_throttling_looks_like_aws_for_each_protocol(proxy, service, call, status, code):
    proxy.throttle_rate = 1.0
    with pytest.raises(ClientError) as raised:
        call(_client(service, proxy.url))
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error["Error"]["Code"] == code
    assert proxy.stats["throttled"] == 1
    assert proxy.stats["forwarded"] == 0


def test_raw_query_throttling_body_is_the_cloudformation_error_document(proxy):
    proxy.throttle_rate = 1.0
    parsed = urllib.parse.urlsplit(proxy.url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port)
    connection.request("POST", "/", body=b"Action=DescribeStacks&Version=2010-05-15")
    response = connection.getresponse()
    body = response.read().decode()
    assert response.status == 400
    assert body.startswith("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>")
    assert "<Message>Rate exceeded</Message>" in body and "<RequestId>" in body


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retries and the controller's own back-off, both cut to a few
    milliseconds (plain clients use the first, the controller's clients the second)."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.005)
    monkeypatch.setattr(aws_module.QuickFirstBackoff, "delay_amount", lambda self, context: 0.005)


def test_botocore_retries_through_throttling_and_errors(proxy, fast_backoff):
    proxy.throttle_rate = 0.3
    proxy.error_rate = 0.2
    retrying = BotoConfig(retries={"mode": "standard", "max_attempts": 20})
    cfn = _client("cloudformation", proxy.url, retrying)
    for _ in range(12):
        assert cfn.describe_stacks()["Stacks"] == []
    assert proxy.stats["throttled"] > 0
    assert proxy.stats["errors"] > 0
    assert proxy.stats["forwarded"] == 12


@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalFailure"), (503, "ServiceUnavailable")]
)
def test_server_errors_carry_aws_codes(proxy, status, code, monkeypatch):
    proxy.error_rate = 1.0
    monkeypatch.setattr(proxy, "choose", lambda options: status)
    with pytest.raises(ClientError) as raised:
        _client("cloudformation", proxy.url).describe_stacks()
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_a_timeout_drops_the_connection_and_after_mode_still_reaches_upstream(proxy, aws):
    proxy.timeout_rate = 1.0
    s3 = _client("s3", proxy.url)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        s3.create_bucket(Bucket="never-made")
    proxy.timeout_mode = "after"
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        s3.create_bucket(Bucket="made-but-unanswered")
    names = [b["Name"] for b in _client("s3", aws).list_buckets()["Buckets"]]
    assert names == ["made-but-unanswered"]
    assert proxy.stats["timeouts"] == 2


def test_max_rps_throttles_a_burst_beyond_the_bucket(proxy):
    proxy.max_rps = 0.01
    cfn = _client("cloudformation", proxy.url)
    outcomes = []
    for _ in range(6):
        try:
            cfn.describe_stacks()
            outcomes.append("ok")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])
    assert outcomes == ["ok"] + ["Throttling"] * 5
    assert proxy.stats["throttled"] == 5


def test_faults_are_repeatable_for_a_seed(aws):
    def pattern(seed: int) -> list[str]:
        with FaultProxy(aws, throttle_rate=0.5, seed=seed) as proxy:
            cfn = _client("cloudformation", proxy.url)
            seen = []
            for _ in range(12):
                try:
                    cfn.describe_stacks()
                    seen.append("ok")
                except ClientError:
                    seen.append("throttled")
            return seen

    assert pattern(3) == pattern(3)
    assert "ok" in pattern(3) and "throttled" in pattern(3)


def test_match_limits_faults_to_chosen_calls(proxy):
    proxy.throttle_rate = 1.0
    proxy.match = lambda call: call.service == "cloudformation"
    assert _client("stepfunctions", proxy.url).list_state_machines()["stateMachines"] == []
    with pytest.raises(ClientError):
        _client("cloudformation", proxy.url).describe_stacks()


# The controller through the proxy: its own retries, failure reports and convergence.

STACK = "mlops-pipeline-{}"
REALTIME = STACK.format("linearlearner-byompipelinerealtimebuiltin")
BATCH = STACK.format("linearlearner-byompipelinebatchbuiltin")
CUSTOM = STACK.format("churnxgb-byompipelinerealtimecustom")


@pytest.fixture
def faulty(aws: str, monkeypatch: pytest.MonkeyPatch, fast_backoff: None) -> Iterator[FaultProxy]:
    """The controller's AWS_ENDPOINT_URL points at a proxy; retries are quick, not fewer."""
    monkeypatch.setattr(aws_module, "RETRIES", {"mode": "standard", "max_attempts": 12})
    with FaultProxy(aws, seed=11) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.url)
        yield running


@pytest.fixture
def three(aws: str, tmp_path: Path) -> Path:
    """Three independent pipelines, seeded straight into the emulator."""
    data = {
        "settings": EXAMPLE_DATA["settings"],
        "pipelines": [copy.deepcopy(EXAMPLE_DATA["pipelines"][i]) for i in (0, 1, 3)],
    }
    seed(aws_module.Aws(region="us-east-1"), data["settings"]["assets_bucket"], data)
    path = tmp_path / "mlops-config.json"
    path.write_text(json.dumps(data))
    return path


def _apply(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, dict[str, Any]]:
    code = main(["apply", "--auto-approve", "--config", str(path), "--output", "json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, {r["name"]: r for r in json.loads(out[out.index("{\n") :])["results"]}


def _converged(capsys: pytest.CaptureFixture[str], path: Path) -> bool:
    code = main(["plan", "--config", str(path), "--output", "json"])
    capsys.readouterr()
    return code == 0


def _stacks(aws: str) -> list[str]:
    cfn = _client("cloudformation", aws)
    return [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]


def test_apply_converges_through_throttling_errors_and_dropped_answers(faulty, three, aws, capsys):
    faulty.throttle_rate = 0.3
    faulty.error_rate = 0.1
    faulty.timeout_rate = 0.05
    faulty.timeout_mode = "after"
    code, results = _apply(capsys, three)
    assert faulty.stats["throttled"] >= 5 and faulty.stats["errors"] >= 1
    names = _stacks(aws)
    assert len(names) == len(set(names)) == 3
    if code != 0:
        # A create whose answer was dropped looks, on retry, like another run's create:
        # reported as waiting, never as a second stack; the next run settles it.
        assert {r["outcome"] for r in results.values()} <= {"succeeded", "waiting"}
        assert _apply(capsys, three)[0] == 0
    assert _converged(capsys, three)
    assert sorted(_stacks(aws)) == sorted(names)


def test_a_write_answered_by_an_unparsable_html_500_is_sent_again_with_its_token(
    faulty, three, aws, capsys, monkeypatch
):
    """A proxy's own HTML 500 page is no answer botocore can read or retry: the applier sends
    the very same request again (its ClientRequestToken included), here after the first one
    reached CloudFormation and created the stack, and no stack is created twice."""
    monkeypatch.setattr(resend, "pause", lambda seconds: None)
    sent: Counter[str] = Counter()

    def first_create_of_each(call: Any) -> bool:
        if call.operation != "CreateStack":
            return False
        sent[call.token] += 1
        return sent[call.token] == 1

    faulty.match = first_create_of_each
    faulty.error_rate = 1.0
    faulty.html_errors = True
    faulty.errors_after = True
    code, results = _apply(capsys, three)
    assert faulty.stats["errors"] == 3
    assert code == 0, results
    assert {r["outcome"] for r in results.values()} == {"succeeded"}
    assert sorted(sent.values()) == [2, 2, 2] and "" not in sent
    assert sorted(_stacks(aws)) == sorted([REALTIME, BATCH, CUSTOM])


def test_a_failed_create_is_reported_with_its_reason_while_others_converge(
    faulty, three, aws, capsys, monkeypatch
):
    faulty.throttle_rate = 0.3
    with monkeypatch.context() as patch:
        fail_creates(patch, "byompipelinerealtimecustom", "ResourceLimitExceeded: ml.m5.large")
        code, results = _apply(capsys, three)
    assert code == 1
    assert results[CUSTOM]["outcome"] == "failed"
    assert "ROLLBACK_COMPLETE" in results[CUSTOM]["message"]
    assert "Endpoint: ResourceLimitExceeded: ml.m5.large" in results[CUSTOM]["message"]
    assert results[REALTIME]["outcome"] == results[BATCH]["outcome"] == "succeeded"
    code, results = _apply(capsys, three)
    assert code == 0 and results[CUSTOM]["action"] == "replace"
    assert sorted(_stacks(aws)) == sorted([REALTIME, BATCH, CUSTOM])
    assert _converged(capsys, three)


def test_update_rollback_failed_is_blocked_with_its_reason_and_converges_once_fixed(
    faulty, three, aws, capsys, monkeypatch
):
    assert _apply(capsys, three)[0] == 0
    data = json.loads(three.read_text())
    for pipeline in data["pipelines"]:
        pipeline["inference_instance"] = "ml.m5.xlarge"
    three.write_text(json.dumps(data))
    faulty.throttle_rate = 0.3
    with monkeypatch.context() as patch:
        stick_updates(patch, "realtimebuiltin", "Endpoint update failed: capacity")
        code, results = _apply(capsys, three)
        assert code == 1
        assert results[REALTIME]["outcome"] == "failed"
        assert "UPDATE_ROLLBACK_FAILED" in results[REALTIME]["message"]
        assert "Endpoint update failed: capacity" in results[REALTIME]["message"]
        assert results[BATCH]["outcome"] == results[CUSTOM]["outcome"] == "succeeded"
        code, results = _apply(capsys, three)
        assert code == 1 and results[REALTIME]["outcome"] == "blocked"
        assert "ContinueUpdateRollback" in results[REALTIME]["message"]
    # An operator continues the rollback (moto has no ContinueUpdateRollback).
    _moto_stack(REALTIME).status = "UPDATE_ROLLBACK_COMPLETE"
    assert _apply(capsys, three)[0] == 0
    assert _converged(capsys, three)
    assert sorted(_stacks(aws)) == sorted([REALTIME, BATCH, CUSTOM])


def test_a_failed_delete_is_reported_and_retried_next_run(faulty, three, aws, capsys, monkeypatch):
    assert _apply(capsys, three)[0] == 0
    data = json.loads(three.read_text())
    data["pipelines"] = [p for p in data["pipelines"] if p["pipeline_type"] != "byom_batch_builtin"]
    data["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    three.write_text(json.dumps(data))
    faulty.throttle_rate = 0.3
    with monkeypatch.context() as patch:
        fail_deletes(patch, "batchbuiltin", "Model is in use by a transform job")
        code, results = _apply(capsys, three)
    assert code == 1
    assert results[BATCH]["outcome"] == "failed"
    assert "DELETE_FAILED" in results[BATCH]["message"]
    assert "Model is in use by a transform job" in results[BATCH]["message"]
    assert results[REALTIME]["outcome"] == "succeeded"
    code, results = _apply(capsys, three)
    assert code == 0 and results[BATCH]["outcome"] == "succeeded"
    assert sorted(_stacks(aws)) == sorted([REALTIME, CUSTOM])
    assert _converged(capsys, three)


def _moto_stack(name: str) -> Any:
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends["123456789012"]["us-east-1"]
    return next(s for s in backend.stacks.values() if s.name == name)
