"""How results look: plans, apply summaries and status as text tables, JSON and Markdown.

Presentation only; every function takes finished values and returns or prints text.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from controller.core.events import StackEvent
from controller.core.plan import Action, ParameterChange, Plan, PlannedAction
from controller.core.progress import Progress
from controller.core.results import ActionResult, ApplyResult, Outcome

SYMBOLS = {
    Action.CREATE: ("+", "green"),
    Action.UPDATE: ("~", "yellow"),
    Action.REPLACE: ("-/+", "magenta"),
    Action.DELETE: ("-", "red"),
    Action.RUN: (">", "cyan"),
    Action.UNCHANGED: ("=", "dim"),
    Action.WAIT: ("…", "blue"),
    Action.BLOCKED: ("!", "bold red"),
}
OUTCOME_STYLE = {
    Outcome.SUCCEEDED: "green",
    Outcome.FAILED: "bold red",
    Outcome.SKIPPED: "yellow",
    Outcome.UNCHANGED: "dim",
    Outcome.WAITING: "blue",
    Outcome.BLOCKED: "bold red",
}
SUMMARY_ORDER = (
    Action.CREATE,
    Action.UPDATE,
    Action.REPLACE,
    Action.DELETE,
    Action.RUN,
    Action.WAIT,
    Action.BLOCKED,
    Action.UNCHANGED,
)
MAX_VALUE = 80


LOG_WIDTH = 400
"""Width for output that is not a terminal (CodeBuild and CI logs): tables as wide as their
content, so stack names and ARNs are never folded across lines."""


def console(*, stderr: bool = False) -> Console:
    """A console for humans. Not on a terminal (a build log), the layout is plain and wide:
    no colour, lines never wrapped, tables folded only past LOG_WIDTH columns."""
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return Console(stderr=stderr, highlight=False)
    return Console(
        stderr=stderr, highlight=False, width=LOG_WIDTH, soft_wrap=True, color_system=None
    )


def summary(plan: Plan) -> str:
    counts = Counter(a.action for a in plan.actions)
    if not plan.actions:
        return "Plan: nothing is configured and nothing is deployed."
    parts = [
        f"{counts[a]} to {a.value}"
        if a in (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE, Action.RUN)
        else f"{counts[a]} {a.value}"
        for a in SUMMARY_ORDER
        if counts[a]
    ]
    return "Plan: " + ", ".join(parts) + "."


def _short(value: str | None) -> str:
    if value is None:
        return "(none)"
    return value if len(value) <= MAX_VALUE else value[: MAX_VALUE - 3] + "..."


def _diff_lines(changes: Sequence[ParameterChange]) -> list[str]:
    return [f"{c.key}: {_short(c.old)} -> {_short(c.new)}{_replaces(c)}" for c in changes]


def _replaces(change: ParameterChange) -> str:
    return f"  (forces replacement: {', '.join(change.replaces)})" if change.replaces else ""


def _replacement_notes(action: PlannedAction) -> list[str]:
    """One line per replacement a reader must not miss: an endpoint, or a named resource."""
    notes = []
    for found in action.replacements:
        if not found.highlighted:
            continue
        what = f"replaces {found.logical_id} ({found.resource_type})"
        if found.refused:
            notes.append(f"{what}, which keeps its name: CloudFormation will refuse the update")
        else:
            notes.append(f"{what}: {', '.join(found.causes) or 'a changed property'}")
    return notes


def print_plan(plan: Plan, console: Console, source: str = "", *, show_all: bool = False) -> None:
    """The plan as a table of the stacks that change (every stack with `show_all`); the
    summary line counts the rest, so a no-op plan of a thousand pipelines prints one line."""
    title = f"Plan for {source}" if source else "Plan"
    if plan.revision:
        title += f" at {plan.revision[:12]}"
    shown = [a for a in plan.actions if show_all or a.action is not Action.UNCHANGED]
    hidden = len(plan.actions) - len(shown)
    if hidden:
        title += f" ({hidden} unchanged not shown; plan --all shows them)"
    table = Table(title=title, title_justify="left", show_lines=False)
    for column in ("", "stack", "type", "action", "reason"):
        table.add_column(column, overflow="fold")
    for action in shown:
        symbol, style = SYMBOLS[action.action]
        table.add_row(
            Text(symbol, style=style),
            Text(action.stack_name),  # Text, not str: values are never read as console markup
            Text(action.pipeline_type),
            Text(action.action.value, style=style),
            Text(action.reason),
        )
    if shown:
        console.print(table)
    else:
        console.print(title)
    for action in plan.actions:
        resources = action.resources.lines() if action.resources else []
        if action.changes or resources:
            console.print(Text(f"~ {action.stack_name}", style="yellow"))
            for line in _diff_lines(action.changes):
                console.print(f"    {line}", markup=False, highlight=False)
            for line in resources:
                console.print(Text(f"    {line}", style="bold red" if line[0] in "-?" else ""))
            for note in _replacement_notes(action):
                console.print(Text(f"    ! {note}", style="bold red"))
            if action.endpoint_rollout:
                console.print(Text(f"    > endpoint: {action.endpoint_rollout}", style="cyan"))
    for action in plan.actions:
        if action.drift_unchecked:
            console.print(
                Text(f"? {action.stack_name}: drift not checked: {action.drift_unchecked}"),
                style="yellow",
            )
    if plan.refusal:
        console.print(Text.assemble(("Refused:", "bold red"), f" {plan.refusal}"))
    console.print(summary(plan))


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as JSON; `drift_not_checked` is there whenever drift detection could not tell
    some stack's drift (an unchanged stack included), and only then."""
    payload: dict[str, Any] = {
        "revision": plan.revision,
        "refusal": plan.refusal or None,
        "summary": {a.value: n for a, n in Counter(x.action for x in plan.actions).items()},
        "changes": [_action_json(a) for a in plan.actions if a.action is not Action.UNCHANGED],
        "unchanged": [a.stack_name for a in plan.actions if a.action is Action.UNCHANGED],
    }
    unchecked = [
        {"name": a.stack_name, "reason": a.drift_unchecked}
        for a in plan.actions
        if a.drift_unchecked
    ]
    if unchecked:
        payload["drift_not_checked"] = unchecked
    return payload


