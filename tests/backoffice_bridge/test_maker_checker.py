"""Maker-checker over real HTTP to the stand-in, on PostgreSQL: the request saved at once
with its business status and announced, pick-up exclusivity, no self-approval through
any path, two checkers racing execute once, expiry, conflicting requests, the outcome
note, and the 24-hour limits revert.  Approval answers ``approved`` at once; the call
runs on the process's executor, which ``_settled`` waits for (bounded)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from backoffice_bridge import selectors, services
from backoffice_bridge.executor import executions_wait
from backoffice_bridge.models import ActionRequest
from chat.models import ConsoleEvent
from hub.exceptions import Conflict, HubError, PermissionDenied
from hub.roles import Role

pytestmark = pytest.mark.django_db(transaction=True)

BLOCK = {"reason": "lost_device"}


def _create(linked, action_type="block_user", params=None, **kw):
    return services.action_request_create(
        actor=linked["maker"],
        conversation_id=linked["conversation_id"],
        action_type=action_type,
        params=BLOCK if params is None else params,
        **kw,
    )


def _events(kind):
    return list(ConsoleEvent.objects.filter(kind=kind).order_by("id"))


@pytest.fixture(autouse=True)
def _drained():
    """No execution outlives its test (its settings and rows are gone afterwards)."""
    yield
    assert executions_wait(30)


def _settled(req_id):
    """The request once this process's executor finished (bounded wait)."""
    assert executions_wait(30)
    return selectors.request_dict(
        ActionRequest.objects.select_related("maker", "checker").get(pk=req_id)
    )


def _approve(linked, req, checker="checker"):
    approved = services.action_request_approve(actor=linked[checker], request_id=req["id"])
    assert approved["status"] == "approved"
    return _settled(req["id"])


def test_request_is_saved_with_its_business_status_and_announced(linked, bo):
    req = _create(linked)
    assert req["status"] == "pending" and req["business_status"] == "To Be Inactivated"
    assert req["bank_user_id"] == "U1001" and req["maker"]["id"] == linked["maker"].pk
    (event,) = _events("backoffice.request_created")
    assert event.payload["request"]["id"] == req["id"]
    assert event.operator_id == linked["maker"].pk  # the conversation's operator, and all
    listed = selectors.action_requests_for_approval(actor=linked["checker"])
    assert [r["id"] for r in listed] == [req["id"]]
    with pytest.raises(PermissionDenied):
        selectors.action_requests_for_approval(actor=linked["maker"])
    assert bo.calls(path="/block") == []  # only approval calls the back office


def test_approval_executes_after_commit_and_posts_the_outcome(linked, bo):
    req = _create(linked)
    approved = _approve(linked, req)
    assert approved["status"] == "done" and approved["business_status"] == "Inactive"
    assert approved["checker"]["id"] == linked["checker"].pk
    assert bo.user("U1001")["status"] == "suspended"
    (call,) = bo.calls(path="/block")
    row = ActionRequest.objects.get(pk=req["id"])
    assert call["idempotency_key"] == row.idempotency_key
    (note,) = _events("backoffice.action_outcome")
    assert note.payload["visibility"] == "internal"
    assert "inactivated" in note.payload["note"]
    assert str(note.conversation_id) == linked["conversation_id"]
    # Approving again: already decided, nothing sent.
    with pytest.raises(Conflict) as again:
        services.action_request_approve(actor=linked["checker2"], request_id=req["id"])
    assert again.value.data["reason"] == "already_decided"
    assert len(bo.calls(path="/block")) == 1


def test_back_office_5xx_is_retried_inside_one_execution(linked, bo):
    req = _create(linked)
    bo.fault(status=503, count=2, path="/block")
    done = _approve(linked, req)
    assert done["status"] == "done"
    calls = bo.calls(path="/block")
    assert len(calls) == 3 and len({c["idempotency_key"] for c in calls}) == 1
    assert sum(c["acted"] for c in calls) == 1


def test_back_office_refusal_fails_with_its_reason(linked, bo):
    bo.put_user(id="U1001", user_name="ana.garcia", status="suspended")
    req = _create(linked)
    failed = _approve(linked, req)
    assert failed["status"] == "failed" and failed["business_status"] == "Failed"
    assert failed["outcome"]["reason"] == "the user is already suspended"
    assert len(bo.calls(path="/block")) == 1  # a 4xx is not retried
    (note,) = _events("backoffice.action_outcome")
    assert "already suspended" in note.payload["note"]


def test_unavailable_back_office_leaves_it_approved_for_the_sweep(linked, bo):
    req = _create(linked)
    bo.fault(status=503, count=3, path="/block")
    approved = _approve(linked, req)
    assert approved["status"] == "approved"  # deferred: back for the sweep
    assert bo.user("U1001")["status"] == "active"
    report = services.backoffice_tick()
    assert report["executed"] == 1
    assert ActionRequest.objects.get(pk=req["id"]).status == "done"
    assert sum(c["acted"] for c in bo.calls(path="/block")) == 1


