"""Routing model layer: operator presence."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Presence(models.TextChoices):
    ONLINE = "online", "Online"
    AWAY = "away", "Away"
    OFFLINE = "offline", "Offline"


class OperatorState(models.Model):
    """One row per staff user who takes conversations: presence and capacity."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator_state"
    )
    presence = models.CharField(max_length=16, choices=Presence.choices, default=Presence.OFFLINE)
    capacity = models.PositiveIntegerField(default=5)
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    presence_changed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.presence}"
