"""What Terraform, Atlantis and AWS CLI users reach for, through the real CLI on a moto server:
AWS profiles, the working tree, saved plans, targets, confirmation and Ctrl-C."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import git
import pytest

from bench.proxy import FaultProxy
from controller.aws import session as aws_module
from controller.aws.demo_world import seed
from controller.aws.ledger import Ledger
from controller.aws.lock import lock_key
from controller.cli.main import main
from controller.core import planfile
from tests.aws_calls import count_calls, stack_writes
from tests.conftest import EXAMPLE, commit_config

EXECUTABLE = Path(sys.executable).with_name("mlops-controller")
REALTIME = "mlops-pipeline-linearlearner-byompipelinerealtimebuiltin"
BATCH = "mlops-pipeline-linearlearner-byompipelinebatchbuiltin"
BUILDER = "mlops-pipeline-churn-byompipelineimagebuilder"
CUSTOM = "mlops-pipeline-churnxgb-byompipelinerealtimecustom"
DATA_QUALITY = "mlops-pipeline-churnxgb-byomdataqualitymonitor"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    return count_calls(monkeypatch)


@pytest.fixture
def account(aws: str, example_config: dict[str, Any]) -> Any:
    seed(
        aws_module.Aws(region="us-east-1"),
        example_config["settings"]["assets_bucket"],
        example_config,
    )
    return boto3.client("cloudformation", region_name="us-east-1")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stacks(cfn: Any) -> dict[str, dict[str, Any]]:
    return {s["StackName"]: s for s in cfn.describe_stacks()["Stacks"]}


def ledger(example_config: dict[str, Any]) -> Ledger:
    s3 = boto3.client("s3", region_name="us-east-1")
    return Ledger(s3, example_config["settings"]["assets_bucket"], "mlops-controller")


# --- AWS configuration as the AWS CLI reads it ---------------------------------------------


@pytest.fixture
def aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A laptop where only `~/.aws/config` and `~/.aws/credentials` know region and keys."""
    config = tmp_path / "aws-config"
    config.write_text("[default]\noutput = json\n\n[profile dev]\nregion = eu-west-1\n")
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        "[dev]\naws_access_key_id = dev-key\naws_secret_access_key = dev-secret\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    return config


def _without_region(example_config: dict[str, Any], tmp_path: Path) -> Path:
    data = json.loads(json.dumps(example_config))
    del data["settings"]["region"]
    data["pipelines"] = [p for p in data["pipelines"] if "custom" in p["pipeline_type"]]
    path = tmp_path / "mlops-config.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def test_the_profiles_region_is_the_last_fallback_for_the_region(
    aws_files: Path, example_config: dict[str, Any], tmp_path: Path, capsys, monkeypatch
) -> None:
    path = _without_region(example_config, tmp_path)
    with aws_files.open("a") as config:
        config.write("\n[profile typo]\nregion = eu-west-9\n")

    without = run(capsys, "validate", str(path))
    with_flag = run(capsys, "validate", str(path), "--profile", "dev", "-o", "json")
    typo = run(capsys, "validate", str(path), "--profile", "typo")
    monkeypatch.setenv("AWS_PROFILE", "dev")
    with_variable = run(capsys, "validate", str(path))

    assert without[0] == 1
    assert "S107 $.settings.region: missing required setting" in without[2]
    assert "a region in the AWS profile" in without[2]
    assert with_flag[0] == 0, with_flag
    assert json.loads(with_flag[1]) == {"version": 2, "valid": True, "diagnostics": []}
    assert typo[0] == 1
    assert "C106 $.settings.region: unknown region 'eu-west-9'; did you mean 'eu-west-" in typo[2]
    assert "(set by the region of AWS profile 'typo')" in typo[2]
    assert with_variable[0] == 0, with_variable


def test_a_profile_that_does_not_exist_is_one_clear_error(aws_files: Path, capsys) -> None:
    code, out, err = run(capsys, "plan", "--config", str(EXAMPLE), "--profile", "nope")

    assert code == 1
    assert err.startswith("error: AWS profile 'nope' is not in ")
    assert str(aws_files) in err
    assert "Traceback" not in out + err


