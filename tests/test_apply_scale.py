"""Applying many slow stacks: one watcher, writes checked at the moment they are made, a wait
budget that leaves work to the next run, live events of the right operation.

Over real HTTP against the moto server, with stacks held in CREATE_IN_PROGRESS
(`tests/emulated_faults.hold_creates`) because moto creates them at once, and events stamped
with their operation's ClientRequestToken as CloudFormation stamps them.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.cloudformation.models import cloudformation_backends

from bench.proxy import FaultProxy
from controller.aws import session as aws_module
from controller.aws.demo_world import seed
from controller.aws.watcher import LIVE_BUDGET
from controller.cli.main import main
from controller.core.stacks import OWNER_TAG
from tests.aws_calls import count_calls, count_stack_writes
from tests.emulated_faults import hold_creates, stamp_event_tokens
from tests.test_config_invalid import EXAMPLE_DATA

BUILDER = "mlops-pipeline-churn-byompipelineimagebuilder"
CUSTOM = "mlops-pipeline-churnxgb-byompipelinerealtimecustom"
REALTIME = "mlops-pipeline-linearlearner-byompipelinerealtimebuiltin"


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The watcher looks every 0.1 s instead of 2 s: the held stacks here take seconds."""
    from controller.gitops import reconcile

    original = reconcile.options_for

    def options_for(config: Any, parallel: Any = None, poll_seconds: Any = None, **kw: Any) -> Any:
        return original(config, parallel, 0.1, **kw)

    monkeypatch.setattr(reconcile, "options_for", options_for)


def _config(tmp_path: Path, *indexes: int, instance: str = "ml.m5.large") -> Path:
    data = {
        "settings": EXAMPLE_DATA["settings"],
        "pipelines": [copy.deepcopy(EXAMPLE_DATA["pipelines"][i]) for i in indexes],
    }
    for pipeline in data["pipelines"]:
        if "inference_instance" in pipeline:
            pipeline["inference_instance"] = instance
    path = tmp_path / "mlops-config.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def account(aws: str) -> None:
    data = {"settings": EXAMPLE_DATA["settings"], "pipelines": EXAMPLE_DATA["pipelines"]}
    seed(aws_module.Aws(region="us-east-1"), data["settings"]["assets_bucket"], data)


def _apply(capsys: pytest.CaptureFixture[str], path: Path, *flags: str) -> tuple[int, dict, str]:
    code = main(["apply", "--auto-approve", "--config", str(path), "--output", "json", *flags])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    results = {r["name"]: r for r in json.loads(out[out.index("{\n") :])["results"]}
    return code, results, err


def _moto_stack(name: str) -> Any:
    backend = cloudformation_backends["123456789012"]["us-east-1"]
    return next(s for s in backend.stacks.values() if s.name == name)


def test_a_stack_taken_over_mid_apply_is_not_written(account, tmp_path, capsys, monkeypatch):
    """Issue 11.2: ownership is re-read just before the write, not trusted from the plan."""
    assert _apply(capsys, _config(tmp_path, 3))[0] == 0
    # The custom model now waits for a new image builder, whose create takes a while; while
    # it is in flight, someone takes the custom model's stack over by removing our tag.
    hold = hold_creates(monkeypatch, 2.0, "imagebuilder")
    hold.on_create = lambda name: _moto_stack(CUSTOM).tags.pop(OWNER_TAG)
    writes = count_stack_writes(monkeypatch)
    code, results, _ = _apply(capsys, _config(tmp_path, 2, 3, instance="ml.m5.xlarge"))
    assert code == 1
    assert results[BUILDER]["outcome"] == "succeeded"
    assert results[CUSTOM]["outcome"] == "skipped"
    assert "ownership changed since the plan was made" in results[CUSTOM]["message"]
    assert ("UpdateStack", CUSTOM) not in writes
    assert OWNER_TAG not in _moto_stack(CUSTOM).tags


