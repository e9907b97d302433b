"""Routing of case tasks by the payment admin's rules (ordered, first match wins, least
loaded eligible agent, a default), connector agents restricted to the accounts they
manage on every path, and bad input refused precisely and audited — over real HTTP to
the stand-in, on PostgreSQL."""

from __future__ import annotations

import pytest

from backoffice_bridge import case_selectors, cases, selectors, services
from backoffice_bridge.actions import action_type_get
from backoffice_bridge.executor import executions_wait
from backoffice_bridge.models import ActionRequest, AuditEntry, Case, CaseTask, TaskAssignmentRule
from chat.models import ConsoleEvent
from hub.exceptions import ErrorCode, NotFound, PermissionDenied, ValidationFailed
from hub.roles import Role

pytestmark = pytest.mark.django_db(transaction=True)

CLAIM = {
    "subject": "Charged twice",
    "amount": "50",
    "currency": "EUR",
    "transaction_reference": "TX-1",
}


@pytest.fixture(autouse=True)
def _drained():
    yield
    assert executions_wait(30)


@pytest.fixture
def team(linked, staff):
    return linked | {
        "clm1": staff("clm1", Role.CLAIM_AGENT),
        "clm2": staff("clm2", Role.CLAIM_AGENT),
        "conn": staff("conn", Role.CLAIM_AGENT_CONNECTOR),
        "inq1": staff("inq1", Role.INQUIRY_AGENT),
        "padmin": staff("padmin", Role.PAYMENT_ADMIN),
    }


def _open(linked, params=None, action_type="payment_claim"):
    started = services.action_request_create(
        actor=linked["maker"],
        conversation_id=linked["conversation_id"],
        action_type=action_type,
        params=CLAIM if params is None else params,
    )
    assert executions_wait(30)
    req = selectors.request_dict(ActionRequest.objects.get(pk=started["id"]))
    assert req["status"] == "done", req
    return Case.objects.get(request_id=started["id"])


def _first_task(case):
    return CaseTask.objects.select_related("assignee").get(case=case, kind="investigate")


def _call(client, user, method, url, body=None):
    client.force_login(user)
    answer = getattr(client, method)(url, body or {}, content_type="application/json")
    return answer.status_code, answer.json()


def test_rules_route_in_order_first_match_wins_least_loaded(team, bo, client):
    padmin = team["padmin"]
    status, big = _call(
        client,
        padmin,
        "post",
        "/api/cases/rules/",
        {
            "name": "Big claims to clm2",
            "case_kind": "claim",
            "min_amount": "1000",
            "target_agent_id": team["clm2"].pk,
        },
    )
    assert status == 201, big
    status, claims = _call(
        client,
        padmin,
        "post",
        "/api/cases/rules/",
        {"name": "Claims", "case_kind": "claim", "target_role": "Claim agent"},
    )
    assert status == 201 and claims["rule"]["position"] == 2
    assert big["rule"]["position"] == 1 and big["rule"]["min_amount"] == "1000.00"

    large = _first_task(_open(team, CLAIM | {"amount": "5000"}))
    assert large.assignee_id == team["clm2"].pk
    assert large.routed_by == "rule 1 'Big claims to clm2'" and large.rule_id == big["rule"]["id"]
    # The second rule: the least loaded claim agent (clm2 holds one task now).
    small = _first_task(_open(team, CLAIM | {"transaction_reference": "TX-2"}))
    assert small.assignee_id == team["clm1"].pk and small.routed_by == "rule 2 'Claims'"

    # Move "Claims" first: it now wins for big claims too (least loaded: clm1 and clm2
    # hold one each, so the first created).
    rule = claims["rule"]
    status, moved = _call(
        client,
        padmin,
        "put",
        f"/api/cases/rules/{rule['id']}/",
        {"name": "Claims", "case_kind": "claim", "target_role": "Claim agent", "position": 1},
    )
    assert status == 200 and moved["rule"]["position"] == 1
    status, listed = _call(client, padmin, "get", "/api/cases/rules/")
    assert [r["name"] for r in listed["rules"]] == ["Claims", "Big claims to clm2"]
    third = _first_task(_open(team, CLAIM | {"amount": "5000", "transaction_reference": "TX-3"}))
    assert third.routed_by == "rule 1 'Claims'" and third.assignee_id == team["clm1"].pk

    # Deleted rules leave the default: every claim agent (connectors need the account).
    for r in listed["rules"]:
        status, _ = _call(client, padmin, "delete", f"/api/cases/rules/{r['id']}/")
        assert status == 200
    assert not TaskAssignmentRule.objects.exists()
    fourth = _first_task(_open(team, CLAIM | {"transaction_reference": "TX-4"}))
    assert fourth.routed_by == "default" and fourth.assignee_id == team["clm2"].pk
    audited = list(
        AuditEntry.objects.filter(action__startswith="case.rule_")
        .order_by("sequence")
        .values_list("action", "actor_role")
    )
    assert audited == [
        ("case.rule_create", "Payment admin"),
        ("case.rule_create", "Payment admin"),
        ("case.rule_update", "Payment admin"),
        ("case.rule_delete", "Payment admin"),
        ("case.rule_delete", "Payment admin"),
    ]


