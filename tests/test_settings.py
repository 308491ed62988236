"""Where each setting comes from: flag > MLOPS_* variable > file > defaults, AWS_REGION last."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.core import config
from controller.core.config import settings

FILE = {"assets_bucket": "file-bucket", "region": "eu-west-1", "stack_prefix": "file-prefix"}


def merged(
    from_file: dict[str, Any], environ: dict[str, str], flags: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    return settings.merge(from_file, environ, flags or {})


def test_defaults_apply_when_nothing_sets_a_value() -> None:
    values, origin = merged({}, {})

    assert values == {
        "stack_prefix": "mlops-pipeline",
        "controller_id": "mlops-controller",
        "deployment_branch": "main",
    }
    assert origin == {}


def test_file_wins_over_defaults() -> None:
    values, origin = merged(FILE, {})

    assert values["stack_prefix"] == "file-prefix"
    assert origin == {}


def test_environment_wins_over_file() -> None:
    values, origin = merged(
        FILE, {"MLOPS_ASSETS_BUCKET": "env-bucket", "MLOPS_REGION": "us-west-2"}
    )

    assert (values["assets_bucket"], values["region"]) == ("env-bucket", "us-west-2")
    assert origin == {"assets_bucket": "MLOPS_ASSETS_BUCKET", "region": "MLOPS_REGION"}


def test_flag_wins_over_environment_and_file() -> None:
    values, origin = merged(
        FILE,
        {"MLOPS_ASSETS_BUCKET": "env-bucket"},
        {"assets_bucket": "flag-bucket", "region": None},
    )

    assert values["assets_bucket"] == "flag-bucket"
    assert values["region"] == "eu-west-1"
    assert origin == {"assets_bucket": "--assets-bucket"}


def test_aws_region_is_only_the_last_fallback_for_region() -> None:
    aws = {"AWS_REGION": "ap-southeast-1", "AWS_DEFAULT_REGION": "us-east-2"}

    assert merged(FILE, aws)[0]["region"] == "eu-west-1"
    assert merged(FILE, {**aws, "MLOPS_REGION": "us-west-2"})[0]["region"] == "us-west-2"
    assert merged({}, aws) == (
        {**merged({}, {})[0], "region": "ap-southeast-1"},
        {"region": "AWS_REGION"},
    )
    assert merged({}, {"AWS_DEFAULT_REGION": "us-east-2"})[0]["region"] == "us-east-2"


def test_aws_region_does_not_fill_other_settings() -> None:
    values, _ = merged({}, {"AWS_REGION": "us-east-1", "AWS_BUCKET": "x"})

    assert "assets_bucket" not in values


def test_empty_environment_variables_are_ignored() -> None:
    values, origin = merged(FILE, {"MLOPS_REGION": "", "MLOPS_ASSETS_BUCKET": ""})

    assert values["region"] == "eu-west-1"
    assert origin == {}


def test_max_deletes_from_the_environment_becomes_a_number() -> None:
    assert merged({}, {"MLOPS_MAX_DELETES": "3"})[0]["max_deletes"] == 3


@pytest.mark.parametrize(
    ("variable", "key"), sorted((v, k) for k, v in settings.ENVIRONMENT.items())
)
def test_every_setting_has_an_mlops_variable(variable: str, key: str) -> None:
    value = "7" if key == "max_deletes" else "from-env"
    values, origin = merged({key: "from-file"}, {variable: value})

    assert values[key] == (7 if key == "max_deletes" else "from-env")
    assert origin[key] == variable


def load(data: dict[str, Any], environ: dict[str, str], flags: dict[str, Any] | None = None) -> Any:
    result = config.load(json.dumps(data).encode(), "c.json", environ=environ, flags=flags)
    assert result.errors == (), [d.format() for d in result.errors]
    return result.config.settings


def test_the_loaded_config_uses_the_merged_settings() -> None:
    data = {"settings": FILE, "pipelines": []}

    resolved = load(
        data,
        {"MLOPS_REGION": "us-west-2", "AWS_REGION": "us-east-1", "MLOPS_MAX_DELETES": "2"},
        {"stack_prefix": "flag-prefix"},
    )

    assert resolved == config.Settings(
        assets_bucket="file-bucket",
        region="us-west-2",
        stack_prefix="flag-prefix",
        max_deletes=2,
    )


def test_settings_can_come_entirely_from_the_environment() -> None:
    resolved = load(
        {"pipelines": []}, {"MLOPS_ASSETS_BUCKET": "env-bucket", "AWS_REGION": "eu-central-1"}
    )

    assert (resolved.assets_bucket, resolved.region) == ("env-bucket", "eu-central-1")


def test_flag_override_changes_stack_names() -> None:
    pipeline = {
        "pipeline_type": "byom_image_builder",
        "custom_algorithm_docker": "a.zip",
        "ecr_repo_name": "repo",
        "image_tag": "tag",
    }
    result = config.load(
        json.dumps(pipeline).encode(),
        "c.json",
        environ={
            "MLOPS_STACK_PREFIX": "env",
            "MLOPS_ASSETS_BUCKET": "bucket-a",
            "MLOPS_REGION": "us-east-1",
        },
        flags={"stack_prefix": "flag"},
    )

    assert result.config is not None
    assert result.config.pipelines[0].stack_name == "flag-tag-byompipelineimagebuilder"


def test_load_reads_os_environ_when_no_environment_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLOPS_ASSETS_BUCKET", "os-bucket")
    monkeypatch.setenv("MLOPS_REGION", "us-east-2")

    result = config.load(b'{"pipelines": []}', "c.json")

    assert result.config is not None
    assert result.config.settings.assets_bucket == "os-bucket"


def test_the_aws_profiles_region_comes_after_aws_region_and_the_file() -> None:
    profile = settings.AwsDefaults("dev", "eu-west-1")

    assert settings.merge({}, {}, {}, profile)[0]["region"] == "eu-west-1"
    assert settings.merge({}, {}, {}, profile)[1] == {"region": "the region of AWS profile 'dev'"}
    assert settings.merge({}, {"AWS_DEFAULT_REGION": "us-west-2"}, {}, profile)[0]["region"] == (
        "us-west-2"
    )
    assert settings.merge(FILE, {"AWS_REGION": "us-west-2"}, {}, profile)[0]["region"] == (
        "eu-west-1"
    )
    assert settings.merge({}, {}, {"region": "ap-south-1"}, profile)[0]["region"] == "ap-south-1"


KEY = "arn:aws:kms:{region}:123456789012:key/0b3d3a80-1e8e-11ef-8d2e-0affd4e0a1b3"
STAGES = [
    {
        "name": "prod",
        "account_id": "333333333333",
        "role_arn": "arn:aws:iam::333333333333:role/mlops-controller-stage",
    }
]


def problems(data: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    result = config.load(json.dumps(data, indent=1).encode(), "c.json", environ=environ or {})
    assert (result.config is None) == bool(result.errors)
    return [d.format() for d in result.diagnostics]


def test_the_assets_key_comes_from_the_file_or_its_variable() -> None:
    key = KEY.format(region="us-east-1")
    data = {"settings": {**FILE, "region": "us-east-1"}, "pipelines": []}
    assert load(data, {"MLOPS_ASSETS_KMS_KEY_ARN": key}).assets_kms_key_arn == key
    data["settings"]["assets_kms_key_arn"] = key
    assert load(data, {}).assets_kms_key_arn == key
    assert load({"settings": FILE, "pipelines": []}, {}).assets_kms_key_arn is None


def test_the_assets_key_must_be_a_key_arn_of_the_orchestrators_region() -> None:
    data = {"settings": {**FILE, "assets_kms_key_arn": KEY.format(region="us-east-1")}}
    (line,) = problems({**data, "pipelines": []})
    assert line == (
        "c.json:6: error C107 $.settings.assets_kms_key_arn: the key is in region us-east-1, "
        "but the assets bucket is in eu-west-1 (settings.region) and S3 encrypts a bucket only "
        "with a key of its own region (expected the KMS key of the assets bucket, a key in "
        "eu-west-1)"
    )
    (line,) = problems(
        {"settings": FILE, "pipelines": []},
        {"MLOPS_ASSETS_KMS_KEY_ARN": KEY.format(region="us-west-2")},
    )
    assert "C107" in line and "(set by MLOPS_ASSETS_KMS_KEY_ARN)" in line
    alias = "arn:aws:kms:eu-west-1:123456789012:alias/mlops"
    (line,) = problems({"settings": {**FILE, "assets_kms_key_arn": alias}, "pipelines": []})
    assert "S106 $.settings.assets_kms_key_arn" in line and "not an alias" in line


def test_a_stage_reads_the_key_of_the_orchestrators_bucket_in_the_settings_region() -> None:
    """The key is checked against settings.region, the assets bucket's (and every stage's:
    a stage in another region is refused, C209)."""
    staged = {**FILE, "region": "us-east-1", "stages": STAGES}
    ok = {**staged, "assets_kms_key_arn": KEY.format(region="us-east-1")}
    assert problems({"settings": ok, "pipelines": []}) == []
    wrong = {**staged, "assets_kms_key_arn": KEY.format(region="eu-west-1")}
    (line,) = problems({"settings": wrong, "pipelines": []})
    assert "C107" in line and "the assets bucket is in us-east-1" in line
