"""Chat services: every write to customers, conversations and messages.

Consumers, HTTP views and management commands all call these functions; each runs in one
transaction, appends the console events that describe it, and rings doorbells only after
commit (chat.events).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from chat import store
from chat.channels.registry import adapter_for
from chat.events import console_event_append
from chat.models import (
    NOTE_MAX_CHARS,
    Channel,
    ConsoleEvent,
    ConsoleLogHorizon,
    Conversation,
    ConversationNote,
    ConversationStatus,
    Customer,
    CustomerIdentity,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
)
from chat.selectors import (
    SYSTEM_AUTHOR,
    access_conversation,
    conversation_dict,
    message_dict,
    note_dict,
)
from hub.exceptions import (
    Conflict,
    ConversationClosed,
    NotFound,
    PermissionDenied,
    ReplyWindowClosed,
    ValidationFailed,
)
from hub.roles import PERM_HANDLE, can_supervise
from routing.classify import conversation_classify_and_route, type_answer_handle
from routing.models import ResolutionReason
from routing.services import (
    conversation_assign_started,
    conversation_reopen,
    operator_slot_freed,
    resolution_check,
    routing_settings_get,
)
from scheduling.services import out_of_hours_handle

# A BCP 47 tag's primary language subtag: two or three letters, then the end or a subtag.
_LANGUAGE_TAG = re.compile(r"([A-Za-z]{2,3})(?:$|[-_])")


@dataclass(frozen=True)
class MessageResult:
    """A stored message and whether this call created it (False: an idempotent replay)."""

    message: dict[str, Any]
    conversation: dict[str, Any]
    created: bool


def _clean_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValidationFailed("text must not be empty.", field="text")
    if len(text) > settings.HUB_MESSAGE_MAX_CHARS:
        raise ValidationFailed(
            f"text is longer than {settings.HUB_MESSAGE_MAX_CHARS} characters.",
            field="text",
            max_chars=settings.HUB_MESSAGE_MAX_CHARS,
        )
    return text


def _clean_client_id(client_id: str) -> str:
    if not client_id or len(client_id) > 100:
        raise ValidationFailed("client_id must be 1 to 100 characters.", field="client_id")
    return client_id


def customer_identity_ensure(
    *, channel: str, external_id: str, display_name: str = ""
) -> CustomerIdentity:
    """The identity (and customer) a channel's external id stands for, created once even
    when two processes see the same new customer at the same moment."""
    identity = (
        CustomerIdentity.objects.select_related("customer")
        .filter(channel=channel, external_id=external_id)
        .first()
    )
    if identity is not None:
        if display_name and identity.customer.display_name != display_name:
            identity.customer.display_name = display_name[:200]
            identity.customer.save(update_fields=["display_name"])
        return identity
    try:
        with transaction.atomic():
            customer = Customer.objects.create(display_name=display_name[:200])
            return CustomerIdentity.objects.create(
                customer=customer, channel=channel, external_id=external_id
            )
    except IntegrityError:
        return CustomerIdentity.objects.select_related("customer").get(
            channel=channel, external_id=external_id
        )


def _open_conversation_locked(
    *, customer: Customer, channel: str
) -> tuple[Conversation, str | None]:
    """The customer's open conversation on the channel, locked, and how it came to be open
    for this message: None (it already was), ``"reopened"`` (closed within the reopen
    window) or ``"opened"`` (a new one)."""
    related = ("customer", "operator", "query_type")
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related(*related)
        .filter(customer=customer, channel=channel)
        .exclude(status=ConversationStatus.CLOSED)
        .first()
    )
    if conversation is not None:
        return conversation, None
    window = routing_settings_get().reopen_window_minutes
    if window:
        recent = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related(*related)
            .filter(
                customer=customer,
                channel=channel,
                status=ConversationStatus.CLOSED,
                closed_at__gte=timezone.now() - timedelta(minutes=window),
            )
            .order_by("-closed_at")
            .first()
        )
        if recent is not None:
            recent.status = ConversationStatus.QUEUED
            recent.closed_at = None
            recent.resolution = None
            try:
                with transaction.atomic():
                    recent.save(update_fields=["status", "closed_at", "resolution"])
            except IntegrityError:  # another process opened a new one first
                return _open_conversation_locked(customer=customer, channel=channel)
            return recent, "reopened"
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(customer=customer, channel=channel)
    except IntegrityError:  # another process opened it first
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related(*related)
            .get(customer=customer, channel=channel, status__in=["queued", "assigned"])
        )
        return conversation, None
    return conversation, "opened"


def inbound_message_receive(
    *,
    channel: str,
    external_id: str,
    channel_message_id: str,
    text: str,
    display_name: str = "",
    entry_point: str | None = None,
    language: str | None = None,
    time_zone: str | None = None,
    kind: str = MessageKind.TEXT,
    payload: dict[str, Any] | None = None,
) -> MessageResult:
    """Store a customer's message, opening (and routing) a conversation if needed.

    ``kind`` and ``payload`` carry what the channel's adapter normalised (media
    references, an interactive reply…); ``text`` is always a readable line for consoles.

    ``entry_point`` (a widget's type code, a channel number) gives a new conversation its
    query type; without one the type menu or the default type does (routing.classify).
    Out of hours a waiting conversation gets the autoreply once per closed period, in the
    customer's ``language`` with the opening in their ``time_zone`` when the channel knows
    them, and is held or closed (scheduling.services.out_of_hours_handle).

    Idempotent on ``(channel, channel_message_id)``: a replay returns the stored message.
    Emits ``chat.message_created`` to the assigned operator's stream (and supervisors'),
    ``routing.conversation_*`` for a new conversation, and echoes the message to the
    customer's other web chat tabs.
    """
    text = _clean_text(text)
    try:
        with transaction.atomic():
            customer_id = store.customer_id_for_identity(channel=channel, external_id=external_id)
            stored = None
            if customer_id is not None:
                # The common case, in hand-written SQL: a known customer writing on their
                # open conversation (chat.store says why).
                stored = store.inbound_append(
                    customer_id=customer_id,
                    channel=channel,
                    channel_message_id=channel_message_id,
                    text=text,
                    now=timezone.now(),
                    kind=kind,
                    payload=payload,
                )
            how = None
            if stored is None:
                *stored, how = _inbound_open_and_append(
                    channel=channel,
                    external_id=external_id,
                    channel_message_id=channel_message_id,
                    text=text,
                    display_name=display_name,
                    kind=kind,
                    payload=payload,
                    language=language,
                )
            conversation, message = stored
            # Routing before the announcement, so the message reaches the operator who now
            # holds the conversation.
            if how == "opened":
                conversation_classify_and_route(conversation=conversation, entry_point=entry_point)
            elif how == "reopened":
                conversation_reopen(conversation=conversation)
            elif conversation.query_type_id is None and conversation.type_menu_asked:
                type_answer_handle(conversation=conversation, text=text)
            # No query unless the conversation waits (queued): the hot path is untouched.
            out_of_hours_handle(conversation=conversation, language=language, time_zone=time_zone)
            if display_name and conversation.customer.display_name != display_name[:200]:
                Customer.objects.filter(pk=conversation.customer_id).update(
                    display_name=display_name[:200]
                )
                conversation.customer.display_name = display_name[:200]
            from chat.hooks import inbound_handlers_run  # other apps' reactions (chat.hooks)

            inbound_handlers_run(conversation=conversation, message=message)
            return _announce_message(conversation, message, author_name=None)
    except IntegrityError:
        # A replay (or the same message committed concurrently on another process): the
        # unique constraint refused the second row and everything rolled back; return the
        # stored one.  Cheaper than looking it up before every new message.
        existing = _existing_message(channel=channel, channel_message_id=channel_message_id)
        if existing is None:
            raise
        return existing


def _inbound_open_and_append(
    *,
    channel: str,
    external_id: str,
    channel_message_id: str,
    text: str,
    display_name: str,
    kind: str,
    payload: dict[str, Any] | None,
    language: str | None = None,
) -> tuple[Conversation, Message, str | None]:
    """A first message from a new customer, or one whose last conversation was closed:
    the identity, a conversation and the message, on the ORM (routing is the caller's).
    A new conversation keeps the language the channel declared (``language_tag``)."""
    identity = customer_identity_ensure(
        channel=channel, external_id=external_id, display_name=display_name
    )
    conversation, how = _open_conversation_locked(customer=identity.customer, channel=channel)
    message = Message.objects.create(
        conversation=conversation,
        direction=Direction.INBOUND,
        text=text,
        channel=channel,
        channel_message_id=channel_message_id,
        kind=kind,
        payload=payload or {},
    )
    conversation.last_customer_message_at = message.created_at
    conversation.last_message_at = message.created_at
    conversation.last_message_id = message.id
    conversation.unread_count += 1
    update = ["last_customer_message_at", "last_message_at", "last_message_id", "unread_count"]
    declared = language_tag(language)
    if how == "opened" and declared:
        conversation.language = declared
        update.append("language")
    conversation.save(update_fields=update)
    return conversation, message, how


def language_tag(value: str | None) -> str:
    """The primary language subtag of what a channel declared ("es-ES" → "es"); empty for
    nothing usable."""
    match = _LANGUAGE_TAG.match((value or "").strip())
    return match.group(1).lower() if match else ""


def webchat_message_receive(
    *,
    visitor_id: str,
    client_id: str,
    text: str,
    display_name: str = "",
    entry_point: str | None = None,
    language: str | None = None,
    time_zone: str | None = None,
) -> MessageResult:
    """A web chat visitor's message; ``client_id`` makes retries idempotent;
    ``entry_point`` is the widget's query type code, if the website set one; ``language``
    and ``time_zone`` the browser's, if the widget sent them (out-of-hours autoreply)."""
    client_id = _clean_client_id(client_id)
    return inbound_message_receive(
        channel=Channel.WEBCHAT,
        external_id=visitor_id,
        channel_message_id=f"in:{visitor_id}:{client_id}",
        text=text,
        display_name=display_name,
        entry_point=entry_point,
        language=language,
        time_zone=time_zone,
    )


def system_message_send(*, conversation: Conversation, text: str) -> dict[str, Any]:
    """A message from the hub itself (queue position, the type menu) to the customer, on
    the conversation's timeline.  Runs inside the caller's transaction."""
    message = _outbound_create(
        conversation,
        author=None,
        text=text[: settings.HUB_MESSAGE_MAX_CHARS],
        channel_message_id=f"sys:{uuid.uuid4().hex}",
    )
    conversation.last_message_at = message.created_at
    conversation.last_message_id = message.id
    conversation.save(update_fields=["last_message_at", "last_message_id"])
    return _announce_message(conversation, message, author_name=SYSTEM_AUTHOR).message


def operator_message_send(
    *, actor: AbstractBaseUser, conversation_id: Any, client_id: str, text: str
) -> MessageResult:
    """The assigned operator answers.  A retried ``client_id`` returns the first message.

    Raises NotFound (not theirs or missing), ValidationFailed (empty/too long text),
    Conflict (client_id reused for another conversation, or the channel is not configured),
    ConversationClosed and ReplyWindowClosed (a channel with a customer-service window,
    e.g. WhatsApp's 24 h, closed since ``data.closed_at``: only a template may go).
    Emits ``chat.message_created``; the channel's adapter delivers the message (web chat:
    at commit; WhatsApp: stored ``pending`` and sent by the outbox after commit).
    """
    return _operator_outbound(
        actor=actor,
        conversation_id=conversation_id,
        client_id=client_id,
        text=_clean_text(text),
        kind=MessageKind.TEXT,
        payload={},
    )


def operator_template_send(
    *,
    actor: AbstractBaseUser,
    conversation_id: Any,
    client_id: str,
    name: str,
    language: str,
    components: list[dict[str, Any]] | None = None,
    text: str,
) -> MessageResult:
    """The assigned operator sends an approved template: allowed outside the reply window.

    ``name``, ``language`` and ``components`` go to the provider as they are (the
    template's parameters); ``text`` is the rendered template as consoles show it.  The
    message is ``kind="template"`` with payload ``{name, language, components}`` and goes
    through the outbox like any reply.  Same idempotency and errors as
    ``operator_message_send``, except the window; ValidationFailed when the channel takes
    no templates.
    """
    if not name or len(name) > 512:
        raise ValidationFailed("name must be 1 to 512 characters.", field="name")
    if not language or len(language) > 20:
        raise ValidationFailed("language must be 1 to 20 characters.", field="language")
    if components is not None and not isinstance(components, list):
        raise ValidationFailed("components must be a list.", field="components")
    return _operator_outbound(
        actor=actor,
        conversation_id=conversation_id,
        client_id=client_id,
        text=_clean_text(text),
        kind=MessageKind.TEMPLATE,
        payload={"name": name, "language": language, "components": components or []},
    )


def operator_outbound_replay(
    *,
    actor: AbstractBaseUser,
    channel: str,
    client_id: str,
    conversation_id: Any = None,
) -> MessageResult | None:
    """The message an earlier send by ``actor`` with this ``client_id`` stored on the
    channel, or None.  Lets a caller that prepares a send (a template being rendered, a
    conversation being opened) answer a retry before redoing that work, which may no longer
    be possible (the template paused, the conversation now open).  Raises Conflict when the
    client_id was used for another conversation than ``conversation_id``."""
    key = f"out:{actor.pk}:{_clean_client_id(client_id)}"
    message = (
        Message.objects.select_related("conversation__customer", "author")
        .filter(channel=channel, channel_message_id=key)
        .first()
    )
    if message is None:
        return None
    if conversation_id is not None and str(message.conversation_id) != str(conversation_id):
        raise Conflict("client_id was already used for another conversation.", field="client_id")
    return MessageResult(
        message=message_dict(message),
        conversation=conversation_dict(message.conversation),
        created=False,
    )


def conversation_open_for_outreach(
    *, actor: AbstractBaseUser, customer_id: Any, channel: str, note: str = ""
) -> Conversation:
    """A conversation the bank starts (proactive outreach), assigned to ``actor`` who
    writes first.  Runs inside the caller's transaction; the caller sends the first message.

    The customer must have an identity on the channel (NotFound otherwise) and no open
    conversation there (Conflict with ``data.conversation_id``: write in that one).  The
    actor gets it whatever their presence or load: they chose to start it, and the
    customer's answer must come back to them.  Takes the default query type, if any.
    The change of hands is routing's (``routing.services.conversation_assign_started``:
    an ``Assignment`` of kind ``outreach`` and ``routing.conversation_assigned``).
    """
    from routing.models import QueryType

    try:
        customer_uuid = uuid.UUID(str(customer_id))
    except ValueError:
        raise NotFound("No such customer.", customer_id=str(customer_id)) from None
    identity = (
        CustomerIdentity.objects.select_related("customer")
        .filter(customer_id=customer_uuid, channel=channel)
        .first()
    )
    if identity is None:
        label = adapter_for(channel).label
        raise NotFound(
            f"This customer has no {label} identity to write to.",
            customer_id=str(customer_uuid),
            channel=channel,
        )
    customer = identity.customer
    query_type = QueryType.objects.filter(is_default=True, active=True).first()
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                customer=customer,
                channel=channel,
                status=ConversationStatus.QUEUED,
                query_type=query_type,
            )
    except IntegrityError:  # one open conversation per customer and channel
        open_one = (
            Conversation.objects.filter(customer=customer, channel=channel)
            .exclude(status=ConversationStatus.CLOSED)
            .values("pk", "operator_id")
            .first()
        )
        raise Conflict(
            f"{customer} already has an open {adapter_for(channel).label} conversation: "
            "write in that one.",
            reason="conversation_open",
            conversation_id=str(open_one["pk"]) if open_one else None,
            operator_id=open_one["operator_id"] if open_one else None,
        ) from None
    conversation_assign_started(conversation, actor=actor, note=note)
    return conversation