def test_many_slow_stacks_are_watched_by_listing_not_by_polling_each(
    account, tmp_path, capsys, monkeypatch
):
    hold_creates(monkeypatch, 1.5)
    calls = count_calls(monkeypatch)
    path = _config(tmp_path, 0, 1, 2, 3, 4)
    code, results, _ = _apply(capsys, path)
    assert code == 0, results
    polls = calls["cloudformation.ListStacks"]
    assert polls >= 2  # the stacks were held, so the watcher had to look more than once
    # Discovery, the stale-plan check (a read per planned create), one read of each finished
    # operation (five creates, the two updates that record the batch jobs) or one listing,
    # and the re-reads before those two updates: never a read per stack per poll.
    assert calls["cloudformation.DescribeStacks"] <= 1 + 5 + (5 + 2) + 2
    assert calls["cloudformation.DescribeStackEvents"] <= LIVE_BUDGET * polls
    assert calls["cloudformation.CreateStack"] == 5


def test_live_events_of_an_update_do_not_replay_the_create(account, tmp_path, capsys, monkeypatch):
    stamp_event_tokens(monkeypatch)
    path = _config(tmp_path, 0)
    assert main(["apply", "--auto-approve", "--config", str(path)]) == 0
    created = capsys.readouterr().out
    assert f"{REALTIME} CREATE_COMPLETE" in " ".join(created.split())
    assert (
        main(
            [
                "apply",
                "--auto-approve",
                "--config",
                str(_config(tmp_path, 0, instance="ml.m5.xlarge")),
            ]
        )
        == 0
    )
    updated = " ".join(capsys.readouterr().out.split())
    assert f"{REALTIME} UPDATE_COMPLETE" in updated
    assert "CREATE_IN_PROGRESS" not in updated and "CREATE_COMPLETE" not in updated


def test_a_run_stopped_by_its_wait_budget_is_continued_by_the_next_without_duplicates(
    account, tmp_path, capsys, monkeypatch
):
    hold = hold_creates(monkeypatch, 30.0, "imagebuilder")
    writes = count_stack_writes(monkeypatch)
    path = _config(tmp_path, 0, 2, 3)
    code, results, _ = _apply(capsys, path, "--wait-budget", "1s")
    assert code == 0  # nothing failed: work was left for the next run
    assert results[REALTIME]["outcome"] == "succeeded"
    assert results[BUILDER]["outcome"] == "waiting"
    assert "left running (wait budget of 1 s spent)" in results[BUILDER]["message"]
    assert results[CUSTOM]["outcome"] == "waiting"
    assert "not started: wait budget of 1 s spent" in results[CUSTOM]["message"]
    assert _moto_stack(BUILDER).status == "CREATE_IN_PROGRESS"

    main(["plan", "--config", str(path), "--output", "json"])
    planned = {c["name"]: c["action"] for c in json.loads(capsys.readouterr().out)["changes"]}
    assert planned == {BUILDER: "wait", CUSTOM: "wait"}
    # The next run plans the builder as `wait` (it is still in progress), adopts its
    # operation, and the stack completes while that run's watcher looks at it.
    original = aws_module.Aws._count

    def release_on_first_poll(self: Any, model: Any, **kwargs: Any) -> None:
        original(self, model, **kwargs)
        if model.name == "ListStacks":
            hold.release()

    monkeypatch.setattr(aws_module.Aws, "_count", release_on_first_poll)
    code, results, _ = _apply(capsys, path)
    assert code == 0, results
    assert results[BUILDER]["action"] == results[CUSTOM]["action"] == "wait"
    assert results[BUILDER]["outcome"] == results[CUSTOM]["outcome"] == "succeeded"
    assert "CREATE_COMPLETE (an operation started earlier)" in results[BUILDER]["message"]
    assert Counter(name for verb, name in writes if verb == "CreateStack") == {
        REALTIME: 1,
        BUILDER: 1,
        CUSTOM: 1,
    }
    assert main(["plan", "--config", str(path)]) == 0


