"""The package's layers: imports point down (cli -> gitops -> present -> aws -> core), the
core touches neither AWS nor git, so the planner and the renderer stay testable offline, AWS
clients are made only in aws/, and rich is used only in present/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "controller"
LAYERS = ("core", "aws", "present", "gitops", "cli")
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


@pytest.mark.parametrize(
    "path",
    [p for p in _modules() if _layer(p) != "present"],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_rich_is_used_only_in_the_presentation_package(path: Path) -> None:
    for name in _imports(path):
        assert name.split(".")[0] != "rich", f"{path.name} imports {name}: draw it in present/"


@pytest.mark.parametrize(
    "path", [p for p in _modules() if _layer(p) != "aws"], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_aws_clients_are_made_and_called_only_in_the_aws_layer(path: Path) -> None:
    """No boto3 or botocore import and no `.client(...)` outside aws/: every AWS call, and
    every error of one, stays behind that boundary."""
    for name in _imports(path):
        assert name.split(".")[0] not in ("boto3", "botocore"), f"{path.name} imports {name}"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in ("client", "polling_client"), (
                f"{path.name}:{node.lineno} makes an AWS client: call a function of aws/"
            )
