"""The same stacks managed by Sceptre, for comparison.

Sceptre is installed from PyPI into a venv of its own (`bench/.sceptre-venv`), never into the
project. Its project is generated from the controller's own rendering: one template file per
distinct template body and one stack config per pipeline with the same parameters, so both
tools deploy identical stacks. Sceptre's boto3 (>= 1.28) honours AWS_ENDPOINT_URL, so it
reaches the emulator through the same proxy and the same standard variables as the
controller; its AWS calls are counted by the proxy, by operation.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
VENV = HERE / ".sceptre-venv"
PROJECT_CODE = "sceptre"


def ensure_venv(venv: Path = VENV) -> Path:
    """`sceptre` (and matplotlib for the plot) in a venv of their own; the path to sceptre."""
    sceptre = venv / "bin" / "sceptre"
    if not sceptre.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "sceptre", "matplotlib"], check=True)
    return sceptre


def version(venv: Path = VENV) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "sceptre"), "--version"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().rsplit(" ", 1)[-1]


def write_project(rendered: Any, root: Path, region: str) -> Path:
    """A Sceptre project deploying `rendered` (the controller's RenderedStacks) as they are."""
    config = root / "config"
    templates = root / "templates"
    config.mkdir(parents=True, exist_ok=True)
    templates.mkdir(parents=True, exist_ok=True)
    (config / "config.yaml").write_text(
        yaml.safe_dump({"project_code": PROJECT_CODE, "region": region})
    )
    written: set[str] = set()
    for stack in rendered:
        digest = hashlib.sha256(stack.template_body.encode()).hexdigest()[:16]
        template = f"{digest}.yaml"
        if template not in written:
            (templates / template).write_text(stack.template_body)
            written.add(template)
        body = {
            "template": {"type": "file", "path": template},
            # As the controller sends them: the pipeline's values and the spec hash.
            "parameters": {p["ParameterKey"]: p["ParameterValue"] for p in stack.boto_parameters()},
        }
        (config / f"{stack.stack_name}.yaml").write_text(yaml.safe_dump(body, width=10_000))
    return root


@dataclass(frozen=True)
class Run:
    seconds: float
    returncode: int
    output: str


def run(sceptre: Path, project: Path, command: list[str], env: dict[str, str]) -> Run:
    """`sceptre --dir project COMMAND`; stdout is discarded (a diff of 1000 stacks is long)."""
    started = time.perf_counter()
    done = subprocess.run(
        [str(sceptre), "--dir", str(project), "--no-colour", *command],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Run(time.perf_counter() - started, done.returncode, done.stderr[-2000:])
