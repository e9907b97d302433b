"""Routing model layer: query types, operators' skills and presence, resolution reasons,
the routing settings, and the record of every assignment and derivation."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Presence(models.TextChoices):
    ONLINE = "online", "Online"
    AWAY = "away", "Away"
    OFFLINE = "offline", "Offline"


class QueryType(models.Model):
    """The *origin of queries* (seed 004): payments, follow-up, claims…  Conversations are
    routed to operators who serve their type; queues are served by priority, then age."""

    code = models.SlugField(max_length=40, unique=True, help_text="Used by entry points.")
    name = models.CharField(max_length=80, unique=True)
    priority = models.PositiveSmallIntegerField(
        default=100, help_text="Higher is served first when operators are scarce."
    )
    is_default = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    menu_position = models.PositiveSmallIntegerField(
        default=0, help_text="Order in the menu sent to customers whose type is unknown."
    )
    keywords = models.JSONField(
        default=list, blank=True, help_text="Words that pick this type from a free-text answer."
    )

    class Meta:
        ordering = ["menu_position", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_query_type"
            )
        ]

    def __str__(self) -> str:
        return self.name


class EntryPoint(models.Model):
    """A channel address that implies a query type: a web chat widget's ``type`` code or a
    messaging number configured for, say, claims."""

    channel = models.CharField(max_length=32)
    address = models.CharField(max_length=200)
    query_type = models.ForeignKey(QueryType, on_delete=models.CASCADE, related_name="entries")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "address"], name="one_type_per_entry_point")
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.address} → {self.query_type_id}"


class OperatorState(models.Model):
    """One row per staff user who takes conversations: presence, capacity and skills."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator_state"
    )
    presence = models.CharField(max_length=16, choices=Presence.choices, default=Presence.OFFLINE)
    capacity = models.PositiveIntegerField(default=5)
    # The types this operator serves; none at all means every type (a small team).
    query_types = models.ManyToManyField(QueryType, blank=True, related_name="operators")
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    presence_changed_at = models.DateTimeField(auto_now_add=True)
    # Refreshed by every process holding an open console for this user (see ConsoleWatch):
    # an online operator without a console for the grace period becomes away.
    console_seen_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.presence}"


class ResolutionReason(models.Model):
    """Why an operator closed a query ("query resolution", seed 004)."""

    name = models.CharField(max_length=120, unique=True)
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)
    # Empty: the reason applies to every type.
    query_types = models.ManyToManyField(QueryType, blank=True, related_name="resolutions")

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class RoutingSettings(models.Model):
    """Coordinator-set routing policy; one row (pk 1).  ``version`` makes concurrent edits
    fail loudly instead of overwriting each other."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.PositiveIntegerField(default=1)
    away_grace_seconds = models.PositiveIntegerField(
        default=60, help_text="An online operator with no open console becomes away after this."
    )
    offline_requeue_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Move an away/offline operator's conversations back to routing after this.",
    )
    unanswered_reroute_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Re-route a conversation whose customer has waited this long for an answer.",
    )
    reopen_window_minutes = models.PositiveIntegerField(
        default=0, help_text="A customer writing within this time of a close reopens it."
    )
    queue_position_message = models.CharField(
        max_length=500,
        blank=True,
        default="All our agents are busy. You are number {position} in the queue.",
        help_text="Sent when a conversation waits; empty to send nothing. {position} is filled.",
    )
    type_menu_enabled = models.BooleanField(
        default=False, help_text="Ask customers whose query type is unknown to choose one."
    )
    type_menu_intro = models.CharField(
        max_length=300, default="How can we help you? Reply with a number:"
    )

    def __str__(self) -> str:
        return "Routing settings"


class DerivationBatch(models.Model):
    """One batch derivation (an absent operator's conversations moved at once)."""

    class Mode(models.TextChoices):
        TO_OPERATOR = "to_operator", "To one operator"
        SPREAD = "spread", "Spread over online operators"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    to_operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    mode = models.CharField(max_length=16, choices=Mode.choices)
    reason = models.CharField(max_length=32, default="manual")
    forced = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    count = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Derivation of {self.count} from {self.from_operator_id}"


class Assignment(models.Model):
    """Every change of hands of a conversation: who, when, from, to, why.  The audit record
    and the conversation timeline's routing entries."""

    class Kind(models.TextChoices):
        ROUTED = "routed", "Routed"
        QUEUED = "queued", "Queued"
        TRANSFERRED = "transferred", "Transferred"
        REQUEUED = "requeued", "Back to the queue"
        BATCH = "batch", "Batch derivation"
        ABSENCE = "absence", "Operator absent"
        UNANSWERED = "unanswered", "Not answered in time"
        TYPE_CHANGED = "type_changed", "Query type corrected"
        REOPENED = "reopened", "Reopened"
        OUTREACH = "outreach", "Proactive outreach"

    conversation = models.ForeignKey(
        "chat.Conversation", on_delete=models.CASCADE, related_name="assignments"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    from_operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # None: the hub decided (routing, absence policy).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    batch = models.ForeignKey(
        DerivationBatch, null=True, blank=True, on_delete=models.CASCADE, related_name="items"
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["conversation", "id"])]
        permissions = [
            ("derive_conversations", "Can transfer conversations between operators"),
            ("batch_derive", "Can derive all of an operator's conversations at once"),
            ("force_derivation", "Can transfer beyond an operator's capacity"),
            ("manage_routing", "Can edit query types, resolution reasons and routing settings"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.from_operator_id} → {self.to_operator_id}"


class ScheduledAbsence(models.Model):
    """An operator's planned absence: at ``starts_at`` their conversations are derived
    (to ``to_operator`` or spread) and they receive no new ones until ``ends_at``."""

    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="absences"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    to_operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    derived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="absence_ends_after_start"
            )
        ]
        indexes = [models.Index(fields=["derived_at", "starts_at"])]

    def __str__(self) -> str:
        return f"{self.operator_id} absent {self.starts_at:%Y-%m-%d %H:%M}"
