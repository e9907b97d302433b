"""hsm.services: who may write, bad input that saves nothing, optimistic versions, the
status rules, retirement, the history of who did what, and the demo templates."""

from __future__ import annotations

import pytest

from hsm import services
from hsm.models import Action, Status, Template, TemplateHistory
from hsm.services import TRANSITIONS
from hub.exceptions import Conflict, ErrorCode, NotFound, PermissionDenied, ValidationFailed
from hub.roles import Role
from tests.hsm.factories import template_fields, template_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def coordinator(staff):
    return staff("hsm-coord", Role.COORDINATOR)


@pytest.fixture
def other_coordinator(staff):
    return staff("hsm-coord2", Role.COORDINATOR)


def _status(actor, template, status, reason=None):
    return services.template_status_change(
        actor=actor,
        template_id=template["id"],
        version=template["version"],
        status=status,
        rejection_reason=reason,
    )


def test_create_stores_a_draft_and_who_made_it(coordinator, django_assert_num_queries):
    # the atomic block (2), permissions (2), name check, insert in a savepoint (3), history
    with django_assert_num_queries(9):
        created = services.template_create(actor=coordinator, **template_fields())
    assert created["status"] == "draft" and created["version"] == 1
    assert created["updated_by"] == "hsm-coord"
    assert (created["header_parameters"], created["body_parameters"]) == (1, 2)
    template = Template.objects.get(pk=created["id"])
    assert template.created_by == coordinator and template.updated_by == coordinator
    [history] = TemplateHistory.objects.filter(template=template)
    assert (history.action, history.actor, history.to_status) == (
        Action.CREATED,
        coordinator,
        "draft",
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"body": "Hola {{1}} y {{3}}"}, "body"),
        ({"body": "Hola {{ 1}}"}, "body"),
        ({"body": "Hola {{one}}"}, "body"),
        ({"body": "Hola {{0}}"}, "body"),
        ({"body": "x" * 1025}, "body"),
        ({"body_examples": ["Ana"]}, "body_examples"),
        ({"name": "Bad Name"}, "name"),
        ({"language": "xx-xx-xx"}, "language"),
        ({"category": "spam"}, "category"),
        ({"footer": "{{1}}"}, "footer"),
        ({"header": "{{1}} {{2}}"}, "header"),
        ({"buttons": [{"type": "url", "text": "Open", "url": "nope"}]}, "buttons[0].url"),
    ],
)
def test_bad_input_saves_nothing(coordinator, overrides, field):
    with pytest.raises(ValidationFailed) as caught:
        services.template_create(actor=coordinator, **template_fields(**overrides))
    assert caught.value.code == ErrorCode.INVALID_VALUE
    assert caught.value.data["field"] == field
    assert not Template.objects.exists() and not TemplateHistory.objects.exists()


def test_bad_update_saves_nothing(coordinator):
    created = template_make(coordinator, Status.APPROVED)
    with pytest.raises(ValidationFailed) as caught:
        services.template_update(
            actor=coordinator,
            template_id=created["id"],
            version=created["version"],
            body="Hola {{1}}, ref {{2}} y {{3}}",  # three placeholders, two examples
        )
    assert caught.value.data == {
        "field": "body_examples",
        "reason": "examples_count",
        "expected": 3,
        "given": 2,
    }
    template = Template.objects.get(pk=created["id"])
    assert (template.status, template.version, template.body) == (
        "approved",
        created["version"],
        created["body"],
    )


def test_name_and_language_are_unique_among_live_templates(coordinator):
    first = template_make(coordinator)
    with pytest.raises(Conflict) as caught:
        template_make(coordinator)
    assert caught.value.data == {"field": "name", "template_id": first["id"]}
    other = template_make(coordinator, language="en")
    with pytest.raises(Conflict):  # renaming into a taken pair
        services.template_update(
            actor=coordinator, template_id=other["id"], version=1, language="es"
        )


def test_operators_cannot_write(coordinator, staff):
    operator = staff("hsm-op")
    created = template_make(coordinator, Status.APPROVED)
    calls = [
        lambda: services.template_create(actor=operator, **template_fields(name="other")),
        lambda: services.template_update(
            actor=operator, template_id=created["id"], version=created["version"], footer="x"
        ),
        lambda: _status(operator, created, "paused"),
        lambda: services.template_retire(actor=operator, template_id=created["id"]),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied) as caught:
            call()
        assert caught.value.data == {"permission": "hsm.manage_templates"}
        assert "coordinators and admins" in caught.value.message
    assert Template.objects.count() == 1


def test_admins_write_too(staff):
    admin = staff("hsm-admin", Role.ADMIN)
    assert template_make(admin, Status.APPROVED)["status"] == "approved"


def test_two_coordinators_do_not_overwrite_each_other(coordinator, other_coordinator):
    created = template_make(coordinator)
    first = services.template_update(
        actor=coordinator, template_id=created["id"], version=1, footer="Mine"
    )
    with pytest.raises(Conflict) as caught:
        services.template_update(
            actor=other_coordinator, template_id=created["id"], version=1, footer="Theirs"
        )
    assert caught.value.code == ErrorCode.STALE_VERSION
    assert caught.value.data == {"template_id": created["id"], "version": 2}
    for call in (
        lambda: _status(other_coordinator, created, "submitted"),
        lambda: services.template_retire(
            actor=other_coordinator, template_id=created["id"], version=1
        ),
    ):
        with pytest.raises(Conflict) as caught:
            call()
        assert caught.value.code == ErrorCode.STALE_VERSION
    assert Template.objects.get(pk=created["id"]).footer == "Mine" == first["footer"]


