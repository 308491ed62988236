"""Shared fixtures: a moto server on loopback for the whole session, real git repositories.

AWS tests talk to the server over real HTTP through the standard AWS_ENDPOINT_URL, exactly as
the controller talks to AWS; each test starts from an empty emulator.
"""

from __future__ import annotations

import json
import shutil
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mlops-config.json"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from controller.aws.emulator import moto_server

    port = _free_port()
    server = moto_server("127.0.0.1", port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty emulator reached through standard AWS environment variables."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in list(__import__("os").environ):
        if name.startswith("MLOPS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    yield moto_server


@pytest.fixture
def example_config() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return loaded


def commit_config(repo: git.Repo, config: dict[str, Any], message: str) -> str:
    path = Path(repo.working_dir) / "mlops-config.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    repo.index.add([str(path)])
    return str(repo.index.commit(message).hexsha)


def repo_with(path: Path, config: dict[str, Any], message: str) -> git.Repo:
    """A real git repository on `main` whose first commit holds `config`."""
    repo = git.Repo.init(path, initial_branch="main")
    with repo.config_writer() as writer:
        writer.set_value("user", "name", "Test User")
        writer.set_value("user", "email", "test@example.invalid")
    commit_config(repo, config, message)
    return repo


@pytest.fixture
def config_repo(tmp_path: Path, example_config: dict[str, Any]) -> git.Repo:
    """A real git repository whose first commit holds the example config."""
    return repo_with(tmp_path / "config-repo", example_config, "Add example pipelines")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    target = tmp_path / "work"
    target.mkdir()
    shutil.copy(EXAMPLE, target / "mlops-config.json")
    return target