def _operator_outbound(
    *,
    actor: AbstractBaseUser,
    conversation_id: Any,
    client_id: str,
    text: str,
    kind: str,
    payload: dict[str, Any],
) -> MessageResult:
    client_id = _clean_client_id(client_id)
    key = f"out:{actor.pk}:{client_id}"
    with transaction.atomic():
        conversation = access_conversation(
            actor=actor, conversation_id=conversation_id, lock=True, act=True
        )
        existing = (
            Message.objects.select_related("author")
            .filter(channel=conversation.channel, channel_message_id=key)
            .first()
        )
        if existing is not None:
            if existing.conversation_id != conversation.pk:
                raise Conflict(
                    "client_id was already used for another conversation.", field="client_id"
                )
            return MessageResult(
                message=message_dict(existing),
                conversation=conversation_dict(conversation),
                created=False,
            )
        if conversation.status == ConversationStatus.CLOSED:
            raise ConversationClosed()
        adapter = adapter_for(conversation.channel)
        if kind not in adapter.outbound_kinds:
            raise ValidationFailed(
                f"{adapter.label} does not take {kind} messages.",
                field="kind",
                allowed=sorted(adapter.outbound_kinds),
            )
        if not adapter.enabled():
            raise Conflict(
                f"The {adapter.label} channel is not configured on this hub.",
                channel=conversation.channel,
            )
        if kind != MessageKind.TEMPLATE:
            closes_at = adapter.reply_window_closes_at(
                last_customer_message_at=conversation.last_customer_message_at,
                opened_at=conversation.created_at,
            )
            if closes_at is not None and timezone.now() >= closes_at:
                raise ReplyWindowClosed(
                    f"The {adapter.label} 24-hour reply window closed at "
                    f"{closes_at.isoformat()}: only an approved template can be sent.",
                    closed_at=closes_at.isoformat(),
                    channel=conversation.channel,
                )
        message = _outbound_create(
            conversation,
            author=actor,
            text=text,
            channel_message_id=key,
            kind=kind,
            payload=payload,
        )
        update = ["last_message_at", "last_message_id", "operator_read_up_to", "unread_count"]
        conversation.last_message_at = message.created_at
        conversation.last_message_id = message.id
        # Answering means the operator has read everything before it.
        conversation.operator_read_up_to = message.id
        conversation.unread_count = 0
        if conversation.first_operator_reply_at is None:
            conversation.first_operator_reply_at = message.created_at
            update.append("first_operator_reply_at")
        conversation.save(update_fields=update)
        return _announce_message(
            conversation, message, author_name=actor.get_full_name() or actor.get_username()
        )


