"""The coordinators' routing page (routing/pages.py) and the configuration endpoints it is
built on (routing/config_views.py → routing/config.py): query types and keywords, the type
menu, resolution reasons per type, operators' skills and capacity.  The page's behaviour in
a browser is tested in tests/browser/test_routing_page.py."""

from __future__ import annotations

import json

import pytest

from chat import services as chat_services
from chat.models import Conversation
from hub.roles import Role
from routing.classify import menu_types, query_type_from_answer
from routing.models import OperatorState, QueryType, ResolutionReason, RoutingSettings
from routing.services import resolutions_for_type
from tests.routing.factories import operator_make

pytestmark = pytest.mark.django_db

PAGE = "/coordinator/routing/"
CONFIG = "/api/routing/config/"
TYPES = "/api/routing/query-types/"
REASONS = "/api/routing/resolutions/"


def call(client, method, url, body=None):
    kwargs = {}
    if body is not None:
        kwargs = {"data": json.dumps(body), "content_type": "application/json"}
    return getattr(client, method)(url, **kwargs)


def refused(response) -> tuple[int, str, str | None]:
    body = response.json()
    return response.status_code, body["code"], body["data"].get("field")


@pytest.fixture
def payments(db):
    return QueryType.objects.create(
        code="payments", name="Payments", priority=120, menu_position=1, keywords=["card", "pin"]
    )


@pytest.fixture
def follow_up(db):
    return QueryType.objects.create(
        code="follow-up", name="Follow-up", menu_position=2, is_default=True
    )


@pytest.fixture
def coord(client, staff):
    client.force_login(staff("carla", Role.COORDINATOR))
    return client


def type_of(client, type_id):
    return next(t for t in call(client, "get", CONFIG).json()["query_types"] if t["id"] == type_id)


# --- the page ----------------------------------------------------------------------------------
def test_the_page_for_coordinators_and_a_clear_403_for_operators(client, staff):
    client.force_login(staff("carla", Role.COORDINATOR))
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="type-form"' in html and 'id="reason-form"' in html
    assert 'id="operator-form"' in html and "routing/routing_page.js" in html
    client.force_login(staff("omar", Role.OPERATOR))
    response = client.get(PAGE)
    assert response.status_code == 403
    assert "No access to the routing settings" in response.content.decode()
    assert call(client, "get", CONFIG).status_code == 403
    client.logout()
    assert client.get(PAGE)["Location"] == f"/accounts/login/?next={PAGE}"
    assert call(client, "get", CONFIG).status_code == 401


def test_config_lists_everything_the_page_edits(coord, staff, payments, follow_up):
    QueryType.objects.create(code="old", name="Old", active=False, menu_position=9)
    general = ResolutionReason.objects.create(name="Resolved", position=1)
    card = ResolutionReason.objects.create(name="Card replaced", position=2)
    card.query_types.set([payments])
    omar = operator_make(staff, "omar", types=[payments], capacity=3)
    body = call(coord, "get", CONFIG).json()
    assert [t["code"] for t in body["query_types"]] == ["payments", "follow-up", "old"]
    first = body["query_types"][0]
    assert {k: first[k] for k in ("name", "priority", "menu_position", "keywords")} == {
        "name": "Payments",
        "priority": 120,
        "menu_position": 1,
        "keywords": ["card", "pin"],
    }
    assert len(first["etag"]) == 16
    assert [(r["id"], r["query_type_ids"]) for r in body["resolutions"]] == [
        (general.pk, []),
        (card.pk, [payments.pk]),
    ]
    operator = next(o for o in body["operators"] if o["id"] == omar.pk)
    assert (operator["capacity"], operator["query_type_ids"], operator["presence"]) == (
        3,
        [payments.pk],
        "online",
    )
    assert body["settings"] == {
        "type_menu_enabled": False,
        "type_menu_intro": "How can we help you? Reply with a number:",
        "version": 1,
    }


