"""Knowledge base services: writing, retiring, reordering and rendering replies, and every
refusal (each names its field)."""

from __future__ import annotations

import sys
import types

import pytest

from chat.services import webchat_message_receive
from hub.exceptions import ErrorCode, HubError
from hub.roles import Role
from knowledge_base.models import Reply, Term
from knowledge_base.selectors import reply_list
from knowledge_base.services import (
    reply_create,
    reply_render,
    reply_reorder,
    reply_retire,
    reply_update,
)
from routing.models import QueryType

pytestmark = pytest.mark.django_db

BODY = 'Hello {{customer.first_name | "there"}}, your card is blocked ({{conversation.reference}}).'


@pytest.fixture
def coordinator(staff):
    return staff("kb-coord", Role.COORDINATOR)


def make(actor, shortcut="/card-blocked", **overrides):
    fields = {
        "title": "Card blocked",
        "shortcut": shortcut,
        "body": BODY,
        "language": "en",
    }
    fields.update(overrides)
    return reply_create(actor=actor, **fields)


def refused(call, code: ErrorCode) -> HubError:
    with pytest.raises(HubError) as caught:
        call()
    assert caught.value.code == code, caught.value.as_dict()
    return caught.value


# --- create ----------------------------------------------------------------------------
def test_create_normalises_and_indexes(coordinator):
    payments = QueryType.objects.create(code="payments", name="Payments")
    reply = make(
        coordinator,
        shortcut="Card-Blocked",
        title="  Tarjeta   bloqueada ",
        language="ES",
        query_type_ids=[payments.pk],
    )
    assert reply["shortcut"] == "/card-blocked"
    assert reply["title"] == "Tarjeta bloqueada"
    assert reply["language"] == "es"
    assert reply["query_type_ids"] == [payments.pk]
    assert (reply["version"], reply["position"], reply["usage_count"]) == (1, 1, 0)
    row = Reply.objects.get(pk=reply["id"])
    assert row.search_title == "tarjeta bloqueada card blocked"
    assert row.search_types == f",{payments.pk},"
    assert row.created_by == coordinator
    assert Term.objects.filter(word__in=["tarjeta", "blocked", "hello"]).count() == 3
    assert make(coordinator, shortcut="/second")["position"] == 2


def test_operators_may_not_write(staff, coordinator):
    operator = staff("kb-op")
    error = refused(lambda: make(operator), ErrorCode.PERMISSION_DENIED)
    assert "coordinators" in error.message
    reply = make(coordinator)
    refused(
        lambda: reply_update(actor=operator, reply_id=reply["id"], version=1, title="x"),
        ErrorCode.PERMISSION_DENIED,
    )
    refused(lambda: reply_retire(actor=operator, reply_id=reply["id"]), ErrorCode.PERMISSION_DENIED)
    refused(
        lambda: reply_reorder(actor=operator, reply_ids=[reply["id"]]), ErrorCode.PERMISSION_DENIED
    )


@pytest.mark.parametrize(
    ("body", "reason", "variable"),
    [
        ("Hi {{customer.age}}", "unknown_variable", "customer.age"),
        ('Hi {{ customer.nickname | "you" }}', "unknown_variable", "customer.nickname"),
        ("Hi {{customer.first_name", "malformed", "customer.first_name"),
        ("Hi customer.first_name}}", "malformed", ""),
        ("Hi {{}}", "malformed", ""),
        ("Hi {{customer.first_name | there}}", "malformed", "customer.first_name"),
        ('Hi {{customer.first_name | "there}}', "malformed", "customer.first_name"),
        ("Hi {{first name}}", "malformed", "first"),
        ("Hi {{ {{customer.name}} }}", "malformed", ""),
    ],
)
def test_body_variables_are_checked_when_saved(coordinator, body, reason, variable):
    error = refused(lambda: make(coordinator, body=body), ErrorCode.INVALID_VALUE)
    assert error.data["field"] == "body"
    assert error.data["reason"] == reason
    assert error.data["variable"] == variable
    assert isinstance(error.data["position"], int)
    assert not Reply.objects.exists()


