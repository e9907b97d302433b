"""Scheduling model layer: schedules (global or per query type), their weekly intervals,
special days and autoreplies, and the record of what was done with each conversation that
arrived or waited out of hours.

Rows change only through ``scheduling.services`` (and the admin, which runs the same
checks); the time rules live in ``scheduling.hours``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Coalesce


class Schedule(models.Model):
    """The service's opening hours in a time zone.  One global schedule (``query_type``
    None) and optionally one per query type, which overrides it entirely (its own weekly
    hours, special days and autoreplies).  No schedule at all: always open.

    ``version`` grows with every save of the schedule (weekly hours, options, autoreplies):
    a save carrying an older one is refused (``stale_version``), so two coordinators
    editing the same schedule never silently overwrite each other.
    """

    query_type = models.ForeignKey(
        "routing.QueryType", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA name.")
    refer_when_open = models.BooleanField(
        default=True,
        help_text="Hold out-of-hours conversations and route them when the service opens; "
        "off: close them with the resolution below after the autoreply.",
    )
    closed_resolution = models.ForeignKey(
        "routing.ResolutionReason",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The resolution of conversations closed out of hours (refer_when_open off).",
    )
    default_language = models.CharField(
        max_length=16, default="en", help_text="Autoreply language when the customer's is unknown."
    )
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            # One global schedule and one per type (COALESCE: NULLs are otherwise distinct).
            models.UniqueConstraint(
                Coalesce("query_type", Value(0)), name="one_schedule_per_scope"
            ),
        ]
        permissions = [
            ("manage_hours", "Can edit opening hours, special days and out-of-hours replies"),
        ]

    def __str__(self) -> str:
        return f"Hours for type {self.query_type_id}" if self.query_type_id else "Global hours"


class WeeklyInterval(models.Model):
    """One opening interval of a weekday, ``[start, end)``; ``crosses_midnight``: it ends on
    the next day (22:00-02:00, or 18:00-00:00 for "until midnight")."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="weekly")
    weekday = models.PositiveSmallIntegerField(help_text="0 Monday … 6 Sunday.")
    start = models.TimeField()
    end = models.TimeField()
    crosses_midnight = models.BooleanField(default=False)

    class Meta:
        ordering = ["weekday", "start"]
        constraints = [
            models.CheckConstraint(condition=Q(weekday__lte=6), name="weekly_weekday_0_to_6"),
            models.CheckConstraint(
                condition=Q(crosses_midnight=True) | Q(end__gt=models.F("start")),
                name="weekly_interval_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.weekday}: {self.start:%H:%M}-{self.end:%H:%M}"


class SpecialDay(models.Model):
    """A date that overrides the weekly hours: closed (a holiday, a vacation) or special
    intervals; one-off, or recurring every year on the same month and day.  ``intervals``
    is a list of ``{"start": "HH:MM", "end": "HH:MM", "crosses_midnight": bool}``."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="special_days")
    date = models.DateField(help_text="For a recurring day only the month and day count.")
    recurring_yearly = models.BooleanField(default=False)
    closed = models.BooleanField(default=True)
    intervals = models.JSONField(default=list, blank=True)
    label = models.CharField(max_length=120, blank=True)
    # "manual", or "holidays:ES-MD" for a day imported from the holidays package.
    source = models.CharField(max_length=40, default="manual")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "date"], name="one_special_day_per_date"),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.label or ('closed' if self.closed else 'special hours')}"


class Autoreply(models.Model):
    """The message a customer gets out of hours, per language; ``{next_opening}`` is
    filled with the next opening in the customer's time zone (else the schedule's)."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="autoreplies")
    language = models.CharField(max_length=16, help_text="e.g. en, es, pt-BR.")
    text = models.TextField()

    class Meta:
        ordering = ["language"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "language"], name="one_autoreply_per_language"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.language}: {self.text[:40]}"


class OutOfHoursRecord(models.Model):
    """What was done with a conversation in one closed period: the autoreply (``message_id``;
    None when the customer had already been told in that period) and ``held`` (routed at the
    opening: ``released_at``) or ``closed``.

    Unique per conversation and closed period (``closed_since``, the instant the service
    closed): two processes handling the same conversation at once cannot both reply.
    """

    class Action(models.TextChoices):
        HELD = "held", "Held until the opening"
        CLOSED = "closed", "Closed"

    conversation = models.ForeignKey(
        "chat.Conversation", on_delete=models.CASCADE, related_name="+"
    )
    customer = models.ForeignKey("chat.Customer", on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=32)
    query_type = models.ForeignKey(
        "routing.QueryType", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_since = models.DateTimeField()
    next_opening = models.DateTimeField(null=True, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=8, choices=Action.choices)
    released_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "closed_since"], name="one_out_of_hours_per_period"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "channel", "closed_since"]),
            models.Index(
                fields=["created_at"],
                condition=Q(action="held", released_at__isnull=True),
                name="out_of_hours_waiting",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id} {self.action} since {self.closed_since:%Y-%m-%d %H:%M}"
