"""Django admin access by hub permission: each admin page names the one permission that
grants every right on it (view, add, change, delete), so coordinators see exactly the
records their role manages and nothing else; and admin pages whose records change only
through services (``ServiceBackedAdmin``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django import forms
from django.db import transaction
from django.http import HttpRequest

from hub.exceptions import HubError


class PermissionGated:
    """Mixin for ``ModelAdmin`` and inlines: set ``perm`` ("app.codename")."""

    perm: str = ""

    def _allowed(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.has_perm(self.perm))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)


class _Rollback(Exception):
    pass


def dry_run(action: Callable[[], Any]) -> None:
    """Run ``action`` in a transaction that is always rolled back: a dry run of the
    services, so an admin form shows their refusals as field errors before saving."""
    try:
        with transaction.atomic():
            action()
            raise _Rollback
    except _Rollback:
        pass


class ServiceBackedAdmin:
    """Mixin for a ``ModelAdmin`` whose records change only through their app's services.

    The form's ``save_through_services(actor)`` is dry-run while the form validates (a
    service's refusal becomes an error on the field it names, ``error.data["field"]``
    up to its first ``[`` or ``.``, renamed by ``error_field_aliases``) and run for real
    on save.  Records are retired, never deleted, so their history stays."""

    error_field_aliases: dict[str, str] = {}

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).filter(retired_at__isnull=True)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # retire instead: the history stays

    def form_error_field(self, error: HubError, form: forms.Form) -> str | None:
        name = re.split(r"[\[.]", str(error.data.get("field") or ""), maxsplit=1)[0]
        name = self.error_field_aliases.get(name, name)
        return name if name in form.fields else None

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form_class = super().get_form(request, obj, **kwargs)  # type: ignore[misc]
        actor = request.user
        error_field = self.form_error_field

        class CheckedForm(form_class):  # type: ignore[misc, valid-type]
            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                if self.errors:
                    return cleaned
                try:
                    dry_run(lambda: self.save_through_services(actor))
                except HubError as error:
                    name = error_field(error, self)
                    raise forms.ValidationError(
                        {name: error.message} if name else error.message
                    ) from None
                return cleaned

        return CheckedForm

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = form.save_through_services(request.user)
        obj.pk = saved.pk
        obj.refresh_from_db()
        form.instance = obj
