"""Delivery services: the outbox of outbound messages, provider status callbacks and
inbound webhooks, for every channel adapter (``chat.channels``).

*Persist, then send.*  An outbound message on an outbox channel (WhatsApp) is committed
``pending`` with ``outbox_due_at`` set, in the same transaction as the operator's reply.
A dispatcher then claims it (``outbox_claim``: a lease on the row, taken with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so concurrent dispatchers take different rows),
sends it outside any transaction, and records the answer (``outbound_result_record``).
A crash between commit and send leaves the row due: the sweep job sends it.  A crash after
the provider accepted but before the answer was recorded sends it again when the lease
expires: delivery is at least once, never lost (the Cloud API has no idempotency key).

*Statuses only move forward*: pending < sent < delivered < read.  ``failed`` is terminal,
and wins over pending, sent and delivered (the provider gave up) but not over read (a read
message reached the customer; a later failure is a stale callback).  Duplicates and late
callbacks change nothing.  Each change is committed, then announced to consoles as
``chat.message_status``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from chat import services
from chat.channels.base import OutboundItem, SendResult, StatusUpdate, WebhookBatch
from chat.channels.registry import adapter_for
from chat.events import console_event_append
from chat.models import CustomerIdentity, DeliveryStatus, EarlyStatus, Message
from chat.selectors import message_dict

logger = logging.getLogger(__name__)

MESSAGE_STATUS_EVENT = "chat.message_status"
_RANK = {
    DeliveryStatus.PENDING: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.READ: 3,
}
# A status for an id the hub does not know yet waits this long for the send's answer.
EARLY_STATUS_TTL = timedelta(minutes=10)


def status_change_allowed(current: str, new: str) -> bool:
    """Whether a message in ``current`` may move to ``new`` (module docstring)."""
    if current == DeliveryStatus.FAILED or current == new:
        return False
    if new == DeliveryStatus.FAILED:
        return current != DeliveryStatus.READ
    if current not in _RANK or new not in _RANK:
        return False
    return _RANK[new] > _RANK[current]


def _lock_provider_id(channel: str, provider_message_id: str) -> None:
    """Serialise the two writers that meet on a provider id: recording the send's answer
    and applying a status callback.  Whichever commits first, the second sees it, so a
    callback that beat the answer is parked and then applied, never lost.  Taken first
    in its transaction (nothing waits after the event-log lock).  SQLite's IMMEDIATE
    transactions already serialise writers."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{channel}:{provider_message_id}"]
            )


def _announce_status(message: Message, previous: str) -> None:
    conversation = message.conversation
    console_event_append(
        kind=MESSAGE_STATUS_EVENT,
        payload={
            "conversation_id": str(conversation.pk),
            "message": message_dict(message),
            "previous": previous or None,
        },
        conversation_id=conversation.pk,
        operator_id=conversation.operator_id,
    )


def _apply(message: Message, *, status: str, at: datetime, code: str, text: str) -> bool:
    """Move a locked message to ``status`` if allowed; True when it changed."""
    if not status_change_allowed(message.delivery_status, status):
        return False
    message.delivery_status = status
    message.status_at = at
    if status == DeliveryStatus.FAILED:
        message.provider_error_code = code or "unknown"
        message.provider_error_text = text
    return True


_STATUS_FIELDS = [
    "delivery_status",
    "status_at",
    "provider_error_code",
    "provider_error_text",
]


# --- status callbacks -------------------------------------------------------------------


def message_status_apply(*, channel: str, update: StatusUpdate) -> str:
    """Apply one provider status callback; returns ``"applied"``, ``"ignored"`` (a
    duplicate, out of order, or after a terminal state) or ``"early"`` (no message has the
    id yet: parked until the send's answer stores it, dropped with a log line after
    ``EARLY_STATUS_TTL``).  Emits ``chat.message_status`` when the message changed."""
    with transaction.atomic():
        _lock_provider_id(channel, update.provider_message_id)
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("conversation", "author")
            .filter(channel=channel, provider_message_id=update.provider_message_id)
            .first()
        )
        if message is None:
            EarlyStatus.objects.create(
                channel=channel,
                provider_message_id=update.provider_message_id,
                status=update.status,
                status_at=update.at,
                error_code=update.error_code,
                error_text=update.error_text,
            )
            logger.info(
                "%s status %r for unknown message id %s: kept for %s in case the send's "
                "answer is on its way, then ignored",
                channel,
                update.status,
                update.provider_message_id,
                EARLY_STATUS_TTL,
            )
            return "early"
        previous = message.delivery_status
        if not _apply(
            message,
            status=update.status,
            at=update.at,
            code=update.error_code,
            text=update.error_text,
        ):
            logger.info(
                "%s status %r for message %s ignored: it is %r",
                channel,
                update.status,
                message.pk,
                previous,
            )
            return "ignored"
        message.save(update_fields=_STATUS_FIELDS)
        _announce_status(message, previous)
        return "applied"