def test_commands_reach_aws_with_the_profiles_credentials_and_region(
    aws: str, aws_files: Path, example_config: dict[str, Any], tmp_path: Path, capsys
) -> None:
    europe = boto3.client(
        "cloudformation",
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    template = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    europe.create_stack(
        StackName=CUSTOM,
        TemplateBody=template,
        Tags=[{"Key": "mlops:managed-by", "Value": "mlops-controller"}],
    )
    path = _without_region(example_config, tmp_path)

    code, out, err = run(capsys, "status", "--config", str(path), "--profile", "dev", "-o", "json")
    no_keys = run(capsys, "status", "--config", str(path), "--region", "eu-west-1")

    assert code == 0, err
    assert [row["name"] for row in json.loads(out)["pipelines"]] == [CUSTOM]
    assert no_keys[0] == 1 and "Unable to locate credentials" in no_keys[2]


def test_a_well_formed_but_unknown_region_is_an_error_with_a_suggestion(
    tmp_path: Path, example_config: dict[str, Any], capsys
) -> None:
    path = tmp_path / "mlops-config.json"
    example_config["settings"]["region"] = "us-east-9"
    path.write_text(json.dumps(example_config, indent=2))

    code, _, err = run(capsys, "validate", str(path))

    assert code == 1
    assert (
        f"{path}:4: error C106 $.settings.region: unknown region 'us-east-9'; did you mean "
    ) in err


# --- Plan what I am looking at ------------------------------------------------------------


def test_plan_reads_uncommitted_edits_and_says_so_while_ref_reads_the_commit(
    account, config_repo: git.Repo, example_config: dict[str, Any], capsys, monkeypatch
) -> None:
    head = config_repo.head.commit.hexsha
    example_config["pipelines"] = example_config["pipelines"][:1]
    Path(config_repo.working_dir, "mlops-config.json").write_text(json.dumps(example_config))
    monkeypatch.chdir(config_repo.working_dir)

    code, out, err = run(capsys, "plan")
    committed = run(capsys, "plan", "--ref", "HEAD", "-o", "json")
    edited = run(capsys, "plan", "-o", "json")

    assert code == 2, err
    assert (
        f"Plan for mlops-config.json (working tree, uncommitted changes; on top of {head[:12]})"
    ) in out
    assert json.loads(edited[1])["revision"] is None
    assert len(json.loads(edited[1])["changes"]) == 1
    assert json.loads(committed[1])["revision"] == head
    assert len(json.loads(committed[1])["changes"]) == 9


def test_apply_of_uncommitted_changes_is_recorded_without_a_commit(
    account, config_repo: git.Repo, example_config: dict[str, Any], capsys, monkeypatch
) -> None:
    example_config["pipelines"] = example_config["pipelines"][:1]
    Path(config_repo.working_dir, "mlops-config.json").write_text(json.dumps(example_config))
    monkeypatch.delenv("USER", raising=False)

    code, out, err = run(capsys, "apply", "--auto-approve", "--repo", config_repo.working_dir)

    assert code == 0, out + err
    assert list(stacks(account)) == [REALTIME]
    (record,) = ledger(example_config).history()
    assert record.commit is None
    assert "working tree, uncommitted changes" in record.source
    assert record.actor == "Test User", "git's user.name when USER is unset"
    assert ledger(example_config).last_applied() is None


def test_the_actor_is_the_committer_when_user_is_unset(
    account, config_repo: git.Repo, example_config: dict[str, Any], capsys, monkeypatch
) -> None:
    monkeypatch.delenv("USER", raising=False)
    monkeypatch.delenv("CODEBUILD_INITIATOR", raising=False)

    assert run(capsys, "apply", "--auto-approve", "--repo", config_repo.working_dir)[0] == 0

    (record,) = ledger(example_config).history()
    assert record.actor == "Test User"


# --- Saved plans --------------------------------------------------------------------------


def test_a_saved_plan_is_applied_exactly_and_needs_no_git(
    account, config_repo: git.Repo, tmp_path: Path, capsys, calls, monkeypatch
) -> None:
    saved = tmp_path / "plan.json"
    code, _, err = run(capsys, "plan", "--repo", config_repo.working_dir, "--out", str(saved))
    assert code == 2
    assert f"Apply exactly this plan with: mlops-controller apply {saved}" in err
    document = json.loads(saved.read_text())
    assert (document["format"], document["version"]) == ("mlops-controller plan", 2)
    assert document["revision"] == config_repo.head.commit.hexsha
    assert set(document["actions"].values()) == {"create"}
    assert len(document["spec_hashes"]) == 9
    git.rmtree(config_repo.working_dir)
    monkeypatch.chdir(tmp_path)
    calls.clear()

    code, out, err = run(capsys, "apply", str(saved))

    assert code == 0, out + err
    assert calls["cloudformation.CreateStack"] == 9
    assert len(stacks(account)) == 9
    assert f"(saved plan {saved})" in out


def test_a_saved_plan_is_refused_once_a_stack_moved(
    account, config_repo: git.Repo, example_config: dict[str, Any], tmp_path: Path, capsys, calls
) -> None:
    assert run(capsys, "apply", "--auto-approve", "--repo", config_repo.working_dir)[0] == 0
    example_config["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    commit_config(config_repo, example_config, "Scale up")
    saved = tmp_path / "plan.json"
    assert run(capsys, "plan", "--repo", config_repo.working_dir, "--out", str(saved))[0] == 2
    example_config["pipelines"][0]["inference_instance"] = "ml.m5.2xlarge"
    commit_config(config_repo, example_config, "Scale up more")
    assert run(capsys, "apply", "--auto-approve", "--repo", config_repo.working_dir)[0] == 0
    calls.clear()

    code, _, err = run(capsys, "apply", str(saved))

    assert code == 1
    assert f"error: the saved plan {saved} no longer holds: {REALTIME} changed" in err
    assert "Nothing was changed: make a new plan" in err
    assert not stack_writes(calls)


def _signed(edit: Any) -> Any:
    """An edit by someone who also recomputes the file's digest: the checks behind it hold."""

    def edited(document: dict[str, Any]) -> None:
        edit(document)
        if "digest" in document:  # (files before issue 19 had none)
            document["digest"] = planfile.digest(document)

    return edited


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            _signed(lambda d: d["spec_hashes"].update({REALTIME: "0" * 64})),
            "renders differently now",
        ),
        (_signed(lambda d: d["config"].update(text=d["config"]["text"] + " ")), "was edited"),
        (_signed(lambda d: d.update(account="210987654321")), "made for account 210987654321"),
        (lambda d: d.update(version=9), "plan file format 9"),
        # Issue 19, item 2: a missing account never turns the account check off, and no field
        # that decides what is applied or recorded may change without the digest noticing.
        (_signed(lambda d: d.update(account=None)), "names no account"),
        (lambda d: d.update(targets=["linearlearner"]), "was edited since `plan --out`"),
        (lambda d: d.update(allow_delete_all=True), "was edited since `plan --out`"),
        (lambda d: d.update(source="someone else's commit"), "was edited since `plan --out`"),
        (lambda d: d.update(revision="0" * 40), "was edited since `plan --out`"),
        (lambda d: d.pop("digest"), "was edited since `plan --out`"),
    ],
    ids=[
        "another-version",
        "edited-config",
        "other-account",
        "newer-format",
        "no-account",
        "targets",
        "guards",
        "label",
        "revision",
        "no-digest",
    ],
)
def test_a_saved_plan_that_does_not_hold_is_refused_with_the_reason(
    account, config_repo: git.Repo, tmp_path: Path, capsys, calls, edit: Any, reason: str
) -> None:
    saved = tmp_path / "plan.json"
    assert run(capsys, "plan", "--repo", config_repo.working_dir, "--out", str(saved))[0] == 2
    document = json.loads(saved.read_text())
    edit(document)
    saved.write_text(json.dumps(document))
    calls.clear()

    code, _, err = run(capsys, "apply", str(saved))

    assert code == 1
    assert reason in err
    assert not stack_writes(calls)
    assert stacks(account) == {}


