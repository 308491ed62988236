"""SageMaker image URIs come from a table; unknown inputs say what would work instead."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from controller.core import images
from controller.core.config import load
from tests.conftest import EXAMPLE


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


REFERENCE = {
    # /work/shared/reference/images.md (read from SDK 2.257): region -> (linear-learner,
    # xgboost 1, xgboost 1.5-1/1.7-1, model monitor analyzer, Clarify).
    "us-east-1": ("382416733822", "811284229777", "683313688378", "156813124566", "205585389593"),
    "us-east-2": ("404615174143", "825641698319", "257758044811", "777275614652", "211330385671"),
    "us-west-2": ("174872318107", "433757028032", "246618743249", "159807026194", "306415355426"),
    "eu-west-1": ("438346466558", "685385470294", "141502667606", "468650794304", "131013547314"),
    "eu-central-1": (
        "664544806723",
        "813361260812",
        "492215442770",
        "048819808253",
        "017069133835",
    ),
    "ap-southeast-1": (
        "475088953585",
        "475088953585",
        "121021644041",
        "245545462676",
        "834264404009",
    ),
}


@pytest.mark.parametrize("region", sorted(REFERENCE))
def test_the_table_agrees_with_the_reference_accounts(region: str) -> None:
    linear, legacy, xgboost, monitor, clarify = REFERENCE[region]
    assert images.BUILTIN[("linear-learner", "1")].accounts[region] == linear
    assert images.BUILTIN[("xgboost", "1")].accounts[region] == legacy
    assert images.BUILTIN[("xgboost", "1.5-1")].accounts[region] == xgboost
    assert images.BUILTIN[("xgboost", "1.7-1")].accounts[region] == xgboost
    assert images.MODEL_MONITOR.accounts[region] == monitor
    assert images.CLARIFY.accounts[region] == clarify


@pytest.mark.parametrize(
    ("region", "family", "account"),
    [
        # Spot checks of regions beyond the reference table, from the SDK's files.
        ("sa-east-1", ("linear-learner", "1"), "855470959533"),
        ("ap-northeast-1", ("xgboost", "1"), "501404015308"),
        ("il-central-1", ("linear-learner", "1"), "898809789911"),
        ("eu-west-2", "monitor", "749857270468"),
        ("ca-central-1", "clarify", "675030665977"),
        ("ap-east-1", "monitor", "001633400207"),
    ],
)
def test_regions_beyond_the_first_six_are_known(
    region: str, family: tuple[str, str] | str, account: str
) -> None:
    table = {"monitor": images.MODEL_MONITOR, "clarify": images.CLARIFY}
    found = table[family] if isinstance(family, str) else images.BUILTIN[family]
    assert found.accounts[region] == account


def test_every_commercial_region_of_each_image_is_covered_and_no_other_partition() -> None:
    """Every region the SDK lists in the aws partition; China and GovCloud are other
    partitions (other accounts, other endpoints) and are left out."""
    families = [images.MODEL_MONITOR, images.CLARIFY, *images.BUILTIN.values()]
    for family in families:
        assert len(family.accounts) >= 23, family.repository
        for region, account in family.accounts.items():
            assert re.fullmatch(r"[a-z]{2}-[a-z]+-[0-9]", region), region
            assert not region.startswith(("cn-", "us-gov-", "us-iso")), region
            assert re.fullmatch(r"[0-9]{12}", account), (family.repository, region)
    assert len(images.REGIONS) >= 29


@pytest.mark.parametrize("region", images.REGIONS)
@pytest.mark.parametrize(("framework", "version"), sorted(images.BUILTIN))
def test_every_table_entry_is_a_well_formed_uri_in_its_region(
    framework: str, version: str, region: str
) -> None:
    if region not in images.BUILTIN[(framework, version)].accounts:
        with pytest.raises(images.UnknownImage):
            images.builtin_image_uri(framework, version, region)
        return
    uri = images.builtin_image_uri(framework, version, region)

    assert re.fullmatch(rf"[0-9]{{12}}\.dkr\.ecr\.{region}\.amazonaws\.com/[a-z-]+:{version}", uri)


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


REGION_WITHOUT_IMAGES = "ap-southeast-7"


@pytest.mark.parametrize(
    "lookup",
    [
        lambda: images.builtin_image_uri("xgboost", "1.7-1", REGION_WITHOUT_IMAGES),
        lambda: images.monitor_image_uri("data_quality", REGION_WITHOUT_IMAGES),
        lambda: images.monitor_image_uri("model_bias", REGION_WITHOUT_IMAGES),
    ],
)
def test_unknown_region_lists_the_regions_with_images(lookup: Callable[[], str]) -> None:
    with pytest.raises(images.UnknownImage) as caught:
        lookup()

    assert caught.value.setting == "region"
    assert f"in region '{REGION_WITHOUT_IMAGES}'" in caught.value.message
    assert "us-east-1" in caught.value.expected
    assert REGION_WITHOUT_IMAGES not in caught.value.expected
    assert "custom_image_uri" in caught.value.expected


def test_a_monitor_with_its_own_image_deploys_in_a_region_without_one() -> None:
    """The escape hatch for monitors: custom_image_uri replaces the analyzer or Clarify image,
    and the job's role may pull it from its repository."""
    from controller.core import render

    document = json.loads(EXAMPLE.read_text())
    document["settings"]["region"] = REGION_WITHOUT_IMAGES
    own = f"123456789012.dkr.ecr.{REGION_WITHOUT_IMAGES}.amazonaws.com/analyzer:2024"
    monitors = [p for p in document["pipelines"] if p["pipeline_type"].endswith("_monitor")]
    for pipeline in monitors:
        pipeline["custom_image_uri"] = own
    document["pipelines"] = monitors
    result = load(json.dumps(document).encode(), "mlops-config.json", environ={})
    assert result.config is not None, [d.format() for d in result.diagnostics]
    for stack in render.render_all(result.config):
        parameters = dict(stack.parameters)
        assert parameters["ImageUri"] == own
        assert parameters["ImageRepositoryArn"] == (
            f"arn:aws:ecr:{REGION_WITHOUT_IMAGES}:123456789012:repository/analyzer"
        )
        assert "Sid: CustomImage" in stack.template_body
    del document["pipelines"][0]["custom_image_uri"]
    refused = load(json.dumps(document).encode(), "mlops-config.json", environ={})
    assert refused.config is None
    (error,) = refused.errors
    assert "no sagemaker-model-monitor-analyzer image is known" in error.message