@dataclass(frozen=True)
class WebhookOutcome:
    messages_created: int
    messages_replayed: int
    statuses: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages_created": self.messages_created,
            "messages_replayed": self.messages_replayed,
            "statuses": self.statuses,
        }


def webhook_apply(*, channel: str, batch: WebhookBatch) -> WebhookOutcome:
    """Apply a verified, fully validated webhook: each message and each status in its own
    transaction.  A failure part-way leaves the earlier items committed and whole; the
    provider retries a non-2xx webhook, and the replay is idempotent (messages on their
    channel message id, statuses because they only move forward)."""
    created = replayed = 0
    outcomes: dict[str, int] = {}
    for item in batch.messages:
        result = services.inbound_message_receive(
            channel=channel,
            external_id=item.external_id,
            channel_message_id=item.channel_message_id,
            text=item.text,
            display_name=item.display_name,
            entry_point=item.entry_point,
            kind=item.kind,
            payload=item.payload,
        )
        if result.created:
            created += 1
        else:
            replayed += 1
    for update in batch.statuses:
        outcome = message_status_apply(channel=channel, update=update)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if batch.ignored:
        logger.info("%s webhook: skipped %s", channel, "; ".join(batch.ignored))
    return WebhookOutcome(messages_created=created, messages_replayed=replayed, statuses=outcomes)


# --- the outbox -------------------------------------------------------------------------


def outbox_claim(*, message_ids: list[int] | None = None, limit: int = 20) -> list[OutboundItem]:
    """Claim up to ``limit`` due outbound messages (all due ones, or those of
    ``message_ids``) for this dispatcher: each gets a lease longer than its adapter's
    longest send, so no other dispatcher takes it meanwhile.  On PostgreSQL rows another
    dispatcher is claiming right now are skipped (``SKIP LOCKED``), never waited for."""
    now = timezone.now()
    with transaction.atomic():
        qs = Message.objects.filter(
            outbox_due_at__lte=now, delivery_status=DeliveryStatus.PENDING
        ).filter(Q(outbox_lease_until__isnull=True) | Q(outbox_lease_until__lt=now))
        if message_ids is not None:
            qs = qs.filter(id__in=message_ids)
        rows = list(
            qs.select_for_update(skip_locked=True, of=("self",))
            .select_related("conversation")
            .order_by("outbox_due_at", "id")[:limit]
        )
        if not rows:
            return []
        identities = dict(
            CustomerIdentity.objects.filter(
                customer_id__in={m.conversation.customer_id for m in rows},
                channel__in={m.channel for m in rows},
            ).values_list("customer_id", "external_id")
        )
        items = []
        for message in rows:
            adapter = adapter_for(message.channel)
            lease = timedelta(seconds=adapter.send_timeout_seconds() + 30)
            Message.objects.filter(pk=message.pk).update(
                outbox_lease_until=now + lease, outbox_attempts=message.outbox_attempts + 1
            )
            items.append(
                OutboundItem(
                    message_id=message.pk,
                    channel=message.channel,
                    to=identities.get(message.conversation.customer_id, ""),
                    kind=message.kind,
                    text=message.text,
                    payload=message.payload,
                    attempt=message.outbox_attempts + 1,
                )
            )
        return items


def _retry_delay(attempt: int) -> timedelta:
    base = settings.HUB_OUTBOX_RETRY_SECONDS
    return timedelta(seconds=min(base * 2 ** (attempt - 1), 3600))


