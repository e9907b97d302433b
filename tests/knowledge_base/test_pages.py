"""The coordinators' knowledge-base page (knowledge_base/pages.py): who gets the page, and
the body preview it added (POST /api/kb/replies/preview/).  The page's behaviour in a
browser is tested in tests/browser/test_replies_page.py."""

from __future__ import annotations

import json

import pytest

from hub.roles import Role
from knowledge_base.models import Reply
from knowledge_base.services import reply_create

pytestmark = pytest.mark.django_db

PAGE = "/coordinator/replies/"
PREVIEW = "/api/kb/replies/preview/"


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def coordinator(client, staff):
    user = staff("carla", Role.COORDINATOR)
    user.first_name, user.last_name = "Carla", "Coordinator"
    user.save()
    client.force_login(user)
    return client


def test_coordinator_and_admin_get_the_page(client, staff):
    client.force_login(staff("carla", Role.COORDINATOR))
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="reply-form"' in html and "knowledge_base/replies.js" in html
    assert "hub/staff_pages.js" in html and "hub/staff_pages.css" in html
    # The variables a body may hold are offered as buttons.
    assert 'data-variable="customer.first_name"' in html
    assert 'data-variable="today.opening_hours"' in html
    client.force_login(staff("ada", Role.ADMIN))
    assert client.get(PAGE).status_code == 200


def test_operator_is_refused_with_a_clear_page(client, staff):
    client.force_login(staff("omar", Role.OPERATOR))
    response = client.get(PAGE)
    assert response.status_code == 403
    html = response.content.decode()
    assert "No access to the knowledge base" in html
    assert "knowledge_base.manage_replies" in html
    assert 'id="reply-form"' not in html


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={PAGE}"


def test_preview_fills_a_sample_customer_and_the_fallbacks(coordinator):
    body = (
        '  Hi {{customer.first_name | "there"}}, I\'m {{operator.name}}. '
        "Ref {{conversation.reference}}."
    )
    response = post(coordinator, PREVIEW, {"body": body})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "text": "Hi Ana, I'm Carla Coordinator. Ref 5FBD0299.",
        "text_without_values": "Hi there, I'm . Ref .",
        "variables": ["conversation.reference", "customer.first_name", "operator.name"],
    }
    assert Reply.objects.count() == 0  # nothing written


def test_preview_refuses_what_a_save_refuses_with_the_same_error(coordinator, staff):
    body = "Hello {{customer.surname}}!"
    preview = post(coordinator, PREVIEW, {"body": body})
    assert preview.status_code == 400
    saved = post(
        coordinator,
        "/api/kb/replies/",
        {"title": "T", "shortcut": "/t", "body": body, "language": "en"},
    )
    assert saved.status_code == 400
    assert preview.json() == saved.json()
    data = preview.json()["data"]
    assert (data["field"], data["reason"], data["variable"], data["position"]) == (
        "body",
        "unknown_variable",
        "customer.surname",
        6,
    )
    malformed = post(coordinator, PREVIEW, {"body": "Hi {{customer.first_name"}).json()
    assert malformed["code"] == "invalid_value"
    assert (malformed["data"]["field"], malformed["data"]["reason"]) == ("body", "malformed")


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({}, "missing_field", "body"),
        ({"body": 7}, "wrong_type", "body"),
        ({"body": "   "}, "invalid_value", "body"),
        ({"body": "x" * 20001}, "invalid_value", "body"),
    ],
)
def test_preview_malformed_requests(coordinator, payload, code, field):
    response = post(coordinator, PREVIEW, payload)
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["data"]["field"]) == (code, field)


def test_preview_is_for_managers_only(client, staff):
    client.force_login(staff("omar", Role.OPERATOR))
    response = post(client, PREVIEW, {"body": "Hi"})
    assert response.status_code == 403
    assert response.json()["data"] == {"permission": "knowledge_base.manage_replies"}
    client.logout()
    assert post(client, PREVIEW, {"body": "Hi"}).status_code == 401
    assert client.get(PREVIEW).status_code == 405


def test_preview_does_not_count_a_use(coordinator, staff):
    reply = reply_create(
        actor=staff("carla", Role.COORDINATOR),
        title="Hello",
        shortcut="/hello",
        body="Hello {{customer.first_name}}",
        language="en",
    )
    post(coordinator, PREVIEW, {"body": reply["body"]})
    assert Reply.objects.get(pk=reply["id"]).usage_count == 0
