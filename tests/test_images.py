"""SageMaker image URIs come from a table; unknown inputs say what would work instead."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from controller.core import images


@pytest.mark.parametrize(
    ("framework", "version", "region", "uri"),
    [
        (
            "xgboost",
            "1.7-1",
            "us-east-1",
            "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        ),
        (
            "xgboost",
            "1.5-1",
            "us-west-2",
            "246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:1.5-1",
        ),
        ("xgboost", "1", "us-east-1", "811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:1"),
        (
            "linear-learner",
            "1",
            "us-east-1",
            "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1",
        ),
        (
            "linear-learner",
            "1",
            "eu-west-1",
            "438346466558.dkr.ecr.eu-west-1.amazonaws.com/linear-learner:1",
        ),
        (
            "xgboost",
            "1.7-1",
            "ap-southeast-1",
            "121021644041.dkr.ecr.ap-southeast-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        ),
    ],
)
def test_builtin_image_uris(framework: str, version: str, region: str, uri: str) -> None:
    assert images.builtin_image_uri(framework, version, region) == uri


@pytest.mark.parametrize(
    ("monitor", "region", "uri"),
    [
        (
            "data_quality",
            "us-east-1",
            "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer",
        ),
        (
            "model_quality",
            "eu-central-1",
            "048819808253.dkr.ecr.eu-central-1.amazonaws.com/sagemaker-model-monitor-analyzer",
        ),
        (
            "model_bias",
            "us-east-1",
            "205585389593.dkr.ecr.us-east-1.amazonaws.com/sagemaker-clarify-processing:1.0",
        ),
        (
            "model_explainability",
            "eu-central-1",
            "017069133835.dkr.ecr.eu-central-1.amazonaws.com/sagemaker-clarify-processing:1.0",
        ),
    ],
)
def test_monitor_image_uris(monitor: str, region: str, uri: str) -> None:
    assert images.monitor_image_uri(monitor, region) == uri


@pytest.mark.parametrize("region", images.REGIONS)
@pytest.mark.parametrize(("framework", "version"), sorted(images.BUILTIN))
def test_every_table_entry_is_a_well_formed_uri_in_its_region(
    framework: str, version: str, region: str
) -> None:
    uri = images.builtin_image_uri(framework, version, region)

    assert re.fullmatch(rf"[0-9]{{12}}\.dkr\.ecr\.{region}\.amazonaws\.com/[a-z-]+:{version}", uri)


@pytest.mark.parametrize("region", images.REGIONS)
def test_account_ids_are_twelve_digit_strings_with_leading_zeros_kept(region: str) -> None:
    for family in (images.MODEL_MONITOR, images.CLARIFY, *images.BUILTIN.values()):
        assert re.fullmatch(r"[0-9]{12}", family.accounts[region])
    assert images.MODEL_MONITOR.accounts["eu-central-1"] == "048819808253"
    assert images.CLARIFY.accounts["eu-central-1"] == "017069133835"


def test_unknown_framework_suggests_the_known_ones_and_custom_images() -> None:
    with pytest.raises(images.UnknownImage) as caught:
        images.builtin_image_uri("sklearn", "1.2-1", "us-east-1")

    assert caught.value.setting == "framework"
    assert caught.value.message == "unknown built-in framework 'sklearn'"
    assert "linear-learner, xgboost" in caught.value.expected
    assert "custom_image_uri" in caught.value.expected


def test_unknown_version_lists_the_versions_of_that_framework() -> None:
    with pytest.raises(images.UnknownImage) as caught:
        images.builtin_image_uri("xgboost", "0.90-1", "us-east-1")

    assert caught.value.setting == "version"
    assert caught.value.message == "unknown version '0.90-1' of xgboost"
    assert caught.value.expected.startswith("one of 1, 1.5-1, 1.7-1")


@pytest.mark.parametrize(
    "lookup",
    [
        lambda: images.builtin_image_uri("xgboost", "1.7-1", "sa-east-1"),
        lambda: images.monitor_image_uri("data_quality", "sa-east-1"),
        lambda: images.monitor_image_uri("model_bias", "sa-east-1"),
    ],
)
def test_unknown_region_lists_the_regions_with_images(lookup: Callable[[], str]) -> None:
    with pytest.raises(images.UnknownImage) as caught:
        lookup()

    assert caught.value.setting == "region"
    assert "in region 'sa-east-1'" in caught.value.message
    assert "us-east-1" in caught.value.expected
    assert "sa-east-1" not in caught.value.expected


def test_only_builtin_models_are_pointed_at_custom_images_for_a_missing_region() -> None:
    with pytest.raises(images.UnknownImage) as builtin:
        images.builtin_image_uri("xgboost", "1.7-1", "sa-east-1")
    with pytest.raises(images.UnknownImage) as monitor:
        images.monitor_image_uri("model_quality", "sa-east-1")

    assert "custom_image_uri" in builtin.value.expected
    assert "custom_image_uri" not in monitor.value.expected
