"""HTTP transport for WhatsApp templates: coordinators' editing and review endpoints, the
list and preview operators use, and sending (in a conversation, or to start one).  Each
view parses, lets ``staff_api`` check the login, calls one service or selector and
serializes; the services decide who may write."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hsm import selectors, services
from hsm.models import Status
from hub.errors import parse_json_body
from hub.schemas import field
from hub.views import query_int, staff_api

TEXT_MAX = 4096  # the services apply WhatsApp's real limits; this only bounds the parsing


def template_fields(body: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """The editable fields of a template in a JSON body (name, language, category and body
    are required to create one; the optional parts default to empty)."""
    return {
        "name": field(body, "name", str, required=required, max_length=TEXT_MAX),
        "language": field(body, "language", str, required=required, max_length=64),
        "category": field(body, "category", str, required=required, max_length=64),
        "body": field(body, "body", str, required=required, max_length=TEXT_MAX),
        "body_examples": field(body, "body_examples", list, required=False),
        "header": field(body, "header", str, required=False, max_length=TEXT_MAX),
        "header_example": field(body, "header_example", str, required=False, max_length=TEXT_MAX),
        "footer": field(body, "footer", str, required=False, max_length=TEXT_MAX),
        "buttons": field(body, "buttons", list, required=False),
    }


@require_http_methods(["GET", "POST"])
@staff_api
def api_templates(request: HttpRequest) -> JsonResponse:
    """GET lists (``?status=``, ``?language=``; operators see approved ones); POST creates
    a draft."""
    if request.method == "GET":
        templates = selectors.template_list(
            actor=request.user,
            status=request.GET.get("status") or None,
            language=request.GET.get("language") or None,
        )
        return JsonResponse({"templates": templates})
    fields = template_fields(parse_json_body(request), required=True)
    optional = {key: value for key, value in fields.items() if value is not None}
    template = services.template_create(actor=request.user, **optional)
    return JsonResponse({"template": template}, status=201)


@require_http_methods(["GET", "PATCH", "DELETE"])
@staff_api
def api_template(request: HttpRequest, template_id: int) -> JsonResponse:
    """GET one; PATCH ``{version, …fields}``; DELETE retires (``?version=``)."""
    if request.method == "GET":
        template = selectors.access_template(actor=request.user, template_id=template_id)
        return JsonResponse({"template": selectors.template_dict(template)})
    if request.method == "DELETE":
        template = services.template_retire(
            actor=request.user,
            template_id=template_id,
            version=query_int(request, "version", None),
        )
        return JsonResponse({"template": template})
    body = parse_json_body(request)
    template = services.template_update(
        actor=request.user,
        template_id=template_id,
        version=field(body, "version", int, minimum=1),
        **template_fields(body, required=False),
    )
    return JsonResponse({"template": template})


@require_POST
@staff_api
def api_template_status(request: HttpRequest, template_id: int) -> JsonResponse:
    """POST ``{version, status, rejection_reason?}``."""
    body = parse_json_body(request)
    template = services.template_status_change(
        actor=request.user,
        template_id=template_id,
        version=field(body, "version", int, minimum=1),
        status=field(body, "status", str, choices=tuple(Status.values)),
        rejection_reason=field(body, "rejection_reason", str, required=False, max_length=TEXT_MAX),
    )
    return JsonResponse({"template": template})


@require_POST
@staff_api
def api_template_render(request: HttpRequest, template_id: int) -> JsonResponse:
    """POST ``{parameters}`` → the text for the timeline and the Cloud API ``template``
    object, without sending anything (a preview)."""
    body = parse_json_body(request)
    parameters = field(body, "parameters", list)
    template = selectors.access_template(actor=request.user, template_id=template_id)
    return JsonResponse(
        {
            "text": selectors.template_render(template, parameters),
            "message": selectors.template_message(template, parameters),
        }
    )


# --- sending --------------------------------------------------------------------------------
def _parameters(body: dict[str, Any]) -> list[Any]:
    """The flat parameter list (the services check each one and say which is wrong)."""
    return field(body, "parameters", list, required=False, default=[])


@require_http_methods(["GET", "POST"])
@staff_api
def api_conversation_templates(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """GET: the approved templates to offer in this conversation (its language first).
    POST ``{template_id, parameters, client_id}``: send one (the twin of the console's
    ``template.send``); 201 with the message, 200 for a retried ``client_id``."""
    if request.method == "GET":
        return JsonResponse(
            selectors.conversation_templates(actor=request.user, conversation_id=conversation_id)
        )
    body = parse_json_body(request)
    result = services.template_send(
        actor=request.user,
        conversation_id=conversation_id,
        template_id=field(body, "template_id", int, minimum=1),
        parameters=_parameters(body),
        client_id=field(body, "client_id", str, max_length=100),
    )
    return JsonResponse(
        {"message": result.message, "conversation": result.conversation, "created": result.created},
        status=201 if result.created else 200,
    )


@require_POST
@staff_api
def api_outreach(request: HttpRequest) -> JsonResponse:
    """POST ``{customer_id, template_id, parameters, client_id, channel?}``: start a
    conversation with a known customer by sending a template (the twin of
    ``outreach.start``)."""
    body = parse_json_body(request)
    result = services.outreach_start(
        actor=request.user,
        customer_id=field(body, "customer_id", str, max_length=64),
        template_id=field(body, "template_id", int, minimum=1),
        parameters=_parameters(body),
        client_id=field(body, "client_id", str, max_length=100),
        channel=field(body, "channel", str, required=False, default="whatsapp", max_length=32),
    )
    return JsonResponse(
        {"message": result.message, "conversation": result.conversation, "created": result.created},
        status=201 if result.created else 200,
    )


@require_GET
@staff_api
def api_outreach_customers(request: HttpRequest) -> JsonResponse:
    """GET ``?q=&limit=``: known WhatsApp customers by name or number (the twin of
    ``outreach.customers``)."""
    query = request.GET.get("q", "")
    customers = selectors.outreach_customers(
        actor=request.user, query=query, limit=query_int(request, "limit", 10)
    )
    return JsonResponse({"query": query, "customers": customers})