def test_a_long_apply_shows_compact_progress(account, tmp_path, capsys, monkeypatch):
    from controller.present import report

    monkeypatch.setattr(report.ProgressLine, "__init__", _every(0.3))
    hold_creates(monkeypatch, 1.2)
    assert main(["apply", "--auto-approve", "--config", str(_config(tmp_path, 0, 1, 2))]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "progress" in line]
    assert lines, "no progress line"
    assert any("0/3 done, 3 running, 0 waiting" in line for line in lines)
    assert len(lines) <= 10  # a line per change at most every 0.3 s, not one per stack per poll
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    assert len(cfn.describe_stacks()["Stacks"]) == 3


def _every(seconds: float) -> Any:
    from controller.present import report

    original = report.ProgressLine.__init__

    def init(self: Any, console: Any, every: float = 5.0) -> None:
        original(self, console, seconds)

    return init


def test_a_no_op_plan_prints_counts_and_all_lists_every_pipeline(account, tmp_path, capsys):
    path = _config(tmp_path, 0, 1)
    assert main(["apply", "--auto-approve", "--config", str(path)]) == 0
    capsys.readouterr()
    assert main(["plan", "--config", str(path)]) == 0
    compact = " ".join(capsys.readouterr().out.split())
    assert "(2 unchanged not shown; plan --all shows them)" in compact
    assert "Plan: 2 unchanged." in compact and REALTIME not in compact
    assert main(["plan", "--config", str(path), "--all"]) == 0
    assert REALTIME in " ".join(capsys.readouterr().out.split())


def _apply_with_throttled_creates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], first: int
) -> tuple[int, str, int]:
    """Five pipelines applied at `--parallel 4`, creates held 0.5 s, the first `first`
    CreateStack attempts throttled, retries quick: (exit code, output, throttled answers)."""
    from controller.aws.session import QuickFirstBackoff
    from controller.present import report

    monkeypatch.setattr(QuickFirstBackoff, "delay_amount", lambda self, context: 0.005)
    monkeypatch.setattr(report.ProgressLine, "__init__", _every(0.0))
    hold_creates(monkeypatch, 0.5)
    creates = iter(range(1_000_000))
    with FaultProxy(
        _endpoint(),
        throttle_rate=1.0,
        match=lambda call: call.operation == "CreateStack" and next(creates) < first,
    ) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        path = _config(tmp_path, 0, 1, 2, 3, 4)
        code = main(["apply", "--auto-approve", "--config", str(path), "--parallel", "4"])
        throttled = proxy.stats["throttled"]
    return code, capsys.readouterr().out, throttled


def test_a_throttled_apply_converges_with_no_duplicate_and_the_cap_recovers(
    account, tmp_path, capsys, monkeypatch
):
    """AWS throttles most of the first creates' attempts: the cap halves, every stack is
    created once, and the cap grows back as stacks finish."""
    writes = count_stack_writes(monkeypatch)
    moto = _endpoint()
    code, out, throttled = _apply_with_throttled_creates(monkeypatch, tmp_path, capsys, 10)
    assert code == 0, out
    assert throttled == 10
    progress = [" ".join(line.split()) for line in out.splitlines() if "progress" in line]
    halved = [i for i, line in enumerate(progress) if "(throttled: cap 2)" in line]
    assert halved, progress
    assert "throttled" not in progress[-1] and halved[0] < len(progress) - 1, progress
    created = [name for verb, name in writes if verb == "CreateStack"]
    assert len(created) == len(set(created)) == 5
    cfn = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=moto)
    names = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
    assert sorted(names) == sorted(set(created))


def test_a_throttle_now_and_then_does_not_lower_the_cap(account, tmp_path, capsys, monkeypatch):
    """One throttled create among many answers is for the retries; the cap stays."""
    code, out, throttled = _apply_with_throttled_creates(monkeypatch, tmp_path, capsys, 1)
    assert code == 0, out
    assert throttled == 1
    progress = [line for line in out.splitlines() if "progress" in line]
    assert progress and not any("throttled" in line for line in progress), progress


