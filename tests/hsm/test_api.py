"""The hsm REST endpoints: coordinators edit and review, operators list and preview the
approved templates, every refusal is a JSON error naming the field."""

from __future__ import annotations

import json

import pytest

from hub.roles import Role
from tests.hsm.factories import template_fields, template_make

pytestmark = pytest.mark.django_db

URL = "/api/hsm/templates/"


def call(client, method, url, body=None):
    kwargs = {}
    if body is not None:
        kwargs = {"data": json.dumps(body), "content_type": "application/json"}
    return getattr(client, method)(url, **kwargs)


@pytest.fixture
def coordinator(staff):
    return staff("hsm-coord", Role.COORDINATOR)


@pytest.fixture
def coord_client(client, coordinator):
    client.force_login(coordinator)
    return client


@pytest.fixture
def op_client(client, staff):
    client.force_login(staff("hsm-op"))
    return client


def test_create_get_update_review_and_retire(coord_client):
    created = call(coord_client, "post", URL, template_fields())
    assert created.status_code == 201, created.content
    template = created.json()["template"]
    assert (template["status"], template["version"], template["updated_by"]) == (
        "draft",
        1,
        "hsm-coord",
    )
    one = f"{URL}{template['id']}/"
    assert call(coord_client, "get", one).json()["template"] == template

    patched = call(coord_client, "patch", one, {"version": 1, "footer": "Banco"})
    assert patched.status_code == 200 and patched.json()["template"]["version"] == 2
    stale = call(coord_client, "patch", one, {"version": 1, "footer": "Otro"})
    assert stale.status_code == 409
    assert stale.json() == {
        "code": "stale_version",
        "message": "Someone else saved this template after you loaded it. Reload it and try again.",
        "data": {"template_id": template["id"], "version": 2},
    }

    status = f"{one}status/"
    submitted = call(coord_client, "post", status, {"version": 2, "status": "submitted"})
    assert submitted.json()["template"]["status"] == "submitted"
    rejected = call(
        coord_client,
        "post",
        status,
        {"version": 3, "status": "rejected", "rejection_reason": "Looks promotional"},
    )
    assert rejected.json()["template"]["rejection_reason"] == "Looks promotional"
    bad = call(coord_client, "post", status, {"version": 4, "status": "paused"})
    assert bad.status_code == 409
    assert bad.json()["code"] == "conflict"
    assert bad.json()["data"]["allowed"] == ["submitted", "draft"]

    listed = call(coord_client, "get", f"{URL}?status=rejected&language=es").json()
    assert [t["id"] for t in listed["templates"]] == [template["id"]]
    assert call(coord_client, "get", f"{URL}?status=approved").json()["templates"] == []

    retired = call(coord_client, "delete", f"{one}?version=4")
    assert retired.status_code == 200 and retired.json()["template"]["retired_at"]
    assert call(coord_client, "get", one).status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"body": "Hola {{1}} y {{3}}"}, 400, "invalid_value", "body"),
        ({"body": "Hola {{ 1}}"}, 400, "invalid_value", "body"),
        ({"body_examples": ["Ana"]}, 400, "invalid_value", "body_examples"),
        ({"body_examples": "Ana"}, 400, "wrong_type", "body_examples"),
        ({"name": "Claim Follow-up"}, 400, "invalid_value", "name"),
        ({"name": None}, 400, "missing_field", "name"),
        ({"language": 5}, 400, "wrong_type", "language"),
        ({"category": "promo"}, 400, "invalid_value", "category"),
        ({"footer": "Ref {{1}}"}, 400, "invalid_value", "footer"),
        ({"buttons": [{"type": "call", "text": "x"}]}, 400, "invalid_value", "buttons[0].type"),
    ],
)
def test_create_refusals_save_nothing(coord_client, change, status, code, field):
    response = call(coord_client, "post", URL, {**template_fields(), **change})
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response.json()["data"]["field"] == field
    assert call(coord_client, "get", URL).json()["templates"] == []


def test_duplicate_name_and_language_is_a_conflict(coord_client):
    call(coord_client, "post", URL, template_fields())
    response = call(coord_client, "post", URL, template_fields())
    assert response.status_code == 409
    assert response.json()["data"]["field"] == "name"


def test_bad_requests_name_the_problem(coord_client, coordinator):
    template = template_make(coordinator)
    one = f"{URL}{template['id']}/"
    assert call(coord_client, "patch", one, {"footer": "x"}).json()["data"]["field"] == "version"
    unknown = call(coord_client, "post", f"{one}status/", {"version": 1, "status": "live"})
    assert unknown.status_code == 400 and unknown.json()["data"]["field"] == "status"
    not_json = coord_client.post(URL, data="{", content_type="application/json")
    assert not_json.json()["code"] == "invalid_json"
    assert call(coord_client, "get", f"{URL}?status=live").json()["data"]["field"] == "status"
    assert call(coord_client, "put", one, {}).status_code == 405


def test_operator_cannot_create_edit_or_review(op_client, coordinator):
    template = template_make(coordinator, "approved")
    one = f"{URL}{template['id']}/"
    attempts = [
        call(op_client, "post", URL, template_fields(name="mine")),
        call(op_client, "patch", one, {"version": template["version"], "footer": "x"}),
        call(
            op_client, "post", f"{one}status/", {"version": template["version"], "status": "paused"}
        ),
        call(op_client, "delete", one),
    ]
    for response in attempts:
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert response.json()["data"] == {"permission": "hsm.manage_templates"}
        assert "coordinators and admins" in response.json()["message"]


def test_operator_lists_previews_approved_templates_only(op_client, coordinator):
    approved = template_make(coordinator, "approved")
    draft = template_make(coordinator, name="not_yet")
    listed = call(op_client, "get", URL).json()["templates"]
    assert [t["id"] for t in listed] == [approved["id"]]
    assert call(op_client, "get", f"{URL}{draft['id']}/").status_code == 404
    preview = call(
        op_client, "post", f"{URL}{approved['id']}/render/", {"parameters": ["R-1", "Ana", "R-1"]}
    )
    assert preview.status_code == 200
    assert preview.json()["text"].startswith("Reclamación R-1\n\nHola Ana")
    assert preview.json()["message"]["name"] == "claim_follow_up"
    assert preview.json()["message"]["language"] == {"code": "es"}
    wrong = call(op_client, "post", f"{URL}{approved['id']}/render/", {"parameters": ["Ana"]})
    assert wrong.status_code == 400
    assert wrong.json()["data"] == {
        "field": "parameters",
        "reason": "parameters_count",
        "expected": 3,
        "given": 1,
    }


def test_anonymous_and_non_staff_are_refused(client, django_user_model):
    assert call(client, "get", URL).status_code == 401
    client.force_login(django_user_model.objects.create_user("outsider", password="x"))
    assert call(client, "get", URL).json()["code"] == "permission_denied"
