"""Every command and flag on a chain of one step (a config without stages) and a chain of
several (three stages), through the real CLI: the same command means the same thing.

Each test runs on both; `Chain` says what differs only in data (which step is first, which
steps a commit reaches before a gate). Also here: the defects issue 17 found where the two
paths had drifted (`--profile` ignored by `approve`, flags ignored by staged commands, an
error escaping `watch`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import git
import pytest
from rich.console import Console

from controller.aws.promotion import PromotionError, Promotions
from controller.cli.main import main
from controller.gitops import watch
from tests.aws_calls import count_calls
from tests.conftest import commit_config, repo_with
from tests.gitops import seed_account, small_config
from tests.multi_account import REALTIME, seed_orchestrator, staged_example


@dataclass(frozen=True)
class Chain:
    repo: git.Repo
    document: dict[str, Any]
    steps: tuple[str, ...]
    reached: tuple[str, ...]
    """The steps a first `apply` brings the commit to (the rest wait behind a gate)."""
    deployed_in: str
    """The step whose account holds the realtime endpoint."""


@pytest.fixture(params=["one-step", "three-stages"])
def chain(request: pytest.FixtureRequest, aws: str, tmp_path: Path, example_config) -> Chain:
    if request.param == "one-step":
        document = small_config(example_config)
        seed_account(document)
        repo = repo_with(tmp_path / "repo", document, "One endpoint")
        return Chain(repo, document, ("orchestrator",), ("orchestrator",), "orchestrator")
    document = staged_example()
    seed_orchestrator(document)
    repo = repo_with(tmp_path / "repo", document, "Three stages")
    steps = ("orchestrator", "dev", "staging", "prod")
    return Chain(repo, document, steps, ("orchestrator", "dev"), "dev")


def run(capsys: pytest.CaptureFixture[str], chain: Chain, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--repo", str(chain.repo.working_dir)])
    out, err = capsys.readouterr()
    return code, out, err


def applied(capsys: pytest.CaptureFixture[str], chain: Chain, *argv: str) -> dict[str, Any]:
    code, out, err = run(capsys, chain, "apply", "--auto-approve", "-o", "json", *argv)
    document = json.loads(out)
    assert code == 0, err
    return document


def test_plan_json_has_a_version_and_every_step(chain, capsys) -> None:
    code, out, _ = run(capsys, chain, "plan", "-o", "json")
    plan = json.loads(out)
    assert code == 2
    assert plan["version"] == 2
    assert [s["stage"] for s in plan["stages"]] == list(chain.steps)
    assert plan["policy_changes"] == []


def test_apply_reaches_the_steps_the_gates_allow_and_plan_is_then_empty_there(
    chain, capsys
) -> None:
    done = applied(capsys, chain)
    assert [s["stage"] for s in done["stages"] if s["outcome"] == "applied"] == list(chain.reached)
    code, out, _ = run(capsys, chain, "plan", "--stage", chain.deployed_in, "-o", "json")
    assert code == 0
    (step,) = json.loads(out)["stages"]
    assert [c for c in step["plan"]["changes"] if c["action"] != "wait"] == []


def test_plan_all_lists_unchanged_pipelines_and_detect_drift_runs_drift_detection(
    chain, capsys, monkeypatch
) -> None:
    applied(capsys, chain)
    calls = count_calls(monkeypatch)
    code, out, err = run(capsys, chain, "plan", "--stage", chain.deployed_in, "--all")
    assert code == 0, err
    assert REALTIME in out
    code, _, _ = run(capsys, chain, "plan", "--stage", chain.deployed_in, "--detect-drift")
    assert code == 0
    assert calls["cloudformation.DetectStackDrift"] >= 1


def test_target_plans_the_named_pipeline_in_every_step_that_has_it(chain, capsys) -> None:
    code, out, err = run(capsys, chain, "plan", "--target", REALTIME, "-o", "json")
    assert code == 2, err
    planned = {
        s["stage"]: [c["name"] for c in s["plan"]["changes"]] for s in json.loads(out)["stages"]
    }
    assert set(planned) == set(chain.steps) - ({"orchestrator"} if len(chain.steps) > 1 else set())
    assert all(names == [REALTIME] for names in planned.values())
    assert "Targeted:" in err


def bigger_endpoint(chain: Chain) -> None:
    """A new commit that changes the realtime endpoint where it is deployed; a step behind
    the orchestrator's gets it once the orchestrator's step has applied the commit."""
    pipeline = chain.document["pipelines"][0]
    if chain.deployed_in == "orchestrator":
        pipeline["inference_instance"] = "ml.m5.xlarge"
    else:
        pipeline["inference_instance"]["dev"] = "ml.m5.xlarge"
    commit_config(chain.repo, chain.document, "Bigger endpoint")


def test_a_targeted_apply_writes_only_the_named_pipeline_where_its_gate_is_open(
    chain, capsys
) -> None:
    applied(capsys, chain)
    bigger_endpoint(chain)
    if chain.deployed_in != "orchestrator":
        applied(capsys, chain, "--stage", "orchestrator")

    done = applied(capsys, chain, "--target", REALTIME)

    steps = {s["stage"]: s for s in done["stages"]}
    target = steps[chain.deployed_in]
    assert target["outcome"] == "incomplete", "a targeted apply never opens the next gate"
    assert [r["name"] for r in target["apply"]["results"]] == [REALTIME]
    assert target["apply"]["results"][0]["outcome"] == "succeeded"
    code, _, err = run(capsys, chain, "apply", "--auto-approve", "--target", "no-such-model")
    assert code == 1
    assert "--target 'no-such-model' names no pipeline" in err


def test_a_saved_plan_of_a_step_is_applied_exactly(chain, capsys, tmp_path, monkeypatch) -> None:
    saved = tmp_path / "plan.json"
    step = chain.deployed_in
    if step != "orchestrator":
        applied(capsys, chain)
        bigger_endpoint(chain)
        # dev's gate opens once the step before it has applied this commit
        applied(capsys, chain, "--stage", "orchestrator")
    code, _, err = run(capsys, chain, "plan", "--stage", step, "--out", str(saved))
    assert code == 2, err
    assert json.loads(saved.read_text())["step"] == step

    monkeypatch.chdir(chain.repo.working_dir)  # the clone, for the stale-commit guard
    code = main(["apply", str(saved), "--auto-approve", "-o", "json"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    (done,) = json.loads(out)["stages"]
    assert (done["stage"], done["outcome"]) == (step, "applied")


def test_apply_markdown_and_an_older_commit_on_purpose(chain, capsys) -> None:
    first = chain.repo.head.commit.hexsha
    code, out, _ = run(capsys, chain, "apply", "--auto-approve", "-o", "markdown")
    assert code == 0
    assert out.startswith("### mlops-controller apply")
    commit_config(chain.repo, chain.document | {"pipelines": chain.document["pipelines"]}, "Same")
    applied(capsys, chain)

    code, _, err = run(capsys, chain, "apply", "--auto-approve", "--ref", first)
    assert code == 1
    assert "an ancestor of" in err or "an ancestor of" in _
    code, _, err = run(
        capsys, chain, "apply", "--auto-approve", "--ref", first, "--allow-older-commit"
    )
    assert code == 0, err


def test_status_and_history_json_have_a_version_and_every_step(chain, capsys) -> None:
    applied(capsys, chain)
    code, out, _ = run(capsys, chain, "status", "-o", "json")
    status = json.loads(out)
    assert code == 0
    assert status["version"] == 2
    assert [s["stage"] for s in status["stages"]] == list(chain.steps)
    deployed = {s["stage"]: [p["name"] for p in s["pipelines"]] for s in status["stages"]}
    assert REALTIME in deployed[chain.deployed_in]
    code, out, _ = run(capsys, chain, "history", "--stage", chain.deployed_in, "-o", "json")
    history = json.loads(out)
    assert code == 0 and history["version"] == 2
    assert len(history["applies"]) == 1


def test_adopt_finds_the_pipeline_in_the_step_that_deploys_it(chain, capsys) -> None:
    applied(capsys, chain)
    code, out, err = run(
        capsys, chain, "adopt", REALTIME, "--stage", chain.deployed_in, "--auto-approve"
    )
    assert code == 0, err
    assert f"{REALTIME} is managed by this controller already" in out


def test_watch_once_promotes_the_tip(chain, capsys) -> None:
    code = main(["watch", "--repo", str(chain.repo.working_dir), "--once"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert chain.repo.head.commit.hexsha[:12] in out


def test_an_error_is_one_line_and_a_json_value(chain, capsys) -> None:
    code, out, err = run(capsys, chain, "status", "--stage", "nope", "-o", "json")
    assert code == 1
    assert err.startswith("error: --stage nope")
    assert json.loads(out)["error"]["code"] == "MC300"
    assert "Traceback" not in out + err


# Defects the two paths had (issue 17)


def test_approve_records_the_decision_under_the_profiles_identity(
    aws, tmp_path, capsys, monkeypatch
) -> None:
    document = staged_example()
    seed_orchestrator(document)
    repo = repo_with(tmp_path / "repo", document, "Three stages")
    iam = boto3.client("iam", region_name="us-east-1")
    alice = iam.create_user(UserName="alice")["User"]["UserId"]
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[approver]\naws_access_key_id = {key['AccessKeyId']}\n"
        f"aws_secret_access_key = {key['SecretAccessKey']}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    assert main(["apply", "--auto-approve", "--repo", str(repo.working_dir)]) == 0

    code = main(
        ["approve", "--stage", "staging", "--repo", str(repo.working_dir), "--profile", "approver"]
    )

    assert code == 0
    assert "as arn:aws:iam::123456789012:user/alice" in capsys.readouterr().out
    s3 = boto3.client("s3", region_name="us-east-1")
    store = Promotions(s3, document["settings"]["assets_bucket"], "mlops-controller")
    (decision,) = store.decisions("staging", repo.head.commit.hexsha)
    assert decision.user_id == alice


def test_a_record_that_cannot_be_written_is_an_error_line_in_watch_never_a_traceback(
    aws, tmp_path, capsys, monkeypatch
) -> None:
    document = staged_example()
    seed_orchestrator(document)
    repo = repo_with(tmp_path / "repo", document, "Three stages")

    def refused(self: Promotions, *_: Any) -> str:
        raise PromotionError("cannot write s3://mlops-assets-example/...: AccessDenied")

    monkeypatch.setattr(Promotions, "record", refused)
    assert main(["watch", "--repo", str(repo.working_dir), "--once"]) == 1
    out = capsys.readouterr().out
    assert "error: cannot write s3://mlops-assets-example/...: AccessDenied [MC200]" in out

    rounds: list[int] = []
    stop = threading.Event()
    original = watch.poll

    def counted(*args: Any) -> watch.Tick:
        rounds.append(1)
        if len(rounds) == 2:
            stop.set()
        return original(*args)

    monkeypatch.setattr(watch, "poll", counted)
    options = watch.WatchOptions(str(repo.working_dir))
    code = watch.watch(options, 0.01, Console(file=None), stop=stop)
    assert code == 0 and len(rounds) == 2, "the loop goes on after the error"