def _outbound_create(
    conversation: Conversation,
    *,
    author: AbstractBaseUser | None,
    text: str,
    channel_message_id: str,
    kind: str = MessageKind.TEXT,
    payload: dict[str, Any] | None = None,
) -> Message:
    """An outbound message in the state its channel starts it in: ``pending`` in the
    outbox (sent after commit, ``chat.channels.outbox``) or ``sent`` when the hub itself
    delivers it at commit (web chat)."""
    adapter = adapter_for(conversation.channel)
    now = timezone.now()
    outbox = adapter.uses_outbox
    message = Message.objects.create(
        conversation=conversation,
        direction=Direction.OUTBOUND,
        author=author,
        text=text,
        channel=conversation.channel,
        channel_message_id=channel_message_id,
        kind=kind,
        payload=payload or {},
        delivery_status=DeliveryStatus.PENDING if outbox else DeliveryStatus.SENT,
        status_at=now,
        outbox_due_at=now if outbox else None,
    )
    if outbox:
        from chat.channels.outbox import dispatch_soon

        message_id = message.id
        transaction.on_commit(lambda: dispatch_soon([message_id]))
    return message


def _existing_message(*, channel: str, channel_message_id: str) -> MessageResult | None:
    message = (
        Message.objects.select_related("conversation__customer", "author")
        .filter(channel=channel, channel_message_id=channel_message_id)
        .first()
    )
    if message is None:
        return None
    return MessageResult(
        message=message_dict(message),
        conversation=conversation_dict(message.conversation),
        created=False,
    )


