"""The Django admin page for replies saves through the services: their refusals show on
the field they name and nothing is saved; retiring instead of deleting."""

from __future__ import annotations

import pytest

from hub.roles import Role
from knowledge_base.models import Reply

pytestmark = pytest.mark.django_db

ADD = "/admin/knowledge_base/reply/add/"


def _form(**overrides: str) -> dict[str, str]:
    form = {
        "title": "Card blocked",
        "shortcut": "/card-blocked",
        "language": "en",
        "body": 'Hello {{customer.first_name | "there"}}, your card is blocked.',
        "active": "on",
        "loaded_version": "",
    }
    form.update(overrides)
    return form


def test_admin_add_goes_through_the_services(client, staff):
    coordinator = staff("kb-coord", Role.COORDINATOR)
    client.force_login(coordinator)
    response = client.post(ADD, _form())
    assert response.status_code == 302, response.content.decode()[-2000:]
    reply = Reply.objects.get()
    assert (reply.shortcut, reply.version) == ("/card-blocked", 1)


def test_admin_shows_an_unknown_variable_on_the_body_and_saves_nothing(client, staff):
    client.force_login(staff("kb-coord", Role.COORDINATOR))
    response = client.post(ADD, _form(body="Hello {{customer.shoe_size}}"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "customer.shoe_size" in errors["body"][0]
    assert not Reply.objects.exists()


def test_admin_never_deletes_a_reply(client, staff):
    client.force_login(staff("kb-admin", Role.ADMIN))
    client.post(ADD, _form())
    reply = Reply.objects.get()
    response = client.get(f"/admin/knowledge_base/reply/{reply.pk}/delete/")
    assert response.status_code == 403
