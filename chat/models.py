"""Chat model layer: Customer, CustomerIdentity, Conversation, Message, ConversationNote,
ConsoleEvent.

Rows change only through ``chat.services``; this module holds fields and constraints.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q


class Channel(models.TextChoices):
    WEBCHAT = "webchat", "Web chat"
    WHATSAPP = "whatsapp", "WhatsApp"


class Customer(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    display_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.label(display_name=self.display_name, customer_id=self.id)

    @staticmethod
    def label(*, display_name: str, customer_id: Any) -> str:
        """How staff see a customer (also built from plain rows, without a model)."""
        return display_name or f"Customer {str(customer_id)[:8]}"


class CustomerIdentity(models.Model):
    """How a channel knows the customer (visitor id for web chat, phone for WhatsApp…)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    channel = models.CharField(max_length=32, choices=Channel.choices)
    external_id = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"], name="uniq_identity_per_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.external_id}"


class ConversationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    ASSIGNED = "assigned", "Assigned"
    CLOSED = "closed", "Closed"


class Conversation(models.Model):
    """A customer's *query*: from the first message until an operator closes it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="conversations")
    channel = models.CharField(max_length=32, choices=Channel.choices)
    status = models.CharField(
        max_length=16, choices=ConversationStatus.choices, default=ConversationStatus.QUEUED
    )
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_conversations",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    first_operator_reply_at = models.DateTimeField(null=True, blank=True)
    last_customer_message_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The newest message id the assigned operator has read, the customer messages after it
    # and the newest message: kept by the services in the same transaction as each message,
    # so a console's list is one indexed read with no join over messages.
    operator_read_up_to = models.BigIntegerField(default=0)
    unread_count = models.PositiveIntegerField(default=0)
    last_message_id = models.BigIntegerField(null=True, blank=True)
    # The query type routes the conversation (routing.QueryType); None while the customer
    # has not yet answered the type menu.
    query_type = models.ForeignKey(
        "routing.QueryType", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # How many times the type menu was sent without a recognisable answer.
    type_menu_asked = models.PositiveSmallIntegerField(default=0)
    # The customer's language as their channel declared it when the conversation opened (the
    # web chat widget sends the browser's), as a primary subtag ("es"); empty when unknown,
    # and then the knowledge base guesses from the customer's messages.
    language = models.CharField(max_length=8, blank=True, default="", db_default="")
    resolution = models.ForeignKey(
        "routing.ResolutionReason",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        permissions = [
            ("handle_conversation", "Can answer the conversations assigned to them"),
            ("supervise_conversations", "Can watch every conversation live"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="assigned", operator__isnull=False) | ~Q(status="assigned"),
                name="assigned_has_operator",
            ),
            # A customer has at most one open conversation per channel: the next inbound
            # message joins it, even when two arrive at once on two processes.
            models.UniqueConstraint(
                fields=["customer", "channel"],
                condition=~Q(status="closed"),
                name="one_open_conversation_per_customer_channel",
            ),
        ]
        indexes = [
            models.Index(fields=["operator", "status"]),
            models.Index(fields=["status", "created_at"]),
            # The dashboard's periods (hub/dashboard.py): conversations opened, closed.
            models.Index(fields=["created_at"], name="conversation_created_at"),
            models.Index(
                fields=["closed_at"],
                condition=Q(closed_at__isnull=False),
                name="conversation_closed_at",
            ),
        ]

    def __str__(self) -> str:
        return f"Conversation {str(self.id)[:8]} ({self.status})"


# A conversation's own columns (attnames), for code that reads them as plain rows: the
# hand-written hot path (chat.store), the console's view (chat.selectors), batch derivation.
CONVERSATION_COLUMNS = (
    "id",
    "customer_id",
    "channel",
    "status",
    "operator_id",
    "created_at",
    "assigned_at",
    "first_operator_reply_at",
    "last_customer_message_at",
    "last_message_at",
    "closed_at",
    "operator_read_up_to",
    "unread_count",
    "last_message_id",
    "query_type_id",
    "type_menu_asked",
    "resolution_id",
    "language",
)


class Direction(models.TextChoices):
    INBOUND = "in", "From customer"
    OUTBOUND = "out", "To customer"


class MessageKind(models.TextChoices):
    TEXT = "text", "Text"
    TEMPLATE = "template", "Template"
    MEDIA = "media", "Media"
    INTERACTIVE = "interactive", "Interactive reply"
    LOCATION = "location", "Location"


class DeliveryStatus(models.TextChoices):
    """Where an outbound message is on its way to the customer.  Inbound messages have
    none (empty).  Ranks only grow (pending < sent < delivered < read); failed is terminal
    (chat.delivery.message_status_apply)."""

    NONE = "", "Not applicable"
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"


class Message(models.Model):
    id = models.BigAutoField(primary_key=True)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # What a console shows; for media, templates and the like a readable rendering
    # ("[image] caption") while ``payload`` holds the structured content.
    text = models.TextField()
    channel = models.CharField(max_length=32, choices=Channel.choices)
    # The channel's own id for the message: a replayed webhook or a retried send carries the
    # same id and finds the existing row instead of creating a second one.
    channel_message_id = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=16, choices=MessageKind.choices, default=MessageKind.TEXT)
    # media: {id, mime_type, sha256, caption, filename, media_type}; template: {name,
    # language, components}; interactive: {type, reply_id, title, description}; location:
    # {latitude, longitude, name, address}.
    payload = models.JSONField(default=dict, blank=True)
    delivery_status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.NONE, blank=True
    )
    # When delivery_status last changed (the provider's timestamp for callbacks).
    status_at = models.DateTimeField(null=True, blank=True)
    # The provider's id for an outbound message (WhatsApp wamid), stored when the send is
    # answered; status callbacks find the message by it.
    provider_message_id = models.CharField(max_length=200, null=True, blank=True)
    provider_error_code = models.CharField(max_length=64, blank=True, default="")
    provider_error_text = models.TextField(blank=True, default="")
    # The durable outbox (chat.delivery): a pending message with ``outbox_due_at`` set is
    # waiting to be sent; a dispatcher claims it by moving ``outbox_lease_until`` forward.
    outbox_due_at = models.DateTimeField(null=True, blank=True)
    outbox_lease_until = models.DateTimeField(null=True, blank=True)
    outbox_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "channel_message_id"], name="uniq_message_per_channel"
            ),
            models.UniqueConstraint(
                fields=["channel", "provider_message_id"],
                condition=Q(provider_message_id__isnull=False),
                name="uniq_provider_message_per_channel",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "id"]),
            # Only the few rows waiting in the outbox are in this index.
            models.Index(
                fields=["outbox_due_at"],
                condition=Q(outbox_due_at__isnull=False),
                name="message_outbox_due",
            ),
        ]

    def __str__(self) -> str:
        return f"Message {self.pk} ({self.direction})"


# How long an internal note may be (chat.services.conversation_note_add).
NOTE_MAX_CHARS = 2000


class ConversationNote(models.Model):
    """An internal note staff write on a conversation: seen by its operator and the
    supervisors, live and in its history, never by the customer.

    A model of its own rather than a ``Message`` kind, so that every path that reaches the
    customer (web chat history and catch-up, the channel adapters, the WhatsApp outbox) and
    every figure computed from messages (first reply, unread counts, waiting times, the
    dashboard) cannot see a note by construction: they all read ``Message``.
    """

    id = models.BigAutoField(primary_key=True)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    # The author's own id for the note: a retried ``note.send`` finds the stored row.
    client_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["author", "client_id"], name="uniq_note_per_author")
        ]
        indexes = [models.Index(fields=["conversation", "created_at"], name="note_conversation_at")]

    def __str__(self) -> str:
        return f"Note {self.pk} on {str(self.conversation_id)[:8]}"


class EarlyStatus(models.Model):
    """A status callback for a provider message id no message carries yet.

    The provider may call back before the hub has processed the answer to its own send
    (the wamid is in that answer); the status waits here and is applied when the id is
    stored (chat.delivery.outbound_result_record).  Rows older than a few minutes are
    dropped, with a log line, by the outbox sweep: the id was not ours.
    """

    channel = models.CharField(max_length=32, choices=Channel.choices)
    provider_message_id = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices)
    status_at = models.DateTimeField()
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_text = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["channel", "provider_message_id"])]

    def __str__(self) -> str:
        return f"{self.channel}:{self.provider_message_id} {self.status}"


class ConsoleEvent(models.Model):
    """The durable log every console reads: one row per change a console must see.

    ``id`` is the event id consoles resume from.  An event belongs to the supervisors' stream
    (every event) and, when ``operator`` is set, to that operator's stream.  ``prev_all`` and
    ``prev_operator`` are the previous event id in each stream, so a console (or its server
    side) notices a missed event without reading the table.  They are exact because event
    rows are appended in commit order (see chat.events.console_event_append).
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=64)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    payload = models.JSONField()
    prev_all = models.BigIntegerField(default=0)
    prev_operator = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["operator", "id"], name="console_event_operator_id")]

    def __str__(self) -> str:
        return f"ConsoleEvent {self.pk} {self.kind}"


class ConsoleLogHorizon(models.Model):
    """One row: events with ids up to ``pruned_up_to`` were deleted by the retention job, so
    a console whose cursor is below it cannot be replayed and gets a snapshot instead."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    pruned_up_to = models.BigIntegerField(default=0)
    pruned_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"console log pruned up to {self.pruned_up_to}"
