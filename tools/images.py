"""Make `controller/core/images.json` from the SageMaker SDK's `image_uri_config` files.

The original orchestrator resolved `model_framework` / `model_framework_version` with
`sagemaker.image_uris.retrieve`, so every built-in algorithm and version the SDK knows was
accepted. The controller must not depend on the SDK at run time (it pulls pandas and numpy
into a deploy tool), so this script turns the SDK's data files into the controller's table.

Two steps, so that neither CI nor `make setup` needs the SDK or the network:

    python -m tools.images fetch [VERSION]  # pip download --no-deps sagemaker-core==VERSION;
                                            # copy the files the table reads into
                                            # tools/image_uri_config/ (with SOURCE.json and
                                            # botocore's partitions), then generate
    python -m tools.images                  # tools/image_uri_config/ -> images.json
    python -m tools.images --check          # exit 1 when images.json is not what they make

tests/test_images.py checks that the checked-in table is what `generate` makes from the
checked-in copy, and that the copy is the one SOURCE.json names.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PINNED = ROOT / "tools" / "image_uri_config"
TABLE = ROOT / "controller" / "core" / "images.json"
PACKAGE = "sagemaker-core"

ALGORITHMS = (
    "blazingtext",
    "factorization-machines",
    "forecasting-deepar",
    "image-classification",
    "ipinsights",
    "kmeans",
    "knn",
    "lda",
    "linear-learner",
    "ntm",
    "object-detection",
    "object2vec",
    "pca",
    "randomcutforest",
    "semantic-segmentation",
    "seq2seq",
    "xgboost",
)
"""SageMaker's built-in algorithms: the names `model_framework` may take."""

SCOPES = {name: ("inference", "training") for name in ALGORITHMS} | {
    "model-monitor": ("monitoring",),
    "clarify": ("processing",),
}
"""The scopes read from each file: algorithms serve (inference) and train (training); the
Model Monitor analyzer and Clarify run the monitors' jobs. Graviton-only scopes are left out:
the original passed no instance type, so it never resolved them."""

KNOWN_FIELDS = {"registries", "repository", "processors", "py_versions", "tag_prefix"}


class Unsupported(ValueError):
    """The SDK's file has a shape this script does not translate; extend it, do not guess."""


def generate(configs: Mapping[str, Any], partitions: list[dict[str, Any]], source: str) -> str:
    """The text of images.json for the given SDK files (name -> parsed JSON)."""
    grouped: dict[str, dict[str, Any]] = {}
    for name, scopes in SCOPES.items():
        for scope in scopes:
            for version, image in _versions(configs[name], scope, name):
                key = json.dumps([name, version, image], sort_keys=True)
                entry = grouped.setdefault(key, {"name": name, "version": version, **image})
                entry.setdefault("scopes", []).append(scope)
    images = sorted(grouped.values(), key=lambda e: (e["name"], _version_key(e["version"])))
    regions = sorted({region for entry in images for region in entry["accounts"]})
    table = {
        "source": source,
        "partitions": _partitions(regions, partitions),
        "images": images,
    }
    return json.dumps(table, indent=2, sort_keys=True) + "\n"


def _versions(config: Mapping[str, Any], scope: str, name: str) -> Iterator[tuple[str, Any]]:
    """Each version of one scope with the repository, tag and registries `retrieve` gives
    when called as the original called it: framework, region and version only."""
    if "scope" in config:
        if scope not in config["scope"]:
            raise Unsupported(f"{name}: no {scope} scope in {config['scope']}")
    else:
        config = config[scope]
    for version, entry in config["versions"].items():
        unknown = set(entry) - KNOWN_FIELDS
        if unknown:
            raise Unsupported(f"{name} {version}: fields {sorted(unknown)}")
        parts = [entry.get("tag_prefix", version)]
        for field in ("processors", "py_versions"):
            choices = entry.get(field) or []
            if len(choices) > 1:
                raise Unsupported(f"{name} {version}: more than one of {field}: {choices}")
            parts += choices
        yield (
            version,
            {
                "repository": entry["repository"],
                "tag": "-".join(p for p in parts if p),
                "accounts": dict(sorted(entry["registries"].items())),
            },
        )


