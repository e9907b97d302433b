"""Search scenarios run on both databases: the same replies, the same queries, the same
expected order (tests/knowledge_base/test_search_postgres.py in process on PostgreSQL,
test_search_sqlite.py through sqlite_probe on a freshly migrated SQLite file)."""

from __future__ import annotations

from typing import Any

# (shortcut, title, language, type codes, body, active)
REPLIES = [
    (
        "/card-blocked",
        "Card blocked",
        "en",
        ["payments"],
        "Your card was blocked for your safety after three wrong PIN attempts.",
        True,
    ),
    (
        "/tarjeta-bloqueada",
        "Tarjeta bloqueada",
        "es",
        ["payments"],
        "Su tarjeta está bloqueada por seguridad. Podemos desbloquearla ahora.",
        True,
    ),
    (
        "/card-replacement",
        "Card replacement",
        "en",
        ["payments"],
        "A replacement is on its way and arrives in five working days.",
        True,
    ),
    (
        "/transfer-delay",
        "Transfer not arrived",
        "en",
        ["claims"],
        "Transfers paid by card or account take up to one working day.",
        True,
    ),
    (
        "/informacion-general",
        "Información general",
        "es",
        [],
        "Puede consultar toda la información en la app del banco.",
        True,
    ),
    (
        "/pin-reset",
        "PIN reset",
        "en",
        ["payments"],
        "Set a new PIN in the app under Cards and Security.",
        True,
    ),
    (
        "/fees-abroad",
        "Card fees abroad",
        "en",
        ["payments"],
        "Paying abroad costs a small fee per purchase; cash withdrawals cost more.",
        True,
    ),
    (
        "/lost-wallet",
        "Lost wallet",
        "en",
        ["payments"],
        "Lost your wallet? Stop each card in it now: debit card, credit card, prepaid card, "
        "any card. A new card is sent for each card you stop.",
        True,
    ),
    ("/secret-draft", "Secret draft", "en", [], "A draft nobody should see yet.", False),
    ("/card-old", "Old secret card text", "en", [], "Retired secret wording.", True),
]
RETIRED = {"/card-old"}

# (name, query, context, the shortcuts expected first, in order, shortcuts never expected)
# context: None, or the name of a conversation made by ``conversations``.
QUERIES: list[tuple[str, str, str | None, list[str], list[str]]] = [
    ("title_beats_body", "tarjeta", None, ["/tarjeta-bloqueada"], []),
    ("accent_free_query", "informacion", None, ["/informacion-general"], []),
    ("accented_query", "INFORMACIÓN", None, ["/informacion-general"], []),
    ("accent_in_body", "esta bloqueada", None, ["/tarjeta-bloqueada"], []),
    ("typing_prefix", "tarjeta bloq", None, ["/tarjeta-bloqueada"], []),
    ("typos_two_words", "tarjta bloqueda ", None, ["/tarjeta-bloqueada"], []),
    ("typo_swap", "blokced", None, ["/card-blocked"], []),
    ("typo_while_typing", "replacment", None, ["/card-replacement"], []),
    (
        "shortcut_prefix",
        "/card",
        None,
        ["/card-blocked", "/card-replacement"],
        ["/card-old", "/secret-draft"],
    ),
    ("shortcut_exact_first", "/card-r", None, ["/card-replacement"], []),
    ("slash_alone_lists", "/", None, ["/card-blocked", "/tarjeta-bloqueada"], ["/secret-draft"]),
    ("inactive_and_retired_hidden", "secret", None, [], ["/secret-draft", "/card-old"]),
    ("type_first", "card", "claims_en", ["/transfer-delay"], []),
    ("language_first_es", "app", "payments_es", ["/informacion-general", "/pin-reset"], []),
    ("language_first_en", "app", "payments_en", ["/pin-reset", "/informacion-general"], []),
    ("nothing", "zzzz qqqq", None, [], ["/card-blocked"]),
    # Every reply whose title (or shortcut) holds the query comes before those holding it
    # only in their body, even a body that repeats it (bm25 alone puts /lost-wallet, five
    # cards in its body, before /fees-abroad, one card in its title).
    # Within each tier, text rank: /lost-wallet leads the body matches.
    (
        "title_tier_first",
        "card",
        None,
        ["/card-blocked", "/card-replacement", "/fees-abroad", "/lost-wallet"],
        [],
    ),
]

CONVERSATIONS = {
    "claims_en": (
        "kb-visitor-1",
        "I was charged on my card and the money has not arrived.",
        "claims",
    ),
    "payments_es": ("kb-visitor-2", "Hola, tengo un problema con la tarjeta y la app.", "payments"),
    "payments_en": ("kb-visitor-3", "Hello, I need help with the app please.", "payments"),
}