def test_a_plan_labelled_with_a_commit_applies_only_that_commits_config(
    account,
    config_repo: git.Repo,
    example_config: dict[str, Any],
    tmp_path: Path,
    capsys,
    calls,
    monkeypatch,
) -> None:
    """Issue 19, item 2: another plan's config and spec hashes spliced into a plan labelled
    with a commit (digests recomputed) applied that config and recorded the commit as
    applied. In the repository it is refused; away from it, no commit is recorded."""
    labelled = tmp_path / "labelled.json"
    other = tmp_path / "other.json"
    assert run(capsys, "plan", "--repo", config_repo.working_dir, "--out", str(labelled))[0] == 2
    example_config["pipelines"] = example_config["pipelines"][:1]
    path = tmp_path / "other-config.json"
    path.write_text(json.dumps(example_config))
    assert run(capsys, "plan", "--config", str(path), "--out", str(other))[0] == 2
    spliced = json.loads(labelled.read_text())
    donor = json.loads(other.read_text())
    for field in ("spec_hashes", "deployed", "actions"):
        spliced[field] = donor[field]
    spliced["config"].update(text=donor["config"]["text"], sha256=donor["config"]["sha256"])
    if "digest" in spliced:  # (files before issue 19 had none)
        spliced["digest"] = planfile.digest(spliced)
    labelled.write_text(json.dumps(spliced))
    monkeypatch.chdir(config_repo.working_dir)
    calls.clear()

    code, _, err = run(capsys, "apply", str(labelled))

    assert code == 1
    assert "its config is not mlops-config.json@" in err
    assert not stack_writes(calls)
    monkeypatch.chdir(tmp_path)

    code, out, err = run(capsys, "apply", str(labelled))

    assert code == 0, out + err
    assert "applied as a config without a commit, and the ledger records none" in err
    assert ledger(example_config).pointer() is None, "no commit is recorded as applied"


