"""results.json -> the targets, results.md and the plot."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

from bench import sceptre_compare

PHASES = (
    ("create_all", "create all from empty (apply)"),
    ("noop_plan", "no-op plan"),
    ("noop_apply", "no-op apply"),
    ("change_one", "change one pipeline (apply)"),
)
SCEPTRE_PHASES = (
    ("create_all", "sceptre launch (create all)"),
    ("noop_launch", "sceptre launch (no-op)"),
    ("diff", "sceptre diff"),
)


def _largest(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(rows, key=lambda r: r["n"]) if rows else None


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def comparison(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Controller no-op plan/apply against Sceptre no-op launch/diff, at every common N."""
    sceptre = {r["n"]: r for r in results["sceptre"]}
    rows = []
    for ours in results["controller"]:
        theirs = sceptre.get(ours["n"])
        if theirs is None:
            continue
        for mine in ("noop_plan", "noop_apply"):
            for other in ("noop_launch", "diff"):
                if other not in theirs:
                    continue
                rows.append(
                    {
                        "n": ours["n"],
                        "controller": mine,
                        "sceptre": other,
                        "calls_ratio": _ratio(
                            theirs[other]["calls_total"], ours[mine]["calls_total"]
                        ),
                        "wall_ratio": _ratio(
                            theirs[other]["wall_seconds"], ours[mine]["wall_seconds"]
                        ),
                        "extrapolated": False,
                    }
                )
    return rows


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    top = _largest(results["controller"])
    if top is None:
        return out
    n = top["n"]
    limit = math.ceil(n / 100) + 5
    plan = top["noop_plan"]
    equivalent = plan["calls_total_aws_equivalent"]
    out.append(
        {
            "target": f"no-op plan of N={n}: at most ceil(N/100)+5 = {limit} AWS calls, 0 writes",
            "measured": f"{plan['calls_total']} calls on moto (DescribeStacks pages of 50), "
            f"{equivalent} with CloudFormation's pages of 100; {plan['stack_writes']} writes",
            "met": equivalent <= limit and plan["stack_writes"] == 0,
        }
    )
    writes = [w for r in results["controller"] for w in r["change_one"]["stack_writes_all"]]
    out.append(
        {
            "target": "change one of N: exactly one stack write",
            "measured": "stack writes per run: "
            + ", ".join(
                f"N={r['n']}: {r['change_one']['stack_writes_all']}" for r in results["controller"]
            ),
            "met": bool(writes) and all(w == 1 for w in writes),
        }
    )
    render = next((r for r in results["controller"] if r["n"] == 1000), None)
    if render is not None:
        seconds = render["render"]["render_seconds"]
        out.append(
            {
                "target": "render 1000 pipelines in < 0.5 s",
                "measured": f"{seconds:.3f} s (cold template cache, median)",
                "met": seconds < 0.5,
            }
        )
    out.extend(_sceptre_targets(results, top))
    help_seconds = results["help"]["wall_seconds"]
    out.append(
        {
            "target": "mlops-controller --help in < 0.3 s",
            "measured": f"{help_seconds:.3f} s (median, whole process)",
            "met": help_seconds < 0.3,
        }
    )
    peaks = {k: top[k]["peak_rss_mb"] for k, _ in PHASES} | {
        "cli_noop_plan": top["cli_noop_plan"]["peak_rss_mb"]
    }
    worst = max(peaks, key=lambda k: peaks[k])
    out.append(
        {
            "target": f"peak memory < 150 MB at N={n}",
            "measured": f"{peaks[worst]:.0f} MB at most ({worst}); "
            + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()),
            "met": peaks[worst] < 150,
        }
    )
    return out


def _sceptre_targets(results: dict[str, Any], top: dict[str, Any]) -> list[dict[str, Any]]:
    theirs = _largest(results["sceptre"])
    if theirs is None:
        return []
    n = top["n"]
    latency = results["settings"]["latency_ms"]
    ours = top["noop_apply"]
    launch = theirs["noop_launch"]
    scale = n / theirs["n"]
    label = "" if scale == 1 else f" (Sceptre run at N={theirs['n']}, scaled linearly to N={n})"
    equivalent = ours["calls_total_aws_equivalent"]
    calls = _ratio(launch["calls_total"] * scale, equivalent)
    calls_moto = _ratio(launch["calls_total"] * scale, ours["calls_total"])
    wall = _ratio(launch["wall_seconds"] * scale, ours["wall_seconds"])
    return [
        {
            "target": f"N={n}, {latency:g} ms latency: >= 100x fewer calls than Sceptre's "
            "no-op launch",
            "measured": f"{calls:.0f}x with CloudFormation's DescribeStacks pages of 100 "
            f"(controller no-op apply {equivalent} calls, Sceptre {launch['calls_total']}); "
            f"{calls_moto:.0f}x as counted on moto, whose pages hold 50 "
            f"({ours['calls_total']} calls){label}",
            "met": calls >= 100,
        },
        {
            "target": f"N={n}, {latency:g} ms latency: >= 5x less wall time than Sceptre's "
            "no-op launch",
            "measured": f"{wall:.1f}x (controller no-op apply {ours['wall_seconds']:.2f} s, "
            f"Sceptre {launch['wall_seconds']:.2f} s){label}",
            "met": wall >= 5,
        },
    ]


