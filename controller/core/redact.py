"""Credentials in URLs, removed from every text the controller shows or stores.

A git URL may carry a token (`https://user:token@host/repo.git`) and a presigned S3 URL
carries a signature and a session token in its query. Either can reach an error message, a
stack event or a git error, and from there the console, the ledger, build artifacts or an
e-mail. Every one of those sinks passes its text through `redact`, so the rule is one
function rather than a habit.
"""

from __future__ import annotations

import re

HIDDEN = "***"

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/\s?#]*@")
"""The user-info part of a URL, up to its last `@` before the host (a password may hold `@`)."""

_QUERY_SECRET = re.compile(
    r"(?P<key>\b(?:X-Amz-(?:Credential|Signature|Security-Token)|Signature|AWSAccessKeyId"
    r"|access_token|token|sig|password|passwd)=)[^&#\s\"'<>]+",
    re.IGNORECASE,
)
"""Signing and token parameters, wherever `name=` appears (also outside a URL's query)."""

_SECRET_NAME = (
    r"[\w.\-]*(?:token|secret|passw|pwd|key|signature|sig|credential|auth|session|cookie)"
    r"[\w.\-]*"
)
_QUERY_PARAMETER = re.compile(
    rf"(?P<key>[?&;](?:{_SECRET_NAME})=)[^&;#\s\"'<>]+",
    re.IGNORECASE,
)
"""Any credential-shaped parameter of a URL's query (`api_key`, `apikey`, `client_secret`,
`private_token`, `X-Goog-Signature`, `sessionid`...): a name is matched by what it looks
like, not looked up in a list, since every service names its keys differently. Inside a query
only, so that `key=` in ordinary text (an S3 key) stays readable."""


_HOST_TOKEN = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|glpat-[\w-]{20,}"
    r"|AT(?:BB|ATT|CTT)[\w=+/-]{20,})"
)
"""A git host's token by its documented prefix (GitHub, GitLab, Bitbucket/Atlassian), should
one reach a message from a library's error or a header echoed back."""

_AUTH_HEADER = re.compile(
    r"(?P<key>\b(?:authorization:\s*(?:bearer|token|basic)|private-token:)\s*)\S+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with URL credentials (user-info, credential-shaped query parameters), git
    hosts' tokens and authorization headers hidden."""
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{HIDDEN}@", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group('key')}{HIDDEN}", text)
    text = _HOST_TOKEN.sub(HIDDEN, text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group('key')}{HIDDEN}", text)
    return _QUERY_PARAMETER.sub(lambda m: f"{m.group('key')}{HIDDEN}", text)