def _announce_message(
    conversation: Conversation, message: Message, *, author_name: str | None
) -> MessageResult:
    wire = message_dict(message, author_name=author_name)
    summary = conversation_dict(conversation)
    console_event_append(
        kind="chat.message_created",
        payload={"message": wire, "conversation": summary},
        conversation_id=conversation.pk,
        operator_id=conversation.operator_id,
    )
    adapter_for(conversation.channel).message_stored(conversation=conversation, wire=wire)
    return MessageResult(message=wire, conversation=summary, created=True)


@dataclass(frozen=True)
class NoteResult:
    """A stored note and whether this call created it (False: an idempotent replay)."""

    note: dict[str, Any]
    created: bool


def conversation_note_add(
    *, actor: AbstractBaseUser, conversation_id: Any, client_id: str, text: str
) -> NoteResult:
    """Staff write an internal note on a conversation: only staff ever see it.

    Whoever may see the conversation in the console may note it: its operator (assigned,
    or who had it when it closed) and supervisors, open or closed.  Advisors and other
    read-only users get PermissionDenied (``reason: read_only``) before any lookup; an
    operator on someone else's conversation gets NotFound, as for every conversation they
    may not see.  ValidationFailed for empty or too long text (``max_chars``) and a bad
    client_id; a retried ``client_id`` returns the first note, Conflict when it named
    another conversation.

    The note is a ``ConversationNote``, never a ``Message``: nothing that reaches the
    customer or counts replies reads it
    (docs/decisions/0003-internal-notes-are-not-messages.md).  Emits ``chat.note_added`` to
    the conversation's operator stream and the supervisors'.
    """
    if not (actor.has_perm(PERM_HANDLE) or can_supervise(actor)):
        raise PermissionDenied(
            "Your access is read-only: you cannot write notes.", reason="read_only"
        )
    client_id = _clean_client_id(client_id)
    text = text.strip()
    if not text:
        raise ValidationFailed("text must not be empty.", field="text")
    if len(text) > NOTE_MAX_CHARS:
        raise ValidationFailed(
            f"A note is at most {NOTE_MAX_CHARS} characters.",
            field="text",
            max_chars=NOTE_MAX_CHARS,
        )
    conversation = access_conversation(actor=actor, conversation_id=conversation_id)
    existing = _existing_note(actor=actor, client_id=client_id, conversation=conversation)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            note = ConversationNote.objects.create(
                conversation=conversation, author=actor, text=text, client_id=client_id
            )
            wire = note_dict(note)
            console_event_append(
                kind="chat.note_added",
                payload={"note": wire, "conversation_id": str(conversation.pk)},
                conversation_id=conversation.pk,
                operator_id=conversation.operator_id,
            )
    except IntegrityError:  # the same client_id committed concurrently: return that one
        existing = _existing_note(actor=actor, client_id=client_id, conversation=conversation)
        if existing is None:
            raise
        return existing
    return NoteResult(note=wire, created=True)