@pytest.mark.parametrize(
    ("rule", "field", "reason"),
    [
        ({"case_kind": "claim", "target_role": "Tellers"}, "target_role", "unknown_role"),
        ({"case_kind": "claim"}, "target_role", "one_target"),
        (
            {"target_role": "Claim agent", "target_agent_id": 1},
            "target_role",
            "one_target",
        ),
        (
            {"case_kind": "inquiry", "task_kind": "settle", "target_role": "Inquiry agent"},
            "task_kind",
            "not_for_case_kind",
        ),
        ({"case_kind": "loan", "target_role": "Claim agent"}, "case_kind", "not_a_choice"),
        (
            {"min_amount": "500", "max_amount": "100", "target_role": "Claim agent"},
            "max_amount",
            "range_reversed",
        ),
        ({"min_amount": "-1", "target_role": "Claim agent"}, "min_amount", "negative"),
        ({"currency": "EURO", "target_role": "Claim agent"}, "currency", "bad_format"),
        ({"colour": "red", "target_role": "Claim agent"}, "colour", "unknown_field"),
        ({"target_agent_id": 999999}, "target_agent_id", "unknown_agent"),
    ],
)
@pytest.mark.django_db  # no back office involved: the cheaper transactional test case
def test_bad_rules_are_refused_precisely_and_audited(staff, client, rule, field, reason):
    padmin = staff("padmin", Role.PAYMENT_ADMIN)
    status, body = _call(client, padmin, "post", "/api/cases/rules/", {"name": "R"} | rule)
    assert status == 400, body
    assert body["data"]["field"] == field and body["data"]["reason"] == reason
    assert not TaskAssignmentRule.objects.exists()
    (entry,) = AuditEntry.objects.filter(action="case.rule_create")
    assert entry.outcome == "refused" and entry.actor_id == padmin.pk
    assert entry.after["error"]["data"]["reason"] == reason


def test_rules_are_for_payment_admins_only(team, client):
    status, body = _call(
        client,
        team["clm1"],
        "post",
        "/api/cases/rules/",
        {"name": "x", "target_role": "Claim agent"},
    )
    assert status == 403 and body["code"] == ErrorCode.PERMISSION_DENIED
    status, _ = _call(client, team["maker"], "get", "/api/cases/rules/")
    assert status == 403
    # A rule targeting a non-agent (the contact-center maker) is refused.
    status, body = _call(
        client,
        team["padmin"],
        "post",
        "/api/cases/rules/",
        {"name": "x", "target_agent_id": team["maker"].pk},
    )
    assert status == 400 and body["data"]["reason"] == "not_an_agent"


