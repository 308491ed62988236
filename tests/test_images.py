"""SageMaker image URIs come from a table; unknown inputs say what would work instead."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.core import images
from controller.core.config import load
from tests.conftest import EXAMPLE
from tools import images as tools_images


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
        # The version the original's own tests deploy.
        (
            "xgboost",
            "1.2-2",
            "us-east-1",
            "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.2-2",
        ),
        # Versions whose SDK entry names one processor and one Python: both are in the tag.
        (
            "xgboost",
            "0.90-1",
            "eu-west-1",
            "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:0.90-1-cpu-py3",
        ),
        ("kmeans", "1", "us-east-1", "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"),
        (
            "forecasting-deepar",
            "1",
            "us-west-2",
            "156387875391.dkr.ecr.us-west-2.amazonaws.com/forecasting-deepar:1",
        ),
        # Other partitions, with their own domains.
        (
            "linear-learner",
            "1",
            "cn-north-1",
            "390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/linear-learner:1",
        ),
        (
            "linear-learner",
            "1",
            "us-gov-west-1",
            "226302683700.dkr.ecr.us-gov-west-1.amazonaws.com/linear-learner:1",
        ),
        (
            "linear-learner",
            "1",
            "us-iso-east-1",
            "490574956308.dkr.ecr.us-iso-east-1.c2s.ic.gov/linear-learner:1",
        ),
    ],
)
def test_builtin_image_uris(framework: str, version: str, region: str, uri: str) -> None:
    assert images.builtin_image_uri(framework, version, region) == uri


@pytest.mark.parametrize(("framework", "version"), [("xgboost", "1.2-2"), ("blazingtext", "1")])
def test_training_uses_the_training_scope_of_the_same_algorithms(
    framework: str, version: str
) -> None:
    """The original resolved training images through the same SDK call; for built-in
    algorithms the SDK's training and inference images are the same."""
    training = images.builtin_image_uri(framework, version, "eu-central-1", scope="training")
    assert training == images.builtin_image_uri(framework, version, "eu-central-1")


def test_every_built_in_algorithm_of_the_sdk_is_known() -> None:
    """The names the SageMaker documentation lists as built-in algorithms with images."""
    expected = {
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
    }
    for scope in images.SCOPES:
        assert {name for s, name, _ in images.IMAGES if s == scope} == expected
    xgboost = {v for s, name, v in images.IMAGES if s == "training" and name == "xgboost"}
    assert {"1", "0.90-1", "1.0-1", "1.2-1", "1.2-2", "1.3-1", "1.5-1", "1.7-1"} <= xgboost


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
    for scope in images.SCOPES:
        assert images.IMAGES[(scope, "linear-learner", "1")].accounts[region] == linear
        assert images.IMAGES[(scope, "xgboost", "1")].accounts[region] == legacy
        assert images.IMAGES[(scope, "xgboost", "1.5-1")].accounts[region] == xgboost
        assert images.IMAGES[(scope, "xgboost", "1.7-1")].accounts[region] == xgboost
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
    found = table[family] if isinstance(family, str) else images.IMAGES[("inference", *family)]
    assert found.accounts[region] == account


def test_every_region_of_every_partition_is_covered_with_its_domain() -> None:
    """Every region the SDK lists, in every partition: China and GovCloud and the isolated
    regions have other registries and other domains."""
    families = [images.MODEL_MONITOR, images.CLARIFY, *images.IMAGES.values()]
    for family in families:
        assert len(family.accounts) >= 16, family.repository
        for region, account in family.accounts.items():
            assert re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]", region), region
            assert re.fullmatch(r"[0-9]{12}", account), (family.repository, region)
            assert region in images.DOMAINS
    assert len(images.REGIONS) >= 37
    assert images.DOMAINS["cn-northwest-1"] == "amazonaws.com.cn"
    assert images.DOMAINS["us-gov-east-1"] == "amazonaws.com"
    assert images.DOMAINS["us-isob-east-1"] == "sc2s.sgov.gov"
    assert images.monitor_image_uri("model_bias", "cn-north-1") == (
        "122526803553.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-clarify-processing:1.0"
    )