def _existing_note(
    *, actor: AbstractBaseUser, client_id: str, conversation: Conversation
) -> NoteResult | None:
    note = (
        ConversationNote.objects.select_related("author")
        .filter(author_id=actor.pk, client_id=client_id)
        .first()
    )
    if note is None:
        return None
    if note.conversation_id != conversation.pk:
        raise Conflict("client_id was already used for another conversation.", field="client_id")
    return NoteResult(note=note_dict(note), created=False)


def conversation_mark_read(
    *, actor: AbstractBaseUser, conversation_id: Any, up_to_message_id: int
) -> dict[str, Any]:
    """The assigned operator has read up to a message id (unread counts)."""
    with transaction.atomic():
        conversation = access_conversation(
            actor=actor, conversation_id=conversation_id, lock=True, act=True
        )
        newest = (
            Message.objects.filter(conversation=conversation, id__lte=up_to_message_id)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
        )
        # Only ids of this conversation count: a marker past its newest message would hide
        # the next customer message from the unread count.
        up_to_message_id = newest or 0
        if up_to_message_id > conversation.operator_read_up_to:
            conversation.operator_read_up_to = up_to_message_id
            conversation.unread_count = Message.objects.filter(
                conversation=conversation, direction=Direction.INBOUND, id__gt=up_to_message_id
            ).count()
            conversation.save(update_fields=["operator_read_up_to", "unread_count"])
            console_event_append(
                kind="chat.conversation_read",
                payload={"conversation_id": str(conversation.pk), "read_up_to": up_to_message_id},
                conversation_id=conversation.pk,
                operator_id=conversation.operator_id,
            )
        return conversation_dict(conversation)


