"""Routing services: how a new conversation gets its query type.

In order: the entry point it arrived on (a web chat widget's ``type`` code, a messaging
number configured for a type), the customer's answer to the type menu (a number, or free
text matched against coordinator-managed keywords, accents and case ignored), or the
default type.  The menu is sent only when a coordinator turned it on; an answer that
matches nothing gets the menu once more, then the default.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from routing.models import EntryPoint, QueryType
from routing.services import conversation_route, routing_settings_get

if TYPE_CHECKING:
    from chat.models import Conversation

# The menu is asked at most this many times before the default type applies.
MENU_MAX_ASKS = 2


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", _normalise(text))


def query_type_for_entry(*, channel: str, entry_point: str | None) -> QueryType | None:
    """The type an entry point implies: a configured channel address, or (web chat) an
    active type's code given by the widget."""
    if not entry_point:
        return None
    entry = (
        EntryPoint.objects.select_related("query_type")
        .filter(channel=channel, address=entry_point, query_type__active=True)
        .first()
    )
    if entry is not None:
        return entry.query_type
    return QueryType.objects.filter(code=entry_point, active=True).first()


def menu_types() -> list[QueryType]:
    return list(QueryType.objects.filter(active=True).order_by("menu_position", "name"))


def menu_text(types: list[QueryType], intro: str) -> str:
    lines = [intro] + [f"{n} {t.name}" for n, t in enumerate(types, start=1)]
    return "\n".join(lines)


def query_type_from_answer(text: str, types: list[QueryType]) -> QueryType | None:
    """A menu number ("2", "2.", "option 2"), a type's name, or one of its keywords (whole
    words, several-word keywords as a phrase).  Ambiguous text matches nothing."""
    words = _words(text)
    numbers = [w for w in words if w.isdigit()]
    if len(numbers) == 1 and 1 <= int(numbers[0]) <= len(types):
        return types[int(numbers[0]) - 1]
    joined = " " + " ".join(words) + " "
    hits = []
    for query_type in types:
        phrases = [query_type.name, *[str(k) for k in query_type.keywords]]
        for phrase in phrases:
            wanted = " ".join(_words(phrase))
            if wanted and f" {wanted} " in joined:
                hits.append(query_type)
                break
    return hits[0] if len(hits) == 1 else None


def _default_type() -> QueryType | None:
    return QueryType.objects.filter(is_default=True, active=True).first()


def conversation_classify_and_route(*, conversation: Conversation, entry_point: str | None) -> None:
    """A new conversation (row locked): give it a type, or ask the customer, then route."""
    from chat.services import system_message_send

    query_type = query_type_for_entry(channel=conversation.channel, entry_point=entry_point)
    if query_type is None:
        policy = routing_settings_get()
        types = menu_types()
        if policy.type_menu_enabled and len(types) > 1:
            conversation.type_menu_asked = 1
            conversation.save(update_fields=["type_menu_asked"])
            system_message_send(
                conversation=conversation, text=menu_text(types, policy.type_menu_intro)
            )
            return
        query_type = _default_type()
    if query_type is not None:
        conversation.query_type = query_type
        conversation.save(update_fields=["query_type"])
    conversation_route(conversation=conversation)


def type_answer_handle(*, conversation: Conversation, text: str) -> None:
    """The customer wrote while the type menu is pending: take the answer, ask again, or
    fall back to the default type; then route."""
    from chat.services import system_message_send

    types = menu_types()
    query_type = query_type_from_answer(text, types)
    if query_type is None and conversation.type_menu_asked < MENU_MAX_ASKS and len(types) > 1:
        conversation.type_menu_asked += 1
        conversation.save(update_fields=["type_menu_asked"])
        intro = "Sorry, I did not understand. " + routing_settings_get().type_menu_intro
        system_message_send(conversation=conversation, text=menu_text(types, intro))
        return
    conversation.query_type = query_type or _default_type()
    conversation.type_menu_asked = 0  # answered (or defaulted): no longer pending
    conversation.save(update_fields=["query_type", "type_menu_asked"])
    conversation_route(conversation=conversation)
