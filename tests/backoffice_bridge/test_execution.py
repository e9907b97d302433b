"""Execution off the request, on PostgreSQL against the stand-in over real HTTP: approval
answers ``approved`` before a slow back office does, the call runs on the process's
bounded executor and its outcome arrives as an event; what no executor ran (disabled,
full, a process that died before or during the call) is executed by the scheduler's
tick exactly once, with the same idempotency key; an execution the back office never
answered fails with ``backoffice_unavailable``."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from backoffice_bridge import services
from backoffice_bridge.executor import executions_pending, executions_wait
from backoffice_bridge.models import ActionRequest, AuditEntry
from chat.models import ConsoleEvent

pytestmark = pytest.mark.django_db(transaction=True)

BLOCK = {"reason": "lost_device"}


@pytest.fixture(autouse=True)
def _drained():
    yield
    assert executions_wait(30)


def _create(linked, action_type="block_user", params=None):
    return services.action_request_create(
        actor=linked["maker"],
        conversation_id=linked["conversation_id"],
        action_type=action_type,
        params=BLOCK if params is None else params,
    )


def _outcomes():
    return list(ConsoleEvent.objects.filter(kind="backoffice.action_outcome").order_by("id"))


def test_approval_answers_before_a_slow_back_office(linked, bo, client, settings):
    settings.BACKOFFICE_TIMEOUT_SECONDS = 20
    req = _create(linked)
    bo.fault(timeout_seconds=4, path="/block")  # the back office takes 4 s to answer
    client.force_login(linked["checker"])
    answer = client.post(f"/api/backoffice/requests/{req['id']}/approve/")
    assert answer.status_code == 200
    assert answer.json()["request"]["status"] == "approved"
    assert answer.json()["request"]["business_status"] == "Approved"
    # Persisted and announced, while the back office has not answered yet.
    assert ActionRequest.objects.get(pk=req["id"]).status in {"approved", "executing"}
    assert ConsoleEvent.objects.filter(kind="backoffice.request_approved").count() == 1
    assert all(call["status"] is None for call in bo.calls(path="/block"))
    assert _outcomes() == []
    # Then the call finishes on the executor and the outcome event arrives.
    assert executions_wait(30)
    (outcome,) = _outcomes()
    assert outcome.payload["request"]["status"] == "done"
    (call,) = bo.calls(path="/block")
    assert call["status"] == 200 and call["acted"] is True
    assert client.get(f"/api/backoffice/requests/{req['id']}/").json()["request"][
        "business_status"
    ] == ("Inactive")


def test_a_request_nobody_executed_is_executed_by_the_tick_once(linked, bo, settings):
    settings.BACKOFFICE_EXECUTOR = "off"  # as if the approving process died after commit
    req = _create(linked)
    approved = services.action_request_approve(actor=linked["checker"], request_id=req["id"])
    assert approved["status"] == "approved" and executions_pending() == 0
    assert bo.calls(path="/block") == [] and _outcomes() == []
    assert services.backoffice_tick()["executed"] == 1
    row = ActionRequest.objects.get(pk=req["id"])
    assert row.status == "done" and row.attempts == 1
    assert "executed" not in services.backoffice_tick()
    calls = bo.calls(path="/block")
    assert len(calls) == 1 and calls[0]["idempotency_key"] == row.idempotency_key
    assert len(_outcomes()) == 1
    assert bo.user("U1001")["status"] == "suspended"


def test_a_stale_execution_is_taken_again_and_the_back_office_does_not_act_twice(
    linked, bo, settings
):
    """A process claimed the request, the back office acted, and the process died before
    recording it: after the lease the tick claims it again with the same key; the back
    office replays its first answer."""
    settings.BACKOFFICE_EXECUTOR = "off"
    settings.BACKOFFICE_EXECUTE_LEASE_SECONDS = 60
    req = _create(linked)
    services.action_request_approve(actor=linked["checker"], request_id=req["id"])
    row = ActionRequest.objects.get(pk=req["id"])
    now = timezone.now()
    ActionRequest.objects.filter(pk=row.pk).update(
        status="executing", executing_since=now, attempts=1
    )
    status, _ = bo.api(
        "POST", "/api/v1/users/U1001/block", {"reason": "lost_device"}, key=row.idempotency_key
    )
    assert status == 200
    # Within the lease the claim is someone's: nobody takes it.
    assert "executed" not in services.backoffice_tick(now=now + timedelta(seconds=59))
    assert ActionRequest.objects.get(pk=row.pk).status == "executing"
    report = services.backoffice_tick(now=now + timedelta(seconds=61))
    assert report["executed"] == 1
    row.refresh_from_db()
    assert row.status == "done" and row.attempts == 2
    calls = bo.calls(path="/block")
    assert [c["acted"] for c in calls] == [True, False]
    assert calls[1]["replayed"] is True
    assert {c["idempotency_key"] for c in calls} == {row.idempotency_key}
    assert [e.after["attempt"] for e in AuditEntry.objects.filter(action="request.execute")] == [2]


def test_a_full_executor_leaves_the_request_to_the_tick(linked, bo, settings):
    settings.BACKOFFICE_EXECUTOR_QUEUE = 1
    settings.BACKOFFICE_TIMEOUT_SECONDS = 20
    limits = _create(linked, "temporary_limits", {"daily_transfer": 1000, "single_transfer": 500})
    block = _create(linked)
    bo.fault(timeout_seconds=3, path="/limits")
    services.action_request_approve(actor=linked["checker"], request_id=limits["id"])
    # The limits' call is in flight (3 s): the pool is full, the block waits for the tick.
    services.action_request_approve(actor=linked["checker"], request_id=block["id"])
    assert executions_wait(30)
    assert ActionRequest.objects.get(pk=limits["id"]).status == "done"
    assert ActionRequest.objects.get(pk=block["id"]).status == "approved"
    assert bo.calls(path="/block") == []
    assert services.backoffice_tick()["executed"] == 1
    assert ActionRequest.objects.get(pk=block["id"]).status == "done"
    assert sum(c["acted"] for c in bo.calls(path="/block")) == 1


def test_a_back_office_that_never_answers_fails_as_backoffice_unavailable(linked, bo, settings):
    settings.BACKOFFICE_EXECUTE_MAX_ATTEMPTS = 2
    req = _create(linked)
    bo.fault(status=503, count=6, path="/block")  # 2 executions of 3 attempts
    services.action_request_approve(actor=linked["checker"], request_id=req["id"])
    assert executions_wait(30)
    row = ActionRequest.objects.get(pk=req["id"])
    assert row.status == "approved" and row.attempts == 1  # deferred once
    deferred = AuditEntry.objects.get(action="request.execute_deferred")
    assert deferred.after["attempt"] == 1
    services.backoffice_tick()
    row.refresh_from_db()
    assert row.status == "failed" and row.business_status == "Failed"
    assert row.outcome["code"] == "backoffice_unavailable"
    assert row.outcome["reason"].startswith("HTTP 503")
    (outcome,) = _outcomes()
    assert "failed for bank user U1001" in outcome.payload["note"]
    assert not any(c["acted"] for c in bo.calls(path="/block"))


def test_the_customer_link_refresh_and_search_answer_503_when_unreachable(linked, bo, client):
    client.force_login(linked["maker"])
    bo.fault(status=502, count=10)
    base = f"/api/backoffice/conversations/{linked['conversation_id']}"
    answer = client.post(f"{base}/link/refresh/")
    assert answer.status_code == 503
    assert answer.json()["code"] == "backoffice_unavailable"
    on_behalf = client.post(
        f"{base}/requests/",
        json.dumps(
            {
                "action_type": "stop_cheque",
                "params": {"cheque_number": "1", "reason": "lost"},
            }
        ),
        content_type="application/json",
    )
    assert on_behalf.status_code == 503 and on_behalf.json()["code"] == "backoffice_unavailable"
    assert not ActionRequest.objects.exists()