def _endpoint() -> str:
    import os

    return os.environ["AWS_ENDPOINT_URL"]


def test_preflight_asks_about_a_shared_object_once_and_blocks_all_that_need_it(
    account, tmp_path, capsys, monkeypatch
):
    """A realtime and a batch pipeline of one model: one HeadObject for the model, and both
    blocked when it is missing."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.delete_object(Bucket=EXAMPLE_DATA["settings"]["assets_bucket"], Key="churn/model.tar.gz")
    calls = count_calls(monkeypatch)
    code = main(["plan", "--config", str(_config(tmp_path, 0, 1, 3, 4)), "--output", "json"])
    plan = json.loads(capsys.readouterr().out)
    assert code == 1  # blocked pipelines: the plan cannot be applied as a whole
    assert calls["s3.HeadObject"] == 2  # linearlearner/model.tar.gz and churn/model.tar.gz
    actions = {c["name"]: c for c in plan["changes"]}
    for name in (CUSTOM, "mlops-pipeline-churnxgb-byompipelinebatchcustom"):
        assert actions[name]["action"] == "blocked"
        assert "model_artifact_location s3://" in actions[name]["reason"]
        assert "churn/model.tar.gz does not exist" in actions[name]["reason"]
    assert actions[REALTIME]["action"] == "create"


def test_an_upload_is_written_once_per_run(account, tmp_path, capsys, monkeypatch):
    """A bias monitor's analysis configuration goes up before its create, and the update that
    records its baseline finds it written already."""
    from moto.stepfunctions.models import Execution

    from bench import emulated

    for owner, name, value in emulated.patches():
        if owner is Execution:  # the baseline job succeeds at once
            monkeypatch.setattr(owner, name, value)
    writes = count_stack_writes(monkeypatch)
    with FaultProxy(_endpoint()) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        code, results, _ = _apply(capsys, _config(tmp_path, 2, 3, 7))
    assert code == 0, results
    bias = next(name for name in results if "biasmonitor" in name)
    assert [verb for verb, name in writes if name == bias] == ["CreateStack", "UpdateStack"]
    puts = Counter({op: n for op, n in proxy.operations.items() if op.startswith("s3.PUT ")})
    uploads = {op: n for op, n in puts.items() if "/mlops-controller/analysis/" in op}
    assert uploads and set(uploads.values()) == {1}, puts


def _twin_bias_monitors(tmp_path: Path) -> Path:
    """The image builder, a custom endpoint with its bias monitor, and the same endpoint and
    monitor for a second model: two monitors with one analysis configuration."""
    path = _config(tmp_path, 2, 3, 7)
    data = json.loads(path.read_text())
    for index in (1, 2):
        twin = copy.deepcopy(data["pipelines"][index])
        twin["model_name"], twin["endpoint_name"] = "churnxgb2", "churn-endpoint-2"
        data["pipelines"].append(twin)
    path.write_text(json.dumps(data))
    return path


def test_monitors_sharing_an_analysis_configuration_upload_it_once_at_the_same_time(
    account, tmp_path, capsys, monkeypatch
):
    """Bias monitors of two endpoints share one analysis configuration (its key is its
    content's hash) and are created at the same moment: one sender writes it, the other waits
    for that write instead of writing it again."""
    import time

    from controller.aws import apply as apply_module
    from controller.aws import uploads as uploads_module

    path = _twin_bias_monitors(tmp_path)
    writing: list[tuple[str, float]] = []
    put = uploads_module.put_uploads

    def slow_put(s3: Any, bucket: str, uploads: Any) -> None:
        uploads = list(uploads)
        writing.extend((u.key, time.monotonic()) for u in uploads)
        time.sleep(0.4)  # both monitors' creates reach their uploads inside this write
        put(s3, bucket, uploads)

    monkeypatch.setattr(apply_module, "put_uploads", slow_put)
    creating: list[float] = []
    create = apply_module.Applier._create

    def noted(self: Any, rendered: Any, previous: Any) -> Any:
        if "biasmonitor" in rendered.stack_name:
            creating.append(time.monotonic())
        return (yield from create(self, rendered, previous))

    monkeypatch.setattr(apply_module.Applier, "_create", noted)
    with FaultProxy(_endpoint()) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        code, results, _ = _apply(capsys, path)
    assert code == 0, results
    assert len(creating) == 2 and abs(creating[0] - creating[1]) < 0.4, creating
    keys = [key for key, _ in writing]
    assert keys and len(keys) == len(set(keys)), keys
    puts = {op: n for op, n in proxy.operations.items() if "/mlops-controller/analysis/" in op}
    assert len(puts) == 1 and set(puts.values()) == {1}, puts
    monitors = [r for name, r in results.items() if "biasmonitor" in name]
    # Both created, their baselines running (moto's executions do not finish on their own).
    assert len(monitors) == 2 and all(r["outcome"] == "waiting" for r in monitors), monitors


def test_a_shared_upload_that_failed_fails_both_monitors_and_the_next_run_writes_it(
    account, tmp_path, capsys, monkeypatch
):
    """The monitor waiting for another sender's upload learns that it failed (it is not
    created without its configuration), and the next run writes it afresh."""
    import time

    from botocore.exceptions import EndpointConnectionError

    from controller.aws import apply as apply_module
    from controller.aws import uploads as uploads_module

    path = _twin_bias_monitors(tmp_path)
    put = uploads_module.put_uploads

    def failing_put(s3: Any, bucket: str, uploads: Any) -> None:
        time.sleep(0.4)
        raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    monkeypatch.setattr(apply_module, "put_uploads", failing_put)
    code, results, _ = _apply(capsys, path)
    monitors = {n: r for n, r in results.items() if "biasmonitor" in n}
    assert code == 1 and len(monitors) == 2
    for result in monitors.values():
        assert result["outcome"] == "failed" and "Could not connect" in result["message"], result
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    names = {s["StackName"] for s in cfn.describe_stacks()["Stacks"]}
    assert not names & set(monitors)

    monkeypatch.setattr(apply_module, "put_uploads", put)
    code, results, _ = _apply(capsys, path)
    assert code == 0 and all(results[n]["outcome"] == "waiting" for n in monitors), results


HANDLE = json.dumps({"Resources": {"H": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}})


def test_the_watcher_expects_an_operation_once_one_of_its_kind_finished(aws, monkeypatch):
    """The first create of a kind is looked at every interval; once one finished, the next
    of that kind (or of a kind of the same verb not seen yet) is due from its start plus the
    time the first took, and only for a window after that."""
    import time
    from datetime import UTC, datetime

    from controller.aws.watcher import Operation, Watcher

    hold_creates(monkeypatch, 1.0)
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    watcher = Watcher(cfn, lambda event: None)

    def start(name: str, kind: str) -> tuple[str, float]:
        stack_id = cfn.create_stack(StackName=name, TemplateBody=HANDLE)["StackId"]
        watcher.track(Operation(name, stack_id, None, datetime.now(UTC), kind))
        return stack_id, time.monotonic()

    start("first", "create model")
    assert watcher.next_due(time.monotonic(), window=1.0) is None  # nothing learned yet
    while watcher.in_flight:
        watcher.poll()
        time.sleep(0.05)
    second, since = start("second", "create model")
    due = watcher.next_due(time.monotonic(), window=1.0)
    assert due is not None and since + 0.5 < due < since + 1.0
    assert watcher.next_due(due + 1.0, window=1.0) is None  # its window has passed
    watcher.forget(second)
    third, _ = start("third", "create monitor")  # not seen finish: expected like any create
    assert watcher.next_due(time.monotonic(), window=1.0) is not None
    watcher.forget(third)
    start("fourth", "delete monitor")
    assert watcher.next_due(time.monotonic(), window=1.0) is None  # no delete finished yet