def _action_json(action: PlannedAction) -> dict[str, Any]:
    return {
        "name": action.stack_name,
        "pipeline_type": action.pipeline_type,
        "action": action.action.value,
        "reason": action.reason,
        "depends_on": list(action.depends_on),
        "parameters": [
            {"key": c.key, "old": c.old, "new": c.new, "replaces": list(c.replaces)}
            for c in action.changes
        ],
        "replacements": [
            {
                "resource": r.logical_id,
                "type": r.resource_type,
                "properties": list(r.properties),
                "because": list(r.causes),
                "named": r.named,
                "highlighted": r.highlighted,
                "refused": r.refused,
            }
            for r in action.replacements
        ],
        "drift": [d.to_json() for d in action.drift],
        "resources": action.resources.to_json() if action.resources else None,
        "drift_not_checked": action.drift_unchecked or None,
        "endpoint_rollout": action.endpoint_rollout or None,
    }


def plan_markdown(plan: Plan, source: str = "", limit: int | None = None) -> str:
    """Markdown for a pull-request comment; cut at a row boundary to fit `limit` characters.

    Config values (and text that quotes them: reasons, stack names, the source name) appear
    only inside code spans, HTML-escaped `<code>` or a code fence longer than any backtick
    run they hold, so a value cannot add a link, an image, HTML or a mention.
    """
    head = f"### mlops-controller plan{f' for {md_code(source)}' if source else ''}"
    if plan.revision:
        head += f" at {md_code(plan.revision[:12])}"
    lines = [head, ""]
    if plan.refusal:
        lines += [f"> **Refused:** {md_code(plan.refusal)}", ""]
    lines += [f"**{summary(plan)}**", ""]
    shown = [a for a in plan.actions if a.action is not Action.UNCHANGED]
    rows = [
        f"| {SYMBOLS[a.action][0]} {a.action.value} | {_cell(a.stack_name)} "
        f"| {_cell(a.pipeline_type)} | {_cell(a.reason)} |"
        for a in shown
    ]
    diffs: list[str] = []
    for action in shown:
        if action.changes:
            body = [
                line
                for change in action.changes
                for line in (
                    f"- {change.key}: {_one_line(_short(change.old))}",
                    f"+ {change.key}: {_one_line(_short(change.new))}{_replaces(change)}",
                )
            ]
            fence = md_fence("\n".join(body))
            diffs += [
                f"<details><summary><code>{html.escape(action.stack_name)}</code></summary>",
                "",
                f"{fence}diff",
                *body,
                fence,
                "</details>",
                "",
            ]
        diffs += [
            f"> **⚠ {_cell(action.stack_name)}** {md_code(note)}"
            for note in _replacement_notes(action)
        ]
        if action.resources:
            diffs += [
                f"> **⚠ {_cell(action.stack_name)}** {md_code(line)}"
                for line in action.resources.lines()
            ]
        if action.endpoint_rollout:
            rollout = md_code(f"endpoint: {action.endpoint_rollout}")
            diffs += [f"> {_cell(action.stack_name)} {rollout}", ""]
    if rows:
        lines += ["| action | stack | type | reason |", "|---|---|---|---|"]
    unchanged = sum(1 for a in plan.actions if a.action is Action.UNCHANGED)
    tail = [f"_{unchanged} pipeline(s) unchanged._"] if unchanged else []
    unchecked = [a for a in plan.actions if a.drift_unchecked]
    if unchecked:
        lines += [f"> **⚠ Drift not checked on {len(unchecked)} stack(s).**", ""]
        tail += [
            "",
            *(
                f"- drift not checked: {_cell(a.stack_name)} {md_code(a.drift_unchecked)}"
                for a in unchecked
            ),
        ]
    return _fit(lines, rows, diffs, tail, limit)