def _version_key(version: str) -> list[tuple[int, str]]:
    """Numeric order: 0.90-1 < 1 < 1.0-1 < 1.2-2 < 1.10-1."""
    return [(int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.-]", version)]


def _partitions(regions: list[str], partitions: list[dict[str, Any]]) -> dict[str, Any]:
    """Which partition, so which ECR domain, each region is in (as botocore's resolver, which
    the SDK asks for the hostname, decides: a listed region, else the partition's pattern)."""
    found: dict[str, dict[str, Any]] = {}
    for region in regions:
        partition = next(
            (p for p in partitions if region in p["regions"]),
            None,
        ) or next((p for p in partitions if re.match(p["regionRegex"], region)), None)
        if partition is None:
            raise Unsupported(f"no partition matches region {region}")
        entry = found.setdefault(
            partition["partition"], {"domain": partition["dnsSuffix"], "regions": []}
        )
        entry["regions"].append(region)
    return found


def pinned() -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """The checked-in copy of the SDK's files, botocore's partitions and their source."""
    configs = {name: json.loads((PINNED / f"{name}.json").read_text()) for name in SCOPES}
    partitions = json.loads((PINNED / "partitions.json").read_text())["partitions"]
    record = json.loads((PINNED / "SOURCE.json").read_text())
    source = (
        f"{record['package']} {record['version']} ({record['wheel']}), "
        f"{record['directory']}; partitions from botocore {record['botocore']}; "
        "made by python -m tools.images"
    )
    return configs, partitions, source


def extract(wheel: Path, into: Path) -> tuple[str, dict[str, str]]:
    """Copy the files of `SCOPES` out of an SDK wheel: their directory in the wheel, and
    name -> sha256 of each file copied.

    sagemaker 2.x kept them in sagemaker/image_uri_config/, sagemaker-core in
    sagemaker/core/image_uri_config/: any */image_uri_config/<name>.json will do."""
    hashes: dict[str, str] = {}
    with zipfile.ZipFile(wheel) as archive:
        members = {
            Path(member).name: member
            for member in archive.namelist()
            if Path(member).parent.name == "image_uri_config"
        }
        for name in SCOPES:
            member = members.get(f"{name}.json")
            if member is None:
                raise Unsupported(f"{wheel.name} has no image_uri_config/{name}.json")
            data = archive.read(member)
            (into / f"{name}.json").write_bytes(data)
            hashes[name] = hashlib.sha256(data).hexdigest()
            directory = str(Path(member).parent)
    return directory, hashes


def fetch(version: str) -> None:
    import botocore
    import botocore.loaders

    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp]
        subprocess.run([*pip, f"{PACKAGE}=={version}"], check=True)
        (wheel,) = Path(tmp).glob("*.whl")
        PINNED.mkdir(exist_ok=True)
        directory, hashes = extract(wheel, PINNED)
    record = {
        "package": PACKAGE,
        "version": version,
        "wheel": wheel.name,
        "directory": directory,
        "botocore": botocore.__version__,
        "sha256": hashes,
    }
    (PINNED / "SOURCE.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    endpoints = botocore.loaders.create_loader().load_data("endpoints")
    partitions = [
        {key: p[key] for key in ("partition", "dnsSuffix", "regionRegex")}
        | {"regions": sorted(p["regions"])}
        for p in endpoints["partitions"]
    ]
    text = json.dumps({"partitions": partitions}, indent=2, sort_keys=True) + "\n"
    (PINNED / "partitions.json").write_text(text)


def main(argv: list[str]) -> int:
    if argv[:1] == ["fetch"]:
        if len(argv) != 2:
            print("usage: python -m tools.images fetch VERSION", file=sys.stderr)
            return 2
        fetch(argv[1])
    made = generate(*pinned())
    if argv == ["--check"]:
        if TABLE.read_text() != made:
            print(f"{TABLE} is not what python -m tools.images makes", file=sys.stderr)
            return 1
        return 0
    TABLE.write_text(made)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
