"""A pushed commit never decides its own gate: the chain is judged by the policy in force,
the policy of the last commit the chain applied completely (issue 17, defect 1).

Pure tests of the model first (no network), then the hostile commits on the emulator: each
one that removes prod's approval, reorders the stages or deletes one, or raises the delete
cap, is promoted under the policy in force, and its plan says what it would change.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import git
import pytest

from controller.cli.main import main
from controller.core import config
from controller.core.chain import chain_of, policy_changes
from controller.core.config.model import Policy
from tests.conftest import commit_config, repo_with
from tests.gitops import seed_account
from tests.multi_account import PROD, REALTIME, parameter, seed_orchestrator, stacks_in
from tests.multi_account import staged_example as example

# The model


def load(document: dict[str, Any]) -> Any:
    loaded = config.load(json.dumps(document).encode(), "c.json", revision="c" * 40, environ={})
    assert loaded.config is not None, [d.format() for d in loaded.diagnostics]
    return loaded.config


def without_stage(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The stage's values gone from every per-stage value, as a commit deleting it has them."""
    for pipeline in document["pipelines"]:
        for value in pipeline.values():
            if isinstance(value, dict):
                value.pop(name, None)
    return document


def without_prod_approval(document: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    del changed["settings"]["stages"][2]["approval"]
    return changed


def test_the_chain_follows_the_policy_in_force_not_the_commits_own() -> None:
    in_force = load(example()).policy
    hostile = copy.deepcopy(example())
    stages = hostile["settings"]["stages"]
    hostile["settings"]["stages"] = [{**stages[2], "approval": "automatic"}, stages[0]]

    chain = chain_of(load(without_stage(hostile, "staging")), in_force)

    assert [s.name for s in chain.steps] == ["orchestrator", "dev", "staging", "prod"]
    assert chain.step("prod").stage is not None and chain.step("prod").stage.manual
    assert chain.step("staging").config is None  # the commit removes it: nothing deployed
    assert chain.policy_changes == (
        "removes stage staging",
        "reorders the stages: prod -> dev",
        "stage prod: no longer needs an approval",
    )


def test_a_commit_with_the_policy_in_force_changes_nothing_in_it() -> None:
    own = load(example())
    assert chain_of(own, own.policy).policy_changes == ()
    assert chain_of(own).policy_changes == ()  # nothing in force yet: judged by its own


def test_every_key_of_a_stage_is_policy_even_one_added_later() -> None:
    before = Policy({"stages": [{"name": "prod", "account_id": "1", "promote_after": "1h"}]})
    after = Policy({"stages": [{"name": "prod", "account_id": "1"}], "max_deletes": 50})
    assert policy_changes(before, after) == (
        "stage prod: promote_after changes from 1h to (unset)",
        "max_deletes changes from (unset) to 50",
    )


def test_the_delete_cap_in_force_holds_unless_the_operator_overrides_it() -> None:
    document = json.loads(
        (Path(__file__).parent.parent / "examples" / "mlops-config.json").read_text()
    )
    document["settings"]["max_deletes"] = 5
    in_force = load(document).policy
    raised = copy.deepcopy(document)
    raised["settings"]["max_deletes"] = 500
    assert chain_of(load(raised), in_force).max_deletes == 5
    overridden = config.load(
        json.dumps(raised).encode(),
        "c.json",
        revision="c" * 40,
        environ={},
        flags={"max_deletes": 9},
    ).config
    assert overridden is not None
    assert chain_of(overridden, in_force).max_deletes == 9


# On the emulator


@pytest.fixture
def repo(aws: str, tmp_path: Path) -> git.Repo:
    seed_orchestrator(example())
    return repo_with(tmp_path / "staged-repo", example(), "Three stages")


def promotion(capsys: pytest.CaptureFixture[str], repo: git.Repo) -> dict[str, Any]:
    code = main(["apply", "--auto-approve", "--repo", str(repo.working_dir), "-o", "json"])
    document = json.loads(capsys.readouterr().out)
    return {"exit": code, **{s["stage"]: s for s in document["stages"]}}


def approve(capsys: pytest.CaptureFixture[str], repo: git.Repo, stage: str) -> None:
    assert main(["approve", "--stage", stage, "--repo", str(repo.working_dir)]) == 0
    capsys.readouterr()


def applied_completely(capsys: pytest.CaptureFixture[str], repo: git.Repo) -> None:
    """The first commit through every stage: its policy is the one in force."""
    promotion(capsys, repo)
    approve(capsys, repo, "staging")
    promotion(capsys, repo)
    approve(capsys, repo, "prod")
    assert promotion(capsys, repo)["prod"]["outcome"] == "applied"


def bigger_prod(document: dict[str, Any]) -> dict[str, Any]:
    document["pipelines"][0]["inference_instance"]["prod"] = "ml.m5.2xlarge"
    return document


def test_a_commit_that_drops_prods_approval_still_waits_for_one(repo, capsys) -> None:
    applied_completely(capsys, repo)
    commit_config(repo, bigger_prod(without_prod_approval(example())), "prod: no approval")

    code = main(["plan", "--repo", str(repo.working_dir)])
    out = capsys.readouterr()
    assert code == 2
    assert "This commit changes the promotion policy" in out.out
    assert "stage prod: no longer needs an approval" in out.out
    promotion(capsys, repo)
    approve(capsys, repo, "staging")
    done = promotion(capsys, repo)

    assert done["staging"]["outcome"] == "applied"
    assert done["prod"]["gate"] == "waiting"
    assert done["prod"]["gate_reason"].startswith("waits for approval")
    assert parameter(stacks_in(PROD)[REALTIME], "InferenceInstance") == "ml.m5.xlarge"


@pytest.mark.parametrize(
    "hostile",
    [
        lambda stages: [{k: v for k, v in stages[2].items() if k != "approval"}, *stages[:2]],
        lambda stages: [stages[0], {k: v for k, v in stages[2].items() if k != "approval"}],
    ],
    ids=["prod-first-without-approval", "staging-deleted-prod-without-approval"],
)
def test_a_commit_that_reorders_or_deletes_stages_is_promoted_in_the_order_in_force(
    repo, capsys, hostile
) -> None:
    applied_completely(capsys, repo)
    document = bigger_prod(example())
    document["settings"]["stages"] = hostile(document["settings"]["stages"])
    for pipeline in document["pipelines"]:
        for value in pipeline.values():
            if (
                isinstance(value, dict)
                and "staging" in value
                and len(document["settings"]["stages"]) == 2
            ):
                del value["staging"]
    commit_config(repo, document, "Hostile stages")

    done = promotion(capsys, repo)

    assert done["dev"]["outcome"] == "applied"
    assert done["staging"]["gate"] == "waiting"
    assert "prod" not in done
    assert parameter(stacks_in(PROD)[REALTIME], "InferenceInstance") == "ml.m5.xlarge"


def test_a_commit_cannot_raise_the_delete_cap_that_guards_it(
    aws, tmp_path, capsys, example_config
) -> None:
    seed_account(example_config)
    example_config["settings"]["max_deletes"] = 5
    repo = repo_with(tmp_path / "repo", example_config, "Nine pipelines")
    assert main(["apply", "--auto-approve", "--repo", str(repo.working_dir)]) == 0
    example_config["settings"]["max_deletes"] = 100
    example_config["pipelines"] = example_config["pipelines"][:2]
    commit_config(repo, example_config, "Raise the cap and delete seven")
    capsys.readouterr()

    code = main(["apply", "--auto-approve", "--repo", str(repo.working_dir)])

    out = capsys.readouterr()
    assert code == 1
    assert "max_deletes (5)" in out.out + out.err
    assert "max_deletes changes from 5 to 100" in out.out + out.err
