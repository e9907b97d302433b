"""HTTP transport for the coordinators' WhatsApp-templates page (``/coordinator/templates/``)
and the two read-only endpoints it adds:

- ``GET /api/hsm/templates/<id>/history/``: who did what to a template, newest first (the
  ``TemplateHistory`` rows the services append with every write);
- ``POST /api/hsm/templates/preview/``: a draft being edited, checked part by part with
  the content rules the services apply (``hsm.rules``) and filled with its examples, so the
  page shows the message WhatsApp would show and the placeholders' count comes from the
  server, not from a second parser in the browser.

The page itself is a shell: its script lists, writes, moves through the status flow and
retires templates through the REST API in ``hsm/views.py``.  Nothing here writes.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from hsm import rules
from hsm.models import Category, Status, TemplateHistory
from hsm.selectors import access_template, can_manage
from hsm.services import TRANSITIONS
from hub.errors import parse_json_body
from hub.exceptions import PermissionDenied
from hub.roles import PERM_MANAGE_HSM, role_of
from hub.schemas import field
from hub.views import staff_api

TEXT_MAX = 4096  # parsing bound, as in hsm/views.py; the rules apply WhatsApp's limits


def _require_manager(actor: Any) -> None:
    if not can_manage(actor):
        raise PermissionDenied(
            "Only coordinators and admins manage WhatsApp templates; operators may only "
            "use approved ones.",
            permission=PERM_MANAGE_HSM,
        )


@require_GET
@login_required
def templates_page(request: HttpRequest) -> HttpResponse:
    """The coordinators' templates page; 403 (an HTML page saying why) without
    ``hsm.manage_templates``."""
    if not can_manage(request.user):
        return render(
            request,
            "hub/forbidden.html",
            {
                "what": "WhatsApp templates",
                "why": "Only coordinators and admins can write WhatsApp templates"
                " and record WhatsApp's review.",
                "permission": PERM_MANAGE_HSM,
            },
            status=403,
        )
    return render(
        request,
        "hsm/templates_page.html",
        {
            "role": role_of(request.user),
            "categories": Category.choices,
            "statuses": Status.choices,
            # The status flow, for the buttons the page offers (the service decides).
            "transitions": {str(k): [str(s) for s in v] for k, v in TRANSITIONS.items()},
        },
    )


def template_history(*, actor: Any, template_id: int) -> list[dict[str, Any]]:
    """Every write to a live template, newest first (managers only)."""
    _require_manager(actor)
    template = access_template(actor=actor, template_id=template_id)
    rows = TemplateHistory.objects.filter(template=template).select_related("actor")
    return [
        {
            "id": row.pk,
            "action": row.action,
            "from_status": row.from_status,
            "to_status": row.to_status,
            "version": row.version,
            "note": row.note,
            "actor": row.actor.get_username() if row.actor else None,
            "at": row.at.isoformat(),
        }
        for row in rows.order_by("-id")
    ]


def template_draft_preview(
    *,
    header: str,
    header_example: str,
    body: str,
    body_examples: list[Any],
    footer: str,
    buttons: list[Any],
) -> dict[str, Any]:
    """The parts of a draft checked with ``hsm.rules`` (the first broken rule is raised,
    naming its field) and filled with the examples given so far: a placeholder whose
    example is still missing or empty stays visible as ``{{n}}``.  Pure: no database."""
    clean_header, header_count = rules.header_clean(header)
    clean_body, body_count = rules.body_clean(body)
    clean_footer = rules.footer_clean(footer)
    clean_buttons = rules.buttons_clean(buttons)

    def value(examples: list[Any], index: int) -> str:
        given = examples[index] if index < len(examples) else ""
        text = given.strip() if isinstance(given, str) else ""
        return text or f"{{{{{index + 1}}}}}"

    header_values = [value([header_example], 0)] if header_count else []
    body_values = [value(body_examples, i) for i in range(body_count)]
    filled_header = rules.fill(clean_header, header_values)
    filled_body = rules.fill(clean_body, body_values)
    return {
        "header_parameters": header_count,
        "body_parameters": body_count,
        "header": filled_header,
        "body": filled_body,
        "footer": clean_footer,
        "buttons": clean_buttons,
        "text": "\n\n".join(p for p in (filled_header, filled_body, clean_footer) if p),
    }


@require_GET
@staff_api
def api_template_history(request: HttpRequest, template_id: int) -> JsonResponse:
    return JsonResponse({"history": template_history(actor=request.user, template_id=template_id)})


@require_POST
@staff_api
def api_template_preview(request: HttpRequest) -> JsonResponse:
    """POST ``{body, body_examples?, header?, header_example?, footer?, buttons?}`` →
    ``{header_parameters, body_parameters, header, body, footer, buttons, text}``."""
    _require_manager(request.user)
    payload = parse_json_body(request)
    return JsonResponse(
        template_draft_preview(
            header=field(payload, "header", str, required=False, default="", max_length=TEXT_MAX),
            header_example=field(
                payload, "header_example", str, required=False, default="", max_length=TEXT_MAX
            ),
            body=field(payload, "body", str, max_length=TEXT_MAX),
            body_examples=field(payload, "body_examples", list, required=False, default=[]),
            footer=field(payload, "footer", str, required=False, default="", max_length=TEXT_MAX),
            buttons=field(payload, "buttons", list, required=False, default=[]),
        )
    )
