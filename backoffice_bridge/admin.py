"""Django admin for the back-office bridge: a read-only view of requests, links and
consents for checkers (``backoffice_bridge.approve_actions``) and of the audit log for
admins (``backoffice_bridge.read_audit_log``).  Every change goes through the services,
so nothing here can add, edit or delete a row."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from backoffice_bridge.actions import PERM_APPROVE_ACTIONS
from backoffice_bridge.models import ActionRequest, AuditEntry, Consent, CustomerLink
from hub.admin_access import PermissionGated
from hub.roles import PERM_READ_AUDIT


class ReadOnly(PermissionGated):
    perm = PERM_APPROVE_ACTIONS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ActionRequest)
class ActionRequestAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "id",
        "action_type",
        "bank_user_id",
        "status",
        "business_status",
        "maker",
        "checker",
        "created_at",
    )
    list_filter = ("status", "action_type")
    search_fields = ("bank_user_id", "idempotency_key")


@admin.register(CustomerLink)
class CustomerLinkAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("customer", "bank_user_id", "linked_by", "linked_at", "unlinked_at")
    search_fields = ("bank_user_id",)


@admin.register(Consent)
class ConsentAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("bank_user_id", "customer", "recorded_by", "recorded_at", "expires_at")
    list_filter = ("revoked_at",)
    search_fields = ("bank_user_id", "evidence_reference")


class AuditReadOnly(ReadOnly):
    perm = PERM_READ_AUDIT

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}  # not even the bulk "delete selected"


@admin.register(AuditEntry)
class AuditEntryAdmin(AuditReadOnly, admin.ModelAdmin):
    list_display = ("sequence", "at", "actor_name", "actor_role", "action", "outcome")
    list_filter = ("outcome", "action")
    search_fields = ("on_behalf_of", "conversation_id", "object_id")
    ordering = ("-sequence",)
