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
