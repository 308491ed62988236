"""One controller phase in a process of its own: `python -m bench.driver plan|apply CONFIG`.

It runs the library exactly as `mlops-controller plan` / `apply` do (load, render, discover,
plan, pre-flight, apply), minus argument parsing and printing, and prints one JSON line: the
seconds of each step, the AWS calls by operation (`Aws.calls`), the actions planned, the
outcomes, and the process's peak resident memory, so the benchmark measures the controller's
own process and not the emulator that shares the runner's. The peak is VmHWM, the high-water
mark of this process's own memory: `ru_maxrss` of a child forked from the runner starts at the
runner's (emulator-sized) high-water mark.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any


def run(
    phase: str, path: Path, parallel: int | None = None, wait_budget: float | None = None
) -> dict[str, Any]:
    started = time.perf_counter()
    from controller.aws.session import Aws
    from controller.core import config
    from controller.gitops import reconcile

    imported = time.perf_counter()
    loaded = config.load(path.read_bytes(), path.name, environ={})
    if loaded.config is None:
        raise SystemExit("\n".join(d.format() for d in loaded.diagnostics))
    cfg = loaded.config
    ready = time.perf_counter()
    aws = Aws(region=cfg.settings.region)
    plan = reconcile.plan_for(cfg, aws, reconcile.guards_for(cfg, False))
    planned = time.perf_counter()
    result: dict[str, Any] = {
        "seconds": {
            "import": imported - started,
            "load": ready - imported,
            "plan": planned - ready,
        },
        "actions": dict(Counter(a.action.value for a in plan.actions)),
    }
    if phase == "apply":
        outcome = reconcile.apply_plan(
            cfg,
            plan,
            aws,
            reconcile.options_for(cfg, parallel or None, wait_budget_seconds=wait_budget),
            on_event=lambda _: None,
            on_result=lambda _: None,
        )
        result["seconds"]["apply"] = time.perf_counter() - planned
        result["outcomes"] = dict(Counter(r.outcome.value for r in outcome.results))
        result["ok"] = outcome.ok
    result["seconds"]["total"] = time.perf_counter() - started
    result["calls"] = dict(aws.calls)
    result["peak_rss_kb"] = peak_rss_kb()
    return result


def peak_rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str]) -> int:
    phase, path = argv[0], Path(argv[1])
    parallel = int(argv[2]) if len(argv) > 2 else 0
    budget = float(argv[3]) if len(argv) > 3 else None
    print(json.dumps(run(phase, path, parallel or None, budget)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
