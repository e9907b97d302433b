"""Django admin for routing (HTTP transport for plain record editing).

Access follows the hub's role permissions, not Django's per-model ones (no role holds
``add_querytype`` and the like):

- ``routing.manage_routing`` (Coordinator, Admin): query types with their keywords and entry
  points, resolution reasons, the routing settings and operators' skills and capacity;
- ``routing.batch_derive`` (Admin): scheduled absences, which derive conversations by
  themselves when they start;
- assignments and derivation batches are the audit record: read-only for both.

The Django admin site itself still needs ``is_staff``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import HttpRequest

from hub.admin_access import PermissionGated
from hub.roles import PERM_BATCH_DERIVE, PERM_DERIVE, PERM_HANDLE, PERM_MANAGE_ROUTING
from routing.models import (
    Assignment,
    DerivationBatch,
    EntryPoint,
    OperatorState,
    QueryType,
    ResolutionReason,
    RoutingSettings,
    ScheduledAbsence,
)
from routing.services import operator_slot_freed


def _handlers_queryset() -> Any:
    """Active users who answer conversations: the only sensible operators to pick."""
    app_label, codename = PERM_HANDLE.split(".")
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(
            Q(
                groups__permissions__content_type__app_label=app_label,
                groups__permissions__codename=codename,
            )
            | Q(is_superuser=True)
        )
        .distinct()
        .order_by("username")
    )


class PermissionAdmin(PermissionGated, admin.ModelAdmin):
    """Every right comes from one hub permission (``perm``)."""

    perm = PERM_MANAGE_ROUTING


class AuditAdmin(PermissionAdmin):
    """Audit records: whoever may move conversations may read them; nobody edits them."""

    perm = PERM_DERIVE

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- query types ---------------------------------------------------------------------------
class KeywordsField(forms.CharField):
    """The JSON list of keywords edited as text: one per line or comma-separated."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, list):
            return "\n".join(str(v) for v in value)
        return value or ""

    def to_python(self, value: Any) -> list[str]:
        text = super().to_python(value) or ""
        seen: list[str] = []
        for part in text.replace(",", "\n").splitlines():
            word = " ".join(part.split())
            if word and word.casefold() not in {s.casefold() for s in seen}:
                seen.append(word)
        return seen


class QueryTypeForm(forms.ModelForm):
    keywords = KeywordsField(
        required=False,
        help_text=(
            "Words or phrases that pick this type from a customer's answer to the menu, one "
            "per line or separated by commas. Case and accents are ignored."
        ),
    )

    class Meta:
        model = QueryType
        fields = ("name", "code", "priority", "menu_position", "is_default", "active", "keywords")


class EntryPointInline(admin.TabularInline):
    model = EntryPoint
    extra = 0


@admin.register(QueryType)
class QueryTypeAdmin(PermissionAdmin):
    form = QueryTypeForm
    list_display = ("name", "code", "priority", "menu_position", "is_default", "active")
    list_filter = ("active",)
    search_fields = ("name", "code")
    prepopulated_fields = {"code": ("name",)}
    inlines = [EntryPointInline]
    # Deleting is allowed for a type set up by mistake; once conversations use it the
    # foreign key (PROTECT) refuses, and the admin says so: retire it (active off) instead.


@admin.register(EntryPoint)
class EntryPointAdmin(PermissionAdmin):
    list_display = ("channel", "address", "query_type")
    list_filter = ("channel", "query_type")
    search_fields = ("address",)
    list_select_related = ("query_type",)


@admin.register(ResolutionReason)
class ResolutionReasonAdmin(PermissionAdmin):
    list_display = ("name", "types", "position", "active")
    list_filter = ("active", "query_types")
    search_fields = ("name",)
    filter_horizontal = ("query_types",)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("query_types")

    @admin.display(description="Query types")
    def types(self, obj: ResolutionReason) -> str:
        return ", ".join(t.name for t in obj.query_types.all()) or "All types"

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "query_types":
            field.help_text = "Leave empty to offer this reason for every type."
        return field


