"""Channel adapter interface (infrastructure beside the chat services).

A channel is how customers reach the bank: the web chat widget, WhatsApp…  Each one is an
adapter registered in ``chat.channels.registry``; the chat services ask the registry, so a
new channel is a new adapter module, never an edit of ``chat.services``.

An adapter answers four questions:

* **inbound**: is this webhook really from the provider (``webhook_handshake``,
  ``webhook_verify``) and what does it say (``webhook_parse`` → a ``WebhookBatch`` of
  normalised ``InboundMessage`` and ``StatusUpdate`` values that ``chat.delivery``
  applies through the chat services);
* **outbound**: how a stored outbound message reaches the customer: at commit by the hub
  itself (web chat: a doorbell to the visitor's sockets, ``message_stored``) or through the
  durable outbox and the provider's API (``uses_outbox`` and ``send``);
* **delivery states**: which states the channel reports (pending → sent → delivered →
  read, or failed);
* **the reply window**: how long after the customer's last message a free-form reply is
  allowed (``reply_window``; None for no window).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Mapping

    from chat.models import Conversation


@dataclass(frozen=True)
class InboundMessage:
    """A customer's message as the chat services take it, whatever the channel."""

    external_id: str  # who wrote: a phone number (WhatsApp), a visitor id (web chat)
    channel_message_id: str  # the provider's id: replays find the stored message
    text: str  # readable for the console ("[image] caption" for media)
    kind: str = "text"
    payload: dict[str, Any] = field(default_factory=dict)
    display_name: str = ""
    entry_point: str | None = None  # the channel address written to (routing.EntryPoint)


@dataclass(frozen=True)
class StatusUpdate:
    """The provider's news about an outbound message it was given."""

    provider_message_id: str
    status: str  # sent | delivered | read | failed
    at: datetime
    error_code: str = ""
    error_text: str = ""


@dataclass(frozen=True)
class WebhookBatch:
    """Everything one webhook call carries, fully validated before anything is written."""

    messages: tuple[InboundMessage, ...] = ()
    statuses: tuple[StatusUpdate, ...] = ()
    ignored: tuple[str, ...] = ()  # what was skipped on purpose, for the log


@dataclass(frozen=True)
class OutboundItem:
    """An outbound message claimed from the outbox, with what sending it needs."""

    message_id: int
    channel: str
    to: str  # the customer's external id on the channel
    kind: str
    text: str
    payload: dict[str, Any]
    attempt: int  # 1 for the first dispatch of this message


@dataclass(frozen=True)
class SendResult:
    """The provider's answer to one send (after the adapter's own bounded retries).

    ``provider_message_id`` set: accepted.  Otherwise ``error_code``/``error_text`` say
    why, and ``retryable`` whether the outbox should try again later (5xx, 429, timeouts,
    connection errors) or give up (any other 4xx).
    """

    provider_message_id: str | None = None
    error_code: str = ""
    error_text: str = ""
    retryable: bool = False

    @property
    def ok(self) -> bool:
        return self.provider_message_id is not None


class WebhookRejected(Exception):
    """A webhook call the adapter refuses: ``status`` is the HTTP answer (401 unsigned,
    403 wrong signature or verify token, 400 malformed), ``reason`` a precise message and
    ``field`` the JSON path at fault, if any; ``code`` a more precise error code
    (``invalid_json``)."""

    def __init__(
        self, status: int, reason: str, *, field: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.field = field
        self.code = code


class ChannelAdapter:
    """Base of every channel adapter; override what the channel supports."""

    channel: ClassVar[str]
    label: ClassVar[str]
    # How long after the customer's last message a free-form reply may be sent.
    reply_window: ClassVar[timedelta | None] = None
    # True: outbound messages are stored ``pending`` and sent by the outbox (provider API).
    # False: the hub delivers them itself at commit and they are stored ``sent``.
    uses_outbox: ClassVar[bool] = False
    # Message kinds an operator (or the hub) may send on this channel.
    outbound_kinds: ClassVar[frozenset[str]] = frozenset({"text"})

    def enabled(self) -> bool:
        """Whether the channel is configured in this deployment."""
        return True

    def reply_window_closes_at(
        self, *, last_customer_message_at: datetime | None, opened_at: datetime | None
    ) -> datetime | None:
        """When free-form replies to a conversation stop being allowed (None: never).
        Without a customer message the window never opened: closed since ``opened_at``."""
        if self.reply_window is None:
            return None
        if last_customer_message_at is None:
            return opened_at
        return last_customer_message_at + self.reply_window

    # --- inbound ---------------------------------------------------------------------
    def webhook_handshake(self, params: Mapping[str, str]) -> str:
        """The body answering the provider's subscription check, or WebhookRejected."""
        raise WebhookRejected(404, f"The {self.channel} channel has no webhook.")

    def webhook_verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise WebhookRejected unless ``body`` provably comes from the provider."""
        raise WebhookRejected(404, f"The {self.channel} channel has no webhook.")

    def webhook_parse(self, body: bytes) -> WebhookBatch:
        """A verified body, validated whole and normalised (WebhookRejected 400 if not)."""
        raise WebhookRejected(404, f"The {self.channel} channel has no webhook.")

    # --- outbound --------------------------------------------------------------------
    def message_stored(self, *, conversation: Conversation, wire: dict[str, Any]) -> None:
        """A message of this channel was stored (inside the transaction): ring whatever
        must ring on commit.  Outbox channels need nothing here: chat.delivery schedules
        the dispatch."""

    def conversation_closed(self, *, conversation: Conversation) -> None:
        """The conversation was closed (inside the transaction)."""

    def send_timeout_seconds(self) -> float:
        """The longest one ``send`` may take, retries included: the outbox lease is
        longer, so no other dispatcher takes the message meanwhile."""
        return 60.0

    async def send(self, item: OutboundItem) -> SendResult:
        """Hand one outbound message to the provider (outbox channels only)."""
        raise NotImplementedError(f"{self.channel} does not send through the outbox")