@pytest.mark.parametrize(("scope", "framework", "version"), sorted(images.IMAGES))
def test_every_table_entry_is_a_well_formed_uri_in_each_region(
    scope: str, framework: str, version: str
) -> None:
    if scope not in images.SCOPES:
        return
    family = images.IMAGES[(scope, framework, version)]
    for region in images.REGIONS:
        if region not in family.accounts:
            with pytest.raises(images.UnknownImage):
                images.builtin_image_uri(framework, version, region, scope)
            continue
        uri = images.builtin_image_uri(framework, version, region, scope)
        domain = re.escape(images.DOMAINS[region])
        assert re.fullmatch(
            rf"[0-9]{{12}}\.dkr\.ecr\.{region}\.{domain}/[a-z0-9-]+:{version}(-cpu-py3)?", uri
        ), uri


def test_unknown_framework_suggests_the_known_ones_and_custom_images() -> None:
    with pytest.raises(images.UnknownImage) as caught:
        images.builtin_image_uri("sklearn", "1.2-1", "us-east-1")

    assert caught.value.setting == "framework"
    assert caught.value.message == "unknown built-in framework 'sklearn'"
    assert "kmeans, knn, lda, linear-learner" in caught.value.expected
    assert "xgboost" in caught.value.expected
    assert "custom_image_uri" in caught.value.expected


def test_unknown_version_lists_the_versions_of_that_framework() -> None:
    with pytest.raises(images.UnknownImage) as caught:
        images.builtin_image_uri("xgboost", "0.80-1", "us-east-1")

    assert caught.value.setting == "version"
    assert caught.value.message == "unknown version '0.80-1' of xgboost"
    assert caught.value.expected.startswith("one of 0.90-1, 0.90-2, 1, 1.0-1, 1.2-1, 1.2-2")


def test_an_sdk_alias_is_not_a_version() -> None:
    """The SDK's `latest` names the image xgboost:latest, which moves under a deployed model:
    what runs is what the config pins."""
    with pytest.raises(images.UnknownImage):
        images.builtin_image_uri("xgboost", "latest", "us-east-1")


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


# The table and the script that makes it ----------------------------------------------------


def test_the_checked_in_table_is_what_the_script_makes_from_the_pinned_sdk_files() -> None:
    """`python -m tools.images` regenerates it (docs/images.md); a hand edit fails here."""
    assert tools_images.TABLE.read_text() == tools_images.generate(*tools_images.pinned())
    assert tools_images.main(["--check"]) == 0


def test_the_pinned_sdk_files_are_the_ones_their_source_record_names() -> None:
    record = json.loads((tools_images.PINNED / "SOURCE.json").read_text())
    assert record["package"] == "sagemaker-core"
    assert set(record["sha256"]) == set(tools_images.SCOPES)
    for name, digest in record["sha256"].items():
        data = (tools_images.PINNED / f"{name}.json").read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
    assert record["version"] in images._table()["source"]


def test_a_changed_table_is_found_by_the_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    edited = tmp_path / "images.json"
    edited.write_text(tools_images.TABLE.read_text().replace("683313688378", "683313688379"))
    monkeypatch.setattr(tools_images, "TABLE", edited)

    assert tools_images.main(["--check"]) == 1


PARTITIONS = [
    {"partition": "aws", "dnsSuffix": "amazonaws.com", "regions": ["us-east-1"],
     "regionRegex": r"^(us|eu)\-\w+\-\d+$"},
    {"partition": "aws-cn", "dnsSuffix": "amazonaws.com.cn", "regions": [],
     "regionRegex": r"^cn\-\w+\-\d+$"},
]  # fmt: skip


def _sdk_files(**overrides: object) -> dict[str, object]:
    algorithm = {
        "scope": ["inference", "training"],
        "versions": {"1": {"registries": {"us-east-1": "111111111111"}, "repository": "algo"}},
    }
    files: dict[str, object] = {name: algorithm for name in tools_images.SCOPES}
    files["model-monitor"] = {
        "scope": ["monitoring"],
        "versions": {"": {"registries": {"eu-west-1": "222222222222"}, "repository": "mm"}},
    }
    files["clarify"] = {
        "processing": {
            "versions": {"1.0": {"registries": {"cn-north-1": "333333333333"}, "repository": "c"}}
        }
    }
    return {**files, **overrides}


