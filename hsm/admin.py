"""Django admin for WhatsApp templates (HTTP transport for coordinators' editing).

Gated by ``hsm.manage_templates`` (Coordinator, Admin).  The form is checked by a dry run of
the services and saved through them, so the content rules, the status transitions, the
version check and the history hold here exactly as in the API.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from hsm import services
from hsm.models import Status, Template, TemplateHistory
from hub.admin_access import PermissionGated, ServiceBackedAdmin
from hub.exceptions import ValidationFailed
from hub.roles import PERM_MANAGE_HSM

CONTENT = (
    "name",
    "language",
    "category",
    "header",
    "header_example",
    "body",
    "body_examples",
    "footer",
    "buttons",
)


class TemplateForm(forms.ModelForm):
    # The version the editor loaded: a save over a newer one is refused (stale_version).
    loaded_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Template
        fields = (*CONTENT, "status", "rejection_reason")
        help_texts = {
            "body_examples": 'One example per body placeholder, e.g. ["Ana", "R-2024-0042"].',
            "buttons": '[{"type": "quick_reply", "text": "Yes"}, '
            '{"type": "url", "text": "Open", "url": "https://…"}]',
            "status": "A new template is a draft. Changing its content sends an approved, "
            "paused or rejected template back to draft.",
            "rejection_reason": "Only when marking it rejected: the reason WhatsApp gave.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["loaded_version"].initial = self.instance.version

    def _validate_unique(self) -> None:  # the services own the (name, language) rule
        return None

    def _post_clean(self) -> None:
        # Field lengths and constraints are the services' to check (with WhatsApp's words).
        return None

    def save_through_services(self, actor: Any) -> Template:
        data = self.cleaned_data
        content = {key: data.get(key) for key in CONTENT}
        content["body_examples"] = content["body_examples"] or []
        content["buttons"] = content["buttons"] or []
        for key in ("header", "header_example", "footer"):
            content[key] = content[key] or ""
        status = data.get("status") or Status.DRAFT
        if self.instance.pk is None:
            if status != Status.DRAFT:
                raise ValidationFailed("A new template starts as a draft.", field="status")
            saved = services.template_create(actor=actor, **content)
            return Template.objects.get(pk=saved["id"])
        saved = services.template_update(
            actor=actor,
            template_id=self.instance.pk,
            version=data.get("loaded_version") or self.instance.version,
            **content,
        )
        if status != self.initial.get("status") and status != saved["status"]:
            saved = services.template_status_change(
                actor=actor,
                template_id=self.instance.pk,
                version=saved["version"],
                status=status,
                rejection_reason=data.get("rejection_reason") or None,
            )
        return Template.objects.get(pk=saved["id"])


class HistoryInline(PermissionGated, admin.TabularInline):
    perm = PERM_MANAGE_HSM
    model = TemplateHistory
    extra = 0
    can_delete = False
    fields = ("at", "actor", "action", "from_status", "to_status", "version", "note")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Template)
class TemplateAdmin(ServiceBackedAdmin, PermissionGated, admin.ModelAdmin):
    perm = PERM_MANAGE_HSM
    form = TemplateForm
    inlines = (HistoryInline,)
    list_display = ("name", "language", "category", "status", "version", "updated_at")
    list_filter = ("status", "language", "category")
    search_fields = ("name", "body")
    readonly_fields = ("version", "updated_by", "updated_at", "status_changed_at")
    ordering = ("name", "language")
    actions = ["retire"]

    @admin.action(description="Retire the selected templates")
    def retire(self, request: HttpRequest, queryset: Any) -> None:
        for template in queryset:
            services.template_retire(actor=request.user, template_id=template.pk)
        messages.success(request, "Retired.")