def test_nobody_approves_their_own_request(linked, staff, client):
    coordinator = linked["checker"]
    # A coordinator is maker and checker at once; their own request stays four-eyed.
    req = services.action_request_create(
        actor=coordinator,
        conversation_id=linked["conversation_id"],
        action_type="block_user",
        params=BLOCK,
    )
    for step in (services.action_request_pick, services.action_request_approve):
        with pytest.raises(PermissionDenied) as own:
            step(actor=coordinator, request_id=req["id"])
        assert own.value.data["reason"] == "own_request"
    with pytest.raises(PermissionDenied):
        services.action_request_reject(actor=coordinator, request_id=req["id"], reason="x")
    # Through the API with a bearer token (a second session of the same user).
    token = client.post(
        "/api/auth/token/",
        json.dumps({"username": "coord1", "password": "pw-coord1"}),
        content_type="application/json",
    ).json()["token"]
    answer = client.post(
        f"/api/backoffice/requests/{req['id']}/approve/", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert answer.status_code == 403 and answer.json()["data"]["reason"] == "own_request"
    # The maker without the checker permission is refused before anything else.
    with pytest.raises(PermissionDenied):
        services.action_request_approve(actor=linked["maker"], request_id=req["id"])
    assert ActionRequest.objects.get(pk=req["id"]).status == "pending"


def test_one_checker_holds_a_request_others_see_who(linked, staff):
    req = _create(linked)
    picked = services.action_request_pick(actor=linked["checker"], request_id=req["id"])
    assert picked["status"] == "picked" and picked["checker"]["id"] == linked["checker"].pk
    assert _events("backoffice.request_picked")
    for step in (services.action_request_pick, services.action_request_approve):
        with pytest.raises(Conflict) as held:
            step(actor=linked["checker2"], request_id=req["id"])
        assert held.value.data["reason"] == "picked_by_other"
        assert held.value.data["picked_by"]["id"] == linked["checker"].pk
    released = services.action_request_release(actor=linked["checker"], request_id=req["id"])
    assert released["status"] == "pending" and released["checker"] is None
    rejected = services.action_request_reject(
        actor=linked["checker2"], request_id=req["id"], reason="Customer called back"
    )
    assert rejected["status"] == "rejected" and rejected["reason"] == "Customer called back"
    assert rejected["business_status"] == "Rejected"


def test_reject_needs_a_reason(linked):
    req = _create(linked)
    with pytest.raises(HubError) as missing:
        services.action_request_reject(actor=linked["checker"], request_id=req["id"], reason=" ")
    assert missing.value.data == {"field": "reason", "reason": "missing"}


def test_two_checkers_approving_at_once_execute_once(linked, bo):
    req = _create(linked)
    barrier = threading.Barrier(2)
    results: list[object] = []

    def approve(checker):
        from django.db import connections

        try:
            barrier.wait(10)
            results.append(services.action_request_approve(actor=checker, request_id=req["id"]))
        except HubError as exc:
            results.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=approve, args=(linked[name],)) for name in ("checker", "checker2")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 2
    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if isinstance(r, HubError)]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].data["reason"] in {"already_decided", "picked_by_other"}
    assert _settled(req["id"])["status"] == "done"
    assert sum(c["acted"] for c in bo.calls(path="/block")) == 1
    assert len(_events("backoffice.request_approved")) == 1


def test_execute_twice_acts_once(linked, bo):
    req = _create(linked)
    # The approval's execution ran; the sweep and a replayed execution find nothing to
    # claim.
    assert _approve(linked, req)["status"] == "done"
    assert services.action_request_execute(request_id=req["id"]) is None
    services.backoffice_tick()
    assert len(bo.calls(path="/block")) == 1


def test_pending_requests_expire(linked, settings):
    settings.BACKOFFICE_REQUEST_TTL_MINUTES = 30
    req = _create(linked)
    now = timezone.now()
    assert services.action_requests_expire(now=now + timedelta(minutes=29)) == 0
    with pytest.raises(Conflict) as late:
        services.action_request_approve(
            actor=linked["checker"], request_id=req["id"], now=now + timedelta(minutes=31)
        )
    assert late.value.data["reason"] == "expired"
    assert services.action_requests_expire(now=now + timedelta(minutes=31)) == 1
    row = ActionRequest.objects.get(pk=req["id"])
    assert row.status == "expired" and row.business_status == "Expired"
    assert _events("backoffice.request_expired")
    with pytest.raises(Conflict) as again:
        services.action_request_approve(actor=linked["checker"], request_id=req["id"])
    assert again.value.data["reason"] == "expired"
    # An expired request no longer blocks a new one.
    assert _create(linked)["status"] == "pending"


def test_conflicting_requests_for_the_same_user_are_refused(linked):
    first = _create(linked)
    with pytest.raises(Conflict) as conflict:
        _create(linked, action_type="unblock_user", params={})
    assert conflict.value.data["reason"] == "conflicting_request"
    assert conflict.value.data["request_id"] == first["id"]
    assert conflict.value.data["business_status"] == "To Be Inactivated"
    # Another group (limits) for the same user is not a conflict.
    limits = _create(
        linked,
        action_type="temporary_limits",
        params={"daily_transfer": 100, "single_transfer": 50},
    )
    assert limits["business_status"] == "To Be Changed (Temporary Limits)"
    services.action_request_reject(actor=linked["checker"], request_id=first["id"], reason="no")
    assert _create(linked, action_type="unblock_user", params={})["status"] == "pending"