def test_a_saved_plan_takes_no_source_or_settings_flags(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "apply", str(tmp_path / "p.json"), "--repo", ".", "--region", "x")

    assert code == 1
    assert "takes the config, settings, targets and guards from the plan file: drop " in err
    assert "--repo" in err and "--region" in err


# --- Targets ------------------------------------------------------------------------------


def test_a_target_plans_it_and_what_it_needs_and_nothing_else(account, config_repo, capsys):
    code, out, err = run(
        capsys, "plan", "--repo", config_repo.working_dir, "--target", DATA_QUALITY, "-o", "json"
    )

    assert code == 2
    names = [c["name"] for c in json.loads(out)["changes"]]
    assert names == [BUILDER, CUSTOM, DATA_QUALITY]
    assert "Targeted: 3 of 9 pipelines planned; 6 left out." in err


def test_a_targeted_apply_writes_only_its_stacks_and_leaves_the_commit_unapplied(
    account, config_repo, example_config, capsys, calls
) -> None:
    code, out, err = run(
        capsys,
        "apply",
        "--auto-approve",
        "--repo",
        config_repo.working_dir,
        "--target",
        "linearlearner",
    )

    assert code == 0, out + err
    assert sorted(stacks(account)) == sorted([REALTIME, BATCH])
    assert calls["cloudformation.CreateStack"] == 2
    pointer = ledger(example_config).pointer()
    # It wrote, so a late build of an older commit is refused; but it is not the whole commit.
    assert pointer is not None and pointer.commit == config_repo.head.commit.hexsha
    assert not pointer.ok, "watch must still apply the commit"
    assert run(capsys, "apply", "--auto-approve", "--repo", config_repo.working_dir)[0] == 0
    pointer = ledger(example_config).pointer()
    assert pointer is not None and pointer.ok


