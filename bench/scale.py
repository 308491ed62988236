"""Applying at scale (issue 13), side by side in one run: `python -m bench.scale`.

Stacks are held in CREATE_IN_PROGRESS (`emulated.HOLD`; real endpoint stacks take minutes,
moto creates at once), behind the latency proxy. Scenarios:
- create all of N=100 with stacks held 5 s: the controller (its defaults) and Sceptre's
  `launch` of the same templates and parameters;
- AWS calls per poll interval while 1000 stacks are in flight (image-builder pipelines, the
  lightest stacks on moto, held until the window has been measured);
- the no-op plan of 1000 pipelines against the floor measured in the same run (a bare boto3
  process paging DescribeStacks): of the mixed config of all nine types (the target), and of
  those 1000 image builders;
- planning (and scheduling) 1000 deletes, in process;
- create all of N=100 with 30 % of calls throttled by the proxy at random;
- create all of N=100 against a proxy that throttles by rate (`--max-rps`, as CloudFormation
  does), which no call may make fail;
- create all of N=100 stopped by a wait budget and continued by the next run.
Writes scale.json, scale.md and scale.png (through the benchmark venv's matplotlib) to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import emulated, generate, measure, sceptre_compare
from bench.proxy import FaultProxy

HOLD_SECONDS = 5.0
POLL_SECONDS = 1.0
"""The controller's default poll interval (MLOPS_POLL_SECONDS)."""
WRITES = measure.WRITES
FLOOR = """
import sys, time, boto3
cfn = boto3.client("cloudformation")
pages = sum(1 for _ in cfn.get_paginator("describe_stacks").paginate())
print(pages)
"""


def _ctx(url: str, proxy: FaultProxy, out: Path, parallel: int | None = None) -> measure.Context:
    return measure.Context(url, proxy, out / "raw", 1, parallel)  # type: ignore[arg-type]


