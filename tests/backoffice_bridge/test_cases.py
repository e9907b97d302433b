"""Payment inquiry and claim cases (seed 002) over real HTTP against the stand-in, on
PostgreSQL: opening through the action framework (idempotent under the back office's
5xx), the workflow of each kind with its console events on the conversation, the claim's
debit approval under four eyes, the back office following every step, and the audit."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from backoffice_bridge import cases, selectors, services
from backoffice_bridge.audit import audit_chain_verify
from backoffice_bridge.executor import executions_wait
from backoffice_bridge.models import ActionRequest, AuditEntry, Case, CaseTask
from chat.models import ConsoleEvent, Message
from hub.exceptions import Conflict, PermissionDenied
from hub.roles import Role

pytestmark = pytest.mark.django_db(transaction=True)

CLAIM = {
    "subject": "Card payment charged twice",
    "amount": "120.50",
    "currency": "eur",
    "transaction_reference": "TX-4411",
    "transaction_date": "2026-11-20",
}
INQUIRY = {"subject": "Where is my transfer to Bruno?", "amount": 300, "currency": "EUR"}


@pytest.fixture(autouse=True)
def _drained():
    """No execution outlives its test (its settings and rows are gone afterwards)."""
    yield
    assert executions_wait(30)


@pytest.fixture
def agents(linked, staff):
    return linked | {
        "inq1": staff("inq1", Role.INQUIRY_AGENT),
        "inq2": staff("inq2", Role.INQUIRY_AGENT),
        "clm1": staff("clm1", Role.CLAIM_AGENT),
        "clm2": staff("clm2", Role.CLAIM_AGENT),
    }


def _settled(request_id):
    """The request once this process's executor finished (bounded wait)."""
    assert executions_wait(30)
    return selectors.request_dict(
        ActionRequest.objects.select_related("maker", "checker").get(pk=request_id)
    )


def _open(linked, action_type="payment_claim", params=None):
    """Open a case (no checker: approved at once) and wait for the executor's outcome."""
    started = services.action_request_create(
        actor=linked["maker"],
        conversation_id=linked["conversation_id"],
        action_type=action_type,
        params=CLAIM if params is None else params,
    )
    assert started["status"] == "approved"
    return _settled(started["id"])


def _case_events(conversation_id):
    return [
        e.payload
        for e in ConsoleEvent.objects.filter(
            kind="backoffice.case", conversation_id=conversation_id
        ).order_by("id")
    ]


def _fresh(user):
    return get_user_model().objects.get(pk=user.pk)  # permissions read again


def _post(client, user, url, body=None):
    client.force_login(user)
    answer = client.post(url, body or {}, content_type="application/json")
    return answer.status_code, answer.json()