def test_a_pipeline_target_never_adds_the_delete_of_its_removed_stacks(
    account, config_repo, example_config, capsys
) -> None:
    """Issue 19, item 3: `--target MODEL` planned the delete of that model's removed stacks
    too, though deletes are never added to a target implicitly."""
    example_config["pipelines"] = example_config["pipelines"][:2]
    commit_config(config_repo, example_config, "Two pipelines")
    assert run(capsys, "apply", "--auto-approve", "--repo", config_repo.working_dir)[0] == 0
    example_config["pipelines"] = example_config["pipelines"][:1]
    example_config["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    commit_config(config_repo, example_config, "Remove the batch pipeline, scale up")

    code, out, _ = run(
        capsys, "plan", "--repo", config_repo.working_dir, "--target", "linearlearner", "-o", "json"
    )
    named = run(capsys, "plan", "--repo", config_repo.working_dir, "--target", BATCH, "-o", "json")

    assert code == 2
    assert [(c["name"], c["action"]) for c in json.loads(out)["changes"]] == [(REALTIME, "update")]
    assert [(c["name"], c["action"]) for c in json.loads(named[1])["changes"]] == [
        (BATCH, "delete")
    ], "a stack named by its own name is deleted"


def test_a_targeted_apply_of_an_unpushed_commit_never_stops_ci_applying_the_branch(
    account, config_repo, example_config, tmp_path, capsys
) -> None:
    """Issue 19, item 3: a targeted apply of a commit CI's clone never sees moved the ledger's
    pointer to it, and every later CI run refused ("cannot tell whether commit ... is
    older") and could not correct what the targeted apply deployed."""
    example_config["pipelines"] = example_config["pipelines"][:2]
    commit_config(config_repo, example_config, "Two pipelines")
    origin = git.Repo.init(tmp_path / "origin.git", bare=True, initial_branch="main")
    config_repo.create_remote("origin", origin.git_dir).push("main:main")
    assert run(capsys, "apply", "--auto-approve", "--repo", config_repo.working_dir)[0] == 0
    pushed = config_repo.head.commit.hexsha
    example_config["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    commit_config(config_repo, example_config, "Scale up (not pushed)")
    targeted = run(
        capsys,
        "apply",
        "--auto-approve",
        "--repo",
        config_repo.working_dir,
        "--target",
        "linearlearner",
    )
    assert targeted[0] == 0, targeted
    assert ledger(example_config).history(1)[0].commit == config_repo.head.commit.hexsha
    clone = git.Repo.clone_from(origin.git_dir, tmp_path / "ci-clone")

    code, out, err = run(capsys, "apply", "--auto-approve", "--repo", clone.working_dir)

    assert code == 0, out + err
    assert "cannot tell whether commit" not in out + err
    pointer = ledger(example_config).pointer()
    assert pointer is not None and (pointer.commit, pointer.ok) == (pushed, True)
    live = stacks(account)[REALTIME]["Parameters"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in live}["InferenceInstance"] == (
        "ml.m5.large"
    ), "CI put the branch's value back"


def test_an_unknown_target_is_named_with_a_suggestion(account, config_repo, capsys, calls):
    code, _, err = run(
        capsys, "plan", "--repo", config_repo.working_dir, "--target", "linearlerner"
    )

    assert code == 1
    assert err.strip() == (
        "error: --target 'linearlerner' names no pipeline in the config and no stack this "
        "controller manages; did you mean 'linearlearner'?"
    )


def test_targeted_deletes_still_go_through_the_delete_guards(
    account, config_repo, example_config, capsys, calls
) -> None:
    assert run(capsys, "apply", "--auto-approve", "--repo", config_repo.working_dir)[0] == 0
    example_config["pipelines"] = example_config["pipelines"][:2]
    commit_config(config_repo, example_config, "Remove seven pipelines")
    many = [f"--target={name}" for name in sorted(stacks(account)) if "linearlearner" not in name]
    calls.clear()

    refused = run(capsys, "apply", "--auto-approve", "--repo", config_repo.working_dir, *many)
    two = run(capsys, "apply", "--auto-approve", "--repo", config_repo.working_dir, *many[:2])

    assert refused[0] == 1 and "max_deletes (5)" in refused[1] + refused[2]
    assert two[0] == 0, two
    assert stack_writes(calls) == Counter({"cloudformation.DeleteStack": 2})
    assert len(stacks(account)) == 7


# --- Confirmation and Ctrl-C --------------------------------------------------------------


def test_apply_without_a_terminal_or_auto_approve_refuses_before_any_call(
    account, config_repo, capsys, calls
) -> None:
    calls.clear()
    code, _, err = run(capsys, "apply", "--repo", config_repo.working_dir)

    assert code == 1
    assert "pass --auto-approve" in err
    assert not calls


def _apply_on_a_terminal(repo: git.Repo, answer: bytes) -> subprocess.CompletedProcess[bytes]:
    """`apply` with a terminal on stdin (a pseudo-terminal), answering the question."""
    primary, secondary = pty.openpty()
    with subprocess.Popen(
        [str(EXECUTABLE), "apply", "--repo", str(repo.working_dir)],
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    ) as process:
        os.close(secondary)
        os.write(primary, answer)
        out, err = process.communicate(timeout=120)
    os.close(primary)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_apply_on_a_terminal_shows_the_plan_and_asks(account, config_repo) -> None:
    declined = _apply_on_a_terminal(config_repo, b"no\n")
    assert declined.returncode == 1, declined.stderr
    assert b"Apply these 9 change(s) in us-east-1? Only 'yes' is accepted." in declined.stdout
    assert b"Apply cancelled: nothing was changed." in declined.stdout
    assert stacks(account) == {}

    accepted = _apply_on_a_terminal(config_repo, b"yes\n")

    assert accepted.returncode == 0, accepted.stdout[-2000:] + accepted.stderr[-2000:]
    assert len(stacks(account)) == 9


def test_ctrl_c_stops_new_writes_exits_130_and_the_next_run_converges(
    aws: str, config_repo: git.Repo, example_config: dict[str, Any], capsys
) -> None:
    example_config["pipelines"] = [example_config["pipelines"][i] for i in (0, 1, 2)]
    commit_config(config_repo, example_config, "Three pipelines")
    seed(
        aws_module.Aws(region="us-east-1"),
        example_config["settings"]["assets_bucket"],
        example_config,
    )
    argv = [str(EXECUTABLE), "apply", "--auto-approve", "--repo", str(config_repo.working_dir)]
    with FaultProxy(aws, latency_ms=150) as proxy:
        env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url, "MLOPS_POLL_SECONDS": "0.1"}
        process = subprocess.Popen(
            [*argv, "--parallel", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        started = threading.Event()
        while process.poll() is None and not started.wait(0.02):
            if proxy.operations["cloudformation.CreateStack"] >= 1:
                started.set()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    assert started.is_set(), "the apply finished before it could be interrupted"

    assert process.returncode == 130, err.decode()[-2000:]
    assert b"Interrupted: starting no new stack operation" in err
    assert b"Traceback" not in out + err
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    first = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
    assert len(first) == 1, "no stack operation starts after Ctrl-C"
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = example_config["settings"]["assets_bucket"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix=lock_key("mlops-controller"))["KeyCount"] == 0
    assert main(argv[1:]) == 0
    assert len(cfn.describe_stacks()["Stacks"]) == 3
    assert main(["plan", "--repo", str(config_repo.working_dir)]) == 0


# --- Small things -------------------------------------------------------------------------


def test_apply_output_markdown_writes_the_outcome(account, config_repo, capsys) -> None:
    code, out, _ = run(
        capsys, "apply", "--auto-approve", "--repo", config_repo.working_dir, "-o", "markdown"
    )

    assert code == 0
    assert out.startswith("### mlops-controller apply of `mlops-config.json@")
    assert "| outcome | stack | action | seconds | message |" in out
    assert f"| succeeded | `{REALTIME}` | create |" in out
    # A Markdown parser (markdown-it, as GitHub-flavoured tables are read) sees one table
    # with a row per stack that was changed and five cells in each.
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(out)
    rows = [t for t in tokens if t.type == "tr_open"]
    cells = sum(1 for t in tokens if t.type in ("th_open", "td_open"))
    assert len(rows) == 1 + 9 and cells == 5 * len(rows)


@pytest.mark.parametrize("command", ["validate", "render --out x", "status", "history"])
def test_max_deletes_is_offered_only_where_deletes_are_planned(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command.split(), "--max-deletes", "3"])

    assert exit_info.value.code == 1  # a usage error; 2 means "changes" to plan's callers
    assert "unrecognized arguments: --max-deletes" in capsys.readouterr().err
