"""The controller as a wheel, so that `bootstrap` can publish exactly the code that runs it.

From a checkout (a clone, an editable install) the wheel is built by pip from a copy of the
source, with timestamps fixed so that the same source gives the same bytes. Installed from a
wheel, the controller rebuilds one from its installed files as its RECORD lists them. Either
way the result is named by its SHA-256, which the build verifies before installing it.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import controller
from controller.core.errors import DeployError

DISTRIBUTION = "mlops-controller"
SOURCE_DATE_EPOCH = "315532800"
"""1980-01-01, the earliest date a zip can hold: reproducible wheels."""
SOURCE_FILES = ("pyproject.toml", "README.md", "controller")
"""What the wheel is built from, besides the folders pyproject.toml maps into the package."""
NOT_REBUILT = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
"""Files the installer wrote, not the wheel."""


class WheelError(DeployError):
    """The controller's own wheel could not be made; the message says why."""


@dataclass(frozen=True)
class Wheel:
    filename: str
    body: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def key(self) -> str:
        """Where it lives in the assets bucket: named by its content, never overwritten."""
        return f"mlops-controller/wheels/{self.sha256}/{self.filename}"

    @staticmethod
    def read(path: Path) -> Wheel:
        if not path.name.endswith(".whl"):
            raise WheelError(f"{path}: not a wheel (expected a .whl file)")
        return Wheel(path.name, path.read_bytes())


def this_controller() -> Wheel:
    root = source_root()
    return build(root) if root is not None else rebuild_installed()


def source_root() -> Path | None:
    """The checkout this code runs from, if it runs from one."""
    root = Path(controller.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and f'name = "{DISTRIBUTION}"' in pyproject.read_text():
        return root
    return None


def source_parts(root: Path) -> tuple[str, ...]:
    """The files and folders the build reads: pyproject.toml's `package-dir` folders too
    (`blueprints/`, `examples/`), read from it so that a new mapping cannot be forgotten."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))
    mapped = pyproject.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    return (*SOURCE_FILES, *sorted(set(mapped.values())))


def build(root: Path) -> Wheel:
    """pip builds it from a copy of the source, so stale build output never gets in."""
    with tempfile.TemporaryDirectory() as scratch:
        source, out = Path(scratch) / "source", Path(scratch) / "out"
        for part in source_parts(root):
            origin = root / part
            if origin.is_dir():
                shutil.copytree(origin, source / part, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                source.mkdir(exist_ok=True)
                shutil.copy2(origin, source / part)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--quiet",
                "-w",
                str(out),
                str(source),
            ],
            env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
            capture_output=True,
            text=True,
            check=False,
        )
        wheels = sorted(out.glob("*.whl")) if out.exists() else []
        if done.returncode != 0 or len(wheels) != 1:
            raise WheelError(f"building the controller's wheel failed: {done.stderr.strip()}")
        return Wheel.read(wheels[0])


def rebuild_installed() -> Wheel:
    """A wheel of the installed distribution, from the files its RECORD lists."""
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise WheelError(f"{DISTRIBUTION} is not installed and no checkout was found") from exc
    files = sorted((f for f in distribution.files or () if _packaged(str(f))), key=lambda f: str(f))
    if not any(str(f).startswith("controller/") for f in files):
        raise WheelError(
            f"{DISTRIBUTION} is installed in a way that lists no package files "
            "(an editable install away from its checkout?): run bootstrap from the checkout"
        )
    version = distribution.version
    info = f"{DISTRIBUTION.replace('-', '_')}-{version}.dist-info"
    buffer = _Zip()
    for file in files:
        buffer.add(str(file), Path(str(file.locate())).read_bytes())
    buffer.add_record(f"{info}/RECORD")
    return Wheel(f"{DISTRIBUTION.replace('-', '_')}-{version}-py3-none-any.whl", buffer.bytes())


def _packaged(path: str) -> bool:
    parts = path.split("/")
    return (
        not path.startswith("..")
        and "__pycache__" not in parts
        and not path.endswith(".pyc")
        and parts[-1] not in NOT_REBUILT
    )


class _Zip:
    """A wheel archive with fixed timestamps and its RECORD of hashes and sizes."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, bytes]] = []

    def add(self, name: str, data: bytes) -> None:
        self._entries.append((name, data))

    def add_record(self, name: str) -> None:
        lines = [f"{n},sha256={_digest(d)},{len(d)}" for n, d in self._entries]
        self._entries.append((name, ("\n".join([*lines, f"{name},,"]) + "\n").encode()))

    def bytes(self) -> bytes:
        with tempfile.SpooledTemporaryFile() as raw:
            with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
                for name, data in self._entries:
                    entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                    entry.external_attr = 0o644 << 16
                    archive.writestr(entry, data, zipfile.ZIP_DEFLATED)
            raw.seek(0)
            return raw.read()


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