def conversation_close(
    *, actor: AbstractBaseUser, conversation_id: Any, resolution_id: int | None = None
) -> dict[str, Any]:
    """The assigned operator closes the query with a resolution reason valid for its type.

    Raises NotFound (not theirs), ConversationClosed, and ValidationFailed with
    ``resolution_required`` when the reason is missing, unknown, retired or not for this
    type (a reason is required as soon as one is configured for the type).  Emits
    ``chat.conversation_closed``, then ``routing.conversation_assigned`` for a queued
    conversation taking the freed slot.
    """
    with transaction.atomic():
        conversation = access_conversation(
            actor=actor, conversation_id=conversation_id, lock=True, act=True
        )
        if conversation.status == ConversationStatus.CLOSED:
            raise ConversationClosed("The conversation is already closed.")
        resolution = resolution_check(
            query_type_id=conversation.query_type_id, resolution_id=resolution_id
        )
        summary = _close_locked(conversation, resolution=resolution)
        # The freed slot goes to the longest-waiting queued conversation.
        operator_slot_freed(operator=actor)
        return summary


def conversation_close_by_hub(
    *, conversation: Conversation, resolution: ResolutionReason | None
) -> dict[str, Any]:
    """The hub closes a waiting conversation (row locked by the caller) by itself, e.g.
    out of hours when queries are not referred to the opening; ``resolution`` is the one
    the coordinator configured (checked when they saved it).  Runs inside the caller's
    transaction.  Emits ``chat.conversation_closed``."""
    return _close_locked(conversation, resolution=resolution)