def test_inquiry_is_opened_from_the_conversation_worked_and_resolved(agents, bo, client):
    linked = agents
    status, body = _post(
        client,
        linked["maker"],
        f"/api/backoffice/conversations/{linked['conversation_id']}/requests/",
        {"action_type": "payment_inquiry", "params": INQUIRY},
    )
    assert status == 201, body
    assert body["request"]["status"] == "approved"
    request = _settled(body["request"]["id"])
    assert request["status"] == "done" and request["business_status"] == "Case Opened"
    assert request["needs_checker"] is False and request["checker"] is None
    case = Case.objects.get()
    assert case.reference == "INQ000001" and case.kind == "inquiry"
    assert str(case.amount) == "300.00" and case.currency == "EUR"
    assert case.opened_by_id == linked["maker"].pk and case.bank_user_id == "U1001"
    (_, first) = bo.api("GET", f"/api/v1/cases/{case.reference}")
    assert first["case"]["user_id"] == "U1001" and first["case"]["state"] == "open"

    # The console shows the case in the conversation: the exact shape, and a note.
    (opened,) = _case_events(linked["conversation_id"])
    shown = opened["case"]
    assert set(shown) == {
        "id",
        "reference",
        "kind",
        "state",
        "state_label",
        "subject",
        "tasks",
        "opened_at",
        "updated_at",
        "resolved_at",
    }
    assert shown["reference"] == "INQ000001" and shown["state"] == "open"
    assert shown["state_label"] == "Open" and shown["resolved_at"] is None
    (task,) = shown["tasks"]
    assert set(task) == {"id", "kind", "label", "state", "assignee"}
    # Default routing: the least loaded inquiry agent (a tie: the first created).
    assert task["kind"] == "investigate" and task["state"] == "assigned"
    assert task["assignee"] == {"id": linked["inq1"].pk, "name": "inq1"}
    assert opened["visibility"] == "internal" and "INQ000001 opened" in opened["note"]
    outcome = ConsoleEvent.objects.get(kind="backoffice.action_outcome").payload
    assert "Payment inquiry case INQ000001 opened for bank user U1001" in outcome["note"]

    inq1 = linked["inq1"]
    status, body = _post(client, inq1, f"/api/cases/tasks/{task['id']}/claim/")
    assert status == 200 and body["case"]["state"] == "in_progress"
    status, body = _post(
        client, inq1, f"/api/cases/tasks/{task['id']}/complete/", {"note": "Sent on 21 Nov"}
    )
    assert status == 200, body
    respond = body["case"]["tasks"][1]
    # Both inquiry agents are free again: the tie goes to the first created.
    assert respond["kind"] == "respond" and respond["assignee"]["id"] == inq1.pk
    assert body["case"]["state"] == "open"

    message = "Your transfer arrived on 21 November. Thank you for your patience."
    status, body = _post(client, linked["inq2"], f"/api/cases/tasks/{respond['id']}/complete/")
    assert status == 409 and body["data"]["reason"] == "assigned_to_other"
    assert body["data"]["assignee"] == {"id": inq1.pk, "name": "inq1"}
    status, body = _post(
        client,
        inq1,
        f"/api/cases/tasks/{respond['id']}/complete/",
        {"note": "Told the customer", "customer_message": message},
    )
    assert status == 200, body
    assert body["case"]["state"] == "resolved" and body["case"]["resolution"] == "answered"
    assert body["case"]["resolved_at"] is not None
    (_, last) = bo.api("GET", f"/api/v1/cases/{case.reference}")
    assert last["case"]["state"] == "resolved" and last["case"]["resolution"] == "answered"
    assert Message.objects.filter(
        conversation_id=linked["conversation_id"], text=message, direction="out"
    ).exists()
    events = _case_events(linked["conversation_id"])
    assert [e["case"]["state"] for e in events] == ["open", "in_progress", "open", "resolved"]
    assert "resolved (answered)" in events[-1]["note"]

    refused = AuditEntry.objects.get(outcome="refused")
    assert refused.action == "case.task_complete" and refused.actor_id == linked["inq2"].pk
    assert refused.after["error"]["data"]["reason"] == "assigned_to_other"
    assert refused.on_behalf_of == "U1001" and refused.request_id == request["id"]
    actions = list(
        AuditEntry.objects.filter(
            request_id=request["id"], action__startswith="case.", outcome="ok"
        )
        .order_by("sequence")
        .values_list("action", "actor_role")
    )
    assert actions == [
        ("case.open", "Contact center"),
        ("case.task_assign", "system"),
        ("case.task_claim", "Inquiry agent"),
        ("case.task_complete", "Inquiry agent"),
        ("case.task_assign", "system"),
        ("case.task_complete", "Inquiry agent"),
        ("case.resolve", "Inquiry agent"),
    ]
    assert audit_chain_verify().ok


def test_claim_debit_approval_is_four_eyes_then_settled(agents, bo, client):
    linked = agents
    _open(linked)
    case = Case.objects.get()
    assert case.reference == "CLM000001" and case.currency == "EUR"
    investigate = CaseTask.objects.get(case=case, kind="investigate")
    assert investigate.assignee_id == linked["clm1"].pk
    # The opener becomes a claim agent too: still never the debit's approver.
    maker = linked["maker"]
    maker.groups.add(Group.objects.get(name=Role.CLAIM_AGENT.value))
    maker = _fresh(maker)

    cases.case_task_complete(actor=linked["clm1"], task_id=investigate.pk, note="Duplicate")
    debit = CaseTask.objects.get(case=case, kind="debit_approval")
    # Neither the opener nor the investigator: the other claim agent receives it.
    assert debit.assignee_id == linked["clm2"].pk and debit.state == "assigned"
    assert Case.objects.get().state == "awaiting_debit_approval"
    for who in (maker, linked["clm1"]):
        with pytest.raises(PermissionDenied) as refused:
            cases.case_debit_approve(actor=who, task_id=debit.pk)
        assert refused.value.data["reason"] == "four_eyes"
    refusals = AuditEntry.objects.filter(action="case.debit_approve", outcome="refused")
    assert refusals.count() == 2
    assert all(e.on_behalf_of == "U1001" for e in refusals)
    assert bo.calls(path="/state") == []  # a refusal never reaches the back office

    # Complete is not the way for a debit; approving is, over HTTP.
    status, body = _post(client, linked["clm2"], f"/api/cases/tasks/{debit.pk}/complete/")
    assert status == 409 and body["data"]["reason"] == "debit_decision_required"
    status, body = _post(
        client,
        linked["clm2"],
        f"/api/cases/tasks/{debit.pk}/debit/approve/",
        {"note": "Duplicate confirmed"},
    )
    assert status == 200, body
    (_, at_bank) = bo.api("GET", "/api/v1/cases/CLM000001")
    assert at_bank["case"]["state"] == "debit_approved"
    settle = CaseTask.objects.get(case=case, kind="settle")
    assert settle.state == "assigned"
    decided = CaseTask.objects.get(pk=debit.pk)
    assert decided.outcome == "approved" and decided.completed_by_id == linked["clm2"].pk
    entry = AuditEntry.objects.get(action="case.debit_approve", outcome="ok")
    assert entry.actor_id == linked["clm2"].pk and entry.after["reason"] == "Duplicate confirmed"

    cases.case_task_complete(actor=_fresh(settle.assignee), task_id=settle.pk)
    case.refresh_from_db()
    assert case.state == "resolved" and case.resolution == "credited"
    (_, at_bank) = bo.api("GET", "/api/v1/cases/CLM000001")
    assert at_bank["case"]["state"] == "resolved" and at_bank["case"]["resolution"] == "credited"
    events = _case_events(linked["conversation_id"])
    assert [e["case"]["state"] for e in events] == [
        "open",  # opened, investigate assigned
        "awaiting_debit_approval",  # investigate done (picked up implicitly)
        "open",  # debit approved, settle assigned
        "resolved",
    ]
    assert "debit of 120.50 EUR approved by clm2" in events[2]["note"]
    assert audit_chain_verify().ok