# --- query types ----------------------------------------------------------------------------
def test_a_new_type_with_keywords_picks_the_customers_answer(coord, payments, follow_up):
    response = call(
        coord,
        "post",
        TYPES,
        {
            "code": "Mortgages",
            "name": "  Mortgages ",
            "priority": 140,
            "menu_position": 3,
            "keywords": ["mortgage", "home  loan", "Mortgage", ""],
        },
    )
    assert response.status_code == 201, response.content
    created = response.json()["query_type"]
    assert (created["code"], created["name"], created["keywords"]) == (
        "mortgages",
        "Mortgages",
        ["mortgage", "home loan"],
    )
    assert created["active"] is True and created["is_default"] is False
    picked = query_type_from_answer("A question about my home loan, please", menu_types())
    assert picked is not None and picked.code == "mortgages"
    options = call(coord, "get", "/api/routing/options/").json()["query_types"]
    assert "mortgages" in [t["code"] for t in options]


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"code": "bad code"}, 400, "invalid_value", "code"),
        ({"code": "payments"}, 409, "conflict", "code"),
        ({"name": "payments"}, 409, "conflict", "name"),
        ({"name": " "}, 400, "invalid_value", "name"),
        ({"keywords": ["loan", "PIN"]}, 409, "conflict", "keywords"),
        ({"keywords": ["12"]}, 400, "invalid_value", "keywords"),
        ({"keywords": ["x" * 61]}, 400, "invalid_value", "keywords"),
        ({"keywords": [3]}, 400, "wrong_type", "keywords"),
        ({"keywords": "loan"}, 400, "wrong_type", "keywords"),
        ({"priority": 1001}, 400, "invalid_value", "priority"),
        ({"menu_position": -1}, 400, "invalid_value", "menu_position"),
        ({"is_default": True, "active": False}, 400, "invalid_value", "is_default"),
        ({"code": None}, 400, "missing_field", "code"),
    ],
)
def test_create_refusals_name_the_field(coord, payments, change, status, code, field):
    body = {"code": "loans", "name": "Loans", **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = call(coord, "post", TYPES, body)
    assert refused(response) == (status, code, field), response.content
    assert QueryType.objects.count() == 1


def test_the_keyword_conflict_names_the_other_type(coord, payments):
    response = call(coord, "post", TYPES, {"code": "cards", "name": "Cards", "keywords": ["Pín"]})
    body = response.json()
    assert body["message"] == (
        "“Pín” already picks Payments; an answer with it would match both types and route "
        "to neither."
    )
    assert body["data"] == {
        "field": "keywords",
        "index": 0,
        "keyword": "Pín",
        "query_type_id": payments.pk,
    }
    # An inactive type's keywords are free.
    payments.active = False
    payments.save()
    assert (
        call(
            coord, "post", TYPES, {"code": "cards", "name": "Cards", "keywords": ["pin"]}
        ).status_code
        == 201
    )


def test_update_with_the_loaded_etag_and_a_stale_one(coord, payments, follow_up):
    loaded = type_of(coord, payments.pk)
    url = f"{TYPES}{payments.pk}/"
    response = call(coord, "patch", url, {"etag": loaded["etag"], "keywords": ["card", "atm"]})
    assert response.status_code == 200, response.content
    saved = response.json()["query_type"]
    assert saved["keywords"] == ["card", "atm"] and saved["etag"] != loaded["etag"]
    stale = call(coord, "patch", url, {"etag": loaded["etag"], "priority": 1})
    assert refused(stale) == (409, "stale_version", None)
    assert stale.json()["data"] == {"etag": saved["etag"], "query_type_id": payments.pk}
    assert QueryType.objects.get(pk=payments.pk).priority == 120
    missing = call(coord, "patch", url, {"priority": 1})
    assert refused(missing) == (400, "missing_field", "etag")
    assert call(coord, "patch", f"{TYPES}999/", {"etag": "x"}).status_code == 404


def test_the_default_moves_but_never_disappears(coord, payments, follow_up):
    url = f"{TYPES}{payments.pk}/"
    response = call(
        coord, "patch", url, {"etag": type_of(coord, payments.pk)["etag"], "is_default": True}
    )
    assert response.status_code == 200
    assert list(QueryType.objects.filter(is_default=True).values_list("code", flat=True)) == [
        "payments"
    ]
    etag = type_of(coord, payments.pk)["etag"]
    assert refused(call(coord, "patch", url, {"etag": etag, "is_default": False})) == (
        400,
        "invalid_value",
        "is_default",
    )
    assert refused(call(coord, "patch", url, {"etag": etag, "active": False})) == (
        400,
        "invalid_value",
        "active",
    )
    assert refused(call(coord, "patch", url, {"etag": etag, "code": "pay"})) == (
        400,
        "invalid_value",
        "code",
    )
    # Retiring a type that is not the default is allowed; it leaves the menu.
    other = call(
        coord,
        "patch",
        f"{TYPES}{follow_up.pk}/",
        {"etag": type_of(coord, follow_up.pk)["etag"], "active": False},
    )
    assert other.status_code == 200
    assert [t.code for t in menu_types()] == ["payments"]


def test_writes_need_manage_routing(client, staff, payments):
    client.force_login(staff("omar", Role.OPERATOR))
    response = call(client, "post", TYPES, {"code": "x", "name": "X"})
    assert refused(response) == (403, "permission_denied", None)
    assert response.json()["data"] == {"permission": "routing.manage_routing"}
    assert call(client, "patch", f"{TYPES}{payments.pk}/", {"etag": "x"}).status_code == 403
    assert call(client, "post", REASONS, {"name": "X"}).status_code == 403


# --- resolution reasons -----------------------------------------------------------------------
def test_reasons_per_type(coord, payments, follow_up):
    general = call(coord, "post", REASONS, {"name": "Resolved in the chat"}).json()["resolution"]
    card = call(coord, "post", REASONS, {"name": "Card replaced", "query_type_ids": [payments.pk]})
    assert card.status_code == 201, card.content
    card = card.json()["resolution"]
    assert (general["position"], card["position"]) == (1, 2)
    assert card["query_type_ids"] == [payments.pk]
    offered = {r.name for r in resolutions_for_type(query_type_id=follow_up.pk)}
    assert offered == {"Resolved in the chat"}
    offered = {r.name for r in resolutions_for_type(query_type_id=payments.pk)}
    assert offered == {"Resolved in the chat", "Card replaced"}
    # Offered for every type now, and inactive.
    url = f"{REASONS}{card['id']}/"
    response = call(
        coord, "patch", url, {"etag": card["etag"], "query_type_ids": [], "active": False}
    )
    assert response.status_code == 200
    assert response.json()["resolution"]["query_type_ids"] == []
    assert {r.name for r in resolutions_for_type(query_type_id=payments.pk)} == {
        "Resolved in the chat"
    }
    stale = call(coord, "patch", url, {"etag": card["etag"], "name": "Other"})
    assert refused(stale) == (409, "stale_version", None)


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"name": "Resolved"}, 409, "conflict", "name"),
        ({"name": ""}, 400, "invalid_value", "name"),
        ({"name": "New", "query_type_ids": [999]}, 404, "not_found", "query_type_ids"),
        ({"name": "New", "query_type_ids": ["1"]}, 400, "wrong_type", "query_type_ids"),
        ({"name": "New", "position": 5000}, 400, "invalid_value", "position"),
        ({}, 400, "missing_field", "name"),
    ],
)
def test_reason_refusals(coord, payments, body, status, code, field):
    ResolutionReason.objects.create(name="resolved")
    assert refused(call(coord, "post", REASONS, body)) == (status, code, field)
    assert ResolutionReason.objects.count() == 1