def _close_locked(
    conversation: Conversation, *, resolution: ResolutionReason | None
) -> dict[str, Any]:
    conversation.resolution = resolution
    conversation.status = ConversationStatus.CLOSED
    conversation.closed_at = timezone.now()
    conversation.save(update_fields=["status", "closed_at", "resolution"])
    summary = conversation_dict(conversation)
    console_event_append(
        kind="chat.conversation_closed",
        payload={"conversation": summary},
        conversation_id=conversation.pk,
        operator_id=conversation.operator_id,
    )
    adapter_for(conversation.channel).conversation_closed(conversation=conversation)
    return summary


def console_log_prune(*, older_than: timedelta, batch: int = 10_000) -> int:
    """Delete console events older than ``older_than`` and move the horizon past them.

    Consoles whose cursor falls below the horizon get ``resync`` and a snapshot on their
    next resume.  The horizon moves first, in the same transaction as each batch, so no
    console is ever replayed from a range with holes.  Returns the number of events deleted.
    """
    cutoff = timezone.now() - older_than
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                ConsoleEvent.objects.filter(created_at__lt=cutoff)
                .order_by("id")
                .values_list("id", flat=True)[:batch]
            )
            if not ids:
                return deleted
            horizon, _ = ConsoleLogHorizon.objects.select_for_update().get_or_create(pk=1)
            horizon.pruned_up_to = max(horizon.pruned_up_to, ids[-1])
            horizon.pruned_at = timezone.now()
            horizon.save(update_fields=["pruned_up_to", "pruned_at"])
            deleted += ConsoleEvent.objects.filter(id__lte=ids[-1]).delete()[0]
