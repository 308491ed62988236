"""The stages scenario: a no-op plan over three stages of N pipelines against one stage.

    python -m bench.stages [--sizes 10,100] [--latency-ms 50] [--repeat 3] [--out bench/results]

Each stage's plan is the single-account plan in that stage's account, so a no-op plan over
three stages should cost three times one stage's reads, plus one AssumeRole per stage (and
one listing of the orchestrator account, which holds the image builders): no call per
pipeline, nothing that grows with the number of stages beyond that. For each N the same
pipelines are deployed as a single-account config and their no-op plan timed; then, in an
emptied emulator, promoted through three stage accounts (automatic gates) and the staged no-op
plan timed. Each plan runs in a process of its own, behind the latency proxy, its calls
counted by `Aws.calls` in every account.

Also a driver, like `bench.driver`: `python -m bench.stages plan|apply CONFIG` runs one phase
of a staged config and prints one JSON line.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import generate

STAGES = (("dev", "111111111111"), ("staging", "222222222222"), ("prod", "333333333333"))
AWS_PAGE = 100
MOTO_PAGE = 50


def staged_config(document: dict[str, Any]) -> dict[str, Any]:
    """The same pipelines through three stage accounts, instance types one value per stage."""
    staged = copy.deepcopy(document)
    staged["settings"]["stages"] = [
        {"name": name, "account_id": account, "role_arn": f"arn:aws:iam::{account}:role/stage"}
        for name, account in STAGES
    ]
    for pipeline in staged["pipelines"]:
        value = pipeline.get("inference_instance")
        if isinstance(value, str):
            pipeline["inference_instance"] = {"dev": value, "staging": value, "prod": value}
    return staged


# The driver: one phase in a process of its own


def drive_phase(phase: str, path: Path) -> dict[str, Any]:
    started = time.perf_counter()
    from controller.aws.session import Aws
    from controller.core import config
    from controller.gitops import staged

    imported = time.perf_counter()
    loaded = config.load(path.read_bytes(), path.name, revision="b" * 40, environ={})
    if loaded.config is None:
        raise SystemExit("\n".join(d.format() for d in loaded.diagnostics))
    cfg = loaded.config
    ready = time.perf_counter()
    sessions = staged.Sessions(Aws(region=cfg.settings.region), cfg)
    result: dict[str, Any] = {}
    if phase == "plan":
        plans = staged.plan_all(cfg, sessions)
        problems = [p.problem for p in plans if p.plan is None]
        if problems:
            raise SystemExit("; ".join(problems))
        result["actions"] = {
            p.step.name: dict(Counter(a.action.value for a in p.plan.actions))
            for p in plans
            if p.plan is not None
        }
        result["pipelines"] = {
            p.step.name: len(p.plan.actions) for p in plans if p.plan is not None
        }
    else:
        run = staged.Run(commit=str(cfg.revision), actor="bench")
        runs = staged.promote(cfg, sessions, run)
        result["outcomes"] = {r.step.name: r.outcome.value if r.outcome else None for r in runs}
        result["messages"] = {r.step.name: r.message for r in runs}
        result["ok"] = all(r.outcome is not None and r.outcome.value == "applied" for r in runs)
    result["seconds"] = {
        "import": imported - started,
        "load": ready - imported,
        "run": time.perf_counter() - ready,
        "total": time.perf_counter() - started,
    }
    result["calls"] = dict(sessions.calls)
    return result


# The scenario


def scenario(ctx: Any, n: int, log: Any) -> dict[str, Any]:
    """Deploy N pipelines as one stage and as three, then time both no-op plans."""
    from bench import measure

    single = generate.make_config(n)
    staged = staged_config(single)
    configs = ctx.scratch / "configs"
    single_path = generate.write(single, configs / f"{n}.json")
    staged_path = generate.write(staged, configs / f"{n}-staged.json")
    measure.fresh(ctx, single)
    measure.drive(ctx, "apply", single_path)
    one = [measure.drive(ctx, "plan", single_path) for _ in range(ctx.repeat)]
    measure.fresh(ctx, single)
    grant(ctx.emulator_url, single)
    created = _drive(ctx, "apply", staged_path)
    if not created["ok"]:
        raise RuntimeError(f"N={n}: the staged apply stopped: {created['messages']}")
    log(f"N={n}: deployed in one account, then (emptied) through {len(STAGES)} stages")
    three = [_drive(ctx, "plan", staged_path) for _ in range(ctx.repeat)]
    for run in three:
        if any(set(actions) != {"unchanged"} for actions in run["actions"].values()):
            raise RuntimeError(f"N={n}: the staged no-op plan planned {run['actions']}")
    result = summary(n, one, three)
    log(
        f"N={n}: no-op plan {result['single']['calls_total']} calls / "
        f"{result['single']['wall_seconds']:.2f} s in one stage, "
        f"{result['staged']['calls_total']} calls / {result['staged']['wall_seconds']:.2f} s "
        f"over three ({result['calls_ratio']:.2f}x calls, {result['wall_ratio']:.2f}x time)"
    )
    return result


def summary(n: int, one: list[dict[str, Any]], three: list[dict[str, Any]]) -> dict[str, Any]:
    builders = sum(1 for p in generate.make_config(n)["pipelines"] if "image_tag" in p)

    def side(runs: list[dict[str, Any]]) -> dict[str, Any]:
        calls = dict(sorted(runs[-1]["calls"].items()))
        return {
            "wall_seconds": _median([r["wall_seconds"] for r in runs]),
            "wall_seconds_all": [round(r["wall_seconds"], 3) for r in runs],
            "calls": calls,
            "calls_total": sum(calls.values()),
        }

    single, staged = side(one), side(three)
    per_stage = n - builders
    pages = {
        "single_moto": math.ceil(n / MOTO_PAGE),
        "single_aws": math.ceil(n / AWS_PAGE),
        "staged_moto": _pages(builders, MOTO_PAGE) + len(STAGES) * _pages(per_stage, MOTO_PAGE),
        "staged_aws": _pages(builders, AWS_PAGE) + len(STAGES) * _pages(per_stage, AWS_PAGE),
    }
    listings = staged["calls"].get("cloudformation.DescribeStacks", 0)
    return {
        "n": n,
        "stages": len(STAGES),
        "image_builders_in_the_orchestrator": builders,
        "pipelines_per_stage": per_stage,
        "single": single,
        "staged": staged,
        "describe_stacks_pages": pages,
        "staged_calls_beyond_listing": staged["calls_total"] - listings,
        "calls_ratio": staged["calls_total"] / single["calls_total"],
        "listing_ratio": listings / max(1, single["calls"].get("cloudformation.DescribeStacks", 0)),
        "wall_ratio": staged["wall_seconds"] / single["wall_seconds"],
    }


def grant(url: str, document: dict[str, Any]) -> None:
    """The orchestrator's grants to the stage accounts (what the bootstrap's StageAccountIds
    deploys), straight to the emulator: the bucket and every group's image repository."""
    import boto3

    from bench.emulated import REGION
    from controller.core import grants

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    accounts = [account for _, account in STAGES]
    bucket = document["settings"]["assets_bucket"]
    policy = {"Version": "2012-10-17", "Statement": [grants.bucket_statement(bucket, accounts)]}
    client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    ecr = client("ecr")
    text = json.dumps(
        {"Version": "2012-10-17", "Statement": [grants.repository_statement(accounts)]}
    )
    repositories = {p["ecr_repo_name"] for p in document["pipelines"] if "ecr_repo_name" in p}
    repositories |= {
        p["custom_image_uri"].partition("/")[2].rpartition(":")[0]
        for p in document["pipelines"]
        if "custom_image_uri" in p
    }
    for repository in sorted(repositories):
        ecr.create_repository(repositoryName=repository)
        ecr.set_repository_policy(repositoryName=repository, policyText=text)


