"""Back-office bridge models: the link between a hub customer and a bank user, the
maker-checker action requests, the customer's consent to on-behalf actions and the
append-only, hash-chained audit log.

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
    # When ``snapshot`` (and so the bank user's status the eligibility gate reads) was last
    # read from the back office: at link time, on demand, before an on-behalf action starts
    # and from the answer of an executed action.
    refreshed_at = models.DateTimeField(null=True, blank=True)

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
    # a sensitive action waits for the customer's one-time code in the chat
    AWAITING_CONFIRMATION = "awaiting_confirmation", "Awaiting customer confirmation"
    PENDING = "pending", "Pending"  # saved by the maker, waiting for a checker
    PICKED = "picked", "Picked up"  # one checker holds it
    APPROVED = "approved", "Approved"  # committed; the call to the back office is due
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    EXECUTING = "executing", "Executing"  # claimed by one executor; the call is in flight
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"  # withdrawn by its maker before anyone decided


#: Statuses in which a request blocks conflicting ones for the same bank user.
OPEN_STATUSES = (
    RequestStatus.AWAITING_CONFIRMATION,
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
        max_length=32, choices=RequestStatus.choices, default=RequestStatus.PENDING
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
    # The customer's confirmation in the chat (types that require it): a SHA-256 of the
    # one-time code (the code itself is only in the prompt message), until when it is
    # valid, the prompt's message id, the wrong answers so far, and when it was confirmed.
    confirmation_code_hash = models.CharField(max_length=64, blank=True, default="")
    confirmation_expires_at = models.DateTimeField(null=True, blank=True)
    confirmation_message_id = models.BigIntegerField(null=True, blank=True)
    confirmation_attempts = models.PositiveIntegerField(default=0)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [
            ("start_actions", "Can link bank users and start back-office actions (maker)"),
            ("approve_actions", "Can pick up, approve and reject back-office actions (checker)"),
            ("act_on_behalf", "Can start actions on behalf of a consenting customer"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(checker__isnull=True) | ~Q(checker=F("maker")),
                name="backoffice_checker_is_not_maker",
            ),
            models.UniqueConstraint(
                fields=["bank_user_id", "conflict_group"],
                condition=Q(
                    status__in=[
                        "awaiting_confirmation",
                        "pending",
                        "picked",
                        "approved",
                        "executing",
                    ]
                ),
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


class Consent(models.Model):
    """A customer's consent to on-behalf actions (seed 001), as recorded by staff: who,
    when, on what evidence, for which action types (empty: every on-behalf type), until
    when; revoking keeps the row.  Valid for the bank user it names and the hub customer
    it was recorded for, so a re-link to another bank user needs a new consent."""

    customer = models.ForeignKey("chat.Customer", on_delete=models.PROTECT, related_name="+")
    bank_user_id = models.CharField(max_length=64)
    link = models.ForeignKey(
        CustomerLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="consents"
    )
    conversation = models.ForeignKey(
        "chat.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Names of on-behalf action types; empty means all of them.
    scope = models.JSONField(default=list, blank=True)
    evidence = models.TextField()
    # e.g. the id of the chat message in which the customer agreed
    evidence_reference = models.CharField(max_length=200, blank=True, default="")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(
                fields=["customer", "bank_user_id", "expires_at"],
                condition=Q(revoked_at__isnull=True),
                name="backoffice_consent_live",
            )
        ]

    def __str__(self) -> str:
        return f"consent #{self.pk} {self.bank_user_id}"


class AuditImmutable(Exception):
    """An attempt to change or delete an audit entry through the ORM."""


class AuditEntryQuerySet(models.QuerySet):
    """Bulk updates and deletes are refused like single ones (the database triggers refuse
    them too; this fails earlier with a clearer message)."""

    def update(self, **kwargs: object) -> int:
        raise AuditImmutable("audit entries are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditImmutable("audit entries are append-only")


class AuditEntry(models.Model):
    """One line of the append-only audit log.  ``hash`` is SHA-256 over the canonical JSON
    of the entry's fields and ``prev_hash`` (``backoffice_bridge.audit``), so editing,
    removing or reordering rows breaks the chain ``audit_verify`` walks.  Plain columns,
    not foreign keys: deleting a user or a conversation must never touch the log.  Written
    only by ``audit.audit_append``; ``save`` refuses anything but the first insert, and
    database triggers refuse UPDATE and DELETE (migration 0003)."""

    sequence = models.BigIntegerField(unique=True)
    at = models.DateTimeField()
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=200, blank=True, default="")
    actor_role = models.CharField(max_length=32, blank=True, default="")
    on_behalf_of = models.CharField(max_length=64, blank=True, default="")
    conversation_id = models.CharField(max_length=64, blank=True, default="")
    action = models.CharField(max_length=64)
    # "ok", or "refused" for an attempt the hub turned down
    outcome = models.CharField(max_length=16, default="ok")
    object_type = models.CharField(max_length=32, blank=True, default="")
    object_id = models.CharField(max_length=64, blank=True, default="")
    request_id = models.BigIntegerField(null=True, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        permissions = [("read_audit_log", "Can read and export the back-office audit log")]
        indexes = [
            models.Index(fields=["actor_id", "sequence"], name="backoffice_audit_actor"),
            models.Index(fields=["conversation_id", "sequence"], name="backoffice_audit_conv"),
            models.Index(fields=["action", "sequence"], name="backoffice_audit_action"),
            models.Index(fields=["at"], name="backoffice_audit_at"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action}"

    def save(self, *args: object, **kwargs: object) -> None:
        # A guard, not logic: the only save is the insert ``audit_append`` makes.
        if not self._state.adding:
            raise AuditImmutable("audit entries are append-only")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AuditImmutable("audit entries are append-only")


class AuditChainHead(models.Model):
    """One row (pk 1): the last sequence and hash.  Appends lock it (``SELECT … FOR
    UPDATE``), which serialises them on every database, and ``audit_verify`` compares it
    with the last entry, so even removing the newest entries shows."""

    sequence = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="")

    def __str__(self) -> str:
        return f"head #{self.sequence}"


# --- payment inquiry and claim cases (seed 002) ---------------------------------------------
#
# A case is opened at the back office by an action request (types ``payment_inquiry`` and
# ``payment_claim``); the hub keeps its own record to run the workflow: the case's tasks,
# routed to inquiry or claim agents by the payment admin's assignment rules, and a debit
# approval step for claims.  Rows change only through ``backoffice_bridge.cases``.


class CaseKind(models.TextChoices):
    INQUIRY = "inquiry", "Payment inquiry"
    CLAIM = "claim", "Claim"


class CaseState(models.TextChoices):
    OPEN = "open", "Open"  # opened, the current task not picked up yet
    IN_PROGRESS = "in_progress", "In progress"  # an agent works on the current task
    AWAITING_DEBIT_APPROVAL = "awaiting_debit_approval", "Awaiting debit approval"
    RESOLVED = "resolved", "Resolved"


class CaseResolution(models.TextChoices):
    ANSWERED = "answered", "Answered"  # an inquiry answered
    CREDITED = "credited", "Credited"  # a claim settled after its debit was approved
    DECLINED = "declined", "Declined"  # a claim whose debit was rejected


class Case(models.Model):
    """A payment inquiry or claim case of a bank user, opened from a conversation; its
    ``reference`` is the back office's case id."""

    request = models.OneToOneField(ActionRequest, on_delete=models.PROTECT, related_name="case")
    reference = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=CaseKind.choices)
    state = models.CharField(max_length=32, choices=CaseState.choices, default=CaseState.OPEN)
    resolution = models.CharField(
        max_length=16, choices=CaseResolution.choices, blank=True, default=""
    )
    subject = models.CharField(max_length=200)
    # The validated parameters of the opening request (amount as a "12.50" string…).
    params = models.JSONField(default=dict)
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    bank_user_id = models.CharField(max_length=64)
    conversation = models.ForeignKey(
        "chat.Conversation", on_delete=models.PROTECT, related_name="+"
    )
    customer = models.ForeignKey("chat.Customer", on_delete=models.PROTECT, related_name="+")
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [
            ("open_cases", "Can open payment inquiry and claim cases (payment contributor)"),
            ("work_inquiry_tasks", "Can work on payment inquiry tasks (inquiry agent)"),
            ("work_claim_tasks", "Can work on claim tasks (claim agent)"),
            ("approve_debits", "Can approve or reject the debit of a claim"),
            (
                "work_managed_accounts_only",
                "Works only on cases of the bank accounts they manage (connector agent)",
            ),
            (
                "manage_case_rules",
                "Can configure case routing rules and connectors' accounts (payment admin)",
            ),
            ("view_all_cases", "Can read every payment case"),
        ]
        indexes = [
            models.Index(fields=["bank_user_id", "state"], name="backoffice_case_user_state"),
            models.Index(fields=["conversation", "opened_at"], name="backoffice_case_conv"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} ({self.state})"


class TaskKind(models.TextChoices):
    INVESTIGATE = "investigate", "Investigate"
    RESPOND = "respond", "Respond to the customer"
    DEBIT_APPROVAL = "debit_approval", "Approve the debit"
    SETTLE = "settle", "Settle and credit"


class TaskState(models.TextChoices):
    QUEUED = "queued", "Waiting for an agent"  # no eligible agent when it was routed
    ASSIGNED = "assigned", "Assigned"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


class TaskAssignmentRule(models.Model):
    """A payment admin's routing rule: tasks matching every non-empty criterion go to
    ``target_role`` (the least loaded eligible member of that group) or ``target_agent``.
    Rules are tried by ``position`` (then id); the first match decides."""

    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField()
    case_kind = models.CharField(max_length=16, choices=CaseKind.choices, blank=True, default="")
    task_kind = models.CharField(max_length=32, choices=TaskKind.choices, blank=True, default="")
    min_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    max_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    bank_user_id = models.CharField(max_length=64, blank=True, default="")
    target_role = models.CharField(max_length=150, blank=True, default="")
    target_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(target_role="") & Q(target_agent__isnull=False))
                | (~Q(target_role="") & Q(target_agent__isnull=True)),
                name="backoffice_rule_one_target",
            ),
            models.CheckConstraint(
                condition=Q(min_amount__isnull=True)
                | Q(max_amount__isnull=True)
                | Q(min_amount__lte=F("max_amount")),
                name="backoffice_rule_amount_range",
            ),
        ]

    def __str__(self) -> str:
        return f"rule {self.position}: {self.name}"


