"""Making the emulator fail the way CloudFormation does.

moto's CloudFormation creates resources synchronously and never rolls back; these helpers
patch the in-process moto server so a chosen stack fails asynchronously, with the events and
final states real CloudFormation produces. The controller still talks to it over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from moto.cloudformation.models import CloudFormationBackend, Event
from moto.cloudformation.models import Stack as FakeStack

from bench.emulated import Hold, slow_stack_patches, token_patches


def _event(stack: Any, logical_id: str, resource_type: str, status: str, reason: str) -> Event:
    return Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id="",
        resource_type=resource_type,
        resource_status=status,
        resource_status_reason=reason,
        resource_properties=None,
    )


def fail_creates(monkeypatch: pytest.MonkeyPatch, name_part: str, reason: str) -> None:
    """Stacks whose name contains `name_part` fail to create and roll back."""
    fail_creates_where(monkeypatch, lambda stack: name_part in stack.name, reason)


def fail_creates_where(
    monkeypatch: pytest.MonkeyPatch, failing: Callable[[Any], bool], reason: str
) -> None:
    """Stacks `failing` accepts fail to create (their endpoint, with `reason`) and roll back."""
    original = FakeStack.create_resources

    def create(self: Any) -> None:
        if not failing(self):
            original(self)
            return
        self.status = "CREATE_IN_PROGRESS"
        self.events.append(
            _event(self, "Endpoint", "AWS::SageMaker::Endpoint", "CREATE_FAILED", reason)
        )
        self._add_stack_event("ROLLBACK_IN_PROGRESS", reason)
        self._add_stack_event("ROLLBACK_COMPLETE")
        self.status = "ROLLBACK_COMPLETE"

    monkeypatch.setattr(FakeStack, "create_resources", create)


def fail_deletes(monkeypatch: pytest.MonkeyPatch, name_part: str, reason: str) -> None:
    """Deletes of matching stacks end DELETE_FAILED and leave the stack in place."""
    original = CloudFormationBackend.delete_stack

    def delete_stack(self: Any, name_or_stack_id: str) -> None:
        stack = self.stacks.get(name_or_stack_id) or next(
            (s for s in self.stacks.values() if s.name == name_or_stack_id), None
        )
        if stack is None or name_part not in stack.name:
            original(self, name_or_stack_id)
            return
        stack._add_stack_event("DELETE_IN_PROGRESS", "User Initiated")
        stack.events.append(
            _event(stack, "Model", "AWS::SageMaker::Model", "DELETE_FAILED", reason)
        )
        stack._add_stack_event("DELETE_FAILED", reason)
        stack.status = "DELETE_FAILED"

    monkeypatch.setattr(CloudFormationBackend, "delete_stack", delete_stack)


def stick_updates(monkeypatch: pytest.MonkeyPatch, name_part: str, reason: str) -> None:
    """Updates of matching stacks fail, and so does their rollback: UPDATE_ROLLBACK_FAILED."""
    original = FakeStack.update

    def update(self: Any, *args: Any, **kwargs: Any) -> None:
        if name_part not in self.name:
            original(self, *args, **kwargs)
            return
        self._add_stack_event("UPDATE_IN_PROGRESS", "User Initiated")
        self.events.append(_event(self, "Model", "AWS::SageMaker::Model", "UPDATE_FAILED", reason))
        self._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", reason)
        self.events.append(
            _event(
                self,
                "Endpoint",
                "AWS::SageMaker::Endpoint",
                "UPDATE_FAILED",
                "Rollback failed: the previous endpoint config was deleted",
            )
        )
        self._add_stack_event("UPDATE_ROLLBACK_FAILED", "rollback failed")
        self.status = "UPDATE_ROLLBACK_FAILED"

    monkeypatch.setattr(FakeStack, "update", update)


def hold_creates(monkeypatch: pytest.MonkeyPatch, seconds: float, name_part: str = "") -> Hold:
    """New stacks (whose name contains `name_part`) stay CREATE_IN_PROGRESS for `seconds`,
    as real endpoint stacks stay for minutes; the returned `Hold` can be released early."""
    hold = Hold(seconds, name_part)
    for owner, name, value in slow_stack_patches(hold):
        monkeypatch.setattr(owner, name, value, raising=False)
    return hold


def stamp_event_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events carry their operation's ClientRequestToken, as CloudFormation's do."""
    for owner, name, value in token_patches():
        monkeypatch.setattr(owner, name, value)


def roll_back_updates(
    monkeypatch: pytest.MonkeyPatch, name_part: str, alarm: str, region: str = "us-east-1"
) -> None:
    """Updates of matching stacks go the way a guarded endpoint update goes when its canary
    breaches: the rollback alarm `alarm` goes into ALARM, SageMaker rolls the endpoint back,
    the Endpoint fails its update and the stack rolls back to UPDATE_ROLLBACK_COMPLETE.
    moto does neither: its updates always succeed and it watches no alarm."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    original = FakeStack.update

    def update(self: Any, *args: Any, **kwargs: Any) -> None:
        if name_part not in self.name:
            original(self, *args, **kwargs)
            return
        reason = (
            'Resource handler returned message: "Endpoint update was rolled back: an alarm '
            "of the deployment's AutoRollbackConfiguration went into ALARM\""
        )
        backend = cloudwatch_backends[DEFAULT_ACCOUNT_ID][region]
        backend.set_alarm_state(alarm, "canary 5xx above threshold", "{}", "ALARM")
        self._add_stack_event("UPDATE_IN_PROGRESS", "User Initiated")
        self.events.append(
            _event(self, "Endpoint", "AWS::SageMaker::Endpoint", "UPDATE_FAILED", reason)
        )
        self._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", reason)
        self._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
        self.status = "UPDATE_ROLLBACK_COMPLETE"

    monkeypatch.setattr(FakeStack, "update", update)
