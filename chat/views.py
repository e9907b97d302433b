"""HTTP transport for chat: the console page, the web chat demo page and the REST API.

The REST endpoints are twins of console frames and call the same services.
"""

from __future__ import annotations

import logging
import re

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chat import delivery, selectors, services
from chat.channels.base import WebhookRejected
from chat.channels.registry import adapter_for
from hub.asyncdb import run_db
from hub.errors import error_response, parse_json_body
from hub.exceptions import ErrorCode, NotAuthenticated, NotFound, PermissionDenied, ValidationFailed
from hub.roles import role_of
from hub.schemas import field
from hub.views import query_int, staff_api
from routing.services import presence_set

logger = logging.getLogger(__name__)


@login_required
@require_GET
def console_page(request: HttpRequest) -> HttpResponse:
    role = role_of(request.user)
    if role is None:
        return render(request, "chat/not_staff.html", status=403)
    # The presence selector's first paint; the console's hello frame brings the stored
    # presence again on every (re)connect.
    state = getattr(request.user, "operator_state", None)
    presence = state.presence if state is not None else "offline"
    return render(request, "chat/console.html", {"role": role, "presence": presence})


@require_GET
def webchat_demo_page(request: HttpRequest) -> HttpResponse:
    """A bank's public page with the chat widget embedded: play the customer.
    ``?type=claims`` plays a page whose widget starts conversations of that query type."""
    query_type = request.GET.get("type", "")
    if not re.fullmatch(r"[-a-zA-Z0-9_]{1,40}", query_type):
        query_type = ""
    return render(request, "chat/webchat_demo.html", {"query_type": query_type})


@require_GET
@staff_api
def api_conversations(request: HttpRequest) -> JsonResponse:
    return JsonResponse(selectors.console_snapshot(actor=request.user))


@require_http_methods(["GET", "POST"])
@staff_api
def api_messages(request: HttpRequest, conversation_id: str) -> JsonResponse:
    if request.method == "GET":
        return JsonResponse(
            selectors.conversation_history(
                actor=request.user,
                conversation_id=conversation_id,
                before_id=query_int(request, "before_id", None),
                limit=query_int(request, "limit", 50),
            )
        )
    body = parse_json_body(request)
    result = services.operator_message_send(
        actor=request.user,
        conversation_id=conversation_id,
        client_id=field(body, "client_id", str, max_length=100),
        text=field(body, "text", str),
    )
    return JsonResponse(
        {"message": result.message, "created": result.created},
        status=201 if result.created else 200,
    )


@require_POST
@staff_api
def api_notes(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """Twin of the console's ``note.send``: an internal note only staff see."""
    body = parse_json_body(request)
    result = services.conversation_note_add(
        actor=request.user,
        conversation_id=conversation_id,
        client_id=field(body, "client_id", str, max_length=100),
        text=field(body, "text", str),
    )
    return JsonResponse(
        {"note": result.note, "created": result.created},
        status=201 if result.created else 200,
    )


@require_POST
@staff_api
def api_close(request: HttpRequest, conversation_id: str) -> JsonResponse:
    body = parse_json_body(request) if request.body else {}
    return JsonResponse(
        {
            "conversation": services.conversation_close(
                actor=request.user,
                conversation_id=conversation_id,
                resolution_id=field(body, "resolution_id", int, required=False, minimum=1),
            )
        }
    )


@require_POST
@staff_api
def api_presence(request: HttpRequest) -> JsonResponse:
    body = parse_json_body(request)
    state = presence_set(actor=request.user, presence=field(body, "presence", str, max_length=16))
    return JsonResponse({"presence": state.presence})


def _webhook_refusal(channel: str, refused: WebhookRejected) -> HttpResponse:
    """A refused webhook as the hub's error body; every refusal is logged."""
    logger.warning("%s webhook refused (%s): %s", channel, refused.status, refused.reason)
    data = {"field": refused.field} if refused.field else {}
    if refused.status == 401:
        error = NotAuthenticated(refused.reason, **data)
    elif refused.status == 403:
        error = PermissionDenied(refused.reason, **data)
    elif refused.status == 404:
        error = NotFound(refused.reason, **data)
    else:
        code = ErrorCode.INVALID_JSON if refused.code == "invalid_json" else None
        error = ValidationFailed(refused.reason, code=code, **data)
    return error_response(error)


@csrf_exempt
@require_http_methods(["GET", "POST"])
async def channel_webhook(request: HttpRequest, channel: str) -> HttpResponse:
    """``/channels/<channel>/webhook``: a provider's calls for a channel adapter.

    GET is the subscription handshake (the challenge back as text).  POST must be signed:
    the adapter checks the signature on the raw body before anything is parsed, then
    validates the whole body; only then are its messages and statuses applied
    (``chat.delivery.webhook_apply``).  Unknown or unconfigured channels are 404.

    Async, with the database work on the hub's bounded database threads (``run_db``): a
    sync view gets a thread (and so a database connection) per concurrent request under
    ASGI, and a provider's burst of webhooks exhausted PostgreSQL's connection slots.
    """
    try:
        adapter = adapter_for(channel)
    except LookupError:
        adapter = None
    if adapter is None or not adapter.enabled():
        return error_response(NotFound("No such channel webhook.", channel=channel))
    try:
        if request.method == "GET":
            challenge = adapter.webhook_handshake(request.GET)
            return HttpResponse(challenge, content_type="text/plain; charset=utf-8")
        body = request.body
        adapter.webhook_verify(request.headers, body)
        batch = adapter.webhook_parse(body)
    except WebhookRejected as refused:
        return _webhook_refusal(channel, refused)
    outcome = await run_db(delivery.webhook_apply, channel=channel, batch=batch)
    return JsonResponse(outcome.as_dict())