class CaseTask(models.Model):
    """One step of a case's workflow, routed to an agent (``assignee``) or waiting in the
    queue of the agents who may take it."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(max_length=32, choices=TaskKind.choices)
    position = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=16, choices=TaskState.choices, default=TaskState.QUEUED)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rule = models.ForeignKey(
        TaskAssignmentRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # How it was routed, kept when the rule changes: "rule 2 'Big claims'" or "default".
    routed_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField()
    assigned_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # "completed", or for a debit approval "approved" / "rejected"
    outcome = models.CharField(max_length=16, blank=True, default="")
    note = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "kind"], name="backoffice_task_once_per_case"),
            models.CheckConstraint(
                condition=~Q(state__in=["assigned", "in_progress"]) | Q(assignee__isnull=False),
                name="backoffice_task_held_has_assignee",
            ),
        ]
        indexes = [models.Index(fields=["assignee", "state"], name="backoffice_task_assignee")]

    def __str__(self) -> str:
        return f"{self.kind} of case {self.case_id} ({self.state})"


class AgentAccount(models.Model):
    """A bank account (bank user) a connector agent manages: connectors receive and work
    only tasks of cases of these accounts."""

    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="managed_accounts"
    )
    bank_user_id = models.CharField(max_length=64)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    added_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "bank_user_id"], name="backoffice_agent_account_once"
            )
        ]
        indexes = [models.Index(fields=["bank_user_id"], name="backoffice_agent_acct_user")]

    def __str__(self) -> str:
        return f"{self.agent_id} manages {self.bank_user_id}"
