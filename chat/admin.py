"""Django admin for chat records: read-only views for supervisors' record lookups.

Conversations and messages change only through chat.services (the console and the API),
so the admin never edits them.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from chat.models import ConsoleEvent, Conversation, Customer, CustomerIdentity, Message


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = ("id", "display_name", "created_at")
    search_fields = ("display_name", "identities__external_id")


@admin.register(CustomerIdentity)
class CustomerIdentityAdmin(ReadOnlyAdmin):
    list_display = ("channel", "external_id", "customer", "created_at")
    list_filter = ("channel",)


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "channel", "status", "operator", "created_at", "closed_at")
    list_filter = ("status", "channel")
    list_select_related = ("customer", "operator")


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "conversation", "direction", "author", "created_at")
    list_filter = ("direction", "channel")
    list_select_related = ("conversation", "author")


@admin.register(ConsoleEvent)
class ConsoleEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "conversation", "operator", "created_at")
    list_filter = ("kind",)
