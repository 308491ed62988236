"""Template security: checkov over every rendered stack and the bootstrap template, plus
direct checks of the properties that matter most, and no secret in any output or record.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from controller.aws.demo_world import seed
from controller.cli.main import main
from controller.core import config as config_module
from controller.core.render import render_all
from tests.test_config_invalid import EXAMPLE_DATA

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "tests" / "snapshots"
BOOTSTRAP = ROOT / "blueprints" / "bootstrap.yaml"
STAGE_ROLE = ROOT / "blueprints" / "stage-role.yaml"
CHECKOV = Path(sys.executable).parent / "checkov"


class _Loader(yaml.SafeLoader):
    """Reads CloudFormation short forms (!Ref, !Sub ...) as plain values."""


def _tagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _tagged)


def _templates(tmp_path: Path) -> list[Path]:
    """The nine example pipelines rendered now, the variant snapshots (registry, KMS,
    problem types) and the bootstrap stack."""
    loaded = config_module.load(json.dumps(EXAMPLE_DATA).encode(), "mlops-config.json")
    assert loaded.config is not None
    out = tmp_path / "templates"
    out.mkdir()
    files = []
    for stack in render_all(loaded.config):
        path = out / f"{stack.stack_name}.yaml"
        path.write_text(stack.template_body)
        files.append(path)
    for snapshot in sorted(SNAPSHOTS.glob("*.yaml")):
        target = out / f"snapshot-{snapshot.name}"
        shutil.copy(snapshot, target)
        files.append(target)
    assert len(files) >= 9 + 10
    return files


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return _templates(tmp_path_factory.mktemp("scan"))


def _resources(path: Path) -> dict[str, Any]:
    document = yaml.load(path.read_text(), Loader=_Loader)
    resources: dict[str, Any] = document.get("Resources", {})
    return resources


@pytest.fixture(scope="module")
def checkov_failures(templates: list[Path]) -> list[tuple[str, str, str]]:
    """One checkov run over every template: (check id, file name, resource) per failure."""
    if not CHECKOV.exists():
        pytest.skip("checkov is not installed (pip install -e .[dev])")
    scanned = [*templates, *([BOOTSTRAP] if BOOTSTRAP.exists() else []), STAGE_ROLE]
    argv = [str(CHECKOV), "--framework", "cloudformation", "-o", "json", "--quiet"]
    argv += ["--skip-download", "--compact"]
    for path in scanned:
        argv += ["-f", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert sum(int(r["summary"]["passed"]) for r in reports) > 100, "checkov scanned nothing"
    return [
        (check["check_id"], Path(check["file_path"]).name, check["resource"])
        for report in reports
        for check in report["results"]["failed_checks"]
    ]


def test_checkov_finds_nothing_in_pipeline_stacks(checkov_failures):
    """Checks that do not apply are skipped in the blueprints themselves, each with a reason."""
    found = [f for f in checkov_failures if f[1] != BOOTSTRAP.name]
    assert not found, "\n".join(map(str, found))


def test_checkov_finds_nothing_in_the_bootstrap_stack(checkov_failures):
    if not BOOTSTRAP.exists():
        pytest.skip("blueprints/bootstrap.yaml does not exist yet")
    found = [f for f in checkov_failures if f[1] == BOOTSTRAP.name]
    assert not found, "\n".join(map(str, found))


def test_no_iam_statement_allows_every_action_on_every_resource(templates):
    for path in [*templates, *([BOOTSTRAP] if BOOTSTRAP.exists() else [])]:
        for name, resource in _resources(path).items():
            for statement in _statements(resource):
                actions = _listed(statement.get("Action"))
                resources = _listed(statement.get("Resource"))
                if statement.get("Effect") == "Allow":
                    assert not ("*" in actions and "*" in resources), (path.name, name)
                    assert not any(a.endswith(":*") and "*" in resources for a in actions), (
                        path.name,
                        name,
                        statement,
                    )


def _statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    properties = resource.get("Properties", {})
    documents = [p.get("PolicyDocument", {}) for p in properties.get("Policies", [])]
    documents.append(properties.get("PolicyDocument", {}))
    found = []
    for document in documents:
        statement = document.get("Statement", []) if isinstance(document, dict) else []
        found += statement if isinstance(statement, list) else [statement]
    return [branch for s in found for branch in _branches(s)]


def _branches(statement: Any) -> list[dict[str, Any]]:
    """A statement, or each statement a `!If [condition, then, else]` may become."""
    if isinstance(statement, list) and len(statement) == 3:
        return [b for branch in statement[1:] for b in _branches(branch)]
    return [statement] if isinstance(statement, dict) else []


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def test_every_bucket_blocks_public_access_and_is_encrypted(templates):
    buckets = 0
    for path in [*templates, *([BOOTSTRAP] if BOOTSTRAP.exists() else [])]:
        for name, resource in _resources(path).items():
            if resource.get("Type") != "AWS::S3::Bucket":
                continue
            buckets += 1
            properties = resource.get("Properties", {})
            block = properties.get("PublicAccessBlockConfiguration", {})
            assert all(
                block.get(key) in (True, "true")
                for key in (
                    "BlockPublicAcls",
                    "BlockPublicPolicy",
                    "IgnorePublicAcls",
                    "RestrictPublicBuckets",
                )
            ), (path.name, name)
            assert properties.get("BucketEncryption"), (path.name, name)


def test_every_inference_api_method_requires_iam_auth(templates):
    methods = 0
    for path in templates:
        for name, resource in _resources(path).items():
            if resource.get("Type") == "AWS::ApiGateway::Method":
                methods += 1
                authorization = resource["Properties"].get("AuthorizationType")
                assert authorization == "AWS_IAM", (path.name, name)
    assert methods >= 2


SENTINEL = "SENTINEL-SECRET-9f8e7d6c5b4a"


def test_no_credential_appears_in_output_or_in_the_ledger(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SENTINEL)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SENTINEL + "-token")
    data = {
        "settings": EXAMPLE_DATA["settings"],
        "pipelines": [EXAMPLE_DATA["pipelines"][i] for i in (0, 3, 5)],
    }
    from controller.aws.session import Aws

    seed(Aws(region="us-east-1"), data["settings"]["assets_bucket"], data)
    path = tmp_path / "mlops-config.json"
    path.write_text(json.dumps(data))
    outputs = []
    for argv in (
        ["apply", "--auto-approve", "--config", str(path), "--output", "json"],
        ["plan", "--config", str(path), "--output", "markdown"],
        ["status", "--config", str(path)],
    ):
        main(argv)
        out, err = capsys.readouterr()
        outputs.append(out + err)
    assert outputs[0].count("succeeded") >= 3
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = data["settings"]["assets_bucket"]
    bodies = [
        s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    ]
    ledger = [b for b in bodies if b.lstrip().startswith(b"{")]
    assert ledger, "no ledger record was written"
    for text in [*outputs, *(b.decode("utf-8", "replace") for b in bodies)]:
        assert SENTINEL not in text
