"""Django admin for knowledge-base replies (HTTP transport for coordinators' editing).

Gated by ``knowledge_base.manage_replies`` (Coordinator, Admin), like routing's admin.  The
form checks through the same rules as the API and saving goes through the services, so the
search columns, the vocabulary, versions and the shortcut rule hold here too.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from hub.admin_access import PermissionGated, ServiceBackedAdmin
from hub.roles import PERM_MANAGE_KB
from knowledge_base import services
from knowledge_base.models import Reply


class ReplyForm(forms.ModelForm):
    # The version the editor loaded: a save over a newer one is refused (stale_version).
    loaded_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Reply
        fields = ("title", "shortcut", "language", "body", "query_types", "active")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["loaded_version"].initial = self.instance.version
        self.fields["body"].help_text = (
            "Variables: {{customer.first_name}}, {{customer.name}}, {{operator.name}}, "
            '{{conversation.reference}}, {{today.opening_hours}}; a fallback: {{name | "text"}}.'
        )

    def _validate_unique(self) -> None:  # the services own the shortcut rule
        return None

    def save_through_services(self, actor: Any) -> Reply:
        data = self.cleaned_data
        fields = {
            "title": data["title"],
            "shortcut": data["shortcut"],
            "body": data["body"],
            "language": data["language"],
            "query_type_ids": [t.pk for t in data["query_types"]],
            "active": data["active"],
        }
        if self.instance.pk is None:
            saved = services.reply_create(actor=actor, **fields)
        else:
            saved = services.reply_update(
                actor=actor,
                reply_id=self.instance.pk,
                version=data.get("loaded_version") or self.instance.version,
                **fields,
            )
        return Reply.objects.get(pk=saved["id"])


@admin.register(Reply)
class ReplyAdmin(ServiceBackedAdmin, PermissionGated, admin.ModelAdmin):
    perm = PERM_MANAGE_KB
    form = ReplyForm
    list_display = ("shortcut", "title", "language", "active", "position", "usage_count")
    list_filter = ("active", "language", "query_types")
    search_fields = ("title", "shortcut", "body")
    filter_horizontal = ("query_types",)
    readonly_fields = ("usage_count", "version", "position")
    ordering = ("position", "id")

    error_field_aliases = {"query_type_ids": "query_types"}

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return None  # the services set the query types

    @admin.action(description="Retire the selected replies")
    def retire(self, request: HttpRequest, queryset: Any) -> None:
        for reply in queryset:
            services.reply_retire(actor=request.user, reply_id=reply.pk)

    actions = ["retire"]
