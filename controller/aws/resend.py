"""Resending a stack write whose answer could not be read.

A proxy or load balancer in front of an API may answer a 5xx with an HTML page of its own
(the emulator's web server does it with about 100 creates in flight). botocore retries 5xx
answers it can parse, and an HTML body that starts exactly with `<html>`, but any other page
(`<!doctype html>` first, say) is a `ResponseParserError`, which it never retries: the write
may or may not have happened. Every stack write carries a `ClientRequestToken`, and
CloudFormation runs a request whose token it has seen once, so sending the very same request
again is safe, and is what makes the answer readable.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.parsers import ResponseParserError

from controller.aws.session import FIRST_BACKOFF

ATTEMPTS = 5
"""Sends in all, waiting up to a quarter, a half, one and two seconds between them."""

T = TypeVar("T")


def pause(seconds: float) -> None:
    """Between sends (a test makes it instant)."""
    time.sleep(seconds)


def resent(send: Callable[..., T], **request: Any) -> T:
    """`send(**request)`, sent again unchanged (same token) while its 5xx answer is
    unreadable; any other answer or error is the caller's."""
    if "ClientRequestToken" not in request:
        raise ValueError("only a request with a ClientRequestToken may be sent twice")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return send(**request)
        except ResponseParserError:
            if attempt == ATTEMPTS:
                raise
            pause(random.random() * FIRST_BACKOFF * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
