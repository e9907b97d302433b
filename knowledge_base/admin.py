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

from hub.admin_access import PermissionGated
from hub.exceptions import HubError
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
class ReplyAdmin(PermissionGated, admin.ModelAdmin):
    perm = PERM_MANAGE_KB
    form = ReplyForm
    list_display = ("shortcut", "title", "language", "active", "position", "usage_count")
    list_filter = ("active", "language", "query_types")
    search_fields = ("title", "shortcut", "body")
    filter_horizontal = ("query_types",)
    readonly_fields = ("usage_count", "version", "position")
    ordering = ("position", "id")

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).filter(retired_at__isnull=True)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # retire instead (the action below): usage counts stay

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form_class = super().get_form(request, obj, **kwargs)
        actor = request.user

        class CheckedForm(form_class):  # type: ignore[misc, valid-type]
            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                if self.errors:
                    return cleaned
                try:
                    with_rollback(lambda: self.save_through_services(actor))
                except HubError as error:
                    field_name = error.data.get("field")
                    if field_name == "query_type_ids":
                        field_name = "query_types"
                    if field_name not in self.fields:
                        field_name = None
                    raise forms.ValidationError(
                        {field_name: error.message} if field_name else error.message
                    ) from None
                return cleaned

        return CheckedForm

    def save_model(self, request: HttpRequest, obj: Reply, form: Any, change: bool) -> None:
        saved = form.save_through_services(request.user)
        obj.pk = saved.pk
        obj.refresh_from_db()
        form.instance = obj

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return None  # the services set the query types

    @admin.action(description="Retire the selected replies")
    def retire(self, request: HttpRequest, queryset: Any) -> None:
        for reply in queryset:
            services.reply_retire(actor=request.user, reply_id=reply.pk)

    actions = ["retire"]


class _Rollback(Exception):
    pass


def with_rollback(action: Any) -> None:
    """Run ``action`` in a transaction that is always rolled back: a dry run of the
    services, so the admin form shows their refusals as field errors."""
    from django.db import transaction

    try:
        with transaction.atomic():
            action()
            raise _Rollback
    except _Rollback:
        pass
