"""Django admin access by hub permission: each admin page names the one permission that
grants every right on it (view, add, change, delete), so coordinators see exactly the
records their role manages and nothing else."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


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
