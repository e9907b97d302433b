"""Accounts model layer: API tokens for non-browser clients (roles are Django groups)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A bearer token issued by ``POST /api/auth/token/``; only its SHA-256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"token #{self.pk} of user {self.user_id}"


class HubPermissions(models.Model):
    """Holds hub-wide permissions that belong to no table (no table is created)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("manage_staff_users", "Can create, edit and delete staff users"),
            ("view_dashboard", "Can read the analytics dashboard"),
        ]

    def __str__(self) -> str:
        return "hub permissions"


# --- External advisors (seed 003; services in hub/advisors.py) ----------------------------


class AdvisorAccessCode(models.Model):
    """The code an external advisor enters to join (seed 003): valid for
    ``HUB_ADVISOR_CODE_MINUTES`` (60) from ``created_at``, then a new one is generated; an
    admin may replace it early (``replaced_at``).  Kept after expiry, so a grant names the
    code it was joined with."""

    code = models.CharField(max_length=16, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    replaced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"])]

    def __str__(self) -> str:
        return f"advisor access code #{self.pk}"


class AdvisorGrantKind(models.TextChoices):
    TEMPORARY = "temporary", "Temporary (access code)"
    PERMANENT = "permanent", "Permanent (assigned by an admin)"


class AdvisorEndReason(models.TextChoices):
    REMOVED = "removed", "Removed by an admin"
    LEFT = "left", "Left by themselves"
    EXPIRED = "expired", "Temporary access expired"


class AdvisorGrant(models.Model):
    """One period of an external advisor's read-only access.  Live while ``ended_at`` is
    null and (temporary) ``ends_at`` is in the future; at most one live row per advisor.
    Ending keeps the row (who, when, why)."""

    advisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="advisor_grants"
    )
    kind = models.CharField(max_length=16, choices=AdvisorGrantKind.choices)
    started_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    code = models.ForeignKey(
        AdvisorAccessCode, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    end_reason = models.CharField(max_length=16, choices=AdvisorEndReason.choices, blank=True)

    class Meta:
        default_permissions = ()
        permissions = [
            ("manage_advisors", "Can show the advisor access code and assign or remove advisors"),
            ("advisor_read", "External advisor: read conversations, cases and reports (read-only)"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["advisor"],
                condition=models.Q(ended_at__isnull=True),
                name="hub_advisor_one_live_grant",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="permanent") | models.Q(ends_at__isnull=False),
                name="hub_advisor_temporary_has_end",
            ),
        ]
        indexes = [models.Index(fields=["advisor", "ended_at"])]

    def __str__(self) -> str:
        return f"{self.kind} advisor access #{self.pk} of user {self.advisor_id}"
