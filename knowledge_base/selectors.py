"""Knowledge base read layer: loading replies for a user, listing, search and the language
a conversation is in."""

from __future__ import annotations

import functools
import re
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from chat.models import Conversation, Direction, Message
from chat.selectors import access_conversation
from hub.exceptions import NotFound, PermissionDenied, ValidationFailed
from hub.roles import PERM_MANAGE_KB, is_staff_member
from knowledge_base import search as kb_search
from knowledge_base.models import Reply

SEARCH_MAX_LIMIT = 50


def can_manage(actor: AbstractBaseUser) -> bool:
    return bool(getattr(actor, "is_authenticated", False) and actor.has_perm(PERM_MANAGE_KB))


def require_staff(actor: AbstractBaseUser) -> None:
    if not is_staff_member(actor):
        raise PermissionDenied("Only customer-service staff may use the knowledge base.")


def access_reply(*, actor: AbstractBaseUser, reply_id: Any, lock: bool = False) -> Reply:
    """A live (not retired) reply the actor may see: managers see inactive ones too,
    operators only active ones.  NotFound alike for a missing and a hidden reply."""
    require_staff(actor)
    qs = Reply.objects.filter(retired_at__isnull=True)
    if not can_manage(actor):
        qs = qs.filter(active=True)
    if lock:
        qs = qs.select_for_update(of=("self",))
    if isinstance(reply_id, bool) or not isinstance(reply_id, int):
        raise NotFound("No such reply.", reply_id=reply_id)
    reply = qs.filter(pk=reply_id).first()
    if reply is None:
        raise NotFound("No such reply.", reply_id=reply_id)
    return reply


def reply_dict(reply: Reply, *, query_type_ids: list[int] | None = None) -> dict[str, Any]:
    """What a coordinator edits (``version`` goes back with the next edit)."""
    if query_type_ids is None:
        query_type_ids = sorted(t.pk for t in reply.query_types.all())
    return {
        "id": reply.pk,
        "title": reply.title,
        "shortcut": reply.shortcut,
        "body": reply.body,
        "language": reply.language,
        "query_type_ids": query_type_ids,
        "active": reply.active,
        "position": reply.position,
        "usage_count": reply.usage_count,
        "version": reply.version,
        "created_at": reply.created_at.isoformat(),
        "updated_at": reply.updated_at.isoformat(),
    }


def reply_list(*, actor: AbstractBaseUser) -> list[dict[str, Any]]:
    """Every live reply in the coordinators' order (operators: active ones only)."""
    require_staff(actor)
    qs = Reply.objects.filter(retired_at__isnull=True).prefetch_related("query_types")
    if not can_manage(actor):
        qs = qs.filter(active=True)
    return [reply_dict(r) for r in qs.order_by("position", "id")]


# --- the conversation's language ---------------------------------------------------------
# A few very common words per language.  Conversations carry no language yet: until they do
# (see docs/architecture.md, "Knowledge base search"), it is guessed from what the customer
# wrote, and only when the guess is clear.
_STOPWORDS: dict[str, set[str]] = {
    "es": set(
        "de la que el en y los se del las un por con no una su para es al lo como mas pero "
        "sus le ya este si porque esta cuando muy sin sobre tambien me hasta hay donde "
        "hola gracias tengo mi puedo quiero buenas buenos dias tardes necesito ayuda cuenta "
        "tarjeta".split()
    ),
    "en": set(
        "the and to of a i is in it you that my was for on are with have be at not this but "
        "can how do please hello hi thanks thank what there your need help card account "
        "yesterday today".split()
    ),
    "pt": set(
        "de que nao o a os do da em um uma para com voce obrigado ola esta e meu minha "
        "cartao conta preciso ajuda bom dia".split()
    ),
    "fr": set(
        "le la les de des et est je vous mon ma un une pour pas bonjour merci carte compte "
        "besoin aide avec sur".split()
    ),
    "de": set(
        "der die das und ist ich nicht sie mein meine ein eine fur mit hallo danke karte "
        "konto hilfe bitte auf".split()
    ),
}
_LANGUAGE_SAMPLE = 5


def language_guess(texts: list[str]) -> str | None:
    """The language most of the words belong to, when it is clearly ahead."""
    counts = dict.fromkeys(_STOPWORDS, 0)
    for text in texts:
        for word in kb_search.words(text):
            for language, stopwords in _STOPWORDS.items():
                if word in stopwords:
                    counts[language] += 1
    ranked = sorted(counts.items(), key=lambda item: item[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    return best if top >= 2 and top > second else None


def conversation_language(conversation: Conversation) -> str | None:
    """The conversation's language: its own field or its customer's when the chat app has
    one, otherwise a guess from the customer's latest messages."""
    for holder in (conversation, conversation.customer):
        declared = getattr(holder, "language", None)
        if isinstance(declared, str) and declared:
            return declared.lower()
    return _language_guess_at(conversation.pk, conversation.last_message_id)


@functools.lru_cache(maxsize=4096)
def _language_guess_at(conversation_id: Any, last_message_id: int | None) -> str | None:
    """The guess as of the conversation's latest message.  The operator's picker searches
    on every keystroke in one conversation: the guess is read once per new message, not
    once per search (the chat services move ``last_message_id`` with every message, so
    the key changes whenever the answer could)."""
    texts = list(
        Message.objects.filter(conversation_id=conversation_id, direction=Direction.INBOUND)
        .order_by("-id")
        .values_list("text", flat=True)[:_LANGUAGE_SAMPLE]
    )
    return language_guess(texts)


# --- search ----------------------------------------------------------------------------------
_SPACE = re.compile(r"\s+")


def reply_search(
    *,
    actor: AbstractBaseUser,
    query: str,
    conversation_id: Any = None,
    limit: int = 10,
) -> list[dict[str, Any]]:
    """Active replies matching what the operator typed, best first (see
    ``knowledge_base.search``).  With ``conversation_id`` (which the actor must be allowed
    to see, else NotFound), replies in the conversation's language and for its query type
    come first.  ``[{id, title, shortcut, language, snippet}]``."""
    require_staff(actor)
    if not 1 <= limit <= SEARCH_MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {SEARCH_MAX_LIMIT}.", field="limit")
    context = None
    if conversation_id is not None:
        conversation = access_conversation(actor=actor, conversation_id=conversation_id)
        context = kb_search.Context(
            language=conversation_language(conversation),
            query_type_id=conversation.query_type_id,
        )
    parsed = kb_search.query_parse(query)
    hits = kb_search.search(parsed, context=context, limit=limit)
    return [
        {
            "id": hit.id,
            "title": hit.title,
            "shortcut": hit.shortcut,
            "language": hit.language,
            "snippet": kb_search.snippet(hit.body, hit.extra.get("terms", parsed.terms)),
        }
        for hit in hits
    ]
