"""The one place that builds boto3 clients.

Everything goes through standard configuration (AWS_ENDPOINT_URL, AWS_PROFILE, AWS_REGION),
so the controller cannot tell a real account from an emulator. Retries live here, not in
business code: botocore's standard mode retries `Throttling` and 5xx answers with exponential
backoff and full jitter (from a quarter second), and the applier adapts its own operations in
flight to throttling.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.exceptions import ProfileNotFound
from botocore.retries import standard
from botocore.retries.base import BaseRetryBackoff

from controller.core.config.settings import AwsDefaults
from controller.core.errors import AwsSetupError

RETRIES: Any = {"mode": "standard", "max_attempts": 12}
"""Standard, not adaptive: adaptive mode also slows its client to a send rate it cuts after
every throttled answer and raises slowly, so a few throttles (or a neighbour's burst) hold back
every later call of that client, reads and writes alike, for the rest of the apply (30 % of
calls throttled made a 20 s create-all take 317 s). Standard mode delays only the call that
was throttled; with `FIRST_BACKOFF` its twelve retries wait up to 0.25, 0.5, 1 ... 20 s (two
minutes in all at most, half that on average) and so ride out a long spell of throttling,
and the applier halves its operations in flight while AWS throttles (apply.py), which lowers
the rate at which writes are sent."""
POLL_RETRIES: Any = {"mode": "standard", "max_attempts": 3}
"""Reads repeated every poll interval: a failed poll is simply made again at the next
interval, so a poll gives up after a second or two of throttling rather than wait long."""
FIRST_BACKOFF = 0.25
"""Seconds, the longest first wait before a retry; each next one doubles, up to 20 s.
botocore's own standard backoff starts at 1 s: one throttled call in three then costs
seconds of a chain of steps, while a throttle that is not about the rate (a burst, a
neighbour) usually clears at once, and one that is about the rate still backs off within a
few attempts."""
LONGEST_BACKOFF = 20.0
"""Seconds, botocore's own cap on one wait."""


class QuickFirstBackoff(BaseRetryBackoff):  # type: ignore[misc]
    """botocore's standard backoff shape (full jitter, doubling, 20 s at most) starting at
    `FIRST_BACKOFF`: rand(0, 1) x min(FIRST_BACKOFF x 2^(n-1), 20) s before retry n.

    Written out rather than scaled from botocore's `ExponentialBackoff`, whose base and
    inputs differ between botocore releases (newer ones scale it per service)."""

    def __init__(self, draw: Callable[[], float] = random.random) -> None:
        self._draw = draw

    def delay_amount(self, context: Any) -> float:
        ceiling = FIRST_BACKOFF * 2 ** (int(context.attempt_number) - 1)
        return float(self._draw() * min(ceiling, LONGEST_BACKOFF))


class NoRetryQuota:
    """botocore's retry quota (500 tokens, 5 a retry, 1 back a success) stops retrying once
    more than about 30 % of a client's calls are throttled for a while, which is what an
    account at its API rate looks like: every later throttled write would fail the action.
    The controller's callers are few (16 senders and one watcher) and each backs off
    exponentially, so they cannot storm, and their attempts slow down with the backoff."""

    def acquire_retry_quota(self, context: Any) -> bool:
        return True


def quick_first_retries(client: Any) -> Any:
    """A standard-mode client's retry handler with `QuickFirstBackoff` and `NoRetryQuota`;
    which answers are retried (throttling, 5xx, dropped connections) and how many times stay
    botocore's own."""
    config = client.meta.config.retries or {}
    if config.get("mode") != "standard":
        return client
    name = client.meta.service_model.service_id.hyphenize()
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=standard.StandardRetryConditions(
                max_attempts=config.get("total_max_attempts", standard.DEFAULT_MAX_ATTEMPTS)
            ),
            retry_backoff=QuickFirstBackoff(),
        ),
        retry_event_adapter=standard.RetryEventAdapter(),
        retry_quota=NoRetryQuota(),
    )
    unique_id = f"retry-config-{name}"
    client.meta.events.unregister(f"needs-retry.{name}", unique_id=unique_id)
    client.meta.events.register(f"needs-retry.{name}", handler.needs_retry, unique_id=unique_id)
    return client


class AwsConfigError(AwsSetupError):
    """The local AWS configuration names a profile that does not exist."""


def local_defaults(profile: str | None = None) -> AwsDefaults:
    """The profile (`--profile`, else AWS_PROFILE, else `default`), its region in the AWS
    config file (AWS_CONFIG_FILE or ~/.aws/config), and the regions botocore knows.

    Read by botocore exactly as the AWS CLI reads them, so a laptop where `aws` works needs
    no region anywhere else. Reading files costs no AWS call.
    """
    session = botocore.session.Session(profile=profile)
    try:
        region = session.get_scoped_config().get("region")
    except ProfileNotFound:
        path = session.get_config_variable("config_file")
        raise AwsConfigError(
            f"AWS profile {session.profile!r} is not in {path} (nor in the credentials file): "
            "check --profile or AWS_PROFILE"
        ) from None
    partitions = session.get_data("endpoints")["partitions"]
    regions = frozenset(name for partition in partitions for name in partition["regions"])
    return AwsDefaults(session.profile, region, regions)


class Aws:
    """One boto3 session and one shared client per service (clients are thread-safe)."""

    def __init__(
        self, region: str | None = None, profile: str | None = None, *, botocore_session: Any = None
    ) -> None:
        """`botocore_session` carries other credentials (a stage's assumed role)."""
        self.session = boto3.session.Session(
            region_name=region, profile_name=profile, botocore_session=botocore_session
        )
        self.region = self.session.region_name or region or "us-east-1"
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        """AWS API calls made through this session, as `service.Operation` -> count."""
        self.session.events.register("before-call", self._count)
        self._config = BotoConfig(
            retries=dict(RETRIES),  # botocore rewrites the dict it is given
            max_pool_connections=32,
            connect_timeout=10,
            read_timeout=60,
        )

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = quick_first_retries(
                    self.session.client(service, region_name=self.region, config=self._config)
                )
            return self._clients[service]

    def polling_client(self, service: str) -> Any:
        """A client for reads repeated every poll (`POLL_RETRIES`); its calls count too."""
        with self._lock:
            key = f"{service} (polling)"
            if key not in self._clients:
                config = self._config.merge(BotoConfig(retries=dict(POLL_RETRIES)))
                self._clients[key] = quick_first_retries(
                    self.session.client(service, region_name=self.region, config=config)
                )
            return self._clients[key]

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[f"{model.service_model.service_name}.{model.name}"] += 1


def account_of(aws: Aws) -> str:
    """The account the credentials reach (STS GetCallerIdentity needs no permission)."""
    return caller(aws).account


@dataclass(frozen=True)
class Caller:
    """Who the credentials are (sts:GetCallerIdentity)."""

    account: str
    user_id: str
    arn: str


def caller(aws: Aws) -> Caller:
    identity = aws.client("sts").get_caller_identity()
    return Caller(str(identity["Account"]), str(identity["UserId"]), str(identity["Arn"]))