def outbound_result_record(*, item: OutboundItem, result: SendResult) -> str:
    """Record the provider's answer to a claimed message; returns ``"accepted"``,
    ``"retry"`` (a temporary failure: due again after a backoff) or ``"failed"``.

    Accepted: the provider's id is stored and any status callback that arrived first is
    applied now.  Failed (a final 4xx, or temporary failures ``HUB_OUTBOX_MAX_ATTEMPTS``
    times): the provider's code and text are kept.  Emits ``chat.message_status`` when the
    state changed."""
    now = timezone.now()
    with transaction.atomic():
        if result.ok:
            _lock_provider_id(item.channel, result.provider_message_id or "")
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("conversation", "author")
            .get(pk=item.message_id)
        )
        previous = message.delivery_status
        fields = ["outbox_due_at", "outbox_lease_until"]
        message.outbox_lease_until = None
        if result.ok:
            message.outbox_due_at = None
            message.provider_message_id = result.provider_message_id
            message.provider_error_code = ""
            message.provider_error_text = ""
            fields += ["provider_message_id", "provider_error_code", "provider_error_text"]
            early = list(
                EarlyStatus.objects.filter(
                    channel=item.channel, provider_message_id=result.provider_message_id
                ).order_by("id")
            )
            for parked in early:
                _apply(
                    message,
                    status=parked.status,
                    at=parked.status_at,
                    code=parked.error_code,
                    text=parked.error_text,
                )
            if early:
                EarlyStatus.objects.filter(pk__in=[p.pk for p in early]).delete()
                fields += ["delivery_status", "status_at"]
            outcome = "accepted"
        elif result.retryable and item.attempt < settings.HUB_OUTBOX_MAX_ATTEMPTS:
            message.outbox_due_at = now + _retry_delay(item.attempt)
            message.provider_error_code = result.error_code
            message.provider_error_text = result.error_text
            fields += ["provider_error_code", "provider_error_text"]
            outcome = "retry"
        else:
            message.outbox_due_at = None
            _apply(
                message,
                status=DeliveryStatus.FAILED,
                at=now,
                code=result.error_code,
                text=result.error_text,
            )
            fields += _STATUS_FIELDS
            outcome = "failed"
        try:
            with transaction.atomic():
                message.save(update_fields=sorted(set(fields)))
        except IntegrityError:
            # The provider returned an id another message already has: not ours to keep.
            logger.error(
                "%s returned id %s for message %s, already stored for another message",
                item.channel,
                result.provider_message_id,
                item.message_id,
            )
            message.provider_message_id = None
            message.outbox_due_at = None
            _apply(
                message,
                status=DeliveryStatus.FAILED,
                at=now,
                code="duplicate_provider_id",
                text="The provider answered with the id of another message.",
            )
            message.save(update_fields=sorted(set(fields + _STATUS_FIELDS)))
            outcome = "failed"
        if message.delivery_status != previous:
            _announce_status(message, previous)
        return outcome


def outbox_due_count() -> int:
    """Messages due now and not leased (the sweep's question before it dispatches)."""
    now = timezone.now()
    return (
        Message.objects.filter(outbox_due_at__lte=now, delivery_status=DeliveryStatus.PENDING)
        .filter(Q(outbox_lease_until__isnull=True) | Q(outbox_lease_until__lt=now))
        .count()
    )


def early_statuses_settle() -> dict[str, int]:
    """Apply parked statuses whose message now carries the id (a callback that raced a
    send's answer on another process), and drop those older than ``EARLY_STATUS_TTL``
    with a log line: their id was never ours."""
    applied = dropped = 0
    for parked in list(EarlyStatus.objects.order_by("id")[:500]):
        known = Message.objects.filter(
            channel=parked.channel, provider_message_id=parked.provider_message_id
        ).exists()
        if known:
            with transaction.atomic():
                deleted, _ = EarlyStatus.objects.filter(pk=parked.pk).delete()
            if deleted:
                message_status_apply(
                    channel=parked.channel,
                    update=StatusUpdate(
                        provider_message_id=parked.provider_message_id,
                        status=parked.status,
                        at=parked.status_at,
                        error_code=parked.error_code,
                        error_text=parked.error_text,
                    ),
                )
                applied += 1
        elif parked.received_at < timezone.now() - EARLY_STATUS_TTL:
            EarlyStatus.objects.filter(pk=parked.pk).delete()
            logger.warning(
                "%s status %r for message id %s ignored: no message has that id",
                parked.channel,
                parked.status,
                parked.provider_message_id,
            )
            dropped += 1
    return {"applied": applied, "dropped": dropped}