def _calls(ops: dict[str, int], limit: int = 4) -> str:
    top = sorted(ops.items(), key=lambda kv: -kv[1])[:limit]
    text = ", ".join(f"{op.split('.', 1)[-1]} {count}" for op, count in top)
    return text + (", ..." if len(ops) > limit else "")


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    s = results["settings"]
    lines = [
        "# Benchmark results",
        "",
        f"{m['date']}; {m['cpus']} cores, {m['memory_gb']} GB; Python {m['python']}; "
        f"moto {m['moto']}, boto3 {m['boto3']}"
        + (f", Sceptre {m['sceptre']}" if "sceptre" in m else "")
        + f". Latency {s['latency_ms']:g} ms per AWS call (loopback proxy)"
        + (f", at most {s['max_rps']:g} calls/s" if s["max_rps"] else "")
        + f"; wall times are medians of {s['repeat']} runs unless the runs column says "
        f"otherwise; controller --parallel {s['parallel'] or 'default'}. Total run "
        f"{results['total_seconds'] / 60:.1f} min.",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    lines += [
        f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |"
        for t in results["targets"]
    ]
    lines += [
        "",
        "## Controller",
        "",
        "Each phase runs in its own process (`bench/driver.py`: the library calls of "
        "`mlops-controller plan`/`apply`); calls are `Aws.calls`; peak RSS is that process's "
        'VmHWM. "AWS-eq." counts DescribeStacks as CloudFormation pages it (100 a page; '
        "moto pages by 50).",
        "",
        "| N | phase | runs | wall s | calls | AWS-eq. calls | stack writes | peak RSS MB "
        "| calls by operation |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["controller"]:
        n = row["n"]
        r = row["render"]
        lines.append(
            f"| {n} | load + validate config (in-process) | 1 | "
            f"{r['load_validate_seconds']:.3f} | 0 | 0 | 0 | | |"
        )
        lines.append(
            f"| {n} | render (cold, in-process) | {len(r['render_seconds_all'])} | "
            f"{r['render_seconds']:.3f} | 0 | 0 | 0 | | {r['distinct_templates']} distinct "
            "templates |"
        )
        for key, title in PHASES:
            p = row[key]
            lines.append(
                f"| {n} | {title} | {p['runs']} | {p['wall_seconds']:.2f} | "
                f"{p['calls_total']} | {p['calls_total_aws_equivalent']} | "
                f"{p['stack_writes']} | {p['peak_rss_mb']:.0f} | {_calls(p['calls'])} |"
            )
        cli = row["cli_noop_plan"]
        lines.append(
            f"| {n} | `mlops-controller plan` (no-op, whole CLI process) | "
            f"{len(cli['wall_seconds_all'])} | {cli['wall_seconds']:.2f} | "
            f"{sum(cli['calls_at_proxy'].values())} | | 0 | {cli['peak_rss_mb']:.0f} | |"
        )
    h = results["help"]
    lines += [
        "",
        f"`mlops-controller --help`: {h['wall_seconds']:.3f} s (median of "
        f"{len(h['wall_seconds_all'])}), peak RSS {h['peak_rss_mb']:.0f} MB.",
    ]
    if results["sceptre"]:
        lines += [
            "",
            "## Sceptre, same stacks, same emulator, same latency",
            "",
            "Calls counted at the proxy by operation; peak RSS of the `sceptre` process. A "
            "no-op launch sends every stack's UpdateStack and CloudFormation (here moto) answers "
            '"No updates are to be performed.": those are write calls that change nothing.',
            "",
            "| N | phase | runs | wall s | calls | write calls | peak RSS MB "
            "| calls by operation |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in results["sceptre"]:
            for key, title in SCEPTRE_PHASES:
                if key not in row:
                    continue
                p = row[key]
                lines.append(
                    f"| {row['n']} | {title} | {p['runs']} | {p['wall_seconds']:.2f} | "
                    f"{p['calls_total']} | {p['stack_writes']} | {p['peak_rss_mb']:.0f} | "
                    f"{_calls(p['calls'])} |"
                )
        lines += [
            "",
            "## Ratios (Sceptre / controller; higher is better for the controller)",
            "",
            "| N | controller | Sceptre | calls ratio | wall-time ratio |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {c['n']} | {c['controller']} | {c['sceptre']} | {c['calls_ratio']:.0f}x | "
            f"{c['wall_ratio']:.1f}x |"
            for c in comparison(results)
        ]
    return "\n".join(lines) + "\n"


def plot(results_json: Path, out: Path) -> Path:
    """plot.png through matplotlib in the benchmark venv; plot.svg by hand without it."""
    python = sceptre_compare.VENV / "bin" / "python"
    target = out / "plot.png"
    if python.exists():
        done = subprocess.run(
            [str(python), "-m", "bench.plot", str(results_json), str(target)],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            return target
    from bench import plot as svg

    return svg.write_svg(results_json, out / "plot.svg")


def main(argv: list[str]) -> int:
    """Rewrite results.md and the plot (and the targets) from an existing results.json."""
    import json

    path = Path(argv[0]) if argv else Path("bench/results/results.json")
    results = json.loads(path.read_text())
    results["targets"] = targets(results)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (path.parent / "results.md").write_text(markdown(results))
    print(plot(path, path.parent))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