def test_connectors_work_only_on_the_accounts_they_manage_on_every_path(team, bo, client):
    conn, padmin = team["conn"], team["padmin"]
    cases.case_rule_create(
        actor=padmin,
        data={"name": "Connectors", "case_kind": "claim", "target_role": "Claim agent connector"},
    )
    case = _open(team)
    task = _first_task(case)
    # The connector manages nothing yet: not routed to them, queued for an eligible agent.
    assert task.state == "queued" and task.assignee_id is None
    assert task.routed_by == "rule 1 'Connectors': no eligible agent"

    # Reads: lists are empty, the case and its task refused with the reason.
    for url in ("/api/cases/", "/api/cases/?view=queue", "/api/cases/tasks/?view=queue"):
        status, body = _call(client, conn, "get", url)
        assert status == 200 and body.get("cases", body.get("tasks")) == [], url
    status, body = _call(client, conn, "get", f"/api/cases/{case.pk}/")
    assert status == 403 and body["data"]["reason"] == "account_not_managed"
    # Writes: pick up, complete — refused, audited, nothing sent.
    for path in ("claim", "complete"):
        status, body = _call(client, conn, "post", f"/api/cases/tasks/{task.pk}/{path}/")
        assert status == 403 and body["data"] == {
            "reason": "account_not_managed",
            "bank_user_id": "U1001",
        }
    refused = AuditEntry.objects.filter(outcome="refused", actor_id=conn.pk)
    assert sorted(refused.values_list("action", flat=True)) == [
        "case.task_claim",
        "case.task_complete",
    ]
    assert all(e.actor_role == "Claim agent connector" for e in refused)
    assert bo.calls(path="/state") == []

    # A payment admin gives them the account: the queue shows it, they work it.
    status, body = _call(
        client, padmin, "post", f"/api/cases/agents/{conn.pk}/accounts/", {"bank_user_id": "U1001"}
    )
    assert status == 201 and body["account"]["bank_user_id"] == "U1001"
    status, body = _call(client, conn, "get", "/api/cases/tasks/?view=queue")
    assert [t["id"] for t in body["tasks"]] == [task.pk]
    status, body = _call(client, conn, "post", f"/api/cases/tasks/{task.pk}/claim/")
    assert status == 200 and body["case"]["tasks"][0]["assignee"]["id"] == conn.pk
    status, body = _call(client, conn, "get", "/api/cases/tasks/")
    assert [t["id"] for t in body["tasks"]] == [task.pk]
    # The next claim of that account is routed to them by the rule.
    second = _first_task(_open(team, CLAIM | {"transaction_reference": "TX-8"}))
    assert second.assignee_id == conn.pk

    # Taking the account away re-routes their open tasks at once; they can no longer act.
    status, body = _call(client, padmin, "delete", f"/api/cases/agents/{conn.pk}/accounts/U1001/")
    assert status == 200 and sorted(body["account"]["rerouted_tasks"]) == sorted(
        [task.pk, second.pk]
    )
    assert set(CaseTask.objects.filter(kind="investigate").values_list("state", flat=True)) == {
        "queued"
    }
    with pytest.raises(PermissionDenied) as refused_again:
        cases.case_task_complete(actor=conn, task_id=task.pk)
    assert refused_again.value.data["reason"] == "account_not_managed"
    assert case_selectors.case_tasks_mine(actor=conn) == []
    events = [
        e.payload["note"]
        for e in ConsoleEvent.objects.filter(kind="backoffice.case").order_by("id")
        if e.payload.get("note")
    ]
    assert any("re-routed to the queue" in n for n in events)


def test_managed_accounts_are_for_connectors_and_known_bank_users(team, bo, client):
    padmin = team["padmin"]
    status, body = _call(
        client,
        padmin,
        "post",
        f"/api/cases/agents/{team['clm1'].pk}/accounts/",
        {"bank_user_id": "U1001"},
    )
    assert status == 400 and body["data"]["reason"] == "not_a_connector"
    status, body = _call(
        client,
        padmin,
        "post",
        f"/api/cases/agents/{team['conn'].pk}/accounts/",
        {"bank_user_id": "U9999"},
    )
    assert status == 404 and body["data"]["field"] == "bank_user_id"
    status, body = _call(
        client,
        team["clm1"],
        "post",
        f"/api/cases/agents/{team['conn'].pk}/accounts/",
        {"bank_user_id": "U1001"},
    )
    assert status == 403
    status, body = _call(client, padmin, "get", f"/api/cases/agents/{team['conn'].pk}/accounts/")
    assert status == 200 and body["connector"] is True and body["accounts"] == []
    refused = AuditEntry.objects.filter(action="case.account_add", outcome="refused")
    assert refused.count() == 3