def test_unknown_variable_error_names_it_and_lists_the_known(coordinator):
    error = refused(
        lambda: make(coordinator, body="Dear {{customer.age}}"), ErrorCode.INVALID_VALUE
    )
    assert "customer.age" in error.message
    assert error.data["position"] == 5
    assert "customer.first_name" in error.data["known"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"shortcut": "/card blocked"}, "shortcut"),
        ({"shortcut": "/"}, "shortcut"),
        ({"shortcut": "/tarjeta-está"}, "shortcut"),
        ({"shortcut": "/" + "a" * 64}, "shortcut"),
        ({"body": "  "}, "body"),
        ({"body": "x" * 4097}, "body"),
        ({"language": "english"}, "language"),
    ],
)
def test_fields_are_checked(coordinator, overrides, field):
    error = refused(lambda: make(coordinator, **overrides), ErrorCode.INVALID_VALUE)
    assert error.data["field"] == field
    assert not Reply.objects.exists()


def test_unknown_query_type(coordinator):
    error = refused(lambda: make(coordinator, query_type_ids=[999]), ErrorCode.NOT_FOUND)
    assert error.data == {"field": "query_type_ids", "query_type_id": 999}


def test_duplicate_shortcut(coordinator):
    first = make(coordinator)
    error = refused(lambda: make(coordinator, shortcut="/CARD-blocked"), ErrorCode.CONFLICT)
    assert error.data == {"field": "shortcut", "reply_id": first["id"]}
    other = make(coordinator, shortcut="/other")
    error = refused(
        lambda: reply_update(
            actor=coordinator, reply_id=other["id"], version=1, shortcut="/card-blocked"
        ),
        ErrorCode.CONFLICT,
    )
    assert error.data["field"] == "shortcut"


# --- update, retire, reorder -------------------------------------------------------------
def test_update_bumps_the_version_and_refuses_a_stale_one(coordinator, staff):
    reply = make(coordinator)
    admin = staff("kb-admin", Role.ADMIN)
    updated = reply_update(
        actor=admin, reply_id=reply["id"], version=1, title="Card blocked (safety)", active=False
    )
    assert (updated["version"], updated["title"], updated["active"]) == (
        2,
        "Card blocked (safety)",
        False,
    )
    assert updated["body"] == BODY  # untouched fields stay
    error = refused(
        lambda: reply_update(actor=coordinator, reply_id=reply["id"], version=1, title="Mine"),
        ErrorCode.STALE_VERSION,
    )
    assert error.status == 409
    assert error.data == {"reply_id": reply["id"], "version": 2}
    assert Reply.objects.get(pk=reply["id"]).title == "Card blocked (safety)"
    refused(
        lambda: reply_update(
            actor=coordinator, reply_id=reply["id"], version=2, body="{{operator.nam}}"
        ),
        ErrorCode.INVALID_VALUE,
    )
    assert Reply.objects.get(pk=reply["id"]).version == 2  # nothing saved


def test_retire_hides_the_reply_and_frees_its_shortcut(coordinator):
    reply = make(coordinator)
    retired = reply_retire(actor=coordinator, reply_id=reply["id"], version=1)
    assert retired["active"] is False
    assert reply_list(actor=coordinator) == []
    refused(lambda: reply_retire(actor=coordinator, reply_id=reply["id"]), ErrorCode.NOT_FOUND)
    again = make(coordinator)  # the shortcut is free again
    assert again["id"] != reply["id"]
    refused(
        lambda: reply_retire(actor=coordinator, reply_id=again["id"], version=7),
        ErrorCode.STALE_VERSION,
    )


def test_reorder(coordinator):
    a, b, c = (make(coordinator, shortcut=f"/r-{n}")["id"] for n in "abc")
    listed = reply_reorder(actor=coordinator, reply_ids=[c, a])
    assert [r["id"] for r in listed] == [c, a, b]
    assert [r["position"] for r in listed] == [1, 2, 3]
    error = refused(
        lambda: reply_reorder(actor=coordinator, reply_ids=[a, a]), ErrorCode.INVALID_VALUE
    )
    assert error.data["field"] == "reply_ids"
    error = refused(
        lambda: reply_reorder(actor=coordinator, reply_ids=[a, 999]), ErrorCode.NOT_FOUND
    )
    assert error.data == {"field": "reply_ids", "reply_id": 999}