def _fit(
    head: list[str], rows: list[str], diffs: list[str], tail: list[str], limit: int | None
) -> str:
    full = "\n".join([*head, *rows, "", *diffs, *tail]).rstrip() + "\n"
    if limit is None or len(full) <= limit:
        return full
    note = "\n_… {n} more row(s) not shown: run `mlops-controller plan` for the whole plan._\n"
    kept = list(rows)
    while kept:
        text = "\n".join([*head, *kept]) + note.format(n=len(rows) - len(kept))
        if len(text) <= limit:
            return text
        kept.pop()
    return ("\n".join(head) + note.format(n=len(rows)))[:limit]


def md_code(text: str) -> str:
    """`text` as one inline code span: nothing in it is read as Markdown or HTML.

    The span's backtick run is longer than any run inside (CommonMark), and padded with a
    space when the text starts or ends with a backtick; line breaks become spaces.
    """
    text = _one_line(text)
    if not text:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def md_fence(text: str) -> str:
    """A code fence longer than any run of backticks in the text, so it cannot end early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _cell(text: str) -> str:
    """A table cell: a code span whose pipes are escaped (GFM splits cells on them even
    inside code spans)."""
    return md_code(text).replace("|", "\\|")


def _one_line(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)


def heading(console: Console, title: str) -> None:
    """A rule across the console with a title: one chapter of a story (the demos)."""
    console.print(Rule(title), width=min(console.width, 100))


def print_event(event: StackEvent, console: Console) -> None:
    style = (
        "red" if "FAILED" in event.status else ("green" if "COMPLETE" in event.status else "blue")
    )
    line = Text.assemble(
        (event.timestamp.strftime("%H:%M:%S "), "dim"),
        (f"{event.stack_name} ", "bold"),
        (f"{event.status} ", style),
        f"{event.logical_id} ({event.resource_type})",
        (f" {event.reason}" if event.reason else "", "dim"),
    )
    console.print(line, highlight=False)


class ProgressLine:
    """A compact line on how far a long apply has come: printed when the counts change, but
    at most once every `every` seconds, so a hundred stacks do not print a line per poll."""

    def __init__(self, console: Console, every: float = 5.0) -> None:
        self.console = console
        self.every = every
        self._printed = float("-inf")

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._printed < self.every or progress.done == progress.total:
            return
        self._printed = now
        self.console.print(progress_text(progress), markup=False, highlight=False)


def progress_text(progress: Progress) -> str:
    minutes, seconds = divmod(int(progress.seconds), 60)
    throttled = f" (throttled: cap {progress.limit})" if progress.limit < progress.cap else ""
    return (
        f"progress {minutes}m{seconds:02d}s: {progress.done}/{progress.total} done, "
        f"{progress.running} running, {progress.waiting} waiting{throttled}"
    )


def print_result(result: ActionResult, console: Console) -> None:
    """One line as a stack finishes; an unchanged stack is only counted in the summary."""
    if result.outcome is Outcome.UNCHANGED:
        return
    style = OUTCOME_STYLE[result.outcome]
    console.print(
        Text.assemble(
            (f"{result.outcome.value:>9} ", style),
            f"{result.action.value} {result.stack_name}: ",
            (result.message, "dim"),
        ),
        highlight=False,
    )


def print_apply(result: ApplyResult, console: Console, *, show_all: bool = False) -> None:
    """The summary lists what changed, failed or waits; unchanged stacks are a count
    (`show_all` lists them too)."""
    for note in result.notes:
        console.print(Text(f"Note: {note}", style="yellow"), soft_wrap=True)
    if result.refusal:
        refused = ("Refused, nothing was changed:", "bold red")
        console.print(Text.assemble(refused, f" {result.refusal}"))
        return
    table = Table(title="Apply summary", title_justify="left")
    for column in ("stack", "action", "outcome", "seconds", "message"):
        table.add_column(column, overflow="fold")
    shown = [r for r in result.results if show_all or r.outcome is not Outcome.UNCHANGED]
    for item in shown:
        table.add_row(
            Text(item.stack_name),
            item.action.value,
            Text(item.outcome.value, style=OUTCOME_STYLE[item.outcome]),
            f"{item.seconds:.1f}",
            Text(item.message),
        )
    if shown:
        console.print(table)
    counts = Counter(r.outcome for r in result.results)
    parts = ", ".join(f"{n} {o.value}" for o, n in counts.items())
    verdict = "[green]Apply complete[/]" if result.ok else "[bold red]Apply failed[/]"
    console.print(f"{verdict}: {parts or 'nothing to do'}.")


def apply_markdown(result: ApplyResult, source: str = "") -> str:
    """The apply's outcome for a pull request or a chat message, as `plan_markdown` is."""
    head = f"### mlops-controller apply{f' of {md_code(source)}' if source else ''}"
    if result.revision:
        head += f" at {md_code(result.revision[:12])}"
    lines = [head, ""]
    if result.refusal:
        refusal = f"> **Refused, nothing was changed:** {md_code(result.refusal)}"
        return "\n".join([*lines, refusal]) + "\n"
    counts = Counter(r.outcome for r in result.results)
    parts = ", ".join(f"{n} {o.value}" for o, n in counts.items()) or "nothing to do"
    lines += [f"**{'Apply complete' if result.ok else 'Apply failed'}: {parts}.**", ""]
    shown = [r for r in result.results if r.outcome is not Outcome.UNCHANGED]
    if shown:
        lines += ["| outcome | stack | action | seconds | message |", "|---|---|---|---|---|"]
        lines += [
            f"| {r.outcome.value} | {_cell(r.stack_name)} | {r.action.value} | {r.seconds:.1f} "
            f"| {_cell(r.message)} |"
            for r in shown
        ]
    unchanged = counts[Outcome.UNCHANGED]
    if unchanged:
        lines += ["", f"_{unchanged} pipeline(s) unchanged._"]
    return "\n".join(lines) + "\n"


def apply_json(result: ApplyResult) -> dict[str, Any]:
    return {
        "revision": result.revision,
        "ok": result.ok,
        "refusal": result.refusal or None,
        "notes": list(result.notes),
        "results": [
            {
                "name": r.stack_name,
                "pipeline_type": r.pipeline_type,
                "action": r.action.value,
                "outcome": r.outcome.value,
                "message": r.message,
                "seconds": round(r.seconds, 2),
            }
            for r in result.results
        ],
    }


def dumps(payload: Any) -> str:
    return json.dumps(payload, indent=2, default=str)
