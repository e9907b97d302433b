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


def check(name: str, shortcuts: list[str]) -> None:
    """Assert one scenario's result against its expectation."""
    _, query, _, first, never = next(q for q in QUERIES if q[0] == name)
    assert shortcuts[: len(first)] == first, (query, shortcuts)
    assert not set(never) & set(shortcuts), (query, shortcuts)
    if not first:
        assert shortcuts == [], (query, shortcuts)
