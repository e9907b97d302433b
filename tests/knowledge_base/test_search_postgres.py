"""Search on PostgreSQL (the suite's database): the shared scenarios, plus the query
count and the search's own refusals."""

from __future__ import annotations

import pytest
from django.db import connection

from hub.exceptions import NotFound, PermissionDenied, ValidationFailed
from hub.roles import Role
from knowledge_base.search import osa_distance, query_parse
from knowledge_base.selectors import language_guess, reply_search
from tests.knowledge_base import scenarios

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(staff):
    coordinator = staff("kb-coord", Role.COORDINATOR)
    ids = scenarios.seed(coordinator)
    return coordinator, ids, scenarios.conversations()


def test_runs_on_postgresql():
    assert connection.vendor == "postgresql"


@pytest.mark.parametrize("name", [q[0] for q in scenarios.QUERIES])
def test_search_scenario_on_postgresql(world, name):
    coordinator, _, conversation_ids = world
    scenarios.check(name, scenarios.run(coordinator, conversation_ids)[name])


def test_results_carry_a_snippet_around_the_match(world):
    coordinator, ids, _ = world
    [first, *_] = reply_search(actor=coordinator, query="tarjeta")
    assert first == {
        "id": ids["/tarjeta-bloqueada"],
        "title": "Tarjeta bloqueada",
        "shortcut": "/tarjeta-bloqueada",
        "language": "es",
        "snippet": "Su tarjeta está bloqueada por seguridad. Podemos desbloquearla ahora.",
    }


def test_an_operator_searches_only_in_conversations_they_see(world, staff):
    _, _, conversation_ids = world
    operator = staff("kb-op")
    assert reply_search(actor=operator, query="card")  # without a conversation: fine
    with pytest.raises(NotFound):
        reply_search(actor=operator, query="card", conversation_id=conversation_ids["claims_en"])


def test_search_refusals(world, django_user_model):
    coordinator, _, _ = world
    outsider = django_user_model.objects.create_user("outsider", password="x")
    with pytest.raises(PermissionDenied):
        reply_search(actor=outsider, query="card")
    with pytest.raises(ValidationFailed) as refused:
        reply_search(actor=coordinator, query="card", limit=0)
    assert refused.value.data["field"] == "limit"


def test_search_query_count(world, django_assert_max_num_queries):
    coordinator, _, conversation_ids = world
    # conversation, its language guess, typo checks of two words, shortcut + full text
    with django_assert_max_num_queries(8):
        reply_search(
            actor=coordinator, query="tarjta bloq", conversation_id=conversation_ids["payments_es"]
        )


def test_query_parse_and_distance():
    parsed = query_parse("/Card-Bl tarj")
    assert parsed.shortcut_prefix == "/card-bl"
    assert [(t.word, t.prefix) for t in parsed.terms] == [
        ("card", False),
        ("bl", False),
        ("tarj", True),
    ]
    assert [t.prefix for t in query_parse("tarjeta ").terms] == [False]
    assert osa_distance("tarjeta", "tarejta") == 1
    assert osa_distance("bloqueda", "bloqueada") == 1


def test_language_guess():
    assert language_guess(["Hola, tengo un problema con la tarjeta"]) == "es"
    assert language_guess(["Hello, I need help with my card"]) == "en"
    assert language_guess(["ok"]) is None