# --- operators -----------------------------------------------------------------------------------
def test_a_new_skill_pulls_a_waiting_conversation(coord, staff, payments, follow_up):
    omar = operator_make(staff, "omar", types=[follow_up], capacity=2)
    received = chat_services.webchat_message_receive(
        visitor_id="v-pay", client_id="v-pay-1", text="my card", entry_point="payments"
    )
    conversation = Conversation.objects.get(pk=received.conversation["id"])
    assert conversation.status == "queued"  # nobody serves payments yet
    operator = next(o for o in call(coord, "get", CONFIG).json()["operators"] if o["id"] == omar.pk)
    url = f"/api/routing/operators/{omar.pk}/"
    response = call(
        coord,
        "patch",
        url,
        {"etag": operator["etag"], "query_type_ids": [payments.pk, follow_up.pk], "capacity": 4},
    )
    assert response.status_code == 200, response.content
    saved = response.json()["operator"]
    assert (saved["capacity"], saved["query_type_ids"], saved["load"]) == (
        4,
        sorted([payments.pk, follow_up.pk]),
        1,
    )
    conversation.refresh_from_db()
    assert (conversation.status, conversation.operator_id) == ("assigned", omar.pk)
    stale = call(coord, "patch", url, {"etag": operator["etag"], "capacity": 1})
    assert refused(stale) == (409, "stale_version", None)
    assert OperatorState.objects.get(user=omar).capacity == 4


def test_operator_refusals(coord, staff, payments):
    omar = operator_make(staff, "omar", capacity=2)
    etag = next(o for o in call(coord, "get", CONFIG).json()["operators"] if o["id"] == omar.pk)[
        "etag"
    ]
    url = f"/api/routing/operators/{omar.pk}/"
    assert refused(call(coord, "patch", url, {"etag": etag, "capacity": 101})) == (
        400,
        "invalid_value",
        "capacity",
    )
    assert refused(call(coord, "patch", url, {"etag": etag, "query_type_ids": [999]})) == (
        404,
        "not_found",
        "query_type_ids",
    )
    assert refused(call(coord, "patch", "/api/routing/operators/999/", {"etag": etag})) == (
        404,
        "not_found",
        None,
    )
    no_role = staff("ada", Role.ADMIN)
    no_role.groups.clear()
    response = call(coord, "patch", f"/api/routing/operators/{no_role.pk}/", {"etag": etag})
    assert refused(response) == (404, "not_found", None)
    assert OperatorState.objects.get(user=omar).capacity == 2


# --- the type menu -------------------------------------------------------------------------------
def test_the_type_menu(coord):
    url = "/api/routing/settings/"
    response = call(
        coord,
        "patch",
        url,
        {"version": 1, "type_menu_enabled": True, "type_menu_intro": " Which   topic? "},
    )
    assert response.status_code == 200, response.content
    assert response.json()["settings"] == {
        "type_menu_enabled": True,
        "type_menu_intro": "Which topic?",
        "version": 2,
    }
    assert RoutingSettings.objects.get(pk=1).type_menu_enabled is True
    assert refused(call(coord, "patch", url, {"version": 1, "type_menu_enabled": False})) == (
        409,
        "stale_version",
        None,
    )
    assert refused(call(coord, "patch", url, {"version": 2, "type_menu_intro": "  "})) == (
        400,
        "invalid_value",
        "type_menu_intro",
    )
    assert refused(call(coord, "patch", url, {"type_menu_enabled": False})) == (
        400,
        "missing_field",
        "version",
    )