def test_bad_case_input_is_refused_before_anything_is_saved_or_sent(team, bo, client):
    claim = action_type_get("payment_claim")
    for params, field, reason in (
        ({k: v for k, v in CLAIM.items() if k != "amount"}, "params.amount", "missing"),
        (CLAIM | {"amount": "-3"}, "params.amount", "negative"),
        (CLAIM | {"currency": "E1"}, "params.currency", "bad_format"),
        (CLAIM | {"transaction_date": "2999-01-01"}, "params.transaction_date", "in_the_future"),
        (CLAIM | {"transaction_date": "20-11-2026"}, "params.transaction_date", "bad_format"),
        (CLAIM | {"subject": ""}, "params.subject", "missing"),
        (CLAIM | {"iban": "ES00"}, "params.iban", "unknown_parameter"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            claim.clean(params)
        assert (refused.value.data["field"], refused.value.data["reason"]) == (field, reason)
    inquiry = action_type_get("payment_inquiry")
    assert inquiry.clean({"subject": "Where is it?"}) == {"subject": "Where is it?"}
    with pytest.raises(ValidationFailed) as refused:
        inquiry.clean({"subject": "x", "amount": "10"})
    assert refused.value.data["field"] == "params.currency"

    status, body = _call(
        client,
        team["maker"],
        "post",
        f"/api/backoffice/conversations/{team['conversation_id']}/requests/",
        {"action_type": "payment_claim", "params": CLAIM | {"amount": "1.005"}},
    )
    assert status == 400 and body["data"]["reason"] == "too_many_decimals"
    # Without the permission: an inquiry agent may not open cases.
    status, body = _call(
        client,
        team["inq1"],
        "post",
        f"/api/backoffice/conversations/{team['conversation_id']}/requests/",
        {"action_type": "payment_inquiry", "params": {"subject": "x"}},
    )
    assert status == 403
    assert not ActionRequest.objects.exists() and not Case.objects.exists()
    assert bo.calls(path="/api/v1/cases") == []

    case = _open(team)
    task = _first_task(case)
    status, body = _call(client, team["clm1"], "post", "/api/cases/tasks/999999/claim/")
    assert status == 404 and body["data"] == {"task_id": 999999}
    status, body = _call(client, team["clm1"], "get", "/api/cases/999999/")
    assert status == 404
    # Staff who are not agents: the contact-center maker may read the case they opened,
    # not work it; an inquiry agent does not see a claim at all.
    status, body = _call(client, team["maker"], "get", f"/api/cases/{case.pk}/")
    assert status == 200 and body["case"]["reference"] == case.reference
    status, body = _call(client, team["maker"], "post", f"/api/cases/tasks/{task.pk}/claim/")
    assert status == 403 and body["data"]["reason"] == "not_an_agent"
    with pytest.raises(NotFound):
        cases.case_task_claim(actor=team["inq1"], task_id=task.pk)
    # A message to the customer only with the step that resolves the case.
    status, body = _call(
        client,
        task.assignee,
        "post",
        f"/api/cases/tasks/{task.pk}/complete/",
        {"customer_message": "Soon!"},
    )
    assert status == 400 and body["data"]["reason"] == "not_resolving"
    status, body = _call(
        client, task.assignee, "post", f"/api/cases/tasks/{task.pk}/debit/approve/"
    )
    assert status == 409 and body["data"]["reason"] == "not_a_debit_approval"
    status, body = _call(client, team["clm1"], "get", "/api/cases/?state=lost")
    assert status == 400 and body["data"]["field"] == "state"
    status, body = _call(client, team["clm1"], "get", "/api/cases/?view=everything")
    assert status == 400 and body["data"]["field"] == "view"
    assert CaseTask.objects.get(pk=task.pk).state == "assigned"
    assert bo.calls(path="/state") == []
    # Nobody without a role reaches the API.
    from django.contrib.auth import get_user_model

    nobody = get_user_model().objects.create_user("nobody", password="pw")
    status, _ = _call(client, nobody, "get", "/api/cases/")
    assert status == 403
    assert AuditEntry.objects.filter(outcome="refused", action__startswith="case.").count() >= 4
