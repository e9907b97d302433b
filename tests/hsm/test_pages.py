"""The coordinators' templates page (hsm/pages.py): who gets the page, and the two read-only
endpoints it added — a template's history and the preview of a draft being edited.  The
page's behaviour in a browser is tested in tests/browser/test_templates_page.py."""

from __future__ import annotations

import json

import pytest

from hsm import services
from hsm.models import Status, Template
from hub.roles import Role
from tests.hsm.factories import template_fields, template_make

pytestmark = pytest.mark.django_db

PAGE = "/coordinator/templates/"
PREVIEW = "/api/hsm/templates/preview/"


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def coordinator(staff):
    return staff("hsm-coord", Role.COORDINATOR)


@pytest.fixture
def coord_client(client, coordinator):
    client.force_login(coordinator)
    return client


def test_coordinator_gets_the_page_with_the_status_flow(coord_client):
    response = coord_client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="template-form"' in html and "hsm/templates_page.js" in html
    assert '<option value="authentication">Authentication</option>' in html
    flow = json.loads(html.split('id="transitions" type="application/json">')[1].split("<")[0])
    assert flow["submitted"] == ["approved", "rejected", "draft"]
    assert flow["approved"] == ["paused"]


def test_operator_is_refused_with_a_clear_page(client, staff):
    client.force_login(staff("omar", Role.OPERATOR))
    response = client.get(PAGE)
    assert response.status_code == 403
    html = response.content.decode()
    assert "No access to WhatsApp templates" in html and "hsm.manage_templates" in html
    assert 'id="template-form"' not in html


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={PAGE}"


# --- GET /api/hsm/templates/<id>/history/ -------------------------------------------------
def test_history_lists_every_write_newest_first(coord_client, coordinator):
    template = template_make(coordinator, Status.REJECTED)
    services.template_update(
        actor=coordinator, template_id=template["id"], version=template["version"], footer="New"
    )
    response = coord_client.get(f"/api/hsm/templates/{template['id']}/history/")
    assert response.status_code == 200, response.content
    history = response.json()["history"]
    steps = [(h["action"], h["from_status"], h["to_status"], h["version"]) for h in history]
    assert steps == [
        ("updated", "rejected", "draft", 4),
        ("status_changed", "submitted", "rejected", 3),
        ("status_changed", "draft", "submitted", 2),
        ("created", "", "draft", 1),
    ]
    assert history[0]["note"] == "changed: footer"
    assert history[1]["note"] == "Example values missing"
    assert {h["actor"] for h in history} == {"hsm-coord"}


def test_history_refusals(coord_client, coordinator, client, staff):
    assert coord_client.get("/api/hsm/templates/999/history/").status_code == 404
    approved = template_make(coordinator, Status.APPROVED)
    client.force_login(staff("omar", Role.OPERATOR))
    response = client.get(f"/api/hsm/templates/{approved['id']}/history/")
    assert response.status_code == 403
    assert response.json()["data"] == {"permission": "hsm.manage_templates"}


# --- POST /api/hsm/templates/preview/ ------------------------------------------------------
def test_preview_fills_the_examples_and_counts_the_placeholders(coord_client):
    fields = template_fields()
    body = {key: fields[key] for key in ("header", "header_example", "body", "body_examples")}
    body.update(footer="Banco Demo", buttons=fields["buttons"])
    response = post(coord_client, PREVIEW, body)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "header_parameters": 1,
        "body_parameters": 2,
        "header": "Reclamación R-42",
        "body": "Hola Ana, su reclamación R-42 tiene novedades.",
        "footer": "Banco Demo",
        "buttons": [{"type": "quick_reply", "text": "Continuar"}],
        "text": "Reclamación R-42\n\nHola Ana, su reclamación R-42 tiene novedades.\n\nBanco Demo",
    }
    assert Template.objects.count() == 0


def test_preview_keeps_placeholders_whose_example_is_missing(coord_client):
    response = post(
        coord_client, PREVIEW, {"body": "Hi {{1}}, ref {{2}} ({{1}})", "body_examples": ["Ana"]}
    )
    assert response.status_code == 200
    assert response.json()["body"] == "Hi Ana, ref {{2}} (Ana)"
    assert response.json()["body_parameters"] == 2


@pytest.mark.parametrize(
    ("payload", "code", "field", "reason"),
    [
        ({"body": "Hola {{1}} y {{3}}"}, "invalid_value", "body", "missing_placeholder"),
        ({"body": "Hola {{ 1}}"}, "invalid_value", "body", "malformed_placeholder"),
        ({"body": "Hi", "header": "A {{1}} {{2}}"}, "invalid_value", "header", None),
        ({"body": "Hi", "footer": "F {{1}}"}, "invalid_value", "footer", None),
        (
            {"body": "Hi", "buttons": [{"type": "url", "text": "Go", "url": "ftp://x"}]},
            "invalid_value",
            "buttons[0].url",
            None,
        ),
        ({"body": ""}, "invalid_value", "body", None),
        ({}, "missing_field", "body", None),
        ({"body": "Hi", "buttons": "no"}, "wrong_type", "buttons", None),
    ],
)
def test_preview_refusals_name_the_field(coord_client, payload, code, field, reason):
    response = post(coord_client, PREVIEW, payload)
    assert response.status_code == 400, response.content
    error = response.json()
    assert (error["code"], error["data"]["field"]) == (code, field)
    if reason:
        assert error["data"]["reason"] == reason


def test_preview_is_for_managers_only(client, staff):
    client.force_login(staff("omar", Role.OPERATOR))
    assert post(client, PREVIEW, {"body": "Hi"}).status_code == 403
    client.logout()
    assert post(client, PREVIEW, {"body": "Hi"}).status_code == 401
