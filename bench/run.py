"""`make bench`: the controller at 10, 100 and 1000 pipelines, and Sceptre on the same stacks.

    python -m bench.run [--sizes 10,100,1000] [--latency-ms 50] [--max-rps R] [--repeat 3]
                        [--sceptre/--no-sceptre] [--sceptre-sizes ...]
                        [--sceptre-diff-max-n 1000] [--out bench/results]

Writes results.json, results.md and plot.png (or plot.svg without matplotlib) to --out, and
scratch (configs, Sceptre projects) to --out/raw.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
import warnings
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import emulated, measure, report, sceptre_compare, stages
from bench.proxy import FaultProxy


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--sizes", type=_sizes, default=[10, 100, 1000])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--max-rps", type=float, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--create-repeat-max-n",
        type=int,
        default=100,
        help="repeat create-all only up to this N (above it, one run: it needs an empty "
        "emulator each time and takes minutes)",
    )
    parser.add_argument(
        "--parallel", type=int, default=None, help="the controller's --parallel (default: its own)"
    )
    parser.add_argument("--sceptre", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--sceptre-sizes", type=_sizes, default=None, help="default: the same as --sizes"
    )
    parser.add_argument(
        "--sceptre-diff-max-n",
        type=int,
        default=1000,
        help="run `sceptre diff` only up to this N (at N=1000 it alone takes about 6 minutes)",
    )
    parser.add_argument(
        "--stages-sizes",
        type=_sizes,
        default=[10, 100],
        help="N of the stages scenario, bench/stages.py (empty: skip it)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    return parser.parse_args(argv)


def quiet() -> None:
    """moto warns once per unsupported resource of every stack; the request log is noise."""
    warnings.filterwarnings("ignore")
    for name in ("werkzeug", "moto"):
        logging.getLogger(name).setLevel(logging.ERROR)


def machine() -> dict[str, Any]:
    with open("/proc/meminfo") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(total_kb / 1024 / 1024),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "moto": metadata.version("moto"),
        "boto3": metadata.version("boto3"),
        "date": date.today().isoformat(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    quiet()
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", flush=True)

    from controller.aws.emulator import Emulator

    emulated.patch_moto()
    emulated.widen_listen_backlogs()
    emulator = Emulator(emulated.REGION)
    url = emulator.start()
    proxy = FaultProxy(url, latency_ms=args.latency_ms, max_rps=args.max_rps)
    proxy.start()
    ctx = measure.Context(url, proxy, args.out / "raw", args.repeat, args.parallel)
    results: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "sizes": args.sizes,
            "latency_ms": args.latency_ms,
            "max_rps": args.max_rps,
            "repeat": args.repeat,
            "parallel": args.parallel,
            "moto_describe_stacks_page": measure.MOTO_PAGE,
            "aws_describe_stacks_page": measure.AWS_PAGE,
        },
        "controller": [],
        "sceptre": [],
    }
    try:
        results["help"] = measure.help_seconds(args.repeat)
        log(f"mlops-controller --help {results['help']['wall_seconds']:.3f} s")
        for n in args.sizes:
            create_repeat = args.repeat if n <= args.create_repeat_max_n else 1
            results["controller"].append(measure.controller(ctx, n, create_repeat, log))
        if args.stages_sizes:
            results["stages"] = stages.run_all(
                ctx, args.stages_sizes, args.latency_ms, args.out, log
            )
        if args.sceptre:
            binary = sceptre_compare.ensure_venv()
            results["machine"]["sceptre"] = sceptre_compare.version()
            for n in args.sceptre_sizes or args.sizes:
                noop_repeat = args.repeat if n <= args.create_repeat_max_n else 1
                diff = n <= args.sceptre_diff_max_n
                results["sceptre"].append(
                    measure.sceptre(ctx, n, binary, noop_repeat, log, diff=diff)
                )
    finally:
        proxy.stop()
        emulator.stop()
    results["total_seconds"] = time.perf_counter() - started
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["targets"] = report.targets(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (args.out / "results.md").write_text(report.markdown(results))
    plot = report.plot(args.out / "results.json", args.out)
    log(f"wrote {args.out / 'results.json'}, results.md and {plot.name}")
    for target in results["targets"]:
        log(f"{'met ' if target['met'] else 'MISS'} {target['target']}: {target['measured']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