def _generated(**overrides: object) -> dict[str, Any]:
    made: dict[str, Any] = json.loads(
        tools_images.generate(_sdk_files(**overrides), PARTITIONS, "test")
    )
    return made


def test_the_script_reads_each_scope_tag_and_partition_as_the_sdk_resolves_them() -> None:
    xgboost = {
        "inference": {
            "version_aliases": {"latest": "1"},
            "versions": {
                "1.0-1": {
                    "processors": ["cpu"],
                    "py_versions": ["py3"],
                    "registries": {"us-east-1": "444444444444"},
                    "repository": "sagemaker-xgboost",
                },
            },
        },
        "training": {
            "versions": {
                "1.0-1": {"registries": {"us-west-2": "555555555555"}, "repository": "other"}
            }
        },
        "inference_graviton": {"versions": {"1.5-1": {"registries": {}, "repository": "graviton"}}},
    }

    made = _generated(xgboost=xgboost)

    entries = [e for e in made["images"] if e["name"] == "xgboost"]
    assert entries == [
        {
            "accounts": {"us-east-1": "444444444444"},
            "name": "xgboost",
            "repository": "sagemaker-xgboost",
            "scopes": ["inference"],
            "tag": "1.0-1-cpu-py3",
            "version": "1.0-1",
        },
        {
            "accounts": {"us-west-2": "555555555555"},
            "name": "xgboost",
            "repository": "other",
            "scopes": ["training"],
            "tag": "1.0-1",
            "version": "1.0-1",
        },
    ]
    assert made["partitions"] == {
        "aws": {"domain": "amazonaws.com", "regions": ["eu-west-1", "us-east-1", "us-west-2"]},
        "aws-cn": {"domain": "amazonaws.com.cn", "regions": ["cn-north-1"]},
    }
    kmeans = next(e for e in made["images"] if e["name"] == "kmeans")
    assert kmeans["scopes"] == ["inference", "training"]


@pytest.mark.parametrize(
    "version",
    [
        {"registries": {}, "repository": "r", "processors": ["cpu", "gpu"]},
        {"registries": {}, "repository": "r", "container_version": {"cpu": "x"}},
    ],
)
def test_the_script_refuses_an_sdk_entry_it_cannot_translate(version: dict[str, Any]) -> None:
    """The original passed no instance type: with two processors the SDK would have failed,
    and a field this script does not know may change the tag."""
    files = {"scope": ["inference", "training"], "versions": {"1": version}}
    with pytest.raises(tools_images.Unsupported):
        _generated(kmeans=files)


def test_the_script_refuses_a_region_of_no_known_partition() -> None:
    files = {
        "scope": ["inference", "training"],
        "versions": {"1": {"registries": {"xx-east-1": "1"}, "repository": "r"}},
    }
    with pytest.raises(tools_images.Unsupported, match="xx-east-1"):
        _generated(kmeans=files)


@pytest.mark.parametrize(
    "directory", ["sagemaker/core/image_uri_config", "sagemaker/image_uri_config"]
)
def test_the_script_copies_the_files_out_of_an_sdk_wheel(tmp_path: Path, directory: str) -> None:
    """sagemaker-core keeps them under sagemaker/core/, sagemaker 2.x under sagemaker/."""
    wheel = tmp_path / "sdk.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in tools_images.SCOPES:
            archive.writestr(f"{directory}/{name}.json", f'{{"name": "{name}"}}')
        archive.writestr(f"{directory}/pytorch.json", "{}")
    into = tmp_path / "pinned"
    into.mkdir()

    found, hashes = tools_images.extract(wheel, into)

    assert found == directory
    assert sorted(p.stem for p in into.iterdir()) == sorted(tools_images.SCOPES)
    kmeans = (into / "kmeans.json").read_bytes()
    assert hashes["kmeans"] == hashlib.sha256(kmeans).hexdigest()


def test_the_script_says_which_file_a_wheel_lacks(tmp_path: Path) -> None:
    wheel = tmp_path / "sdk.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("sagemaker/image_uri_config/kmeans.json", "{}")

    with pytest.raises(tools_images.Unsupported, match=r"image_uri_config/blazingtext\.json"):
        tools_images.extract(wheel, tmp_path)
