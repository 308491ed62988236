"""The controller's clients retry throttling the way `controller.aws.session` says: standard
mode, a quick first backoff, and no retry quota that would give up on a throttled account.

Over real HTTP, through the fault proxy in front of the moto server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff

from bench.proxy import FaultProxy
from controller.aws import session as aws_module

CALLS = 60
"""Each throttled three times: botocore's quota (500, 5 a retry, 5 back on success) is spent
after 50 such calls."""


@pytest.fixture
def throttles_thrice(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """Every call's first three attempts are throttled; back-off cut to milliseconds."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.001)
    monkeypatch.setattr(aws_module.QuickFirstBackoff, "delay_amount", lambda self, context: 0.001)
    with FaultProxy(aws, throttle_rate=1.0, match=lambda call: call.attempt <= 3) as proxy:
        yield proxy


def _cloudformation(url: str, config: BotoConfig | None = None) -> Any:
    return boto3.client(
        "cloudformation",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def test_botocores_retry_quota_gives_up_on_a_throttled_account(throttles_thrice):
    plain = _cloudformation(throttles_thrice.url, BotoConfig(retries=aws_module.RETRIES))
    with pytest.raises(ClientError, match="Throttling"):
        for _ in range(CALLS):
            plain.describe_stacks()


def test_the_controllers_clients_keep_retrying_on_a_throttled_account(
    throttles_thrice, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", throttles_thrice.url)
    aws = aws_module.Aws(region="us-east-1")
    cfn = aws.client("cloudformation")
    for _ in range(CALLS):
        assert cfn.describe_stacks()["Stacks"] == []
    assert throttles_thrice.stats["throttled"] == 3 * CALLS
    assert aws.calls["cloudformation.DescribeStacks"] == CALLS


def test_polls_give_up_after_a_few_attempts(aws, monkeypatch):
    """A poll that keeps being throttled fails fast; the watcher makes it again later."""
    monkeypatch.setattr(aws_module.QuickFirstBackoff, "delay_amount", lambda self, context: 0.001)
    with FaultProxy(aws, throttle_rate=1.0) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        polls = aws_module.Aws(region="us-east-1").polling_client("cloudformation")
        with pytest.raises(ClientError, match="Throttling"):
            polls.list_stacks()
        assert proxy.stats["throttled"] == 1 + aws_module.POLL_RETRIES["max_attempts"]


def test_the_first_backoff_is_a_quarter_second_at_most_and_doubles():
    backoff = aws_module.QuickFirstBackoff()

    class Attempt:
        http_response = None  # no Retry-After header (newer botocore reads it)

        def __init__(self, number: int) -> None:
            self.attempt_number = number

    longest = {n: max(backoff.delay_amount(Attempt(n)) for _ in range(200)) for n in (1, 3, 12)}
    assert 0.15 < longest[1] <= aws_module.FIRST_BACKOFF
    assert 0.6 < longest[3] <= 4 * aws_module.FIRST_BACKOFF
    assert 12 < longest[12] <= 20
