"""The hub's HTTP middlewares work on both paths: an async view's chain stays on the event
loop (no thread per request) and a bearer token still authenticates it."""

from __future__ import annotations

import asyncio

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from hub.auth import BearerTokenMiddleware, api_token_issue
from hub.errors import HubErrorMiddleware
from hub.exceptions import NotFound

pytestmark = pytest.mark.django_db(transaction=True)


def _async_view_recording(seen: dict):
    async def view(request):
        seen["user"] = request.user
        seen["csrf_exempt"] = getattr(request, "_dont_enforce_csrf_checks", False)
        return HttpResponse("ok")

    return view


def test_bearer_token_authenticates_an_async_chain(staff):
    staff("op")
    raw, _ = api_token_issue(username="op", password="pw-op")
    seen: dict = {}
    middleware = BearerTokenMiddleware(_async_view_recording(seen))
    assert asyncio.iscoroutinefunction(middleware)
    request = RequestFactory().post("/x", HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = asyncio.run(middleware(request))
    assert response.status_code == 200
    assert seen["user"].get_username() == "op"
    assert seen["csrf_exempt"] is True
    assert request.hub_auth == "token"


def test_a_bad_token_is_anonymous_on_the_async_chain(staff):
    seen: dict = {}
    middleware = BearerTokenMiddleware(_async_view_recording(seen))
    request = RequestFactory().post("/x", HTTP_AUTHORIZATION="Bearer not-a-token")
    asyncio.run(middleware(request))
    assert seen["user"].is_anonymous
    assert request.hub_auth == "bad_token"


def test_error_middleware_passes_an_async_chain_through():
    async def view(request):
        return HttpResponse("fine")

    middleware = HubErrorMiddleware(view)
    assert asyncio.iscoroutinefunction(middleware)
    response = asyncio.run(middleware(RequestFactory().get("/x")))
    assert response.content == b"fine"
    refused = middleware.process_exception(RequestFactory().get("/x"), NotFound("gone"))
    assert refused.status_code == 404
