"""The one place that builds boto3 clients.

Everything goes through standard configuration (AWS_ENDPOINT_URL, AWS_PROFILE, AWS_REGION),
so the controller cannot tell a real account from an emulator. Retries live here, not in
business code: botocore's standard mode retries `Throttling` and 5xx answers with exponential
backoff and jitter, and the applier adapts its own operations in flight to throttling.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.exceptions import ProfileNotFound

from controller.core.config.settings import AwsDefaults

RETRIES: Any = {"mode": "standard", "max_attempts": 10}
"""Standard, not adaptive: adaptive mode also slows its client to a send rate it lowers after
every throttled answer and raises slowly, so a few throttles (or a neighbour's burst) hold back
every later call of that client, reads and writes alike, for the rest of the apply. Standard
mode delays only the call that was throttled (1, 2, 4... s with jitter, at most 20 s), ten
attempts ride out minutes of throttling, and the applier halves its operations in flight while
AWS throttles (apply.py), which lowers the rate at which writes are sent."""
POLL_RETRIES: Any = {"mode": "standard", "max_attempts": 3}
"""Reads repeated every poll interval: a failed poll is simply made again at the next
interval, and a long backoff inside it would stall the loop that starts the next operations."""


class AwsConfigError(Exception):
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

    def __init__(self, region: str | None = None, profile: str | None = None) -> None:
        self.session = boto3.session.Session(region_name=region, profile_name=profile)
        self.region = self.session.region_name or region or "us-east-1"
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        """AWS API calls made through this session, as `service.Operation` -> count."""
        self.session.events.register("before-call", self._count)
        self._config = BotoConfig(
            retries=RETRIES,
            max_pool_connections=32,
            connect_timeout=10,
            read_timeout=60,
        )

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.session.client(
                    service, region_name=self.region, config=self._config
                )
            return self._clients[service]

    def polling_client(self, service: str) -> Any:
        """A client for reads repeated every poll (`POLL_RETRIES`); its calls count too."""
        with self._lock:
            key = f"{service} (polling)"
            if key not in self._clients:
                config = self._config.merge(BotoConfig(retries=POLL_RETRIES))
                self._clients[key] = self.session.client(
                    service, region_name=self.region, config=config
                )
            return self._clients[key]

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[f"{model.service_model.service_name}.{model.name}"] += 1


def account_of(aws: Aws) -> str:
    """The account the credentials reach (STS GetCallerIdentity needs no permission)."""
    return str(aws.client("sts").get_caller_identity()["Account"])
