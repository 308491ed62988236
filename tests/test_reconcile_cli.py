"""The whole reconcile through the real CLI, a real git repository and a moto server."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import git
import pytest

from controller.aws import session as aws_module
from controller.aws.demo_world import seed
from controller.cli.main import main
from controller.core.stacks import OWNER_TAG, SPEC_HASH_PARAMETER
from tests.aws_calls import count_calls, stack_writes
from tests.conftest import commit_config
from tests.emulated_faults import fail_creates


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every AWS call the controller makes, by `service.Operation`."""
    return count_calls(monkeypatch)


@pytest.fixture
def account(aws: str, example_config: dict[str, Any]) -> Any:
    """An emulated account holding the buckets and artifacts the example config names."""
    controller_aws = aws_module.Aws(region="us-east-1")
    seed(controller_aws, example_config["settings"]["assets_bucket"], example_config)
    return boto3.client("cloudformation", region_name="us-east-1")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def plan_json(capsys: pytest.CaptureFixture[str], repo: git.Repo) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(capsys, "plan", "--repo", str(repo.working_dir), "--output", "json")
    return code, json.loads(out)


def stacks(cfn: Any) -> dict[str, dict[str, Any]]:
    return {s["StackName"]: s for s in cfn.describe_stacks()["Stacks"]}


def test_plan_on_an_empty_account_creates_all_and_exits_2(account, config_repo, capsys):
    code, plan = plan_json(capsys, config_repo)
    assert code == 2
    assert plan["revision"] == config_repo.head.commit.hexsha
    assert len(plan["changes"]) == 9
    assert {c["action"] for c in plan["changes"]} == {"create"}
    assert {"name", "pipeline_type", "action", "reason"} <= set(plan["changes"][0])
    assert "mlops-pipeline-linearlearner-byompipelinerealtimebuiltin" in [
        c["name"] for c in plan["changes"]
    ]


def test_apply_then_plan_is_empty_and_reads_only(account, config_repo, capsys, calls):
    code, out, _ = run(capsys, "apply", "--auto-approve", "--repo", str(config_repo.working_dir))
    assert code == 0, out
    deployed = stacks(account)
    assert len(deployed) == 9
    for stack in deployed.values():
        tags = {t["Key"]: t["Value"] for t in stack["Tags"]}
        assert tags[OWNER_TAG] == "mlops-controller"
        parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
        assert len(parameters[SPEC_HASH_PARAMETER]) == 64
    calls.clear()
    code, plan = plan_json(capsys, config_repo)
    assert code == 0
    assert not [c for c in plan["changes"] if c["action"] not in ("wait",)]
    assert not stack_writes(calls)
    assert calls["cloudformation.DescribeStacks"] == 1
    assert sum(calls.values()) <= 3, calls