def test_unlinked_customer_and_plain_operator_are_refused(linked, staff):
    from chat.services import webchat_message_receive

    other = webchat_message_receive(visitor_id="bo-v2", client_id="1", text="hi")
    with pytest.raises(Conflict) as unlinked:
        services.action_request_create(
            actor=linked["maker"],
            conversation_id=other.conversation["id"],
            action_type="block_user",
            params=BLOCK,
        )
    assert unlinked.value.data["reason"] == "customer_not_linked"
    plain = staff("op-plain", Role.OPERATOR)
    with pytest.raises(PermissionDenied):
        services.action_request_create(
            actor=plain,
            conversation_id=linked["conversation_id"],
            action_type="block_user",
            params=BLOCK,
        )
    assert not ActionRequest.objects.exists()


def test_password_reset_needs_no_checker(linked, bo):
    started = _create(linked, action_type="reset_password", params={})
    assert started["status"] == "approved" and started["checker"] is None
    done = _settled(started["id"])
    assert done["status"] == "done" and done["business_status"] == "Password Reset Sent"
    assert bo.user("U1001")["password_resets"] == 1
    (note,) = _events("backoffice.action_outcome")
    assert "one-time code" in note.payload["note"]


def test_temporary_limits_are_reverted_by_the_scheduler_job(linked, bo):
    req = _create(
        linked,
        action_type="temporary_limits",
        params={"daily_transfer": 10_000, "single_transfer": 4_000},
    )
    done = _approve(linked, req)
    assert done["status"] == "done"
    assert bo.user("U1001")["temporary_limits"]["daily_transfer"] == 10_000
    due = ActionRequest.objects.get(pk=req["id"]).revert_due_at
    assert timedelta(hours=23, minutes=59) < due - timezone.now() <= timedelta(hours=24)
    assert services.temporary_actions_revert(now=due - timedelta(seconds=1))["reverted"] == 0
    bo.fault(status=503, count=3, path="/revert")
    assert services.temporary_actions_revert(now=due)["retry"] == 1  # unavailable: next run
    assert bo.user("U1001")["temporary_limits"] is not None
    later = due + timedelta(minutes=10)  # past the claim's lease
    assert services.temporary_actions_revert(now=later)["reverted"] == 1
    assert bo.user("U1001")["temporary_limits"] is None
    row = ActionRequest.objects.get(pk=req["id"])
    assert row.reverted_at == later and row.business_status == "Limits Reverted"
    (event,) = _events("backoffice.action_reverted")
    assert event.payload["ok"] is True and "reverted by the hub" in event.payload["note"]
    assert str(event.conversation_id) == linked["conversation_id"]
    assert services.temporary_actions_revert(now=later + timedelta(hours=1))["reverted"] == 0
    keys = {c["idempotency_key"] for c in bo.calls(path="/revert")}
    assert keys == {f"{row.idempotency_key}:revert"}
    assert sum(c["acted"] for c in bo.calls(path="/revert")) == 1


def test_rest_maker_checker_flow(linked, client):
    base = f"/api/backoffice/conversations/{linked['conversation_id']}/requests/"
    client.force_login(linked["maker"])
    bad = client.post(
        base,
        json.dumps({"action_type": "temporary_limits", "params": {"daily_transfer": -1}}),
        content_type="application/json",
    )
    assert bad.status_code == 400 and bad.json()["data"]["field"] == "params.daily_transfer"
    created = client.post(
        base,
        json.dumps({"action_type": "block_user", "params": BLOCK}),
        content_type="application/json",
    )
    assert created.status_code == 201
    req_id = created.json()["request"]["id"]
    assert [r["id"] for r in client.get(base).json()["requests"]] == [req_id]
    types = client.get("/api/backoffice/action-types/").json()["action_types"]
    assert {t["name"]: t["allowed"] for t in types}["block_user"] is True
    assert client.get("/api/backoffice/requests/").status_code == 403
    client.force_login(linked["checker"])
    listed = client.get("/api/backoffice/requests/?status=pending").json()["requests"]
    assert [r["id"] for r in listed] == [req_id]
    assert (
        client.post(f"/api/backoffice/requests/{req_id}/pick/").json()["request"]["status"]
        == "picked"
    )
    approved = client.post(f"/api/backoffice/requests/{req_id}/approve/")
    assert approved.status_code == 200 and approved.json()["request"]["status"] == "approved"
    assert executions_wait(30)
    got = client.get(f"/api/backoffice/requests/{req_id}/").json()["request"]
    assert got["business_status"] == "Inactive"
    again = client.post(
        f"/api/backoffice/requests/{req_id}/reject/",
        json.dumps({"reason": "x"}),
        content_type="application/json",
    )
    assert again.status_code == 409 and again.json()["data"]["reason"] == "already_decided"
    assert client.get("/api/backoffice/requests/999999/").status_code == 404
