"""Two controllers at once: the lease in the assets bucket, stale plans, stacks in progress.

All over real HTTP against the moto server, with two independent boto3 sessions standing in
for two controllers.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.cloudformation.models import cloudformation_backends

from bench.proxy import Call, FaultProxy
from controller.aws import lock as lock_module
from controller.aws import session as aws_module
from controller.aws.apply import WriteRefused
from controller.aws.demo_world import seed
from controller.aws.lock import Holder, Lease, LeaseRecord, LockHeld, lock_key
from controller.aws.session import Aws
from controller.cli.main import main
from controller.core import config as config_module
from controller.core.results import ApplyResult
from controller.gitops import reconcile
from tests.aws_calls import count_calls, count_stack_writes, writes
from tests.emulated_faults import hold_creates
from tests.test_config_invalid import EXAMPLE_DATA

BUCKET = EXAMPLE_DATA["settings"]["assets_bucket"]
CONTROLLER = EXAMPLE_DATA["settings"]["controller_id"]
KEY = lock_key(CONTROLLER)
OTHER = Holder("build-host-7", 4242, "c0ffee" * 6 + "c0ff")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    return count_calls(monkeypatch)


@pytest.fixture
def s3(aws: str) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def _small(*indexes: int) -> dict[str, Any]:
    return {
        "settings": EXAMPLE_DATA["settings"],
        "pipelines": [json.loads(json.dumps(EXAMPLE_DATA["pipelines"][i])) for i in indexes],
    }


@pytest.fixture
def small_account(aws: str) -> dict[str, Any]:
    """Two independent pipelines: a realtime endpoint and a batch job."""
    data = _small(0, 1)
    seed(Aws(region="us-east-1"), BUCKET, data)
    return data


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "mlops-config.json"
    path.write_text(json.dumps(data))
    return path


def _lease(s3: Any, holder: Holder = OTHER, seconds: float = 300) -> Lease:
    return Lease(s3, BUCKET, CONTROLLER, holder, seconds=seconds)


def _stored(s3: Any) -> LeaseRecord:
    return LeaseRecord.from_json(s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())


def _plant(s3: Any, expires: datetime, holder: Holder = OTHER) -> None:
    record = LeaseRecord(holder, expires - timedelta(minutes=5), expires, "planted")
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=record.to_json())


def test_a_held_lease_refuses_a_second_holder_and_names_the_first(s3):
    first = _lease(s3)
    first.acquire()
    stored = _stored(s3)
    assert stored.holder == OTHER and stored.nonce == first.nonce
    with pytest.raises(LockHeld) as held:
        _lease(s3, Holder("laptop", 1, "")).acquire()
    assert str(held.value).startswith(
        "another apply holds the lock: build-host-7 pid 4242 commit c0ffeec0ffee until 20"
    )
    assert _stored(s3).nonce == first.nonce
    first.release()
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=KEY)["KeyCount"] == 0
    second = _lease(s3, Holder("laptop", 1, ""))
    second.acquire()
    assert _stored(s3).holder.host == "laptop"
    second.release()


def test_an_expired_lease_is_taken_over_and_its_late_release_leaves_the_new_one(s3):
    late = _lease(s3, seconds=300)
    late.acquire()
    stale = _stored(s3)
    expired = LeaseRecord(
        stale.holder, stale.acquired, datetime.now(UTC) - timedelta(1), late.nonce
    )
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=expired.to_json())
    taker = _lease(s3, Holder("ci", 2, "abc"))
    taker.acquire()
    assert _stored(s3).holder.host == "ci"
    late.release()
    assert _stored(s3).nonce == taker.nonce
    taker.release()
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=KEY)["KeyCount"] == 0


def _pid_not_running_here() -> int:
    """The pid of a finished process: what a live holder in another PID namespace (another
    container on a host of the same name) looks like from here."""
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(finished.stdout)


def test_a_live_lease_of_a_process_this_host_cannot_see_is_never_broken(
    small_account, tmp_path, capsys, calls
):
    s3 = boto3.client("s3", region_name="us-east-1")
    invisible = Holder(socket.gethostname(), _pid_not_running_here(), "c0ffee" * 6 + "c0ff")
    _plant(s3, datetime.now(UTC) + timedelta(minutes=5), invisible)
    calls.clear()

    code = main(["apply", "--auto-approve", "--config", str(_write(tmp_path, small_account))])

    out, err = capsys.readouterr()
    assert code == 1
    text = " ".join((out + err).split())
    assert f"another apply holds the lock: {socket.gethostname()} pid {invisible.pid}" in text
    assert not [op for op in writes(calls) if op.startswith("cloudformation.")]
    assert _stored(s3).nonce == "planted"


def test_an_unreadable_lease_does_not_wedge_applies(s3):
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"{not json")
    mine = _lease(s3)
    mine.acquire()
    assert _stored(s3).nonce == mine.nonce
    mine.release()


def test_apply_refuses_while_another_holds_the_lock_and_touches_no_stack(
    small_account, tmp_path, capsys, calls
):
    s3 = boto3.client("s3", region_name="us-east-1")
    until = datetime.now(UTC) + timedelta(minutes=10)
    _plant(s3, until)
    calls.clear()
    code = main(["apply", "--auto-approve", "--config", str(_write(tmp_path, small_account))])
    out, err = capsys.readouterr()
    assert code == 1
    text = " ".join((out + err).split())
    assert "another apply holds the lock: build-host-7 pid 4242 commit c0ffeec0ffee until" in text
    assert until.strftime("%Y-%m-%d %H:%M") in text
    assert "Traceback" not in out + err
    assert not [op for op in writes(calls) if op.startswith("cloudformation.")]
    assert boto3.client("cloudformation", region_name="us-east-1").describe_stacks()["Stacks"] == []
    assert _stored(s3).nonce == "planted"
    _plant(s3, datetime.now(UTC) - timedelta(seconds=1))
    assert main(["apply", "--auto-approve", "--config", str(_write(tmp_path, small_account))]) == 0
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=KEY)["KeyCount"] == 0


def _config(data: dict[str, Any]) -> Any:
    loaded = config_module.load(json.dumps(data).encode(), "mlops-config.json")
    assert loaded.config is not None
    return loaded.config


def _apply(config: Any, aws: Aws, plan: Any = None) -> ApplyResult:
    plan = plan or reconcile.plan_for(config, aws, reconcile.guards_for(config, False))
    return reconcile.apply_plan(
        config,
        plan,
        aws,
        reconcile.options_for(config, poll_seconds=0.05),
        lambda e: None,
        lambda r: None,
    )


def test_two_controllers_applying_at_once_one_refuses_nothing_is_done_twice(small_account):
    config = _config(small_account)
    first, second = Aws(region="us-east-1"), Aws(region="us-east-1")
    second_tried = threading.Event()
    results: dict[str, ApplyResult] = {}

    def hold_first_create(**_: Any) -> None:
        second_tried.wait(timeout=60)

    first.session.events.register("before-call.cloudformation.CreateStack", hold_first_create)

    def run_first() -> None:
        results["first"] = _apply(config, first)

    thread = threading.Thread(target=run_first)
    thread.start()
    while not first.calls["s3.GetObject"]:  # the first holds the lease once it read it back
        threading.Event().wait(0.01)
    try:
        results["second"] = _apply(config, second)
    finally:
        second_tried.set()
        thread.join()
    assert results["second"].refusal.startswith("another apply holds the lock:")
    assert not [
        op
        for op in second.calls
        if op.startswith("cloudformation.")
        and not op.split(".")[1].startswith(("Describe", "List", "Get"))
    ]
    assert results["first"].ok, results["first"]
    assert first.calls["cloudformation.CreateStack"] == 2
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    names = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
    assert sorted(names) == sorted(set(names)) and len(names) == 2
    again = _apply(config, second)
    assert again.ok and not again.refusal
    assert second.calls["cloudformation.CreateStack"] == 0


def test_a_plan_made_before_another_apply_is_refused_as_stale(small_account):
    config = _config(small_account)
    first, second = Aws(region="us-east-1"), Aws(region="us-east-1")
    stale = reconcile.plan_for(config, second, reconcile.guards_for(config, False))
    assert _apply(config, first).ok
    result = _apply(config, second, stale)
    assert "changed since this plan was made" in result.refusal
    assert second.calls["cloudformation.CreateStack"] == 0
    assert not result.ok


def _moto_stack(name: str) -> Any:
    backend = cloudformation_backends["123456789012"]["us-east-1"]
    return next(s for s in backend.stacks.values() if s.name == name)


def test_a_stack_in_progress_is_waited_for_never_operated_twice(
    small_account, tmp_path, capsys, monkeypatch
):
    path = _write(tmp_path, small_account)
    assert main(["apply", "--auto-approve", "--config", str(path)]) == 0
    busy = "mlops-pipeline-linearlearner-byompipelinerealtimebuiltin"
    _moto_stack(busy).status = "UPDATE_IN_PROGRESS"
    small_account["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    small_account["pipelines"][1]["inference_instance"] = "ml.m5.xlarge"
    path = _write(tmp_path, small_account)
    capsys.readouterr()
    main(["plan", "--config", str(path), "--output", "json"])
    plan = json.loads(capsys.readouterr().out)
    actions = {c["name"]: c["action"] for c in plan["changes"]}
    assert actions[busy] == "wait"
    assert actions["mlops-pipeline-linearlearner-byompipelinebatchbuiltin"] == "update"
    touched = count_stack_writes(monkeypatch)
    flags = ["--output", "json", "--wait-budget", "2s"]
    main(["apply", "--auto-approve", "--config", str(path), *flags])
    out = capsys.readouterr().out
    results = {r["name"]: r for r in json.loads(out[out.index("{\n") :])["results"]}
    assert results[busy]["outcome"] == "waiting"
    assert {stack for _, stack in touched} == {
        "mlops-pipeline-linearlearner-byompipelinebatchbuiltin"
    }
    assert _moto_stack(busy).status == "UPDATE_IN_PROGRESS"
    _moto_stack(busy).status = "UPDATE_COMPLETE"
    assert main(["apply", "--auto-approve", "--config", str(path)]) == 0


# Lost answers and lapsed leases, through the fault proxy.

REALTIME = "mlops-pipeline-linearlearner-byompipelinerealtimebuiltin"
BATCH = "mlops-pipeline-linearlearner-byompipelinebatchbuiltin"
LEASE = 1.2


@pytest.fixture
def short_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lease of 1.2 s renewed every 0.3 s: endpoint creation outlasts it many times."""
    monkeypatch.setattr(lock_module, "LEASE_SECONDS", LEASE)


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retries, three attempts, back-off cut to milliseconds."""
    monkeypatch.setattr(aws_module, "RETRIES", {"mode": "standard", "max_attempts": 3})
    monkeypatch.setattr(aws_module.QuickFirstBackoff, "delay_amount", lambda self, context: 0.005)


def _lock_puts(*chosen: int) -> Any:
    """A proxy matcher for the chosen writes of the lease (1 = taking it, 2 = first renewal)."""
    seen: list[int] = []

    def match(call: Call) -> bool:
        if call.method != "PUT" or not call.path.endswith("/lock.json"):
            return False
        seen.append(1)
        return len(seen) in chosen or (not chosen and len(seen) > 1)

    return match


@pytest.fixture
def proxied(aws: str, monkeypatch: pytest.MonkeyPatch, quick_retries: None) -> Iterator[FaultProxy]:
    with FaultProxy(aws) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        yield proxy


def test_a_lost_answer_to_taking_the_lease_is_recognised_as_our_own(
    small_account, proxied, tmp_path, capsys
):
    proxied.timeout_rate, proxied.timeout_mode = 1.0, "after"
    proxied.match = _lock_puts(1)

    code = main(["apply", "--auto-approve", "--config", str(_write(tmp_path, small_account))])

    out, err = capsys.readouterr()
    assert proxied.stats["timeouts"] == 1
    assert code == 0, out + err
    assert "another apply holds the lock" not in out + err
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    assert len(cfn.describe_stacks()["Stacks"]) == 2
    s3 = boto3.client("s3", region_name="us-east-1")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=KEY)["KeyCount"] == 0, "lease left behind"


def test_a_lost_renewal_answer_keeps_the_lease_through_a_long_endpoint_creation(
    small_account, proxied, short_lease, monkeypatch
):
    hold_creates(monkeypatch, 5 * LEASE, "realtimebuiltin")
    proxied.timeout_rate, proxied.timeout_mode = 1.0, "after"
    proxied.match = _lock_puts(2)
    config = _config(small_account)
    results: dict[str, ApplyResult] = {}
    thread = threading.Thread(target=lambda: results.update(first=_apply(config, Aws())))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not proxied.stats["timeouts"]:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.02)
        time.sleep(2 * LEASE)  # well past the expiry the lost renewal wrote
        second = _apply(config, Aws())
    finally:
        thread.join(timeout=60)

    assert second.refusal.startswith("another apply holds the lock:"), second
    assert results["first"].ok, results["first"]
    assert second.results == ()


def test_an_apply_that_cannot_renew_its_lease_stops_writing(
    small_account, proxied, short_lease, monkeypatch, capsys, tmp_path
):
    hold_creates(monkeypatch, 3 * LEASE, "realtimebuiltin")
    proxied.error_rate = 1.0
    proxied.match = _lock_puts()  # every renewal fails; taking the lease works
    config = _config(small_account)
    aws = Aws()
    plan = reconcile.plan_for(config, aws, reconcile.guards_for(config, False))
    assert [a.stack_name for a in plan.changes] == [REALTIME, BATCH]

    result = reconcile.apply_plan(
        config,
        plan,
        aws,
        reconcile.options_for(config, parallel=1, poll_seconds=0.05),
        lambda e: None,
        lambda r: None,
    )

    outcomes = {r.stack_name: r for r in result.results}
    assert outcomes[REALTIME].outcome.value == "succeeded"
    assert outcomes[BATCH].outcome.value == "skipped"
    assert "has not been renewed" in outcomes[BATCH].message
    assert "was not written" in outcomes[BATCH].message
    assert aws.calls["cloudformation.CreateStack"] == 1
    assert not result.ok
    assert any("the next apply records this one as interrupted" in n for n in result.notes)
    proxied.error_rate = 0.0
    code = main(["apply", "--auto-approve", "--config", str(_write(tmp_path, small_account))])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "An earlier apply did not finish" in " ".join(out.split())


def _plant_raw(s3: Any, record: dict[str, Any]) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(record).encode())


def _raw_lease(expires: str) -> dict[str, Any]:
    return {
        "holder": {"host": "build-host-7", "pid": 4242, "commit": ""},
        "acquired": "2026-01-01T00:00:00+00:00",
        "expires": expires,
        "nonce": "planted",
    }


def test_a_lease_whose_time_has_no_zone_is_reported_and_taken_over_not_a_traceback(
    small_account, tmp_path, capsys
):
    """Issue 19, item 5: `expires` without a time zone made every apply a traceback."""
    s3 = boto3.client("s3", region_name="us-east-1")
    naive = (datetime.now(UTC) + timedelta(minutes=10)).replace(tzinfo=None).isoformat()
    _plant_raw(s3, _raw_lease(naive))

    code = main(["apply", "--auto-approve", "--config", str(_write(tmp_path, small_account))])

    out, err = capsys.readouterr()
    text = " ".join((out + err).split())
    assert "Traceback" not in out + err
    assert code == 0
    assert f"the apply lease s3://{BUCKET}/{KEY} was unreadable" in text
    assert "has no time zone" in text
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=KEY)["KeyCount"] == 0


def test_a_lease_expiring_in_2099_does_not_block_applies_past_the_maximum_lifetime(
    small_account, tmp_path, capsys
):
    """Issue 19, item 5: no lease outlives MAX_LEASE_SECONDS after it was written."""
    s3 = boto3.client("s3", region_name="us-east-1")
    _plant_raw(s3, _raw_lease("2099-01-01T00:00:00+00:00"))

    code = main(["apply", "--auto-approve", "--config", str(_write(tmp_path, small_account))])

    out, err = capsys.readouterr()
    text = " ".join((out + err).split())
    assert code == 0, text
    assert "expires 2099-01-01 00:00:00 UTC, more than the maximum lease lifetime" in text
    assert lock_module.MAX_LEASE_SECONDS <= 3600


def test_a_lease_within_its_lifetime_still_blocks(s3):
    """The maximum lifetime frees only impossible leases: a live one still refuses."""
    _plant(s3, datetime.now(UTC) + timedelta(minutes=30))
    with pytest.raises(LockHeld):
        _lease(s3, Holder("laptop", 1, "")).acquire()
    assert _stored(s3).nonce == "planted"


def test_after_ctrl_c_each_stack_reports_its_own_outcome(aws: str) -> None:
    """Issue 19, item 7: after Ctrl-C a stack created in the run was reported as "skipped:
    write refused: interrupted before writing" another stack. Ctrl-C comes as the batch
    stack, just created, is about to start its transform."""
    data = _small(0, 1, 2)
    seed(Aws(region="us-east-1"), BUCKET, data)
    config = _config(data)
    aws_ = Aws(region="us-east-1")
    plan = reconcile.plan_for(config, aws_, reconcile.guards_for(config, False))
    names = [a.stack_name for a in plan.actions]
    batch = next(n for n in names if "batch" in n)
    writes_of: Counter[str] = Counter()
    interrupted = threading.Event()

    def ctrl_c(stack_name: str) -> None:
        writes_of[stack_name] += 1
        if stack_name == batch and writes_of[stack_name] == 2:
            interrupted.set()
        if interrupted.is_set():
            raise WriteRefused(
                f"interrupted (Ctrl-C) before writing {stack_name}", "interrupted (Ctrl-C)"
            )

    result = reconcile.apply_plan(
        config,
        plan,
        aws_,
        reconcile.options_for(config, parallel=1, poll_seconds=0.05),
        lambda e: None,
        lambda r: None,
        before_write=ctrl_c,
    )

    by_name = {r.stack_name: r for r in result.results}
    assert by_name[batch].outcome.value == "waiting", by_name[batch]
    assert by_name[batch].message.startswith("create done, then stopped before its next write")
    for name, outcome in by_name.items():
        others = [n for n in names if n != name and n in outcome.message]
        assert not others, f"{name} is reported with another stack's name: {outcome.message}"
    created = {s["StackName"] for s in boto3.client("cloudformation").describe_stacks()["Stacks"]}
    assert all(by_name[n].outcome.value != "skipped" for n in created)
