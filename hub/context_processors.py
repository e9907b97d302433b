"""Template context (HTTP transport): flags every page template may read, and the staff
navigation (``hub/templates/hub/staff_nav.html``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import Resolver404, resolve

from hub import roles

# (key, label, path, permission): every staff page, in the navigation's order.  A page is
# listed only to holders of its permission, and only once its URL exists (pages are added
# by different slices of the work).
STAFF_PAGES: tuple[tuple[str, str, str, str], ...] = (
    ("console", "Console", "/console/", roles.PERM_HANDLE),
    ("dashboard", "Dashboard", "/dashboard/", roles.PERM_VIEW_DASHBOARD),
    ("hours", "Hours", "/coordinator/hours/", roles.PERM_MANAGE_HOURS),
    ("replies", "Replies", "/coordinator/replies/", roles.PERM_MANAGE_KB),
    ("templates", "Templates", "/coordinator/templates/", roles.PERM_MANAGE_HSM),
    ("routing", "Routing", "/coordinator/routing/", roles.PERM_MANAGE_ROUTING),
    ("users", "Users", "/staff/users/", roles.PERM_MANAGE_USERS),
    ("derivations", "Derivations", "/staff/derivations/", roles.PERM_BATCH_DERIVE),
    ("advisors", "Advisors", "/staff/advisors/", roles.PERM_MANAGE_ADVISORS),
    ("audit", "Audit log", "/staff/audit/", roles.PERM_READ_AUDIT),
)


def _exists(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def staff_nav_links(request: HttpRequest) -> list[dict[str, Any]]:
    """The staff pages the signed-in user may open, the current one marked."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    return [
        {"key": key, "label": label, "url": path, "current": request.path == path}
        for key, label, path, perm in STAFF_PAGES
        if user.has_perm(perm) and _exists(path)
    ]


def hub_flags(request: HttpRequest) -> dict[str, Any]:
    """``hub_demo``: the demo is on (HUB_DEMO), so pages may show demo hints.
    ``staff_nav``: the staff navigation's links, computed only when a template reads it."""
    links: Callable[[], list[dict[str, Any]]] = lambda: staff_nav_links(request)  # noqa: E731
    return {"hub_demo": bool(settings.HUB_DEMO), "staff_nav": links}
