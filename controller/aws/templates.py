"""Deployed templates, read only where a plan needs them.

The planner knows the template of every stack this controller rendered (see
`controller.core.template_diff.known_body`); GetTemplate is called only for a stack an update
changes whose deployed template it cannot know: one adopted from the original orchestrator,
made by another version or edited by hand. A no-op plan calls it for none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from controller.aws.session import Aws
from controller.core.stacks import DeployedStack

IN_FLIGHT = 8


def read_in(aws: Aws, stacks: Sequence[DeployedStack]) -> dict[str, str | Exception]:
    """`read` with the session's CloudFormation client."""
    return read(aws.client("cloudformation"), stacks) if stacks else {}


def read(cfn: Any, stacks: Sequence[DeployedStack]) -> dict[str, str | Exception]:
    """Stack name -> its deployed template body, or the error that stopped the read."""
    if not stacks:
        return {}
    with ThreadPoolExecutor(max_workers=min(IN_FLIGHT, len(stacks))) as pool:
        bodies = pool.map(lambda stack: body(cfn, stack.stack_id), stacks)
        return {stack.name: found for stack, found in zip(stacks, bodies, strict=True)}


def body(cfn: Any, stack_id: str) -> str | Exception:
    """The template CloudFormation holds for the stack (as sent: YAML or JSON text)."""
    try:
        template = cfn.get_template(StackName=stack_id, TemplateStage="Original")["TemplateBody"]
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        failed: Exception = exc
        return failed
    # botocore hands a JSON template back already parsed.
    return str(template) if isinstance(template, str) else json.dumps(template)
