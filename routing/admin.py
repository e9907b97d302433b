"""Django admin for operator presence and capacity (plain record editing)."""

from django.contrib import admin

from routing.models import OperatorState


@admin.register(OperatorState)
class OperatorStateAdmin(admin.ModelAdmin):
    list_display = ("user", "presence", "capacity", "last_assigned_at")
    list_filter = ("presence",)
    # Presence changes go through routing.services.presence_set (it pulls queued work).
    readonly_fields = ("presence", "presence_changed_at", "last_assigned_at")
