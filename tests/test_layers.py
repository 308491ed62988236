"""The package's layers: imports point down (cli -> gitops -> aws -> core), and the core
touches neither AWS nor git, so the planner and the renderer stay testable offline."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "controller"
LAYERS = ("core", "aws", "gitops", "cli")
WORLD = ("boto3", "botocore", "git", "moto")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


def _layer(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    own = LAYERS.index(_layer(path))
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "controller" and len(parts) > 1 and parts[1] in LAYERS:
            assert LAYERS.index(parts[1]) <= own, f"{path.name} imports {name}, a higher layer"


@pytest.mark.parametrize(
    "path", [p for p in _modules() if _layer(p) == "core"], ids=lambda p: p.name
)
def test_the_core_touches_no_aws_and_no_git(path: Path) -> None:
    for name in _imports(path):
        assert name.split(".")[0] not in WORLD, f"{path.name} imports {name}"


def test_every_module_is_in_a_layer() -> None:
    assert {_layer(p) for p in _modules()} <= set(LAYERS)
