"""Back-office bridge models: the link between a hub customer and a bank user, and the
maker-checker action requests.

Rows change only through ``backoffice_bridge.services``; this module holds fields and
constraints.  The constraints are the last line of the rules the services check first: one
live link per customer, at most one open request per bank user and conflict group, and a
checker who is never the maker.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class CustomerLink(models.Model):
    """A hub customer identified as a bank user.  Unlinking keeps the row (``unlinked_at``)
    as the record of who linked whom when."""

    customer = models.ForeignKey(
        "chat.Customer", on_delete=models.CASCADE, related_name="backoffice_links"
    )
    bank_user_id = models.CharField(max_length=64)
    # What the back office said about the user when linked (names, ids, status).
    snapshot = models.JSONField(default=dict)
    conversation = models.ForeignKey(
        "chat.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    linked_at = models.DateTimeField()
    unlinked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    unlinked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(unlinked_at__isnull=True),
                name="backoffice_one_live_link_per_customer",
            )
        ]
        indexes = [models.Index(fields=["bank_user_id"], name="backoffice_link_bank_user")]

    def __str__(self) -> str:
        return f"{self.customer_id} → {self.bank_user_id}"


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # saved by the maker, waiting for a checker
    PICKED = "picked", "Picked up"  # one checker holds it
    APPROVED = "approved", "Approved"  # committed; the call to the back office is due
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    EXECUTING = "executing", "Executing"  # claimed by one executor; the call is in flight
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


#: Statuses in which a request blocks conflicting ones for the same bank user.
OPEN_STATUSES = (
    RequestStatus.PENDING,
    RequestStatus.PICKED,
    RequestStatus.APPROVED,
    RequestStatus.EXECUTING,
)


class ActionRequest(models.Model):
    """One bank action asked for from a conversation (seed 000's maker-checker record)."""

    action_type = models.CharField(max_length=64)
    params = models.JSONField(default=dict)
    conversation = models.ForeignKey(
        "chat.Conversation", on_delete=models.PROTECT, related_name="+"
    )
    customer = models.ForeignKey("chat.Customer", on_delete=models.PROTECT, related_name="+")
    bank_user_id = models.CharField(max_length=64)
    # Requests sharing a group for one bank user conflict while open (block vs unblock).
    conflict_group = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=RequestStatus.choices, default=RequestStatus.PENDING
    )
    # The bank's words for where it is: "To Be Inactivated", "Inactive"…
    business_status = models.CharField(max_length=100)
    maker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    checker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    picked_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    # Sent with every attempt of the call (and ``…:revert`` for a revert): a retry never
    # acts twice at the back office.
    idempotency_key = models.CharField(max_length=64, unique=True)
    executing_since = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # {"result": {...}} when done, {"reason", "code", "status"} when failed.
    outcome = models.JSONField(default=dict, blank=True)
    # Temporary actions (limits): when the hub must undo them, and when it did.
    revert_due_at = models.DateTimeField(null=True, blank=True)
    revert_claimed_until = models.DateTimeField(null=True, blank=True)
    reverted_at = models.DateTimeField(null=True, blank=True)
    revert_outcome = models.JSONField(default=dict, blank=True)

    class Meta:
        permissions = [
            ("start_actions", "Can link bank users and start back-office actions (maker)"),
            ("approve_actions", "Can pick up, approve and reject back-office actions (checker)"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(checker__isnull=True) | ~Q(checker=F("maker")),
                name="backoffice_checker_is_not_maker",
            ),
            models.UniqueConstraint(
                fields=["bank_user_id", "conflict_group"],
                condition=Q(status__in=["pending", "picked", "approved", "executing"]),
                name="backoffice_one_open_request_per_user_group",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="backoffice_req_status_exp"),
            models.Index(
                fields=["revert_due_at"],
                condition=Q(revert_due_at__isnull=False, reverted_at__isnull=True),
                name="backoffice_req_revert_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action_type} #{self.pk} ({self.status})"
