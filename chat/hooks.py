"""Extension points of chat (domain): other apps react to an inbound customer message
without chat importing them.

``inbound_message_receive`` calls ``inbound_handlers_run`` inside its transaction, after
the message is stored and routed, for every *new* message (never for a replay).  A
handler must be cheap and must not wait for locks there (the hot path holds the
conversation row and, on PostgreSQL, may hold the console event log's lock): it looks at
the text and, when it has work, defers it with ``transaction.on_commit``.  Register in
``AppConfig.ready``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chat.models import Conversation, Message

InboundHandler = Callable[..., None]

_inbound: dict[str, InboundHandler] = {}


def inbound_handler_register(name: str, handler: InboundHandler) -> None:
    """Register ``handler(conversation=, message=)`` under ``name`` (re-registering a name
    replaces it, so a reloaded app does not run twice)."""
    _inbound[name] = handler


def inbound_handlers_run(*, conversation: Conversation, message: Message) -> None:
    for handler in list(_inbound.values()):
        handler(conversation=conversation, message=message)