# --- routing settings ------------------------------------------------------------------------
class RoutingSettingsForm(forms.ModelForm):
    # The version the editor loaded, sent back with the form: a save over a newer version
    # is refused instead of silently undoing someone else's change.
    loaded_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = RoutingSettings
        fields = (
            "away_grace_seconds",
            "offline_requeue_minutes",
            "unanswered_reroute_minutes",
            "reopen_window_minutes",
            "queue_position_message",
            "type_menu_enabled",
            "type_menu_intro",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["loaded_version"].initial = self.instance.version

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.instance.pk is not None:
            # The admin saves inside a transaction: the lock holds until the save commits.
            current = (
                RoutingSettings.objects.select_for_update()
                .filter(pk=self.instance.pk)
                .values_list("version", flat=True)
                .first()
            )
            if current is not None and cleaned.get("loaded_version") != current:
                raise forms.ValidationError(
                    "Someone else saved the routing settings after you opened them. "
                    "Reload the page to see their change, then edit again.",
                    code="stale_version",
                )
        return cleaned


@admin.register(RoutingSettings)
class RoutingSettingsAdmin(PermissionAdmin):
    form = RoutingSettingsForm
    readonly_fields = ("version",)
    fieldsets = (
        ("Presence", {"fields": ("away_grace_seconds",)}),
        (
            "Re-routing",
            {
                "fields": (
                    "offline_requeue_minutes",
                    "unanswered_reroute_minutes",
                    "reopen_window_minutes",
                )
            },
        ),
        ("Messages to customers", {"fields": ("queue_position_message",)}),
        ("Type menu", {"fields": ("type_menu_enabled", "type_menu_intro")}),
        (None, {"fields": ("version", "loaded_version")}),
    )

    # A singleton (pk 1): one row, never a second, never deleted.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not RoutingSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: RoutingSettings, form: Any, change: bool
    ) -> None:
        obj.pk = 1
        if change:
            obj.version += 1
        super().save_model(request, obj, form, change)


# --- operators ---------------------------------------------------------------------------------
@admin.register(OperatorState)
class OperatorStateAdmin(PermissionAdmin):
    list_display = ("user", "presence", "capacity", "skills", "last_assigned_at")
    list_filter = ("presence", "query_types")
    list_select_related = ("user",)
    search_fields = ("user__username", "user__first_name", "user__last_name")
    fields = ("user", "capacity", "query_types", "presence", "presence_changed_at")
    filter_horizontal = ("query_types",)
    # Presence changes go through routing.services.presence_set (it pulls queued work).
    readonly_fields = ("presence", "presence_changed_at", "last_assigned_at")

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("query_types")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The operator of an existing row is fixed; only a new row picks one.
        return (*self.readonly_fields, "user") if obj else self.readonly_fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user":
            kwargs["queryset"] = _handlers_queryset()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "query_types":
            field.help_text = "Leave empty to serve every type."
        return field

    @admin.display(description="Serves")
    def skills(self, obj: OperatorState) -> str:
        return ", ".join(t.name for t in obj.query_types.all()) or "All types"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # More capacity or a new skill can serve people already waiting: let the queue
        # drain to this operator now rather than at their next close (inside the admin's
        # transaction; the console events go out after it commits).
        operator_slot_freed(operator=form.instance.user)


# --- derivations and absences -------------------------------------------------------------
@admin.register(DerivationBatch)
class DerivationBatchAdmin(AuditAdmin):
    list_display = ("id", "created_at", "from_operator", "to_operator", "mode", "count", "reason")
    list_filter = ("mode", "reason", "forced")
    list_select_related = ("from_operator", "to_operator", "actor")
    date_hierarchy = "created_at"


@admin.register(Assignment)
class AssignmentAdmin(AuditAdmin):
    list_display = ("id", "created_at", "conversation", "kind", "from_operator", "to_operator")
    list_filter = ("kind",)
    list_select_related = ("conversation", "from_operator", "to_operator", "actor")
    search_fields = ("conversation__id",)
    raw_id_fields = ("conversation", "batch")
    date_hierarchy = "created_at"


@admin.register(ScheduledAbsence)
class ScheduledAbsenceAdmin(PermissionAdmin):
    perm = PERM_BATCH_DERIVE
    list_display = ("operator", "starts_at", "ends_at", "to_operator", "derived_at")
    list_filter = ("derived_at",)
    list_select_related = ("operator", "to_operator")
    fields = ("operator", "starts_at", "ends_at", "to_operator", "created_by", "derived_at")
    readonly_fields = ("created_by", "derived_at")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in {"operator", "to_operator"}:
            kwargs["queryset"] = _handlers_queryset()
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "to_operator":
            field.help_text = "Leave empty to spread the conversations over online operators."
        return field

    def save_model(
        self, request: HttpRequest, obj: ScheduledAbsence, form: Any, change: bool
    ) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
