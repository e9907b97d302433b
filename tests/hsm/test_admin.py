"""The Django admin page for templates: by role (coordinators and admins in, operators
out), and saving through the services (rules, versions, status rules)."""

from __future__ import annotations

import pytest

from hsm.models import Template, TemplateHistory
from hub.roles import Role
from tests.hsm.factories import template_make

pytestmark = pytest.mark.django_db

LIST = "/admin/hsm/template/"
ADD = "/admin/hsm/template/add/"


@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.ADMIN, 200), (Role.COORDINATOR, 200), (Role.OPERATOR, 302)],
)
def test_admin_pages_by_role(client, staff, role, status):
    coordinator = staff("hsm-coord", Role.COORDINATOR)
    template = template_make(coordinator)
    client.force_login(staff("someone", role))
    for url in (LIST, ADD, f"{LIST}{template['id']}/change/"):
        assert client.get(url).status_code == status, url


def _form(**overrides):
    data = {
        "name": "claim_follow_up",
        "language": "es",
        "category": "utility",
        "header": "",
        "header_example": "",
        "body": "Hola {{1}}, su reclamación {{2}}.",
        "body_examples": '["Ana", "R-42"]',
        "footer": "",
        "buttons": "[]",
        "status": "draft",
        "rejection_reason": "",
        "history-TOTAL_FORMS": "0",
        "history-INITIAL_FORMS": "0",
        "history-MIN_NUM_FORMS": "0",
        "history-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def test_admin_add_goes_through_the_services(client, staff):
    coordinator = staff("hsm-coord", Role.COORDINATOR)
    client.force_login(coordinator)
    response = client.post(ADD, _form())
    assert response.status_code == 302, response.content.decode()[-2000:]
    template = Template.objects.get()
    assert (template.status, template.created_by, template.body_examples) == (
        "draft",
        coordinator,
        ["Ana", "R-42"],
    )
    assert TemplateHistory.objects.filter(template=template).count() == 1


def test_admin_shows_the_services_refusal_on_the_field(client, staff):
    client.force_login(staff("hsm-coord", Role.COORDINATOR))
    response = client.post(ADD, _form(body="Hola {{1}} y {{3}}", body_examples='["a", "b", "c"]'))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "{{2}}" in errors["body"][0]
    assert not Template.objects.exists()


def test_admin_status_change_follows_the_rules(client, staff):
    coordinator = staff("hsm-coord", Role.COORDINATOR)
    template = template_make(coordinator)
    client.force_login(coordinator)
    change = f"{LIST}{template['id']}/change/"
    data = _form(
        header="Reclamación {{1}}",
        header_example="R-42",
        body="Hola {{1}}, su reclamación {{2}} tiene novedades.",
        footer="Banco Demo",
        buttons='[{"type": "quick_reply", "text": "Continuar"}]',
        loaded_version="1",
    )
    refused = client.post(change, {**data, "status": "approved"})
    assert refused.status_code == 200
    assert "cannot become approved" in refused.context["adminform"].form.errors["status"][0]
    accepted = client.post(change, {**data, "status": "submitted"})
    assert accepted.status_code == 302
    assert Template.objects.get().status == "submitted"