# --- render ------------------------------------------------------------------------------
@pytest.fixture
def assigned(staff):
    operator = staff("kb-op", online=True)
    operator.first_name, operator.last_name = "Omar", "One"
    operator.save()
    received = webchat_message_receive(
        visitor_id="kb-v", client_id="1", text="my card", display_name="Ana María García"
    )
    assert received.conversation["operator_id"] == operator.pk
    return operator, received.conversation["id"]


def test_render_fills_variables_and_counts_the_use(coordinator, assigned):
    operator, conversation_id = assigned
    body = (
        "Hi {{customer.first_name}} ({{customer.name}}), I'm {{operator.name}}. "
        "Ref {{ conversation.reference }}."
    )
    reply = make(coordinator, body=body)
    rendered = reply_render(actor=operator, reply_id=reply["id"], conversation_id=conversation_id)
    reference = conversation_id[:8].upper()
    assert rendered == {
        "reply_id": reply["id"],
        "text": f"Hi Ana (Ana María García), I'm Omar One. Ref {reference}.",
    }
    reply_render(actor=coordinator, reply_id=reply["id"], conversation_id=conversation_id)
    assert Reply.objects.get(pk=reply["id"]).usage_count == 2


def test_render_uses_fallbacks_for_missing_values(coordinator, staff):
    operator = staff("kb-op", online=True)
    received = webchat_message_receive(visitor_id="kb-anon", client_id="1", text="hello")
    reply = make(
        coordinator,
        body='Hello {{customer.first_name | "there"}}{{customer.name}}. '
        'Open {{today.opening_hours | "9:00 to 18:00"}}.',
    )
    rendered = reply_render(
        actor=operator, reply_id=reply["id"], conversation_id=received.conversation["id"]
    )
    assert rendered["text"] == "Hello there. Open 9:00 to 18:00."


def test_render_asks_scheduling_for_opening_hours(coordinator, assigned, monkeypatch):
    operator, conversation_id = assigned
    calls = []

    def opening_hours_today_text(*, query_type_id=None, language=None):
        calls.append((query_type_id, language))
        return "today 9:00 to 14:00"

    fake = types.ModuleType("scheduling.selectors")
    fake.opening_hours_today_text = opening_hours_today_text
    monkeypatch.setitem(sys.modules, "scheduling.selectors", fake)
    reply = make(coordinator, body='We are open {{today.opening_hours | "soon"}}.')
    rendered = reply_render(actor=operator, reply_id=reply["id"], conversation_id=conversation_id)
    assert rendered["text"] == "We are open today 9:00 to 14:00."
    assert calls == [(None, "en")]


def test_render_refusals(coordinator, assigned, staff):
    operator, conversation_id = assigned
    other = staff("kb-op2")
    reply = make(coordinator)
    error = refused(
        lambda: reply_render(actor=other, reply_id=reply["id"], conversation_id=conversation_id),
        ErrorCode.NOT_FOUND,
    )
    assert error.data == {"conversation_id": conversation_id}
    refused(
        lambda: reply_render(actor=operator, reply_id=999, conversation_id=conversation_id),
        ErrorCode.NOT_FOUND,
    )
    reply_update(actor=coordinator, reply_id=reply["id"], version=1, active=False)
    refused(
        lambda: reply_render(actor=operator, reply_id=reply["id"], conversation_id=conversation_id),
        ErrorCode.NOT_FOUND,
    )
    assert Reply.objects.get(pk=reply["id"]).usage_count == 0


def test_render_query_count(coordinator, assigned, django_assert_max_num_queries):
    operator, conversation_id = assigned
    reply = make(coordinator)
    with django_assert_max_num_queries(5):  # permissions, reply, conversation, counter
        reply_render(actor=operator, reply_id=reply["id"], conversation_id=conversation_id)