def markdown(results: list[dict[str, Any]], latency_ms: float) -> str:
    lines = [
        "# Stages: a no-op plan over three stages against one",
        "",
        f"Latency {latency_ms:g} ms a call. Calls as counted on moto (DescribeStacks pages of "
        f"{MOTO_PAGE}); the pages CloudFormation would need (pages of {AWS_PAGE}) alongside.",
        "",
        "| N | one stage: calls | three stages: calls | of which | ratio | DescribeStacks pages "
        "(CloudFormation) one / three | one stage: s | three stages: s | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        staged_calls = r["staged"]["calls"]
        of_which = ", ".join(f"{op} {count}" for op, count in staged_calls.items())
        pages = r["describe_stacks_pages"]
        lines.append(
            f"| {r['n']} | {r['single']['calls_total']} | {r['staged']['calls_total']} | "
            f"{of_which} | {r['calls_ratio']:.2f}x | {pages['single_aws']} / "
            f"{pages['staged_aws']} | {r['single']['wall_seconds']:.2f} | "
            f"{r['staged']['wall_seconds']:.2f} | {r['wall_ratio']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def _drive(ctx: Any, phase: str, path: Path) -> dict[str, Any]:
    from bench.measure import PYTHON, ROOT

    started = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "-m", "bench.stages", phase, str(path)],
        env=ctx.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.stages {phase} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - started
    return result


def _pages(count: int, page: int) -> int:
    return max(1, math.ceil(count / page))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def run_all(ctx: Any, sizes: list[int], latency_ms: float, out: Path, log: Any) -> list[Any]:
    """Every size; results in stages.json and stages.md next to the benchmark's own."""
    results = [scenario(ctx, n, log) for n in sizes]
    out.mkdir(parents=True, exist_ok=True)
    (out / "stages.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (out / "stages.md").write_text(markdown(results, latency_ms))
    return results


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("plan", "apply"):
        print(json.dumps(drive_phase(argv[0], Path(argv[1]))))
        return 0
    from bench import emulated, measure
    from bench.proxy import FaultProxy
    from bench.run import quiet
    from controller.aws.emulator import Emulator

    parser = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__)
    parser.add_argument("--sizes", type=lambda t: [int(x) for x in t.split(",")], default=[10, 100])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    quiet()
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", flush=True)

    emulated.patch_moto()
    emulator = Emulator(emulated.REGION)
    url = emulator.start()
    proxy = FaultProxy(url, latency_ms=args.latency_ms)
    proxy.start()
    ctx = measure.Context(url, proxy, args.out / "raw", args.repeat, 4)
    try:
        run_all(ctx, args.sizes, args.latency_ms, args.out, log)
    finally:
        proxy.stop()
        emulator.stop()
    log(f"wrote {args.out / 'stages.json'} and stages.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
