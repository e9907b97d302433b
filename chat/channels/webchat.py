"""Web chat channel adapter: signed visitor identities and delivery to the visitor's
sockets.

A visitor gets a random id signed with the hub's secret.  The browser keeps the token (local
storage) and presents it on reconnect to see its history; nobody can forge another visitor's
token.  Nothing is written to the database until the visitor's first message.

Messages reach the visitor through the hub itself: at commit a doorbell goes to the
customer's web chat sockets (``webchat.<customer>``), and a visitor reconnecting reads the
gap from the database.  There is no provider, no outbox and no reply window; an outbound
message is ``sent`` as soon as it is stored.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from django.core import signing

from chat.channels.base import ChannelAdapter

if TYPE_CHECKING:
    from chat.models import Conversation

_SALT = "hub.webchat.visitor"
# Visitors returning after this long start a fresh identity.
VISITOR_TOKEN_MAX_AGE = 60 * 60 * 24 * 90


def visitor_token_issue() -> tuple[str, str]:
    visitor_id = uuid.uuid4().hex
    return visitor_id, visitor_token_renew(visitor_id)


def visitor_token_renew(visitor_id: str) -> str:
    """A newly timestamped token for a known visitor (sent on every reconnect)."""
    return signing.dumps({"v": visitor_id}, salt=_SALT, compress=False)


def visitor_from_token(token: str) -> str | None:
    try:
        data = signing.loads(token, salt=_SALT, max_age=VISITOR_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    visitor = data.get("v") if isinstance(data, dict) else None
    return visitor if isinstance(visitor, str) else None


class WebchatAdapter(ChannelAdapter):
    channel: ClassVar[str] = "webchat"
    label: ClassVar[str] = "Web chat"
    # A template has no meaning in the widget, but a template sent here shows its text.
    outbound_kinds: ClassVar[frozenset[str]] = frozenset({"text", "template"})

    def message_stored(self, *, conversation: Conversation, wire: dict[str, Any]) -> None:
        """Every message, both ways, goes to the customer's open web chat tabs at commit
        (their own message echoes to their other tabs)."""
        from chat.events import publish_on_commit, webchat_group

        publish_on_commit(
            [
                (
                    webchat_group(conversation.customer_id),
                    {"type": "webchat.message", "message": wire},
                )
            ]
        )

    def conversation_closed(self, *, conversation: Conversation) -> None:
        from chat.events import publish_on_commit, webchat_group

        publish_on_commit([(webchat_group(conversation.customer_id), {"type": "webchat.closed"})])