def _apply(ctx: measure.Context, path: Path, *extra: str) -> dict[str, Any]:
    started = time.perf_counter()
    args = [sys.executable, "-m", "bench.driver", "apply", str(path), str(ctx.parallel or 0)]
    done = subprocess.run(
        [*args, *extra], env=ctx.env, cwd=measure.ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"driver apply failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - started
    calls = result["calls"]
    result["calls_total"] = sum(calls.values())
    result["stack_writes"] = sum(calls.get(op, 0) for op in WRITES)
    return result


def _stacks(url: str) -> tuple[int, int]:
    """(stacks, distinct names) in the emulator, read past the proxy."""
    import boto3

    cfn = boto3.client(
        "cloudformation",
        endpoint_url=url,
        region_name=emulated.REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    names = [
        s["StackName"] for p in cfn.get_paginator("describe_stacks").paginate() for s in p["Stacks"]
    ]
    return len(names), len(set(names))


def create_all(url: str, proxy: FaultProxy, out: Path, n: int, log: Any) -> dict[str, Any]:
    document = generate.make_config(n)
    path = generate.write(document, out / "raw" / "configs" / f"{n}.json")
    measure.fresh(_ctx(url, proxy, out), document)
    emulated.HOLD.seconds = HOLD_SECONDS
    result = _apply(_ctx(url, proxy, out), path)
    stacks, distinct = _stacks(url)
    result["stacks"], result["distinct"] = stacks, distinct
    log(
        f"create all N={n}, held {HOLD_SECONDS:g} s: {result['wall_seconds']:.1f} s, "
        f"{result['calls_total']} calls, {stacks} stacks"
    )
    return result


def create_all_repeated(
    url: str, proxy: FaultProxy, out: Path, n: int, repeat: int, log: Any
) -> dict[str, Any]:
    """`repeat` create-alls from an empty emulator: the one of median wall time, with every
    run's wall time (a shared machine makes single runs vary by a second or more)."""
    runs = sorted(
        (create_all(url, proxy, out, n, log) for _ in range(repeat)),
        key=lambda run: float(run["wall_seconds"]),
    )
    result = runs[len(runs) // 2]
    result["wall_seconds_all"] = [round(run["wall_seconds"], 2) for run in runs]
    result["calls_total_all"] = [run["calls_total"] for run in runs]
    return result


def sceptre_create_all(url: str, proxy: FaultProxy, out: Path, n: int, log: Any) -> dict[str, Any]:
    from controller.core import config, render

    binary = sceptre_compare.ensure_venv()
    document = generate.make_config(n)
    path = generate.write(document, out / "raw" / "configs" / f"{n}.json")
    loaded = config.load(path.read_bytes(), path.name, environ={})
    assert loaded.config is not None
    project = sceptre_compare.write_project(
        render.render_all(loaded.config), out / "raw" / f"sceptre-{n}", emulated.REGION
    )
    ctx = _ctx(url, proxy, out)
    measure.fresh(ctx, document)
    emulated.HOLD.seconds = HOLD_SECONDS
    run = measure.timed_process(
        [str(binary), "--dir", str(project), "--no-colour", "launch", "-y", "."], ctx.env, proxy
    )
    if run["returncode"] != 0:
        raise RuntimeError(f"sceptre launch failed: {run['stderr_tail']}")
    calls = run["calls"]
    result = {
        "wall_seconds": run["wall_seconds"],
        "calls": calls,
        "calls_total": sum(calls.values()),
        "stack_writes": sum(calls.get(op, 0) for op in WRITES),
        "version": sceptre_compare.version(),
    }
    log(
        f"sceptre launch N={n}, held {HOLD_SECONDS:g} s: {result['wall_seconds']:.1f} s, "
        f"{result['calls_total']} calls"
    )
    return result


def polling(url: str, proxy: FaultProxy, out: Path, n: int, log: Any) -> dict[str, Any]:
    """Calls per poll interval while `n` stacks are in flight, counted at the proxy."""
    document = generate.make_config_of("byom_image_builder", n)
    path = generate.write(document, out / "raw" / "configs" / f"builders-{n}.json")
    ctx = _ctx(url, proxy, out, parallel=n)
    measure.fresh(ctx, document)
    emulated.HOLD.seconds = 3600.0
    emulated.HOLD.released_at = float("inf")
    proxy.operations.clear()
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(_apply(ctx, path)))
    runner.start()
    while proxy.operations["cloudformation.CreateStack"] < n:
        time.sleep(0.5)
        if not runner.is_alive():
            raise RuntimeError("the apply ended before its creates were sent")
    time.sleep(2 * POLL_SECONDS)  # the last creates' first looks
    before = Counter(proxy.operations)
    window = 10 * POLL_SECONDS
    time.sleep(window)
    during = Counter(proxy.operations) - before
    emulated.HOLD.release()
    runner.join()
    emulated.HOLD.released_at = float("inf")
    polls = max(1, during["cloudformation.ListStacks"])
    per_interval = sum(during.values()) / polls
    # moto returns ListStacks in one page; CloudFormation pages it by 100 summaries.
    aws_equivalent = per_interval - 1 + math.ceil(n / 100)
    result = {
        "n": n,
        "window_seconds": window,
        "polls_in_window": polls,
        "calls_in_window": dict(during),
        "calls_per_interval_moto": per_interval,
        "calls_per_interval_aws_equivalent": aws_equivalent,
        "apply": outcome,
    }
    log(
        f"polling with {n} in flight: {per_interval:.1f} calls per poll ({polls} polls) "
        f"on moto, {aws_equivalent:.1f} with ListStacks pages of 100"
    )
    return result


def deploy_mixed(url: str, proxy: FaultProxy, out: Path, n: int, log: Any) -> Path:
    """The mixed config of `n` pipelines, created at once (no hold), for the no-op plan."""
    document = generate.make_config(n)
    path = generate.write(document, out / "raw" / "configs" / f"{n}.json")
    measure.fresh(_ctx(url, proxy, out), document)
    emulated.HOLD.seconds = 0.0
    result = _apply(_ctx(url, proxy, out), path)
    log(f"deployed {n} mixed pipelines in {result['wall_seconds']:.1f} s: {result['outcomes']}")
    if not result["ok"]:
        raise RuntimeError(f"creating {n} mixed pipelines did not succeed: {result['outcomes']}")
    return path


def noop_plan_vs_floor(
    url: str, proxy: FaultProxy, out: Path, path: Path, repeat: int, log: Any
) -> dict[str, Any]:
    """The no-op plan of the deployed pipelines of `path`, and the floor: a bare boto3 process
    paging DescribeStacks through the same proxy, measured alternately in the same run."""
    n = len(json.loads(path.read_text())["pipelines"])
    ctx = _ctx(url, proxy, out)
    plans, floors = [], []
    for _ in range(repeat):
        floor = measure.timed_process([sys.executable, "-c", FLOOR], ctx.env)
        floors.append(floor["wall_seconds"])
        plan = measure.timed_process([measure.CLI, "plan", "--config", str(path)], ctx.env)
        if plan["returncode"] != 0:
            raise RuntimeError(f"no-op plan exited {plan['returncode']}: {plan['stderr_tail']}")
        plans.append(plan["wall_seconds"])
    driver = measure.drive(_ctx(url, proxy, out), "plan", path)
    result = {
        "n": n,
        "config": path.name,
        "cli_plan_seconds": statistics.median(plans),
        "cli_plan_seconds_all": [round(x, 3) for x in plans],
        "floor_seconds": statistics.median(floors),
        "floor_seconds_all": [round(x, 3) for x in floors],
        "ratio": statistics.median(plans) / statistics.median(floors),
        "driver_steps": driver["seconds"],
        "driver_calls": driver["calls"],
    }
    log(
        f"no-op plan N={n} ({path.name}): {result['cli_plan_seconds']:.2f} s, floor "
        f"{result['floor_seconds']:.2f} s, {result['ratio']:.2f}x"
    )
    return result


def deletes_planning(n: int, repeat: int, log: Any) -> dict[str, Any]:
    """Planning and scheduling `n` deletes (an emptied config), in process, no AWS."""
    from controller.aws.schedule import Schedule
    from controller.core import config, render
    from controller.core.plan import Guards, PlanInput, make_plan
    from controller.core.results import ActionResult, Outcome
    from controller.core.stacks import DeployedStack, stack_tags

    loaded = config.load(json.dumps(generate.make_config(n)).encode(), "c.json", environ={})
    assert loaded.config is not None
    deployed = [
        DeployedStack(
            r.stack_name,
            f"arn:stack/{r.stack_name}",
            "CREATE_COMPLETE",
            {t["Key"]: t["Value"] for t in stack_tags("mlops-controller", r)},
        )
        for r in render.render_all(loaded.config)
    ]
    request = PlanInput((), deployed, "mlops-controller", "r", Guards(allow_delete_all=True))
    plans, schedules = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        plan = make_plan(request)
        plans.append(time.perf_counter() - started)
        started = time.perf_counter()
        schedule = Schedule(plan.actions)
        while not schedule.finished:
            for action in schedule.ready():
                schedule.finish(
                    ActionResult(
                        action.stack_name,
                        action.pipeline_type,
                        action.action,
                        Outcome.SUCCEEDED,
                        "deleted",
                    )
                )
        schedules.append(time.perf_counter() - started)
    result = {
        "n": n,
        "plan_seconds": statistics.median(plans),
        "schedule_seconds": statistics.median(schedules),
        "dependency_edges": sum(len(a.depends_on) for a in plan.actions),
    }
    log(
        f"{n} deletes: planning {result['plan_seconds'] * 1000:.1f} ms, scheduling "
        f"{result['schedule_seconds'] * 1000:.1f} ms"
    )
    return result


def throttled(
    url: str, out: Path, n: int, latency_ms: float, log: Any, **faults: Any
) -> dict[str, Any]:
    """Create all through a proxy of its own that throttles (`throttle_rate` or `max_rps`)."""
    with FaultProxy(url, latency_ms=latency_ms, seed=13, **faults) as proxy:
        result = create_all(url, proxy, out, n, log)
        result["throttled"] = proxy.stats["throttled"]
        result["requests"] = proxy.stats["requests"]
        result["forwarded"] = proxy.stats["forwarded"]
    result.update(faults)
    log(f"  {result['throttled']} of {result['requests']} requests throttled ({faults})")
    return result


def interrupted(
    url: str, proxy: FaultProxy, out: Path, n: int, budget: float, log: Any
) -> dict[str, Any]:
    document = generate.make_config(n)
    path = generate.write(document, out / "raw" / "configs" / f"{n}.json")
    ctx = _ctx(url, proxy, out)
    measure.fresh(ctx, document)
    emulated.HOLD.seconds = HOLD_SECONDS
    first = _apply(ctx, path, f"{budget:g}")
    second = _apply(ctx, path)
    stacks, distinct = _stacks(url)
    result = {
        "budget_seconds": budget,
        "first": first,
        "second": second,
        "stack_writes": first["stack_writes"] + second["stack_writes"],
        "stacks": stacks,
        "distinct": distinct,
    }
    log(
        f"wait budget {budget:g} s: first run {first['wall_seconds']:.1f} s "
        f"({first['outcomes']}), second {second['wall_seconds']:.1f} s; "
        f"{result['stack_writes']} stack writes in all"
    )
    return result


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    create, sceptre = r["create_all"], r.get("sceptre_create_all")
    limit = 3 * HOLD_SECONDS + HOLD_SECONDS
    out = [
        {
            "target": f"create all of N=100, stacks held {HOLD_SECONDS:g} s, 50 ms: wall at most "
            f"{limit:g} s",
            "measured": f"{create['wall_seconds']:.1f} s, median of {create['wall_seconds_all']}"
            + (f" (Sceptre launch {sceptre['wall_seconds']:.1f} s)" if sceptre else ""),
            "met": create["wall_seconds"] <= limit,
        }
    ]
    if sceptre:
        out.append(
            {
                "target": "create all of N=100: no more AWS calls than Sceptre's launch",
                "measured": f"{create['calls_total']} calls, of {create['calls_total_all']} "
                f"(Sceptre {sceptre['calls_total']})",
                "met": max(create["calls_total_all"]) <= sceptre["calls_total"],
            }
        )
    poll = r["polling"]
    bound = math.ceil(poll["n"] / 100) + 5
    out.append(
        {
            "target": f"AWS calls per poll interval with {poll['n']} stacks in flight: at most "
            f"{bound}",
            "measured": f"{poll['calls_per_interval_aws_equivalent']:.1f} with ListStacks pages "
            f"of 100 ({poll['calls_per_interval_moto']:.1f} on moto, one page)",
            "met": poll["calls_per_interval_aws_equivalent"] <= bound,
        }
    )
    noop, builders = r["noop_plan"], r.get("noop_plan_builders")
    out.append(
        {
            "target": f"no-op plan of N={noop['n']} (mixed, all nine types): within 1.25x of the "
            "floor",
            "measured": f"{noop['cli_plan_seconds']:.2f} s against {noop['floor_seconds']:.2f} s: "
            f"{noop['ratio']:.2f}x"
            + (
                f" ({builders['n']} image builders: {builders['cli_plan_seconds']:.2f} s against "
                f"{builders['floor_seconds']:.2f} s, {builders['ratio']:.2f}x)"
                if builders
                else ""
            ),
            "met": noop["ratio"] <= 1.25,
        }
    )
    deletes = r["deletes"]
    out.append(
        {
            "target": f"{deletes['n']} deletes: planning under 0.05 s",
            "measured": f"{deletes['plan_seconds']:.3f} s (scheduling "
            f"{deletes['schedule_seconds']:.3f} s, {deletes['dependency_edges']} edges)",
            "met": deletes["plan_seconds"] < 0.05,
        }
    )
    slow = r["throttled"]
    out.append(
        {
            "target": "30 % of calls throttled, N=100: converges, no duplicate, at most 2x the "
            "unthrottled wall time",
            "measured": f"{slow['wall_seconds']:.1f} s "
            f"({slow['wall_seconds'] / create['wall_seconds']:.2f}x), "
            f"{slow['stacks']} stacks, {slow['distinct']} names, {slow['throttled']} throttled "
            "answers",
            "met": slow["ok"]
            and slow["stacks"] == slow["distinct"] == 100
            and slow["wall_seconds"] <= 2 * create["wall_seconds"],
        }
    )
    paced = r.get("rate_limited")
    if paced:
        floor = paced["forwarded"] / paced["max_rps"]
        out.append(
            {
                "target": f"throttled by rate ({paced['max_rps']:g} calls/s), N=100: converges, "
                "no duplicate, no call failed",
                "measured": f"{paced['wall_seconds']:.1f} s ({paced['forwarded']} calls at "
                f"{paced['max_rps']:g}/s take {floor:.0f} s at least), {paced['stacks']} stacks, "
                f"{paced['distinct']} names, {paced['throttled']} throttled answers",
                "met": paced["ok"] and paced["stacks"] == paced["distinct"] == 100,
            }
        )
    cut = r["interrupted"]
    out.append(
        {
            "target": "a run stopped by its wait budget, continued by the next: as many stack "
            "writes as one run",
            "measured": f"{cut['stack_writes']} writes in two runs, {create['stack_writes']} in "
            f"one; {cut['stacks']} stacks",
            "met": cut["stack_writes"] == create["stack_writes"]
            and cut["stacks"] == cut["distinct"] == 100,
        }
    )
    return out


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Apply at scale",
        "",
        f"{r['machine']['date']}; {r['machine']['cpus']} cores; moto {r['machine']['moto']}; "
        f"latency {r['latency_ms']:g} ms per call; new stacks held {HOLD_SECONDS:g} s in "
        f"CREATE_IN_PROGRESS; controller defaults (cap 100, poll {POLL_SECONDS:g} s). "
        f"Total run {r['total_seconds'] / 60:.1f} min.",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    lines += [
        f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |"
        for t in r["targets"]
    ]
    create = r["create_all"]
    lines += [
        "",
        "Create all of N=100, calls by operation (controller): "
        + ", ".join(
            f"{k.split('.', 1)[1]} {v}"
            for k, v in sorted(create["calls"].items(), key=lambda kv: -kv[1])
        ),
    ]
    if r.get("sceptre_create_all"):
        s = r["sceptre_create_all"]
        lines.append(
            "Sceptre's launch: "
            + ", ".join(
                f"{k.split('.', 1)[1]} {v}"
                for k, v in sorted(s["calls"].items(), key=lambda kv: -kv[1])
            )
        )
    poll = r["polling"]
    lines += [
        "",
        f"Polling window of {poll['window_seconds']:g} s with {poll['n']} stacks in flight: "
        + ", ".join(
            f"{k.split('.', 1)[1]} {v}" for k, v in sorted(poll["calls_in_window"].items())
        ),
    ]
    for key in ("noop_plan", "noop_plan_builders"):
        noop = r.get(key)
        if noop:
            lines += [
                "",
                f"No-op plan of N={noop['n']} ({noop['config']}): runs "
                f"{noop['cli_plan_seconds_all']} s, floor runs {noop['floor_seconds_all']} s; "
                "steps of the library phase: "
                + ", ".join(f"{k} {v:.2f} s" for k, v in noop["driver_steps"].items()),
            ]
    return "\n".join(lines) + "\n"


def plot(r: dict[str, Any], target: Path) -> None:
    python = sceptre_compare.VENV / "bin" / "python"
    bars = [
        ("controller\ncreate all", r["create_all"]["wall_seconds"]),
        ("Sceptre launch\ncreate all", (r.get("sceptre_create_all") or {}).get("wall_seconds", 0)),
        ("controller\n30 % throttled", r["throttled"]["wall_seconds"]),
        (
            "controller\nrate-limited",
            (r.get("rate_limited") or {}).get("wall_seconds", 0),
        ),
        (
            "budget-stopped\n+ next run",
            r["interrupted"]["first"]["wall_seconds"] + r["interrupted"]["second"]["wall_seconds"],
        ),
    ]
    script = (
        "import json, sys\nimport matplotlib\nmatplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "bars = json.loads(sys.argv[1])\n"
        "fig, ax = plt.subplots(figsize=(8, 4))\n"
        "colours = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd']\n"
        "ax.bar([b[0] for b in bars], [b[1] for b in bars], color=colours)\n"
        f"ax.axhline({4 * HOLD_SECONDS}, color='grey', linestyle='--', label='target 20 s')\n"
        "ax.set_ylabel('wall time (s)')\n"
        "ax.set_title('N=100 pipelines, stacks held 5 s, 50 ms per call')\n"
        "ax.legend()\nfig.tight_layout()\nfig.savefig(sys.argv[2], dpi=100)\n"
    )
    subprocess.run([str(python), "-c", script, json.dumps(bars), str(target)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--in-flight", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--max-rps",
        type=float,
        default=10.0,
        help="the rate-limited scenario's limit, calls per second for all services (0: skip)",
    )
    parser.add_argument("--sceptre", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    from bench.run import machine, quiet

    quiet()
    began = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - began:7.1f} s] {message}", flush=True)

    from controller.aws.emulator import Emulator

    emulated.patch_moto()
    emulated.widen_listen_backlogs()
    emulator = Emulator(emulated.REGION)
    url = emulator.start()
    proxy = FaultProxy(url, latency_ms=args.latency_ms)
    proxy.start()
    r: dict[str, Any] = {"machine": machine(), "latency_ms": args.latency_ms}
    try:
        r["deletes"] = deletes_planning(1000, args.repeat, log)
        r["create_all"] = create_all_repeated(url, proxy, args.out, 100, args.repeat, log)
        if args.sceptre:
            r["sceptre_create_all"] = sceptre_create_all(url, proxy, args.out, 100, log)
        r["interrupted"] = interrupted(url, proxy, args.out, 100, 8.0, log)
        r["throttled"] = throttled(url, args.out, 100, args.latency_ms, log, throttle_rate=0.3)
        if args.max_rps:
            r["rate_limited"] = throttled(
                url, args.out, 100, args.latency_ms, log, max_rps=args.max_rps
            )
        r["polling"] = polling(url, proxy, args.out, args.in_flight, log)
        emulated.HOLD.seconds = 0.0
        builders = args.out / "raw" / "configs" / f"builders-{args.in_flight}.json"
        r["noop_plan_builders"] = noop_plan_vs_floor(
            url, proxy, args.out, builders, args.repeat, log
        )
        mixed = deploy_mixed(url, proxy, args.out, args.in_flight, log)
        r["noop_plan"] = noop_plan_vs_floor(url, proxy, args.out, mixed, args.repeat, log)
    finally:
        proxy.stop()
        emulator.stop()
    r["total_seconds"] = time.perf_counter() - began
    r["targets"] = targets(r)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(
        json.dumps(r, indent=2, sort_keys=True, default=str) + "\n"
    )
    (args.out / "scale.md").write_text(markdown(r))
    plot(r, args.out / "scale.png")
    for target in r["targets"]:
        log(f"{'met ' if target['met'] else 'MISS'} {target['target']}: {target['measured']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