def seed(coordinator: Any) -> dict[str, int]:
    """Query types, the replies (through the services) and the retirement."""
    from knowledge_base.services import reply_create, reply_retire
    from routing.models import QueryType

    types = {}
    for position, code in enumerate(["payments", "claims", "follow-up"], start=1):
        types[code], _ = QueryType.objects.update_or_create(
            code=code,
            defaults={
                "name": code.title(),
                "menu_position": position,
                "is_default": code == "follow-up",
            },
        )
    ids = {}
    for shortcut, title, language, codes, body, active in REPLIES:
        ids[shortcut] = reply_create(
            actor=coordinator,
            title=title,
            shortcut=shortcut,
            body=body,
            language=language,
            query_type_ids=[types[c].pk for c in codes],
            active=active,
        )["id"]
    for shortcut in RETIRED:
        reply_retire(actor=coordinator, reply_id=ids[shortcut])
    return ids


def conversations() -> dict[str, str]:
    from chat.services import webchat_message_receive

    made = {}
    for name, (visitor, text, entry_point) in CONVERSATIONS.items():
        result = webchat_message_receive(
            visitor_id=visitor, client_id="1", text=text, entry_point=entry_point
        )
        made[name] = result.conversation["id"]
    return made


def run(actor: Any, conversation_ids: dict[str, str]) -> dict[str, list[str]]:
    """Every query's result shortcuts, by scenario name."""
    from knowledge_base.selectors import reply_search

    results = {}
    for name, query, context, _, _ in QUERIES:
        found = reply_search(
            actor=actor,
            query=query,
            conversation_id=conversation_ids[context] if context else None,
            limit=10,
        )
        results[name] = [r["shortcut"] for r in found]
    return results


# Writes through the services, each followed by a search: the search tables follow every
# write (database triggers).  Run in this order after the scenarios above.
# (name, query, context, the shortcuts expected first, in order, shortcuts never expected)
SYNC: list[tuple[str, str, str | None, list[str], list[str]]] = [
    ("body_edited_old_word_gone", "cards ", None, [], ["/pin-reset"]),
    ("body_edited_new_word_found", "mobile", None, ["/pin-reset"], []),
    ("deactivated_hidden", "replacement ", None, [], ["/card-replacement"]),
    ("reactivated_found", "replacement ", None, ["/card-replacement"], []),
    ("retired_hidden", "transfer", None, [], ["/transfer-delay"]),
    ("reordered_slash_lists", "/", None, ["/lost-wallet", "/card-blocked"], []),
    ("retyped_ranks_for_new_type", "card", "claims_en", ["/fees-abroad"], []),
    ("rebuilt_same", "/", None, ["/lost-wallet", "/card-blocked"], ["/transfer-delay"]),
]


def _update(actor: Any, reply_id: int, **changes: Any) -> None:
    from knowledge_base.models import Reply
    from knowledge_base.services import reply_update

    version = Reply.objects.get(pk=reply_id).version
    reply_update(actor=actor, reply_id=reply_id, version=version, **changes)


def sync_run(actor: Any, ids: dict[str, int], conversation_ids: dict[str, str]) -> dict:
    """Make each write of ``SYNC`` and search after it; the result shortcuts by name."""
    from knowledge_base.selectors import reply_search
    from knowledge_base.services import kb_index_rebuild, reply_reorder, reply_retire
    from routing.models import QueryType

    claims = QueryType.objects.get(code="claims").pk
    writes = {
        "body_edited_old_word_gone": lambda: _update(
            actor, ids["/pin-reset"], body="Choose a new PIN in mobile banking, under Security."
        ),
        "deactivated_hidden": lambda: _update(actor, ids["/card-replacement"], active=False),
        "reactivated_found": lambda: _update(actor, ids["/card-replacement"], active=True),
        "retired_hidden": lambda: reply_retire(actor=actor, reply_id=ids["/transfer-delay"]),
        "reordered_slash_lists": lambda: reply_reorder(
            actor=actor, reply_ids=[ids["/lost-wallet"]]
        ),
        "retyped_ranks_for_new_type": lambda: _update(
            actor, ids["/fees-abroad"], query_type_ids=[claims]
        ),
        "rebuilt_same": kb_index_rebuild,
    }
    results = {}
    for name, query, context, _, _ in SYNC:
        if name in writes:
            writes[name]()
        found = reply_search(
            actor=actor,
            query=query,
            conversation_id=conversation_ids[context] if context else None,
            limit=10,
        )
        results[name] = [r["shortcut"] for r in found]
    return results


def check(name: str, shortcuts: list[str]) -> None:
    """Assert one scenario's (or sync step's) result against its expectation."""
    _, query, _, first, never = next(q for q in [*QUERIES, *SYNC] if q[0] == name)
    assert shortcuts[: len(first)] == first, (query, shortcuts)
    assert not set(never) & set(shortcuts), (query, shortcuts)
    if not first:
        assert shortcuts == [], (query, shortcuts)
