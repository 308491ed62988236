"""A git host's token from Secrets Manager, for builds that do not have it in the environment.

The bootstrap names the secret (`GitTokenSecretArn`) and the build role may read that one
secret alone. The secret holds the token as its whole string, or as the `token` key of a JSON
object (the shape the console's key/value editor writes).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from controller.aws.session import Aws
from controller.core.errors import AwsError


class SecretError(AwsError):
    """The secret could not be read or holds no token; the message never holds its value."""


def token_in(aws: Aws, secret_id: str) -> str:
    return token(aws.client("secretsmanager"), secret_id)


def token(secretsmanager: Any, secret_id: str) -> str:
    try:
        text = str(secretsmanager.get_secret_value(SecretId=secret_id).get("SecretString") or "")
    except (BotoCoreError, ClientError) as exc:  # they name the secret, never its value
        raise SecretError(f"reading the token secret {secret_id}: {exc}") from None
    value = text.strip()
    if value.startswith("{"):
        try:
            value = str(json.loads(value).get("token") or "")
        except (ValueError, AttributeError):
            value = ""
    if not value:
        raise SecretError(
            f"the secret {secret_id} holds no token: store the token as the secret's string "
            'or as {"token": "..."}'
        )
    return value
