"""How `adopt` shows what it is about to write."""

from __future__ import annotations

from rich.console import Console

from controller.aws.adopt import Adoption


def print_adoption(adoption: Adoption, console: Console) -> None:
    """What adopting changes (tags only) and what the next plan will then do."""
    stack = adoption.stack
    console.print(
        f"Adopt {stack.name} ({stack.status}, {adoption.desired.pipeline.type}): adopting "
        "writes only these tags; the template and every parameter stay as they are until "
        "the next apply:",
        markup=False,
        soft_wrap=True,
    )
    for change in adoption.tag_changes:
        sign = "+" if change.old is None else "~"
        was = f" (was {change.old})" if change.old is not None else ""
        console.print(f"  {sign} {change.key} = {change.new}{was}", markup=False, soft_wrap=True)
    if adoption.matches_config:
        after = "nothing: the stack is what the config renders"
    elif adoption.parameter_changes:
        after = "an update of " + ", ".join(c.key for c in adoption.parameter_changes)
    else:
        after = "an update to the config's template (same parameter values)"
    console.print(f"Then `plan` shows {after}.", markup=False, soft_wrap=True)
    if adoption.resources.any:
        console.print(
            "The next apply replaces its template with the config's blueprint, and so:",
            markup=False,
            soft_wrap=True,
        )
        for line in adoption.resources.lines():
            console.print(f"  {line}", markup=False, soft_wrap=True)
