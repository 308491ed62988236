"""The plot of results.json: wall time and AWS calls against N, controller and Sceptre.

`python -m bench.plot results.json plot.png` needs matplotlib (the runner uses the benchmark
venv's, never the project's); `write_svg` draws a plain SVG with the standard library instead.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

SERIES = (
    ("controller", "noop_plan", "controller no-op plan", "#1f77b4"),
    ("controller", "noop_apply", "controller no-op apply", "#2ca02c"),
    ("sceptre", "noop_launch", "sceptre no-op launch", "#d62728"),
    ("sceptre", "diff", "sceptre diff", "#ff7f0e"),
)
METRICS = (("wall_seconds", "wall time (s)"), ("calls_total", "AWS calls"))


def series(results: dict[str, Any]) -> list[tuple[str, str, list[tuple[int, dict[str, Any]]]]]:
    out = []
    for tool, phase, label, colour in SERIES:
        points = [(row["n"], row[phase]) for row in results[tool] if phase in row]
        if points:
            out.append((label, colour, points))
    return out


def write_png(results_json: Path, target: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = json.loads(results_json.read_text())
    latency = results["settings"]["latency_ms"]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, (metric, title) in zip(axes, METRICS, strict=True):
        for label, colour, points in series(results):
            xs = [n for n, _ in points]
            ys = [max(p[metric], 1e-3) for _, p in points]
            axis.plot(xs, ys, marker="o", label=label, color=colour)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("pipelines (N)")
        axis.set_title(f"{title}, {latency:g} ms latency")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(target, dpi=100)
    return target


def write_svg(results_json: Path, target: Path) -> Path:
    """Log-log lines in a hand-written SVG, for a machine without matplotlib."""
    results = json.loads(results_json.read_text())
    width, height, pad = 420, 300, 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * width}" height="{height}">']
    for panel, (metric, title) in enumerate(METRICS):
        lines = series(results)
        values = [p[metric] for _, _, pts in lines for _, p in pts if p[metric] > 0]
        ns = [n for _, _, pts in lines for n, _ in pts]
        if not values:
            continue
        lo, hi = math.log10(min(values)), math.log10(max(values)) + 1e-9
        nlo, nhi = math.log10(min(ns)), math.log10(max(ns)) + 1e-9
        left = panel * width

        def x(n: float, left: int = left, nlo: float = nlo, nhi: float = nhi) -> float:
            return left + pad + (math.log10(n) - nlo) / (nhi - nlo) * (width - 2 * pad)

        def y(v: float, lo: float = lo, hi: float = hi) -> float:
            return height - pad - (math.log10(max(v, 1e-9)) - lo) / (hi - lo) * (height - 2 * pad)

        parts.append(f'<text x="{left + pad}" y="20" font-size="13">{title} (log-log)</text>')
        for index, (label, colour, points) in enumerate(lines):
            path = " ".join(f"{x(n):.1f},{y(p[metric]):.1f}" for n, p in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}"/>')
            parts.append(
                f'<text x="{left + pad}" y="{40 + 14 * index}" font-size="11" '
                f'fill="{colour}">{label}</text>'
            )
    parts.append("</svg>")
    target.write_text("\n".join(parts) + "\n")
    return target


if __name__ == "__main__":
    write_png(Path(sys.argv[1]), Path(sys.argv[2]))
