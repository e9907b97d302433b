"""HTTP transport for the knowledge base: the REST twins of the console's ``kb.*`` frames
and the coordinators' editing endpoints.  Each view parses, lets ``staff_api`` check the
login, calls one service or selector and serializes."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_http_methods, require_POST

from hub.errors import parse_json_body
from hub.exceptions import ValidationFailed
from hub.schemas import field, id_list
from hub.views import query_int, staff_api
from knowledge_base import selectors, services


def reply_fields(body: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """The editable fields of a reply in a JSON body (all required to create one)."""
    return {
        "title": field(body, "title", str, required=required, max_length=1000),
        "shortcut": field(body, "shortcut", str, required=required, max_length=200),
        "body": field(body, "body", str, required=required, max_length=20000),
        "language": field(body, "language", str, required=required, max_length=32),
        "query_type_ids": id_list(body, "query_type_ids", required=False),
        "active": field(body, "active", bool, required=False),
    }


@require_http_methods(["GET", "POST"])
@staff_api
def api_replies(request: HttpRequest) -> JsonResponse:
    """GET ``?q=`` searches (``&conversation_id=`` ranks for that conversation, ``&limit=``);
    GET without ``q`` lists every reply; POST creates one."""
    if request.method == "GET":
        query = request.GET.get("q")
        if query is None:
            return JsonResponse({"replies": selectors.reply_list(actor=request.user)})
        conversation_id = request.GET.get("conversation_id") or None
        if conversation_id is not None and len(conversation_id) > 64:
            raise ValidationFailed("conversation_id is too long.", field="conversation_id")
        results = selectors.reply_search(
            actor=request.user,
            query=query,
            conversation_id=conversation_id,
            limit=query_int(request, "limit", 10),
        )
        return JsonResponse({"query": query, "replies": results})
    fields = reply_fields(parse_json_body(request), required=True)
    fields["query_type_ids"] = fields["query_type_ids"] or []
    if fields["active"] is None:
        fields["active"] = True
    reply = services.reply_create(actor=request.user, **fields)
    return JsonResponse({"reply": reply}, status=201)


@require_http_methods(["GET", "PATCH", "DELETE"])
@staff_api
def api_reply(request: HttpRequest, reply_id: int) -> JsonResponse:
    """GET one reply; PATCH ``{version, …fields}``; DELETE retires (``?version=``)."""
    if request.method == "GET":
        reply = selectors.access_reply(actor=request.user, reply_id=reply_id)
        return JsonResponse({"reply": selectors.reply_dict(reply)})
    if request.method == "DELETE":
        reply = services.reply_retire(
            actor=request.user, reply_id=reply_id, version=query_int(request, "version", None)
        )
        return JsonResponse({"reply": reply})
    body = parse_json_body(request)
    reply = services.reply_update(
        actor=request.user,
        reply_id=reply_id,
        version=field(body, "version", int, minimum=1),
        **reply_fields(body, required=False),
    )
    return JsonResponse({"reply": reply})


@require_POST
@staff_api
def api_reply_render(request: HttpRequest, reply_id: int) -> JsonResponse:
    body = parse_json_body(request)
    rendered = services.reply_render(
        actor=request.user,
        reply_id=reply_id,
        conversation_id=field(body, "conversation_id", str, max_length=64),
    )
    return JsonResponse(rendered)


@require_POST
@staff_api
def api_replies_reorder(request: HttpRequest) -> JsonResponse:
    body = parse_json_body(request)
    replies = services.reply_reorder(actor=request.user, reply_ids=id_list(body, "reply_ids"))
    return JsonResponse({"replies": replies})
