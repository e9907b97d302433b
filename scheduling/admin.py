"""Django admin for scheduling (HTTP transport for plain record editing).

Everything needs ``scheduling.manage_hours`` (Coordinator, Admin).  The forms run the same
checks as the REST API (scheduling.hours, scheduling.services), so the admin cannot save
an overlapping interval, an unknown time zone or an unknown placeholder either, and a
schedule saved by someone else after the page was opened is refused (``stale_version``).
Out-of-hours records are the audit of autoreplies and holds: read-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from hub.admin_access import PermissionGated
from hub.exceptions import HubError
from hub.roles import PERM_MANAGE_HOURS
from scheduling import hours as logic
from scheduling.models import Autoreply, OutOfHoursRecord, Schedule, SpecialDay, WeeklyInterval
from scheduling.services import autoreplies_parse, special_day_parse


class _HoursPermission(PermissionGated):
    """Every right comes from ``scheduling.manage_hours``."""

    perm = PERM_MANAGE_HOURS


def _form_error(error: HubError) -> forms.ValidationError:
    return forms.ValidationError(error.message, code=str(error.data.get("reason", error.code)))


class WeeklyFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        spans = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or data.get("start") is None:
                continue
            span = logic.Span(data["start"], data["end"], data.get("crosses_midnight", False))
            spans.append((data["weekday"], span))
        try:
            logic.weekly_check(spans)
        except HubError as exc:
            raise _form_error(exc) from None


class WeeklyInline(_HoursPermission, admin.TabularInline):
    model = WeeklyInterval
    formset = WeeklyFormSet
    extra = 1


class AutoreplyForm(forms.ModelForm):
    class Meta:
        model = Autoreply
        fields = ("language", "text")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("language") and cleaned.get("text"):
            try:
                autoreplies_parse({cleaned["language"]: cleaned["text"]})
            except HubError as exc:
                raise _form_error(exc) from None
        return cleaned


class AutoreplyInline(_HoursPermission, admin.StackedInline):
    model = Autoreply
    form = AutoreplyForm
    extra = 0


class SpecialDayForm(forms.ModelForm):
    class Meta:
        model = SpecialDay
        fields = ("date", "recurring_yearly", "closed", "intervals", "label")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("date"):
            try:
                parsed = special_day_parse(
                    day=cleaned["date"],
                    closed=cleaned.get("closed", True),
                    intervals=cleaned.get("intervals") or [],
                    recurring_yearly=cleaned.get("recurring_yearly", False),
                    label=cleaned.get("label", ""),
                )
            except HubError as exc:
                raise _form_error(exc) from None
            cleaned["intervals"] = parsed.intervals
        return cleaned


class SpecialDayInline(_HoursPermission, admin.TabularInline):
    model = SpecialDay
    form = SpecialDayForm
    extra = 0
    fields = ("date", "recurring_yearly", "closed", "intervals", "label", "source")
    readonly_fields = ("source",)


class ScheduleForm(forms.ModelForm):
    # The version the page was loaded with: a save after someone else's is refused.
    loaded_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Schedule
        fields = (
            "query_type",
            "time_zone",
            "refer_when_open",
            "closed_resolution",
            "default_language",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["loaded_version"].initial = self.instance.version

    def clean_time_zone(self) -> str:
        try:
            return logic.time_zone_check(self.cleaned_data["time_zone"])
        except HubError as exc:
            raise _form_error(exc) from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.instance.pk is not None:
            # The admin saves inside a transaction: the lock holds until the save commits.
            current = (
                Schedule.objects.select_for_update()
                .filter(pk=self.instance.pk)
                .values_list("version", flat=True)
                .first()
            )
            if current is not None and cleaned.get("loaded_version") != current:
                raise forms.ValidationError(
                    "Someone else saved these opening hours after you opened them. "
                    "Reload the page to see their change, then edit again.",
                    code="stale_version",
                )
        return cleaned


@admin.register(Schedule)
class ScheduleAdmin(_HoursPermission, admin.ModelAdmin):
    form = ScheduleForm
    inlines = (WeeklyInline, SpecialDayInline, AutoreplyInline)
    list_display = ("__str__", "time_zone", "refer_when_open", "version", "updated_at")
    readonly_fields = ("version", "updated_by", "updated_at")
    fields = (
        "query_type",
        "time_zone",
        "refer_when_open",
        "closed_resolution",
        "default_language",
        "version",
        "loaded_version",
        "updated_by",
        "updated_at",
    )

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        if change:
            obj.version += 1
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(OutOfHoursRecord)
class OutOfHoursRecordAdmin(_HoursPermission, admin.ModelAdmin):
    list_display = ("conversation", "action", "closed_since", "next_opening", "released_at")
    list_filter = ("action",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
