"""Routing REST endpoints (routing/views.py): transfers, type corrections, routing options
and batch derivations over HTTP.  The rules are tested at the service level; these tests
check parsing, status codes, error bodies and that the call reached the service."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import services
from chat.models import Conversation
from hub.roles import Role
from routing.models import Assignment, DerivationBatch, QueryType, ResolutionReason
from routing.services import presence_set
from tests.routing.factories import operator_make

operator = operator_make

pytestmark = pytest.mark.django_db


# --- helpers ------------------------------------------------------------------------------
def post(client, url, body, **headers):
    return client.post(url, data=json.dumps(body), content_type="application/json", **headers)


def conversation_for(visitor, *, entry=None) -> Conversation:
    received = services.webchat_message_receive(
        visitor_id=visitor, client_id=f"{visitor}-1", text="hello", entry_point=entry
    )
    return Conversation.objects.get(pk=received.conversation["id"])


def as_user(client, user):
    client.force_login(user)
    return client


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


@pytest.fixture
def claims(db):
    return QueryType.objects.create(code="claims", name="Claims", priority=300)


@pytest.fixture
def payments(db):
    return QueryType.objects.create(code="payments", name="Payments", priority=200)


# --- POST /api/conversations/<id>/transfer/ -------------------------------------------
def test_coordinator_transfers_with_bearer_token(client, staff):
    a = operator(staff, "a")
    conversation = conversation_for("v1")
    b = operator(staff, "b")
    staff("coord", Role.COORDINATOR)
    token = post(client, "/api/auth/token/", {"username": "coord", "password": "pw-coord"})
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token.json()['token']}"}
    response = post(
        client,
        f"/api/conversations/{conversation.pk}/transfer/",
        {"to_operator_id": b.pk, "note": "speaks German"},
        **auth,
    )
    assert response.status_code == 200, response.content
    body = response.json()["conversation"]
    assert (body["id"], body["status"], body["operator_id"]) == (
        str(conversation.pk),
        "assigned",
        b.pk,
    )
    record = Assignment.objects.get(kind="transferred")
    assert (record.from_operator_id, record.to_operator_id, record.note) == (
        a.pk,
        b.pk,
        "speaks German",
    )


def test_explicit_null_sends_the_conversation_back_to_the_queue(client, staff):
    operator(staff, "a")
    conversation = conversation_for("v1")
    coordinator = staff("coord", Role.COORDINATOR)
    response = post(
        as_user(client, coordinator),
        f"/api/conversations/{conversation.pk}/transfer/",
        {"to_operator_id": None},
    )
    assert response.status_code == 200, response.content
    body = response.json()["conversation"]
    assert (body["status"], body["operator_id"]) == ("queued", None)
    assert Assignment.objects.filter(kind="requeued", conversation=conversation).exists()


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({}, 400, "missing_field", "to_operator_id"),
        ({"to_operator_id": "5"}, 400, "wrong_type", "to_operator_id"),
        ({"to_operator_id": True}, 400, "wrong_type", "to_operator_id"),
        ({"to_operator_id": 0}, 400, "invalid_value", "to_operator_id"),
        ({"to_operator_id": 999_999}, 404, "not_found", "to_operator_id"),
        ({"to_operator_id": None, "force": "yes"}, 400, "wrong_type", "force"),
        ({"to_operator_id": None, "note": 5}, 400, "wrong_type", "note"),
        ({"to_operator_id": None, "note": "x" * 2001}, 400, "invalid_value", "note"),
    ],
)
def test_transfer_field_errors_name_the_field_and_change_nothing(
    client, staff, body, status, code, field
):
    a = operator(staff, "a")
    conversation = conversation_for("v1")
    coordinator = staff("coord", Role.COORDINATOR)
    response = post(
        as_user(client, coordinator), f"/api/conversations/{conversation.pk}/transfer/", body
    )
    assert error(response) == (status, code)
    assert response.json()["data"]["field"] == field
    conversation.refresh_from_db()
    assert (conversation.status, conversation.operator_id) == ("assigned", a.pk)


def test_history_brings_the_routing_timeline_with_names(client, staff):
    a = operator(staff, "a")
    conversation = conversation_for("v1")
    b = operator(staff, "b")
    coordinator = staff("coord", Role.COORDINATOR)
    post(
        as_user(client, coordinator),
        f"/api/conversations/{conversation.pk}/transfer/",
        {"to_operator_id": b.pk, "note": "speaks German"},
    )
    body = client.get(f"/api/conversations/{conversation.pk}/messages/").json()
    timeline = [
        (t["kind"], t["from"] and t["from"]["name"], t["to"]["name"], t["actor"], t["note"])
        for t in body["timeline"]
    ]
    assert timeline[0] == ("routed", None, "a", None, "")
    assert timeline[1][:3] == ("transferred", "a", "b")
    assert timeline[1][3]["name"] == "coord" and timeline[1][4] == "speaks German"
    assert a.pk != b.pk


def test_operator_may_not_transfer(client, staff):
    a = operator(staff, "a")
    conversation = conversation_for("v1")
    b = operator(staff, "b")
    response = post(
        as_user(client, a),
        f"/api/conversations/{conversation.pk}/transfer/",
        {"to_operator_id": b.pk},
    )
    assert error(response) == (403, "permission_denied")
    conversation.refresh_from_db()
    assert conversation.operator_id == a.pk


def test_coordinator_may_not_force(client, staff):
    operator(staff, "a")
    conversation = conversation_for("v1")
    full = operator(staff, "full", capacity=0)
    response = post(
        as_user(client, staff("coord", Role.COORDINATOR)),
        f"/api/conversations/{conversation.pk}/transfer/",
        {"to_operator_id": full.pk, "force": True},
    )
    assert error(response) == (403, "permission_denied")


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("offline", "operator_unavailable"),
        ("unqualified", "operator_unqualified"),
        ("full", "operator_at_capacity"),
    ],
)
def test_transfer_to_unfit_operator_is_409_with_its_code(
    client, staff, claims, payments, setup, code
):
    a = operator(staff, "a")
    conversation = conversation_for("v1", entry="claims")
    target = operator(
        staff,
        "b",
        online=setup != "offline",
        types=[payments] if setup == "unqualified" else [],
        capacity=0 if setup == "full" else 5,
    )
    response = post(
        as_user(client, staff("coord", Role.COORDINATOR)),
        f"/api/conversations/{conversation.pk}/transfer/",
        {"to_operator_id": target.pk},
    )
    assert error(response) == (409, code)
    assert response.json()["data"]["operator_id"] == target.pk
    conversation.refresh_from_db()
    assert conversation.operator_id == a.pk


def test_admin_may_force_beyond_capacity(client, staff):
    operator(staff, "a")
    conversation = conversation_for("v1")
    full = operator(staff, "full", capacity=0)
    response = post(
        as_user(client, staff("admin", Role.ADMIN)),
        f"/api/conversations/{conversation.pk}/transfer/",
        {"to_operator_id": full.pk, "force": True},
    )
    assert response.status_code == 200, response.content
    assert response.json()["conversation"]["operator_id"] == full.pk


def test_transfer_of_unknown_conversation_is_404(client, staff):
    b = operator(staff, "b")
    response = post(
        as_user(client, staff("coord", Role.COORDINATOR)),
        "/api/conversations/not-a-uuid/transfer/",
        {"to_operator_id": b.pk},
    )
    assert error(response) == (404, "not_found")


def test_transfer_needs_a_login_and_post(client):
    url = "/api/conversations/00000000-0000-0000-0000-000000000000/transfer/"
    assert error(post(client, url, {"to_operator_id": None})) == (401, "not_authenticated")
    assert client.get(url).status_code == 405


def test_transfer_body_must_be_a_json_object(client, staff):
    coordinator = staff("coord", Role.COORDINATOR)
    url = "/api/conversations/00000000-0000-0000-0000-000000000000/transfer/"
    as_user(client, coordinator)
    bad = client.post(url, data="{oops", content_type="application/json")
    assert error(bad) == (400, "invalid_json")
    assert error(post(client, url, [1])) == (400, "invalid_frame")


# --- POST /api/conversations/<id>/type/ -----------------------------------------------
def test_operator_corrects_the_type_and_it_is_rerouted(client, staff, claims, payments):
    pay = operator(staff, "pay", types=[payments])
    conversation = conversation_for("v1", entry="payments")
    claims_op = operator(staff, "claimsop", types=[claims])
    response = post(
        as_user(client, pay),
        f"/api/conversations/{conversation.pk}/type/",
        {"query_type_id": claims.pk},
    )
    assert response.status_code == 200, response.content
    body = response.json()["conversation"]
    assert body["query_type"] == {"id": claims.pk, "code": "claims", "name": "Claims"}
    assert body["operator_id"] == claims_op.pk


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "missing_field"),
        ({"query_type_id": "claims"}, 400, "wrong_type"),
        ({"query_type_id": 999_999}, 404, "not_found"),
    ],
)
def test_type_errors(client, staff, body, status, code):
    op = operator(staff, "op")
    conversation = conversation_for("v1")
    response = post(as_user(client, op), f"/api/conversations/{conversation.pk}/type/", body)
    assert error(response) == (status, code)


def test_operator_cannot_retype_someone_elses_conversation(client, staff, claims):
    operator(staff, "owner")
    conversation = conversation_for("v1")
    other = operator(staff, "other")
    response = post(
        as_user(client, other),
        f"/api/conversations/{conversation.pk}/type/",
        {"query_type_id": claims.pk},
    )
    assert error(response) == (404, "not_found")
    conversation.refresh_from_db()
    assert conversation.query_type_id is None


# --- GET /api/routing/options/ ------------------------------------------------------------
def test_options_list_types_reasons_and_operators_for_coordinators(client, staff, claims, payments):
    QueryType.objects.create(code="old", name="Old", active=False)
    solved = ResolutionReason.objects.create(name="Solved", position=1)
    refund = ResolutionReason.objects.create(name="Refund issued", position=2)
    refund.query_types.set([claims])
    ResolutionReason.objects.create(name="Retired", active=False)
    a = operator(staff, "a", types=[claims, payments], capacity=3)
    conversation_for("v1")
    staff("idle", Role.OPERATOR)  # never set a presence: no state row yet
    coordinator = staff("coord", Role.COORDINATOR)
    body = as_user(client, coordinator).get("/api/routing/options/").json()
    assert [(t["code"], t["priority"]) for t in body["query_types"]] == [
        ("claims", 300),
        ("payments", 200),
    ]
    assert body["resolutions"] == [
        {"id": solved.pk, "name": "Solved", "query_type_ids": []},
        {"id": refund.pk, "name": "Refund issued", "query_type_ids": [claims.pk]},
    ]
    operators = {o["name"]: o for o in body["operators"]}
    assert operators["a"] == {
        "id": a.pk,
        "name": "a",
        "presence": "online",
        "load": 1,
        "capacity": 3,
        "query_type_ids": sorted([claims.pk, payments.pk]),
    }
    assert operators["idle"]["presence"] == "offline" and operators["idle"]["load"] == 0
    # Coordinators hold chat.handle_conversation too: they are possible targets.
    assert "coord" in operators


def test_options_hide_operators_from_those_who_cannot_transfer(client, staff, claims):
    op = operator(staff, "op")
    body = as_user(client, op).get("/api/routing/options/").json()
    assert body["operators"] == []
    assert [t["id"] for t in body["query_types"]] == [claims.pk]
    assert body["can"] == {"transfer": False, "batch_derive": False, "force": False}


@pytest.mark.parametrize(
    ("role", "can"),
    [
        (Role.COORDINATOR, {"transfer": True, "batch_derive": False, "force": False}),
        (Role.ADMIN, {"transfer": True, "batch_derive": True, "force": True}),
    ],
)
def test_options_say_what_the_user_may_do(client, staff, claims, role, can):
    body = as_user(client, staff("someone", role)).get("/api/routing/options/").json()
    assert body["can"] == can


def test_options_cost_the_same_queries_for_one_operator_or_many(client, staff, claims):
    coordinator = staff("coord", Role.COORDINATOR)
    coordinator.has_perm("routing.derive_conversations")  # warm the permission cache

    def count() -> int:
        from routing.selectors import routing_options

        with CaptureQueriesContext(connection) as queries:
            routing_options(actor=coordinator)
        return len(queries)

    operator(staff, "first", types=[claims])
    few = count()
    for index in range(6):
        operator(staff, f"op{index}", types=[claims])
        conversation_for(f"v{index}")
    many = count()
    assert few == many <= 5


# --- POST /api/derivations/preview/ and /api/derivations/ ------------------------------
def load_absent(staff, n):
    absent = operator(staff, "absent", capacity=20)
    for index in range(n):
        conversation_for(f"c{index}")
    presence_set(actor=absent, presence="offline")
    return absent


def test_admin_previews_then_derives(client, staff):
    absent = load_absent(staff, 3)
    b = operator(staff, "b", capacity=10)
    as_user(client, staff("admin", Role.ADMIN))
    body = {"from_operator_id": absent.pk, "to_operator_id": b.pk}
    preview = post(client, "/api/derivations/preview/", body)
    assert preview.status_code == 200, preview.content
    plan = preview.json()
    assert (plan["mode"], plan["count"], plan["per_target"]) == ("to_operator", 3, {str(b.pk): 3})
    assert len(plan["conversation_ids"]) == 3
    assert Conversation.objects.filter(operator=absent, status="assigned").count() == 3

    response = post(client, "/api/derivations/", {**body, "note": "sick leave"})
    assert response.status_code == 201, response.content
    summary = response.json()["derivation"]
    batch = DerivationBatch.objects.get()
    assert (summary["batch_id"], summary["count"], summary["reason"]) == (batch.pk, 3, "manual")
    assert batch.note == "sick leave"
    assert Conversation.objects.filter(operator=b, status="assigned").count() == 3


def test_spread_with_explicit_null(client, staff):
    absent = load_absent(staff, 2)
    b = operator(staff, "b")
    response = post(
        as_user(client, staff("admin", Role.ADMIN)),
        "/api/derivations/",
        {"from_operator_id": absent.pk, "to_operator_id": None},
    )
    assert response.status_code == 201, response.content
    summary = response.json()["derivation"]
    assert (summary["mode"], summary["per_target"]) == ("spread", {str(b.pk): 2})


@pytest.mark.parametrize("url", ["/api/derivations/preview/", "/api/derivations/"])
@pytest.mark.parametrize("role", [Role.OPERATOR, Role.COORDINATOR])
def test_batch_derivation_is_for_admins(client, staff, url, role):
    absent = load_absent(staff, 1)
    b = operator(staff, "b")
    response = post(
        as_user(client, staff("someone", role)),
        url,
        {"from_operator_id": absent.pk, "to_operator_id": b.pk},
    )
    assert error(response) == (403, "permission_denied")
    assert not DerivationBatch.objects.exists()


@pytest.mark.parametrize("url", ["/api/derivations/preview/", "/api/derivations/"])
def test_nothing_to_derive(client, staff, url):
    idle = operator(staff, "idle")
    b = operator(staff, "b")
    response = post(
        as_user(client, staff("admin", Role.ADMIN)),
        url,
        {"from_operator_id": idle.pk, "to_operator_id": b.pk},
    )
    assert error(response) == (409, "nothing_to_derive")


def test_derivation_beyond_capacity_is_refused_whole(client, staff):
    absent = load_absent(staff, 3)
    small = operator(staff, "small", capacity=2)
    response = post(
        as_user(client, staff("admin", Role.ADMIN)),
        "/api/derivations/",
        {"from_operator_id": absent.pk, "to_operator_id": small.pk},
    )
    assert error(response) == (409, "operator_at_capacity")
    assert response.json()["data"] == {
        "operator_id": small.pk,
        "load": 0,
        "capacity": 2,
        "incoming": 3,
    }
    assert Conversation.objects.filter(operator=absent, status="assigned").count() == 3
    assert not DerivationBatch.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"to_operator_id": None}, 400, "missing_field", "from_operator_id"),
        (
            {"from_operator_id": "absent", "to_operator_id": None},
            400,
            "wrong_type",
            "from_operator_id",
        ),
        (
            {"from_operator_id": 999_999, "to_operator_id": None},
            404,
            "not_found",
            "from_operator_id",
        ),
        ({"from_operator_id": "SELF"}, 400, "missing_field", "to_operator_id"),
        (
            {"from_operator_id": "SELF", "to_operator_id": 999_999},
            404,
            "not_found",
            "to_operator_id",
        ),
        (
            {"from_operator_id": "SELF", "to_operator_id": "SELF"},
            400,
            "invalid_value",
            "to_operator_id",
        ),
    ],
)
def test_derivation_field_errors(client, staff, body, status, code, field):
    absent = load_absent(staff, 1)
    body = {k: absent.pk if v == "SELF" else v for k, v in body.items()}
    response = post(as_user(client, staff("admin", Role.ADMIN)), "/api/derivations/", body)
    assert error(response) == (status, code)
    assert response.json()["data"]["field"] == field
    assert not DerivationBatch.objects.exists()