def test_rejected_debit_declines_the_claim_and_tells_the_customer(agents, bo, client):
    linked = agents
    _open(linked)
    investigate = CaseTask.objects.get(kind="investigate")
    cases.case_task_complete(actor=linked["clm1"], task_id=investigate.pk)
    debit = CaseTask.objects.get(kind="debit_approval")
    status, body = _post(client, linked["clm2"], f"/api/cases/tasks/{debit.pk}/debit/reject/")
    assert status == 400 and body["data"] == {"field": "reason", "reason": "missing"}
    status, body = _post(
        client,
        linked["clm2"],
        f"/api/cases/tasks/{debit.pk}/debit/reject/",
        {"reason": "Merchant refunded already", "customer_message": "The merchant refunded you."},
    )
    assert status == 200, body
    assert body["case"]["state"] == "resolved" and body["case"]["resolution"] == "declined"
    assert [t["kind"] for t in body["case"]["tasks"]] == ["investigate", "debit_approval"]
    (_, at_bank) = bo.api("GET", "/api/v1/cases/CLM000001")
    assert at_bank["case"]["resolution"] == "declined"
    assert Message.objects.filter(text="The merchant refunded you.").exists()
    assert AuditEntry.objects.filter(action="case.debit_reject", outcome="ok").count() == 1
    # Decided: nothing more to do on it.
    with pytest.raises(Conflict) as refused:
        cases.case_debit_approve(actor=linked["clm2"], task_id=debit.pk)
    assert refused.value.data["reason"] == "task_done"


def test_opening_is_idempotent_when_the_back_office_answer_is_lost(agents, bo):
    linked = agents
    # The back office opens the case, then the answer is lost: the retry is replayed.
    bo.fault(status=503, path="/api/v1/cases", method="POST", after_action=True)
    done = _open(linked)
    assert done["status"] == "done"
    calls = bo.calls(path="/api/v1/cases")
    assert len(calls) == 2 and sum(c["acted"] for c in calls) == 1 and calls[1]["replayed"]
    assert Case.objects.count() == 1 and CaseTask.objects.count() == 1

    # Unavailable through every attempt: no case yet; the sweep opens it once, same key.
    bo.fault(status=503, path="/api/v1/cases", method="POST", count=3)
    waiting = _open(linked, params=CLAIM | {"transaction_reference": "TX-9"})
    assert waiting["status"] == "approved"
    assert Case.objects.count() == 1
    services.backoffice_tick()
    assert ActionRequest.objects.get(pk=waiting["id"]).status == "done"
    assert Case.objects.count() == 2
    key = ActionRequest.objects.get(pk=waiting["id"]).idempotency_key
    keyed = bo.calls(key=key)
    assert len(keyed) == 4 and sum(c["acted"] for c in keyed) == 1
    assert len(_case_events(linked["conversation_id"])) == 2  # one "opened" per case


def test_a_debit_approval_whose_answer_is_lost_is_replayed_not_acted_twice(agents, bo):
    linked = agents
    _open(linked)
    cases.case_task_complete(
        actor=linked["clm1"], task_id=CaseTask.objects.get(kind="investigate").pk
    )
    debit = CaseTask.objects.get(kind="debit_approval")
    bo.fault(status=502, path="/state", after_action=True)
    cases.case_debit_approve(actor=linked["clm2"], task_id=debit.pk)
    calls = bo.calls(path="/state")
    assert len(calls) == 2 and sum(c["acted"] for c in calls) == 1 and calls[1]["replayed"]
    assert CaseTask.objects.filter(kind="settle").count() == 1

    # The back office down for every attempt: 503, and nothing changed in the hub.
    settle = CaseTask.objects.get(kind="settle")
    bo.fault(status=503, path="/state", count=3)
    with pytest.raises(Exception) as down:
        cases.case_task_complete(actor=_fresh(settle.assignee), task_id=settle.pk)
    assert getattr(down.value, "status", None) == 503
    assert down.value.data["reason"] == "backoffice_unavailable"
    assert CaseTask.objects.get(pk=settle.pk).state == "assigned"
    assert Case.objects.get().state == "open"
    cases.case_task_complete(actor=_fresh(settle.assignee), task_id=settle.pk)
    assert Case.objects.get().state == "resolved"
