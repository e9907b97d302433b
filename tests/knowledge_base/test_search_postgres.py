"""Search on PostgreSQL (the suite's database): the shared scenarios, plus the query
count and the search's own refusals."""

from __future__ import annotations

import pytest
from django.db import connection

from chat.services import webchat_message_receive
from hub.exceptions import NotFound, PermissionDenied, ValidationFailed
from hub.roles import Role
from knowledge_base import search as kb_search
from knowledge_base.search import fold, osa_distance, query_parse
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


def test_search_follows_writes_on_postgresql(world):
    coordinator, ids, conversation_ids = world
    results = scenarios.sync_run(coordinator, ids, conversation_ids)
    for name, *_ in scenarios.SYNC:
        scenarios.check(name, results[name])


def test_search_table_holds_only_live_replies(world):
    _, ids, _ = world
    with connection.cursor() as cursor:
        cursor.execute("SELECT reply_id FROM kb_search")
        held = {row[0] for row in cursor.fetchall()}
    assert held == {ids[s] for s in ids if s not in {"/secret-draft", *scenarios.RETIRED}}


def test_truncating_the_replies_empties_the_search_table(world):
    # Django flushes test databases with TRUNCATE, which fires no row trigger.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE refuses pending checks
        cursor.execute("TRUNCATE knowledge_base_reply, knowledge_base_reply_query_types")
        cursor.execute("SELECT count(*) FROM kb_search")
        assert cursor.fetchone() == (0,)


def test_a_common_body_word_still_lists_every_title_match_first(world, monkeypatch):
    # More replies hold "card" in their body than the body tier ranks: the title matches
    # all come first, then as many body matches as the tier takes.
    coordinator, _, _ = world
    monkeypatch.setattr(kb_search, "BODY_CANDIDATES", 1)
    found = [r["shortcut"] for r in reply_search(actor=coordinator, query="card ")]
    assert found[:3] == ["/card-blocked", "/card-replacement", "/fees-abroad"]
    assert len(found) == 4
    assert found[3] in {"/lost-wallet", "/transfer-delay"}


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


def test_search_query_count(world, django_assert_num_queries):
    coordinator, _, conversation_ids = world
    payments_es = conversation_ids["payments_es"]
    # The conversation, its language guess, then one statement: the words' vocabulary
    # checks and the ranked matches.
    with django_assert_num_queries(3):
        found = reply_search(actor=coordinator, query="tarjeta bloq", conversation_id=payments_es)
    assert found
    # A word not in the vocabulary: the same statement brought its typo candidates; the
    # widened words are searched once more.  The language guess is not read again: no
    # message since.
    with django_assert_num_queries(3):
        found = reply_search(actor=coordinator, query="tarjta bloq", conversation_id=payments_es)
    assert [r["shortcut"] for r in found][:1] == ["/tarjeta-bloqueada"]


def test_the_language_guess_follows_the_customers_new_messages(world):
    coordinator, _, conversation_ids = world
    payments_en = conversation_ids["payments_en"]

    def app() -> list[str]:
        found = reply_search(actor=coordinator, query="app", conversation_id=payments_en)
        return [r["shortcut"] for r in found]

    assert app()[:2] == ["/pin-reset", "/informacion-general"]
    visitor, _, entry_point = scenarios.CONVERSATIONS["payments_en"]
    spanish = ["Hola, tengo un problema con la tarjeta y la app.", "Gracias, no puedo entrar"]
    for client_id, text in enumerate(spanish, start=2):
        received = webchat_message_receive(
            visitor_id=visitor, client_id=str(client_id), text=text, entry_point=entry_point
        )
        assert received.conversation["id"] == payments_en
    assert app()[:2] == ["/informacion-general", "/pin-reset"]


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
    # Folding keeps every character in place (the snippet relies on positions).
    assert fold("INFORMACIÓN Ñandú ß") == "informacion nandu ß"
    assert len(fold("ﬁ ǅ İ")) == len("ﬁ ǅ İ")


def test_language_guess():
    assert language_guess(["Hola, tengo un problema con la tarjeta"]) == "es"
    assert language_guess(["Hello, I need help with my card"]) == "en"
    assert language_guess(["ok"]) is None
