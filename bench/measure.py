"""Measuring one size N: render, create all, no-op plan and apply, change one, Sceptre.

Every AWS-facing phase runs in a process of its own (the controller through `bench.driver`,
Sceptre through its CLI) against the emulator behind the latency proxy; the emulator and
the proxy run in the runner's process. Seeding goes straight to the emulator, unmeasured.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import emulated, generate, sceptre_compare
from bench.proxy import FaultProxy

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLI = str(Path(PYTHON).with_name("mlops-controller"))
WRITES = ("cloudformation.CreateStack", "cloudformation.UpdateStack", "cloudformation.DeleteStack")
MOTO_PAGE = 50
"""moto's DescribeStacks page (responses.py: max_results = 50); CloudFormation's is 100."""
AWS_PAGE = 100


@dataclass
class Context:
    emulator_url: str
    proxy: FaultProxy
    scratch: Path
    repeat: int
    parallel: int | None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **emulated.environment(self.proxy.url)}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(runs: list[dict[str, Any]], deployed: int) -> dict[str, Any]:
    """Median wall time of the runs; calls, actions and memory of the last (all runs agree).

    `deployed` is how many stacks discovery lists: it pages them by 50 on moto, by 100 on
    CloudFormation, and the AWS-equivalent count swaps the one for the other.
    """
    last = runs[-1]
    calls = dict(sorted(last["calls"].items()))
    total = sum(calls.values())
    moto_pages = max(1, math.ceil(deployed / MOTO_PAGE))
    aws_pages = max(1, math.ceil(deployed / AWS_PAGE))
    return {
        "runs": len(runs),
        "wall_seconds": median([r["wall_seconds"] for r in runs]),
        "wall_seconds_all": [round(r["wall_seconds"], 3) for r in runs],
        "steps_seconds": {
            k: median([r["seconds"][k] for r in runs]) for k in last.get("seconds", {})
        },
        "calls": calls,
        "calls_total": total,
        "calls_total_all": [sum(r["calls"].values()) for r in runs],
        "stack_writes": sum(calls.get(op, 0) for op in WRITES),
        "stack_writes_all": [sum(r["calls"].get(op, 0) for op in WRITES) for r in runs],
        "listing_pages_moto": moto_pages,
        "listing_pages_aws": aws_pages,
        "calls_total_aws_equivalent": total - moto_pages + aws_pages,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "actions": last.get("actions", {}),
        "outcomes": last.get("outcomes", {}),
    }


def drive(ctx: Context, phase: str, config: Path) -> dict[str, Any]:
    """One controller phase in its own process; its AWS calls from `Aws.calls`."""
    started = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "-m", "bench.driver", phase, str(config), str(ctx.parallel or 0)],
        env=ctx.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"driver {phase} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    result["peak_rss_mb"] = result.pop("peak_rss_kb") / 1024
    if phase == "apply" and not result.get("ok"):
        raise RuntimeError(f"apply of {config} did not succeed: {result['outcomes']}")
    return result


def timed_process(
    command: list[str], env: dict[str, str], proxy: FaultProxy | None = None
) -> dict[str, Any]:
    """Wall time, exit code and peak RSS of a command, measured by GNU time around it.

    GNU time is a fresh small parent: a child forked straight from the runner would inherit
    the runner's (emulator-sized) high-water mark in its own `ru_maxrss`.
    """
    if proxy is not None:
        proxy.operations.clear()
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *command],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wall = time.perf_counter() - started
        text = rss.read().strip().splitlines()
    result: dict[str, Any] = {
        "wall_seconds": wall,
        "returncode": done.returncode,
        "peak_rss_mb": int(text[-1]) / 1024 if text and text[-1].isdigit() else float("nan"),
        "stderr_tail": done.stderr[-1500:],
    }
    if proxy is not None:
        result["calls"] = dict(proxy.operations)
    return result


def fresh(ctx: Context, document: dict[str, Any]) -> None:
    emulated.reset(ctx.emulator_url)
    emulated.seed(ctx.emulator_url, document, generate.asset_keys(document))


def repeated(times: int, once: Callable[[int], dict[str, Any]]) -> list[dict[str, Any]]:
    return [once(i) for i in range(times)]


def render_seconds(config_path: Path, repeat: int) -> dict[str, Any]:
    """Load + validate once, then render cold (template caches cleared) `repeat` times."""
    from controller.core import config, render

    started = time.perf_counter()
    loaded = config.load(config_path.read_bytes(), config_path.name, environ={})
    load_seconds = time.perf_counter() - started
    assert loaded.config is not None
    timings = []
    for _ in range(repeat):
        render.template_text.cache_clear()
        render._environment.cache_clear()
        render._body_digest.cache_clear()
        started = time.perf_counter()
        stacks = render.render_all(loaded.config)
        timings.append(time.perf_counter() - started)
    return {
        "load_validate_seconds": load_seconds,
        "render_seconds": median(timings),
        "render_seconds_all": [round(t, 4) for t in timings],
        "stacks": len(stacks),
        "distinct_templates": len({s.template_body for s in stacks}),
    }


def controller(ctx: Context, n: int, create_repeat: int, log: Callable[[str], None]) -> dict:
    document = generate.make_config(n)
    configs = ctx.scratch / "configs"
    path = generate.write(document, configs / f"{n}.json")
    result: dict[str, Any] = {"n": n, "render": render_seconds(path, ctx.repeat)}
    log(f"N={n}: render {result['render']['render_seconds']:.3f} s")

    def create(_: int) -> dict[str, Any]:
        fresh(ctx, document)
        return drive(ctx, "apply", path)

    result["create_all"] = summarize(repeated(create_repeat, create), 0)
    deployed = emulated.stack_count(ctx.emulator_url)
    if deployed != n:
        raise RuntimeError(f"N={n}: {deployed} stacks deployed, expected {n}")
    log(f"N={n}: create all {result['create_all']['wall_seconds']:.1f} s")
    for phase in ("plan", "apply"):
        runs = repeated(ctx.repeat, lambda _, p=phase: drive(ctx, p, path))
        summary = summarize(runs, n)
        if set(summary["actions"]) != {"unchanged"}:
            raise RuntimeError(f"N={n}: no-op {phase} planned {summary['actions']}")
        result[f"noop_{phase}"] = summary
        log(f"N={n}: no-op {phase} {summary['wall_seconds']:.2f} s, {summary['calls_total']} calls")
    result["cli_noop_plan"] = cli_plan(ctx, path)

    def change(round_: int) -> dict[str, Any]:
        changed = generate.write(
            generate.change_one(document, round_), configs / f"{n}-change-{round_}.json"
        )
        return drive(ctx, "apply", changed)

    result["change_one"] = summarize(repeated(ctx.repeat, change), n)
    log(f"N={n}: change one {result['change_one']['stack_writes_all']} stack writes")
    return result


def cli_plan(ctx: Context, path: Path) -> dict[str, Any]:
    """`mlops-controller plan` itself, end to end: interpreter start, table printing and all."""
    runs = [
        timed_process([CLI, "plan", "--config", str(path)], ctx.env, ctx.proxy)
        for _ in range(ctx.repeat)
    ]
    failed = [r for r in runs if r["returncode"] != 0]
    if failed:
        raise RuntimeError(f"mlops-controller plan exited {failed[0]['returncode']}")
    return {
        "wall_seconds": median([r["wall_seconds"] for r in runs]),
        "wall_seconds_all": [round(r["wall_seconds"], 3) for r in runs],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "calls_at_proxy": runs[-1]["calls"],
    }


def help_seconds(repeat: int) -> dict[str, Any]:
    env = dict(os.environ)
    runs = [timed_process([CLI, "--help"], env) for _ in range(max(5, repeat))]
    return {
        "wall_seconds": median([r["wall_seconds"] for r in runs]),
        "wall_seconds_all": [round(r["wall_seconds"], 3) for r in runs],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }


def sceptre(
    ctx: Context,
    n: int,
    sceptre_bin: Path,
    noop_repeat: int,
    log: Callable[[str], None],
    diff: bool = True,
) -> dict[str, Any]:
    """Sceptre deploys its own copies of the N stacks into an emptied emulator, then launches
    again (nothing to do) and diffs, all through the same proxy."""
    from controller.core import config, render

    document = generate.make_config(n)
    path = generate.write(document, ctx.scratch / "configs" / f"{n}.json")
    loaded = config.load(path.read_bytes(), path.name, environ={})
    assert loaded.config is not None
    project = sceptre_compare.write_project(
        render.render_all(loaded.config), ctx.scratch / f"sceptre-{n}", emulated.REGION
    )
    fresh(ctx, document)
    command = [str(sceptre_bin), "--dir", str(project), "--no-colour"]
    env = ctx.env

    def phase(name: str, args: list[str], times: int) -> dict[str, Any]:
        runs = [timed_process([*command, *args], env, ctx.proxy) for _ in range(times)]
        bad = [r for r in runs if r["returncode"] != 0]
        if bad:
            raise RuntimeError(
                f"sceptre {name} exited {bad[0]['returncode']}:\n{bad[0]['stderr_tail']}"
            )
        calls = dict(sorted(Counter(runs[-1]["calls"]).items()))
        summary = {
            "runs": times,
            "wall_seconds": median([r["wall_seconds"] for r in runs]),
            "wall_seconds_all": [round(r["wall_seconds"], 3) for r in runs],
            "calls": calls,
            "calls_total": sum(calls.values()),
            "calls_total_all": [sum(r["calls"].values()) for r in runs],
            "stack_writes": sum(calls.get(op, 0) for op in WRITES),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        }
        log(
            f"N={n}: sceptre {name} {summary['wall_seconds']:.1f} s, {summary['calls_total']} calls"
        )
        return summary

    result = {"n": n, "create_all": phase("launch (create all)", ["launch", "-y", "."], 1)}
    deployed = emulated.stack_count(ctx.emulator_url)
    if deployed != n:
        raise RuntimeError(f"N={n}: Sceptre deployed {deployed} stacks, expected {n}")
    result["noop_launch"] = phase("no-op launch", ["launch", "-y", "."], noop_repeat)
    if diff:
        result["diff"] = phase("diff", ["diff", "."], noop_repeat)
    return result
