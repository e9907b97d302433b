"""HTTP transport for the coordinators' routing page (``/coordinator/routing/``): query types
and their keywords, resolution reasons per type, operators' skills and capacity, and the
type menu.  The page is a shell: its script reads and writes everything through the REST
endpoints in ``routing/config_views.py``, so the rules stay in ``routing.config``."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from hub.roles import PERM_MANAGE_ROUTING, role_of


@require_GET
@login_required
def routing_page(request: HttpRequest) -> HttpResponse:
    """The coordinators' routing page; 403 (an HTML page saying why) without
    ``routing.manage_routing``."""
    if not request.user.has_perm(PERM_MANAGE_ROUTING):
        return render(
            request,
            "hub/forbidden.html",
            {
                "what": "the routing settings",
                "why": "Only coordinators and admins can change query types, resolution reasons"
                " and operators' skills.",
                "permission": PERM_MANAGE_ROUTING,
            },
            status=403,
        )
    return render(request, "routing/routing_page.html", {"role": role_of(request.user)})