def test_an_update_that_changes_nothing_writes_nothing(coordinator):
    created = template_make(coordinator, Status.APPROVED)
    same = services.template_update(
        actor=coordinator,
        template_id=created["id"],
        version=created["version"],
        body=created["body"] + "  ",  # stripped: the same body
        footer=created["footer"],
    )
    assert same == created


ALL_PAIRS = [(a, b) for a in Status.values for b in Status.values]


@pytest.mark.parametrize(("start", "target"), ALL_PAIRS)
def test_status_transitions(coordinator, start, target):
    created = template_make(coordinator, start)
    reason = "Looks like marketing" if target == "rejected" else None
    if target in TRANSITIONS[start]:
        changed = _status(coordinator, created, target, reason)
        assert (changed["status"], changed["version"]) == (target, created["version"] + 1)
        assert changed["rejection_reason"] == (reason or "")
        last = TemplateHistory.objects.filter(template_id=created["id"]).last()
        assert (last.action, last.from_status, last.to_status, last.actor) == (
            Action.STATUS_CHANGED,
            start,
            target,
            coordinator,
        )
    else:
        with pytest.raises(Conflict) as caught:
            _status(coordinator, created, target, reason)
        assert caught.value.code == ErrorCode.CONFLICT
        assert caught.value.data["status"] == start
        assert caught.value.data["requested"] == target
        assert caught.value.data["allowed"] == list(TRANSITIONS[start])
        assert Template.objects.get(pk=created["id"]).status == start


def test_the_documented_transitions():
    assert TRANSITIONS == {
        "draft": ("submitted",),
        "submitted": ("approved", "rejected", "draft"),
        "rejected": ("submitted", "draft"),
        "approved": ("paused",),
        "paused": ("approved",),
    }


def test_rejection_needs_a_reason_and_nothing_else_takes_one(coordinator):
    created = template_make(coordinator, Status.SUBMITTED)
    with pytest.raises(ValidationFailed) as caught:
        _status(coordinator, created, "rejected")
    assert caught.value.data == {"field": "rejection_reason", "reason": "required"}
    with pytest.raises(ValidationFailed) as caught:
        _status(coordinator, created, "approved", "because")
    assert caught.value.data["field"] == "rejection_reason"
    with pytest.raises(ValidationFailed) as caught:
        _status(coordinator, created, "live")
    assert caught.value.data["field"] == "status"
    assert Template.objects.get(pk=created["id"]).status == "submitted"


@pytest.mark.parametrize("start", ["approved", "paused", "rejected"])
def test_editing_content_sends_it_back_to_draft(coordinator, start):
    created = template_make(coordinator, start)
    edited = services.template_update(
        actor=coordinator,
        template_id=created["id"],
        version=created["version"],
        buttons=[{"type": "quick_reply", "text": "Vale"}],
    )
    assert (edited["status"], edited["rejection_reason"]) == ("draft", "")
    last = TemplateHistory.objects.filter(template_id=created["id"]).last()
    assert (last.action, last.from_status, last.to_status, last.note) == (
        Action.UPDATED,
        start,
        "draft",
        "changed: buttons",
    )


def test_a_draft_stays_a_draft_when_edited(coordinator):
    created = template_make(coordinator)
    edited = services.template_update(
        actor=coordinator, template_id=created["id"], version=1, name="renamed"
    )
    assert (edited["status"], edited["name"], edited["version"]) == ("draft", "renamed", 2)


def test_a_submitted_template_cannot_be_edited(coordinator):
    created = template_make(coordinator, Status.SUBMITTED)
    with pytest.raises(Conflict) as caught:
        services.template_update(
            actor=coordinator, template_id=created["id"], version=created["version"], footer="x"
        )
    assert caught.value.data == {"template_id": created["id"], "status": "submitted"}


def test_retire_hides_it_keeps_its_history_and_frees_the_name(coordinator):
    created = template_make(coordinator, Status.APPROVED)
    retired = services.template_retire(
        actor=coordinator, template_id=created["id"], version=created["version"]
    )
    assert retired["retired_at"] and retired["version"] == created["version"] + 1
    with pytest.raises(NotFound):
        services.template_retire(actor=coordinator, template_id=created["id"])
    actions = list(
        TemplateHistory.objects.filter(template_id=created["id"]).values_list("action", flat=True)
    )
    assert actions == ["created", "status_changed", "status_changed", "retired"]
    assert template_make(coordinator)["id"] != created["id"]


def test_missing_templates_are_not_found(coordinator):
    with pytest.raises(NotFound):
        services.template_update(actor=coordinator, template_id=999, version=1, footer="x")
    with pytest.raises(NotFound):
        _status(coordinator, {"id": 999, "version": 1}, "submitted")


def test_demo_templates_are_approved_and_seeded_once(coordinator):
    assert services.templates_demo_ensure(actor=coordinator) == 4
    assert services.templates_demo_ensure(actor=coordinator) == 0
    seeded = set(Template.objects.values_list("name", "language", "status"))
    assert seeded == {
        ("claim_follow_up", "es", "approved"),
        ("claim_follow_up", "en", "approved"),
        ("payment_inquiry_update", "es", "approved"),
        ("payment_inquiry_update", "en", "approved"),
    }
