"""HTTP transport for the coordinators' knowledge-base page (``/coordinator/replies/``) and
the one endpoint it adds: a live preview of a body being edited.

The page is a shell: its script lists, searches, writes, retires and reorders replies
through the REST API in ``knowledge_base/views.py``, so every rule stays in the services.
The preview fills an unsaved body for a sample customer and for a customer whose values
are missing (so the coordinator sees the fallbacks), with the same parser and renderer the
services use: a body the preview accepts is one the save accepts, and its error is the
save's error (``invalid_value``, ``data.field: "body"``, ``data.reason``, ``data.position``).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from hub.errors import parse_json_body
from hub.exceptions import PermissionDenied, ValidationFailed
from hub.roles import PERM_MANAGE_KB, role_of
from hub.schemas import field
from hub.views import staff_api
from knowledge_base.selectors import can_manage
from knowledge_base.variables import VARIABLES, template_parse, template_render

BODY_MAX = 20000  # parsing bound, as in views.reply_fields; the services apply the real limit


def _sample_values(actor_name: str) -> dict[str, str | None]:
    """What the preview fills in: a made-up customer, the coordinator as the operator."""
    return {
        "customer.first_name": "Ana",
        "customer.name": "Ana García",
        "operator.name": actor_name,
        "conversation.reference": "5FBD0299",
        "today.opening_hours": "today from 09:00 to 18:00",
    }


def _require_manager(request: HttpRequest) -> None:
    if not can_manage(request.user):
        raise PermissionDenied(
            "Only coordinators and admins manage knowledge-base replies.",
            permission=PERM_MANAGE_KB,
        )


@require_GET
@login_required
def replies_page(request: HttpRequest) -> HttpResponse:
    """The coordinators' knowledge-base page; 403 (an HTML page saying why) without
    ``knowledge_base.manage_replies``."""
    if not can_manage(request.user):
        return render(
            request,
            "hub/forbidden.html",
            {
                "what": "the knowledge base",
                "why": "Only coordinators and admins can write and organise the saved replies.",
                "permission": PERM_MANAGE_KB,
            },
            status=403,
        )
    variables = [{"name": name, "description": text} for name, text in VARIABLES.items()]
    return render(
        request,
        "knowledge_base/replies.html",
        {"role": role_of(request.user), "variables": variables},
    )


@require_POST
@staff_api
def api_reply_preview(request: HttpRequest) -> JsonResponse:
    """POST ``{body}`` → ``{text, text_without_values, variables}``: the body filled for a
    sample customer, and with every value missing (the fallbacks).  Nothing is written or
    counted.  Errors: those of a saved body (``invalid_value``, ``field: "body"``)."""
    _require_manager(request)
    body = field(parse_json_body(request), "body", str, max_length=BODY_MAX).strip()
    if not body:
        raise ValidationFailed("The body may not be empty.", field="body")
    placeholders = template_parse(body)
    actor_name = request.user.get_full_name() or request.user.get_username()
    return JsonResponse(
        {
            "text": template_render(body, _sample_values(actor_name)),
            "text_without_values": template_render(body, {}),
            "variables": sorted({p.name for p in placeholders}),
        }
    )
