"""hsm.selectors: who sees which templates, the list filters, and the templates that may be
sent (approved only, closest language first)."""

from __future__ import annotations

import pytest

from hsm.models import Status
from hsm.selectors import (
    access_template,
    template_list,
    template_render,
    template_sendable_get,
    templates_sendable,
)
from hub.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from hub.roles import Role
from tests.hsm.factories import template_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(staff):
    coordinator = staff("hsm-coord", Role.COORDINATOR)
    made = {
        key: template_make(coordinator, status, name=name, language=language)
        for key, name, language, status in [
            ("es", "follow_up", "es", Status.APPROVED),
            ("es_ES", "follow_up", "es_ES", Status.APPROVED),
            ("es_MX", "payment", "es_MX", Status.APPROVED),
            ("en_US", "follow_up", "en_US", Status.APPROVED),
            ("paused", "paused_one", "es", Status.PAUSED),
            ("draft", "draft_one", "es", Status.DRAFT),
            ("rejected", "rejected_one", "es", Status.REJECTED),
        ]
    }
    return coordinator, made


def _keys(templates):
    return [f"{t['name']}/{t['language']}" for t in templates]


def test_sendable_is_approved_only(world, django_assert_num_queries):
    with django_assert_num_queries(1):
        everything = templates_sendable(None)
    assert _keys(everything) == [
        "follow_up/en_US",
        "follow_up/es",
        "follow_up/es_ES",
        "payment/es_MX",
    ]
    assert {t["status"] for t in everything} == {"approved"}


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("es", ["follow_up/es", "follow_up/es_ES", "payment/es_MX"]),
        ("es_ES", ["follow_up/es_ES", "follow_up/es", "payment/es_MX"]),
        ("es-es", ["follow_up/es_ES", "follow_up/es", "payment/es_MX"]),
        ("es_AR", ["follow_up/es", "follow_up/es_ES", "payment/es_MX"]),
        ("en", ["follow_up/en_US"]),
        ("pt_BR", []),
    ],
)
def test_sendable_matches_the_language_family_closest_first(world, language, expected):
    assert _keys(templates_sendable(language)) == expected


def test_sendable_refuses_a_malformed_language(world):
    with pytest.raises(ValidationFailed) as caught:
        templates_sendable("spanish")
    assert caught.value.data["field"] == "language"


def test_sendable_get_checks_the_status_now(world):
    _, made = world
    assert template_sendable_get(template_id=made["es"]["id"])["status"] == "approved"
    with pytest.raises(Conflict) as caught:
        template_sendable_get(template_id=made["paused"]["id"])
    assert caught.value.data == {"template_id": made["paused"]["id"], "status": "paused"}
    with pytest.raises(NotFound):
        template_sendable_get(template_id=123456)


def test_a_sendable_dict_renders(world):
    _, made = world
    [chosen] = [t for t in templates_sendable("es_ES") if t["language"] == "es_ES"]
    assert chosen["id"] == made["es_ES"]["id"]
    assert template_render(chosen, ["R-1", "Ana", "R-1"]).startswith("Reclamación R-1\n\nHola Ana")


def test_operators_see_approved_templates_only(world, staff):
    _, made = world
    operator = staff("hsm-op")
    assert {t["status"] for t in template_list(actor=operator)} == {"approved"}
    assert template_list(actor=operator, status="draft") == []
    assert access_template(actor=operator, template_id=made["es"]["id"]).pk == made["es"]["id"]
    for key in ("paused", "draft", "rejected"):
        with pytest.raises(NotFound):
            access_template(actor=operator, template_id=made[key]["id"])


def test_coordinators_see_and_filter_everything(world):
    coordinator, _ = world
    assert len(template_list(actor=coordinator)) == 7
    assert _keys(template_list(actor=coordinator, status="paused")) == ["paused_one/es"]
    assert _keys(template_list(actor=coordinator, status="approved", language="en")) == [
        "follow_up/en_US"
    ]
    with pytest.raises(ValidationFailed) as caught:
        template_list(actor=coordinator, status="live")
    assert caught.value.data["field"] == "status"


def test_non_staff_are_refused(world, django_user_model):
    outsider = django_user_model.objects.create_user("outsider", password="x")
    with pytest.raises(PermissionDenied):
        template_list(actor=outsider)
