"""Hostile and broken configs through `validate`, `plan` and `apply` against a moto server.

Every invalid input must stop before AWS is touched at all (zero calls, so zero writes), exit
1, name the field, and print no traceback. Values that are valid but look like template,
YAML or shell syntax must reach CloudFormation only as parameter values: the template is
byte-identical to the one a harmless value produces.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from controller.aws import session as aws_module
from controller.aws.demo_world import seed
from controller.cli.main import main
from controller.core import config as config_module
from controller.core.render import render_all
from tests.aws_calls import count_calls
from tests.test_config_invalid import CASES as LOAD_CASES
from tests.test_config_invalid import EXAMPLE_DATA

REALTIME_BUILTIN, BATCH_BUILTIN, IMAGE_BUILDER, REALTIME_CUSTOM, BATCH_CUSTOM = range(5)
DATA_QUALITY, MODEL_QUALITY, MODEL_BIAS, EXPLAINABILITY = range(5, 9)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    return count_calls(monkeypatch)


@dataclass(frozen=True)
class Hostile:
    id: str
    raw: bytes
    path: str
    message: str = ""
    env: dict[str, str] = field(default_factory=dict)


def _changed(
    index: int | None = None, settings: dict[str, Any] | None = None, **values: Any
) -> bytes:
    data = copy.deepcopy(EXAMPLE_DATA)
    if index is not None:
        data["pipelines"][index].update(values)
    data["settings"].update(settings or {})
    return json.dumps(data, indent=2).encode()


def _p(index: int, key: str) -> str:
    return f"$.pipelines[{index}].{key}"


HOSTILE = [
    Hostile("jinja-model-name", _changed(0, model_name="{{ 7*7 }}"), _p(0, "model_name")),
    Hostile(
        "jinja-block-framework", _changed(0, model_framework="{% raw %}"), _p(0, "model_framework")
    ),
    Hostile("yaml-tag-endpoint", _changed(0, endpoint_name="!Ref X"), _p(0, "endpoint_name")),
    Hostile("shell-model-name", _changed(0, model_name="$(rm -rf /)"), _p(0, "model_name")),
    Hostile(
        "shell-version",
        _changed(0, model_framework_version="1 && id"),
        _p(0, "model_framework_version"),
    ),
    Hostile(
        "yaml-injection-location",
        _changed(0, model_artifact_location="a\nb: c"),
        _p(0, "model_artifact_location"),
    ),
    Hostile(
        "trailing-newline-instance",
        _changed(0, inference_instance="ml.m5.large\n"),
        _p(0, "inference_instance"),
    ),
    Hostile(
        "trailing-newline-name", _changed(0, model_name="linearlearner\n"), _p(0, "model_name")
    ),
    Hostile("nul-in-name", _changed(0, model_name="linear\x00learner"), _p(0, "model_name")),
    Hostile(
        "homoglyph-hyphen-endpoint",
        _changed(0, endpoint_name="linearlearner\u2010endpoint"),
        _p(0, "endpoint_name"),
    ),
    Hostile("yaml-tag-ecr-repo", _changed(2, ecr_repo_name="!Sub x"), _p(2, "ecr_repo_name")),
    Hostile("backticks-image-tag", _changed(2, image_tag="`id`"), _p(2, "image_tag")),
    Hostile(
        "jinja-image-uri",
        _changed(4, custom_image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/x:{{y}}"),
        _p(4, "custom_image_uri"),
    ),
    Hostile(
        "shell-after-cron",
        _changed(5, schedule_expression="cron(0 * ? * * *) ; rm"),
        _p(5, "schedule_expression"),
    ),
    Hostile(
        "yaml-injection-attribute",
        _changed(6, baseline_inference_attribute="a\nb: c"),
        _p(6, "baseline_inference_attribute"),
    ),
    Hostile(
        "jinja-with-spaces-attribute",
        _changed(6, monitor_probability_attribute="{{ 7*7 }}"),
        _p(6, "monitor_probability_attribute"),
    ),
    Hostile(
        "bias-config-as-jinja-string", _changed(7, bias_config="{{ bias }}"), _p(7, "bias_config")
    ),
    Hostile(
        "pipeline-type-with-newline",
        _changed(0, pipeline_type="byom_realtime_builtin\n"),
        _p(0, "pipeline_type"),
    ),
    Hostile(
        "jinja-stack-prefix",
        _changed(settings={"stack_prefix": "{{x}}"}),
        "$.settings.stack_prefix",
    ),
    Hostile(
        "shell-controller-id",
        _changed(settings={"controller_id": "a b; rm -rf /"}),
        "$.settings.controller_id",
    ),
    Hostile(
        "jinja-bucket",
        _changed(settings={"assets_bucket": "{{ bucket }}"}),
        "$.settings.assets_bucket",
    ),
    Hostile(
        "newline-bucket-from-env",
        _changed(),
        "$.settings.assets_bucket",
        "MLOPS_ASSETS_BUCKET",
        {"MLOPS_ASSETS_BUCKET": "bucket\n"},
    ),
    Hostile(
        "yaml-region-from-env",
        _changed(),
        "$.settings.region",
        "MLOPS_REGION",
        {"MLOPS_REGION": "us-east-1\nfoo: bar"},
    ),
    Hostile(
        "shell-topic-arn",
        _changed(settings={"notification_topic_arn": "arn:aws:sns:us-east-1:123456789012:$(id)"}),
        "$.settings.notification_topic_arn",
    ),
    Hostile(
        "nan-max-deletes",
        _changed().replace(b'"max_deletes": 5', b'"max_deletes": NaN'),
        "$.settings.max_deletes",
    ),
    Hostile(
        "huge-number-max-deletes",
        _changed().replace(b'"max_deletes": 5', b'"max_deletes": 1e400'),
        "$.settings.max_deletes",
    ),
    Hostile(
        "string-max-deletes",
        _changed(settings={"max_deletes": "5; drop"}),
        "$.settings.max_deletes",
    ),
    Hostile(
        "yaml-instead-of-json",
        b"settings:\n  assets_bucket: b\npipelines: []\n",
        "$",
        "invalid JSON",
    ),
    Hostile("jinja-template-file", b"{{ config | tojson }}", "$", "invalid JSON"),
    Hostile("jinja-include-file", b"{% include '/etc/passwd' %}", "$", "invalid JSON"),
    Hostile("shell-script-file", b"#!/bin/sh\nrm -rf /\n", "$", "invalid JSON"),
    Hostile("utf16-file", json.dumps(EXAMPLE_DATA).encode("utf-16"), "$", "UTF-8"),
    Hostile(
        "latin1-in-value",
        _changed().replace(b'"linearlearner-endpoint"', b'"caf\xe9"'),
        "$",
        "not valid UTF-8",
    ),
]


@dataclass(frozen=True)
class Run:
    raw: bytes
    path: str
    message: str
    env: dict[str, str]


RUNS = {f"hostile-{h.id}": Run(h.raw, h.path, h.message, h.env) for h in HOSTILE} | {
    f"load-{c.id}": Run(c.text(), c.path, c.message, c.env) for c in LOAD_CASES if not c.flags
}


def test_there_are_at_least_forty_distinct_hostile_or_broken_inputs() -> None:
    assert len({(r.raw, tuple(r.env.items())) for r in RUNS.values()}) >= 40
    assert len(HOSTILE) >= 30


@pytest.mark.parametrize("case_id", list(RUNS))
def test_a_broken_config_exits_1_names_the_field_and_touches_no_aws(
    case_id: str,
    aws: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    calls: Counter[str],
) -> None:
    case = RUNS[case_id]
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "mlops-config.json"
    path.write_bytes(case.raw)
    for argv in (
        ["validate", str(path)],
        ["plan", "--config", str(path)],
        ["apply", "--auto-approve", "--config", str(path)],
        ["apply", "--auto-approve", "--config", str(path), "--dry-run"],
    ):
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 1, (argv, out, err)
        assert "Traceback" not in out + err
        error_lines = [line for line in err.splitlines() if ": error " in line]
        assert error_lines, (argv, err)
        assert any(f" {case.path}: " in line and case.message in line for line in error_lines), (
            argv,
            case.path,
            case.message,
            err,
        )
    assert not calls, calls


# Valid values that look like something else. Each pair differs in one free-text value.
VALID_HOSTILE = [
    (
        MODEL_BIAS,
        "bias_config",
        {
            "label_values_or_threshold": [1],
            "facet_name": "{{ 7*7 }}\n!Ref X: $(rm -rf /)",
            "facet_values_or_threshold": ["'\"a", "{% raw %}", "${AWS::AccountId}"],
        },
    ),
    (MODEL_BIAS, "features_attribute", "{{7*7}}"),
    (MODEL_BIAS, "monitor_inference_attribute", "!GetAtt\"x'.y"),
    (MODEL_QUALITY, "baseline_inference_attribute", "$(id)"),
    (MODEL_QUALITY, "monitor_probability_attribute", "${AWS::Region}|{{x}}"),
    (
        EXPLAINABILITY,
        "shap_config",
        {
            "baseline": "churn/{{7*7}}/$(id)/!Ref.csv",
            "num_samples": 500,
            "agg_method": "mean_abs",
            "save_local_shap_values": False,
        },
    ),
]


def _config(pipelines: list[dict[str, Any]]) -> Any:
    data = {"settings": EXAMPLE_DATA["settings"], "pipelines": pipelines}
    loaded = config_module.load(json.dumps(data).encode(), "mlops-config.json")
    assert loaded.config is not None, [d.format() for d in loaded.errors]
    return loaded.config


@pytest.mark.parametrize(
    ("index", "key", "value"), VALID_HOSTILE, ids=[k for _, k, _ in VALID_HOSTILE]
)
def test_a_hostile_but_valid_value_changes_parameters_only(
    index: int, key: str, value: Any
) -> None:
    harmless = copy.deepcopy(EXAMPLE_DATA["pipelines"][index])
    hostile = copy.deepcopy(harmless)
    hostile[key] = value
    if key not in harmless:
        harmless[key] = "prediction" if isinstance(value, str) else value
    plain = render_all(_config([harmless]))[0]
    odd = render_all(_config([hostile]))[0]
    assert odd.template_body == plain.template_body
    assert odd.parameters != plain.parameters
    values = [v for _, v in odd.parameters]
    values += [s for upload in odd.uploads for s in _strings(json.loads(upload.body))]
    for text in _strings(value):
        assert _carried(text, values)


def _carried(text: str, values: list[str]) -> bool:
    """The value exactly as given, inside a parameter or a string of an uploaded document (the
    analysis configuration, named by a parameter)."""
    return any(text in value for value in values)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_hostile_valid_values_deploy_verbatim_as_parameters(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipelines = copy.deepcopy([EXAMPLE_DATA["pipelines"][i] for i in (REALTIME_CUSTOM, MODEL_BIAS)])
    facet = "{{ 7*7 }}\n!Ref X: $(rm -rf /) '\""
    pipelines[1]["bias_config"]["facet_name"] = facet
    pipelines[1]["features_attribute"] = "{{7*7}}"
    data = {"settings": EXAMPLE_DATA["settings"], "pipelines": pipelines}
    seed(aws_module.Aws(region="us-east-1"), data["settings"]["assets_bucket"], data)
    path = tmp_path / "mlops-config.json"
    path.write_text(json.dumps(data))
    code = main(["apply", "--auto-approve", "--config", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    rendered = {r.stack_name: r for r in render_all(_config(pipelines))}
    for name, expected in rendered.items():
        deployed_body = cfn.get_template(StackName=name)["TemplateBody"]
        assert (deployed_body if isinstance(deployed_body, str) else json.dumps(deployed_body)) == (
            expected.template_body
        )
    monitor = next(n for n in rendered if n.endswith("byommodelbiasmonitor"))
    parameters = cfn.describe_stacks(StackName=monitor)["Stacks"][0]["Parameters"]
    values = {p["ParameterKey"]: p["ParameterValue"] for p in parameters}
    assert "{{7*7}}" in values.values()
    s3 = boto3.client("s3", region_name="us-east-1")
    body = s3.get_object(Bucket=values["AssetsBucket"], Key=values["AnalysisConfigKey"])["Body"]
    assert _carried(facet, _strings(json.loads(body.read())))
