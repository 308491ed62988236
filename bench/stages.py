"""The stages scenario: a no-op plan over three stages of N pipelines against one stage.

    python -m bench.stages [--sizes 10,100] [--latency-ms 50] [--repeat 3] [--out bench/results]

Each stage's plan is the single-account plan in that stage's account, so a no-op plan over
three stages should cost three times one stage's reads: one listing and one AssumeRole per
stage, plus the one listing of the orchestrator account (its image builders) that every
staged plan makes; nothing per pipeline, and stages are planned at the same time. For each N
the same pipelines are deployed as a single-account config and its no-op plan timed; then, in
an emptied emulator, promoted through three stage accounts (automatic gates), and the no-op
plans of a one-stage and of the three-stage config timed. Each plan runs in a process of its
own, behind the latency proxy, its calls counted by `Aws.calls` in every account.

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


def staged_config(document: dict[str, Any], stages: int = len(STAGES)) -> dict[str, Any]:
    """The same pipelines through the first `stages` stage accounts, instance types one value
    per stage."""
    staged = copy.deepcopy(document)
    chosen = STAGES[:stages]
    staged["settings"]["stages"] = [
        {"name": name, "account_id": account, "role_arn": f"arn:aws:iam::{account}:role/stage"}
        for name, account in chosen
    ]
    for pipeline in staged["pipelines"]:
        value = pipeline.get("inference_instance")
        if isinstance(value, str):
            pipeline["inference_instance"] = {name: value for name, _ in chosen}
    return staged


# The driver: one phase in a process of its own


def drive_phase(phase: str, path: Path) -> dict[str, Any]:
    started = time.perf_counter()
    from controller.aws.session import Aws
    from controller.core import config
    from controller.core.chain import chain_of
    from controller.gitops import chain as use_case

    imported = time.perf_counter()
    loaded = config.load(path.read_bytes(), path.name, revision="b" * 40, environ={})
    if loaded.config is None:
        raise SystemExit("\n".join(d.format() for d in loaded.diagnostics))
    cfg = loaded.config
    ready = time.perf_counter()
    sessions = use_case.Sessions(Aws(region=cfg.settings.region), cfg)
    # The config's own policy, as the one in force: the benchmark measures planning, not the
    # policy record's one read.
    chain = chain_of(cfg)
    result: dict[str, Any] = {}
    if phase == "plan":
        plans = use_case.plan(chain, sessions).steps
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
        request = use_case.PromoteRequest(commit=cfg.revision, actor="bench")
        runs = use_case.promote(chain, sessions, request).steps
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
    """N pipelines as a single-account config, then through one stage and through three."""
    from bench import measure

    single = generate.make_config(n)
    configs = ctx.scratch / "configs"
    single_path = generate.write(single, configs / f"{n}.json")
    one_path = generate.write(staged_config(single, 1), configs / f"{n}-one-stage.json")
    three_path = generate.write(staged_config(single), configs / f"{n}-three-stages.json")
    measure.fresh(ctx, single)
    measure.drive(ctx, "apply", single_path)
    plain = [measure.drive(ctx, "plan", single_path) for _ in range(ctx.repeat)]
    measure.fresh(ctx, single)
    grant(ctx.emulator_url, single)
    created = _drive(ctx, "apply", three_path)
    if not created["ok"]:
        raise RuntimeError(f"N={n}: the staged apply stopped: {created['messages']}")
    log(f"N={n}: deployed in one account, then (emptied) through {len(STAGES)} stages")
    one = [_drive(ctx, "plan", one_path) for _ in range(ctx.repeat)]
    three = [_drive(ctx, "plan", three_path) for _ in range(ctx.repeat)]
    for run in one + three:
        if any(set(actions) != {"unchanged"} for actions in run["actions"].values()):
            raise RuntimeError(f"N={n}: a staged no-op plan planned {run['actions']}")
    result = summary(n, plain, one, three)
    log(
        f"N={n}: no-op plan: single account {result['single_account']['calls_total']} calls "
        f"{result['single_account']['wall_seconds']:.2f} s; one stage "
        f"{result['one_stage']['calls_total']} calls {result['one_stage']['wall_seconds']:.2f} s; "
        f"three stages {result['three_stages']['calls_total']} calls "
        f"{result['three_stages']['wall_seconds']:.2f} s ({result['calls_ratio']:.2f}x calls, "
        f"{result['wall_ratio']:.2f}x time of one stage)"
    )
    return result


def summary(
    n: int, plain: list[dict[str, Any]], one: list[dict[str, Any]], three: list[dict[str, Any]]
) -> dict[str, Any]:
    builders = sum(1 for p in generate.make_config(n)["pipelines"] if "image_tag" in p)
    per_stage = n - builders

    def side(runs: list[dict[str, Any]]) -> dict[str, Any]:
        calls = dict(sorted(runs[-1]["calls"].items()))
        return {
            "wall_seconds": _median([r["wall_seconds"] for r in runs]),
            "wall_seconds_all": [round(r["wall_seconds"], 3) for r in runs],
            "calls": calls,
            "calls_total": sum(calls.values()),
        }

    def pages(stages: int, page: int) -> int:
        return _pages(builders, page) + stages * _pages(per_stage, page)

    single, first, all_three = side(plain), side(one), side(three)
    return {
        "n": n,
        "image_builders_in_the_orchestrator": builders,
        "pipelines_per_stage": per_stage,
        "single_account": single,
        "one_stage": first,
        "three_stages": all_three,
        "describe_stacks_pages_aws": {
            "single_account": _pages(n, AWS_PAGE),
            "one_stage": pages(1, AWS_PAGE),
            "three_stages": pages(len(STAGES), AWS_PAGE),
        },
        "calls_ratio": all_three["calls_total"] / first["calls_total"],
        "wall_ratio": all_three["wall_seconds"] / first["wall_seconds"],
        "calls_over_single_account": all_three["calls_total"] / single["calls_total"],
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
        f"{MOTO_PAGE}); the DescribeStacks pages CloudFormation needs (pages of {AWS_PAGE}) "
        "alongside. A staged config lists the orchestrator account (its image builders) and "
        "each stage account, and assumes each stage's role once.",
        "",
        "| N | single account: calls, s | one stage: calls, s | three stages: calls, s | "
        "three / one stage | three stages: calls by operation | DescribeStacks pages on "
        "CloudFormation (single / one / three) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        single, one, three = r["single_account"], r["one_stage"], r["three_stages"]
        of_which = ", ".join(f"{op} {count}" for op, count in three["calls"].items())
        pages = r["describe_stacks_pages_aws"]
        lines.append(
            f"| {r['n']} | {single['calls_total']}, {single['wall_seconds']:.2f} | "
            f"{one['calls_total']}, {one['wall_seconds']:.2f} | "
            f"{three['calls_total']}, {three['wall_seconds']:.2f} | "
            f"{r['calls_ratio']:.2f}x calls, {r['wall_ratio']:.2f}x time | {of_which} | "
            f"{pages['single_account']} / {pages['one_stage']} / {pages['three_stages']} |"
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