def test_changing_one_pipeline_updates_only_that_stack(
    account, config_repo, capsys, calls, example_config
):
    assert run(capsys, "apply", "--auto-approve", "--repo", str(config_repo.working_dir))[0] == 0
    example_config["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    commit_config(config_repo, example_config, "Scale the linear learner endpoint")
    code, plan = plan_json(capsys, config_repo)
    assert code == 2
    updates = [c for c in plan["changes"] if c["action"] == "update"]
    assert [u["name"] for u in updates] == [
        "mlops-pipeline-linearlearner-byompipelinerealtimebuiltin"
    ]
    assert {"old": "ml.m5.large", "new": "ml.m5.xlarge"}.items() <= next(
        p for p in updates[0]["parameters"] if p["new"] == "ml.m5.xlarge"
    ).items()
    calls.clear()
    assert run(capsys, "apply", "--auto-approve", "--repo", str(config_repo.working_dir))[0] == 0
    assert stack_writes(calls) == Counter({"cloudformation.UpdateStack": 1})


def test_removing_a_pipeline_deletes_only_it(account, config_repo, capsys, calls, example_config):
    assert run(capsys, "apply", "--auto-approve", "--repo", str(config_repo.working_dir))[0] == 0
    removed = example_config["pipelines"].pop(1)
    commit_config(config_repo, example_config, "Retire a batch pipeline")
    calls.clear()
    code, out, _ = run(capsys, "apply", "--auto-approve", "--repo", str(config_repo.working_dir))
    assert code == 0, out
    assert stack_writes(calls) == Counter({"cloudformation.DeleteStack": 1})
    name = f"mlops-pipeline-{removed['model_name']}-byompipelinebatchbuiltin"
    assert name not in stacks(account)
    assert len(stacks(account)) == 8


def test_a_failed_create_is_reported_isolated_and_converges_next_run(
    account, config_repo, capsys, monkeypatch
):
    failing = "mlops-pipeline-churnxgb-byompipelinerealtimecustom"
    with monkeypatch.context() as patch:
        fail_creates(patch, "byompipelinerealtimecustom", "Endpoint capacity unavailable")
        code, out, _ = run(
            capsys,
            "apply",
            "--auto-approve",
            "--repo",
            str(config_repo.working_dir),
            "--output",
            "json",
        )
    assert code == 1
    results = {r["name"]: r for r in json.loads(out[out.index("{\n") :])["results"]}
    assert results[failing]["outcome"] == "failed"
    assert "Endpoint capacity unavailable" in results[failing]["message"]
    monitors = [r for r in results.values() if r["pipeline_type"].endswith("_monitor")]
    assert monitors and {m["outcome"] for m in monitors} == {"skipped"}
    assert results["mlops-pipeline-linearlearner-byompipelinerealtimebuiltin"]["outcome"] == (
        "succeeded"
    )
    assert stacks(account)[failing]["StackStatus"] == "ROLLBACK_COMPLETE"

    code, plan = plan_json(capsys, config_repo)
    actions = {c["name"]: c["action"] for c in plan["changes"]}
    assert actions[failing] == "replace"
    assert run(capsys, "apply", "--auto-approve", "--repo", str(config_repo.working_dir))[0] == 0
    assert stacks(account)[failing]["StackStatus"] == "CREATE_COMPLETE"


def test_deleting_everything_is_refused_without_the_flag(
    account, config_repo, capsys, calls, example_config
):
    assert run(capsys, "apply", "--auto-approve", "--repo", str(config_repo.working_dir))[0] == 0
    example_config["pipelines"] = []
    commit_config(config_repo, example_config, "Oops: an empty config")
    calls.clear()
    code, out, err = run(capsys, "apply", "--auto-approve", "--repo", str(config_repo.working_dir))
    assert code == 1
    assert "refusing to delete every managed pipeline" in out + err
    assert not stack_writes(calls)
    assert len(stacks(account)) == 9
    code, out, err = run(
        capsys,
        "apply",
        "--auto-approve",
        "--repo",
        str(config_repo.working_dir),
        "--allow-delete-all",
    )
    assert code == 1, "max_deletes (5) still applies"
    assert "max_deletes (5)" in out + err
    code, _, _ = run(
        capsys,
        "apply",
        "--auto-approve",
        "--repo",
        str(config_repo.working_dir),
        "--allow-delete-all",
        "--max-deletes",
        "9",
    )
    assert code == 0
    assert stacks(account) == {}


def test_max_deletes_guards_mass_deletion(account, config_repo, capsys, example_config):
    assert run(capsys, "apply", "--auto-approve", "--repo", str(config_repo.working_dir))[0] == 0
    example_config["pipelines"] = example_config["pipelines"][:2]
    commit_config(config_repo, example_config, "Remove seven pipelines")
    code, out, err = run(capsys, "plan", "--repo", str(config_repo.working_dir))
    assert code == 1
    assert "max_deletes (5)" in out + err
    code, _, _ = run(
        capsys,
        "apply",
        "--auto-approve",
        "--repo",
        str(config_repo.working_dir),
        "--max-deletes",
        "7",
    )
    assert code == 0
    assert len(stacks(account)) == 2


def test_stacks_of_others_are_never_touched(account, config_repo, capsys, calls):
    template = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    account.create_stack(StackName="hand-made-stack", TemplateBody=template)
    taken = "mlops-pipeline-linearlearner-byompipelinerealtimebuiltin"
    account.create_stack(
        StackName=taken,
        TemplateBody=template,
        Tags=[{"Key": OWNER_TAG, "Value": "another-controller"}],
    )
    code, out, _ = run(
        capsys,
        "apply",
        "--auto-approve",
        "--repo",
        str(config_repo.working_dir),
        "--output",
        "json",
    )
    assert code == 1
    results = {r["name"]: r for r in json.loads(out[out.index("{\n") :])["results"]}
    assert results[taken]["outcome"] == "blocked"
    assert "another-controller" in results[taken]["message"]
    assert "hand-made-stack" not in results
    live = stacks(account)
    assert live["hand-made-stack"]["StackStatus"] == "CREATE_COMPLETE"
    assert "LastUpdatedTime" not in live[taken] or live[taken]["StackStatus"] == ("CREATE_COMPLETE")
    assert {t["Key"]: t["Value"] for t in live[taken]["Tags"]}[OWNER_TAG] == ("another-controller")
    deletes = [op for op in calls if op.endswith("DeleteStack")]
    assert not deletes


def test_a_missing_artifact_blocks_only_the_pipelines_that_need_it(
    account, config_repo, capsys, example_config
):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.delete_object(Bucket=example_config["settings"]["assets_bucket"], Key="churn/model.tar.gz")
    code, plan = plan_json(capsys, config_repo)
    assert code == 1  # a blocked pipeline: the plan cannot be applied as a whole
    actions = {c["name"]: c for c in plan["changes"]}
    blocked = actions["mlops-pipeline-churnxgb-byompipelinerealtimecustom"]
    assert blocked["action"] == "blocked"
    assert "churn/model.tar.gz does not exist" in blocked["reason"]
    assert actions["mlops-pipeline-churnxgb-byomdataqualitymonitor"]["action"] == "blocked"
    assert actions["mlops-pipeline-linearlearner-byompipelinerealtimebuiltin"]["action"] == (
        "create"
    )


def test_status_lists_managed_pipelines_with_endpoint_state(account, config_repo, capsys):
    assert run(capsys, "apply", "--auto-approve", "--repo", str(config_repo.working_dir))[0] == 0
    code, out, _ = run(capsys, "status", "--repo", str(config_repo.working_dir), "--output", "json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["pipelines"]}
    assert len(rows) == 9
    realtime = rows["mlops-pipeline-linearlearner-byompipelinerealtimebuiltin"]
    assert realtime["stack_status"] == "CREATE_COMPLETE"
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in stacks(account)["mlops-pipeline-linearlearner-byompipelinerealtimebuiltin"][
            "Outputs"
        ]
    }
    assert realtime["endpoint_name"] == outputs["EndpointName"]
    assert realtime["endpoint_status"] == "InService"


def test_markdown_plan_is_a_table_for_pull_requests(account, config_repo, capsys):
    code, out, _ = run(
        capsys, "plan", "--repo", str(config_repo.working_dir), "--output", "markdown"
    )
    assert code == 2
    assert "| action | stack | type | reason |" in out
    assert "+ create" in out
    assert "Plan: 9 to create." in out


def test_an_invalid_config_touches_nothing(account, config_repo, capsys, calls):
    path = Path(config_repo.working_dir) / "mlops-config.json"
    path.write_text('{"pipelines": [{"pipeline_type": "byom_realtime_builtin"}]}')
    config_repo.index.add([str(path)])
    config_repo.index.commit("Break the config")
    code, out, err = run(capsys, "apply", "--auto-approve", "--repo", str(config_repo.working_dir))
    assert code == 1
    assert "$.pipelines[0].model_name" in err
    assert "Traceback" not in out + err
    assert not calls


def test_a_run_once_job_lost_to_a_crash_is_planned_and_started_once(
    account, config_repo, capsys, calls, monkeypatch
):
    from controller.aws import apply

    def crashed(self: Any, *_: Any) -> Any:
        return apply.Outcome.SUCCEEDED, "crashed before the job started"
        yield  # a step, like the one it stands in for

    with monkeypatch.context() as patch:
        # The process "dies" between the stack being ready and the job being started.
        patch.setattr(apply.Applier, "_advance_run", crashed)
        assert (
            run(capsys, "apply", "--auto-approve", "--repo", str(config_repo.working_dir))[0] == 0
        )
    code, plan = plan_json(capsys, config_repo)
    runs = sorted(c["name"] for c in plan["changes"] if c["action"] == "run")
    assert runs == [
        "mlops-pipeline-churnxgb-byompipelinebatchcustom",
        "mlops-pipeline-linearlearner-byompipelinebatchbuiltin",
    ]
    assert code == 2
    calls.clear()
    assert run(capsys, "apply", "--auto-approve", "--repo", str(config_repo.working_dir))[0] == 0
    assert calls["stepfunctions.StartExecution"] == 2 + 4  # two transforms, four baselines
    code, plan = plan_json(capsys, config_repo)
    assert code == 0
    assert not [c for c in plan["changes"] if c["action"] == "run"]


def test_a_create_whose_answer_was_lost_is_recognised_as_ours(account, config_repo, capsys):
    """A retried CreateStack that meets the stack it created itself waits for it, no dupe."""

    from controller.aws.apply import Applier
    from controller.aws.session import Aws
    from controller.core import config as config_module
    from controller.core.plan import PlanInput, make_plan
    from controller.core.render import render_all
    from controller.core.results import Outcome
    from controller.gitops import reconcile
    from controller.gitops.source import read_git

    assert run(capsys, "apply", "--auto-approve", "--repo", str(config_repo.working_dir))[0] == 0
    text = read_git(config_repo.working_dir)
    config = config_module.load(text.raw, text.name, revision=text.revision).config
    assert config is not None
    realtime = render_all(config)[:1]
    as_if_absent = make_plan(PlanInput(realtime, (), "mlops-controller", text.revision))
    # Without the lease's stale-plan check, which would (rightly) refuse this plan first.
    options = reconcile.options_for(config, poll_seconds=0.1)
    result = Applier(Aws(region="us-east-1"), options).apply(as_if_absent)
    assert [r.outcome for r in result.results] == [Outcome.SUCCEEDED]
    assert list(stacks(account)).count(realtime[0].stack_name) == 1


def test_a_no_op_apply_of_the_applied_commit_takes_no_lease_and_adds_no_record(
    account, config_repo, example_config, capsys, calls
):
    from tests.gitops import small_config

    repo = str(config_repo.working_dir)
    commit_config(config_repo, small_config(example_config), "Only the endpoint")
    assert run(capsys, "apply", "--auto-approve", "--repo", repo)[0] == 0
    calls.clear()

    code, out, err = run(capsys, "apply", "--auto-approve", "--repo", repo)

    assert code == 0, out + err
    assert "Apply complete" in out
    s3 = {op: n for op, n in calls.items() if op.startswith("s3.")}
    assert s3 == {"s3.GetObject": 3}, "the policy in force, the pointer and the intent are read"
    assert not stack_writes(calls)

    Path(repo, "README.md").write_text("The config repository.\n")
    config_repo.index.add(["README.md"])
    config_repo.index.commit("A readme")
    calls.clear()
    assert run(capsys, "apply", "--auto-approve", "--repo", repo)[0] == 0
    assert calls["s3.PutObject"] >= 2, "a new commit is recorded, even with nothing to write"
